"""Tone detection in call audio: which frequencies a recording holds, and how much of its energy they carry.

Audio is cut into short blocks; blocks quieter than ``silence_dbfs`` (the silence before media flows, gaps) are
left out, so a tone is judged on the audio that is there. A frequency's *share* is the energy at that frequency
(Goertzel power, taken as the best of a few points within ``tolerance_hz``) over all the energy of the loud blocks:
a clean tone scores about 1, each half of a dual tone about 0.5, and G.711 quantisation noise (about 38 dB down)
costs a percent or so.

Sources are WAV paths (PCM, any sample width, channels mixed down) or arrays of samples with their ``rate``.
"""

from __future__ import annotations

import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from probe.audio import goertzel_power

BLOCK_SECONDS = 0.05
SILENCE_DBFS = -50.0
TOLERANCE_HZ = 8.0

Source = str | Path | np.ndarray


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float64, full scale = 1.0
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


def read_wav(path: str | Path) -> Audio:
    """A PCM WAV file as floats in [-1, 1], channels averaged."""
    with wave.open(str(path), "rb") as wav:
        width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    return _pcm(raw, width, channels, rate, str(path))


def _pcm(raw: bytes, width: int, channels: int, rate: int, name: str) -> Audio:
    """Little-endian PCM samples as floats in [-1, 1], channels averaged."""
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 3:
        bytes3 = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        ints = bytes3[:, 0].astype(np.int32) | bytes3[:, 1].astype(np.int32) << 8 | bytes3[:, 2].astype(np.int32) << 16
        samples = np.where(ints >= 1 << 23, ints - (1 << 24), ints).astype(np.float64) / float(1 << 23)
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)
    else:
        raise ValueError(f"{name}: unsupported sample width {width}")
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels].reshape(-1, channels).mean(axis=1)
    return Audio(samples, rate)


def recorded_so_far(path: str | Path) -> Audio:
    """What a phone has recorded into `path` up to now, while it is still recording: pjmedia writes the WAV
    header's sizes only when the recording stops, so every whole sample after the header counts. A recording
    that has not begun yet is empty."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        data = b""
    fmt = data.find(b"fmt ")
    start = data.find(b"data", fmt)
    if fmt < 0 or start < 0 or len(data) < fmt + 24:
        return Audio(np.zeros(0), 8000)
    channels, rate = struct.unpack_from("<HI", data, fmt + 10)
    width = struct.unpack_from("<H", data, fmt + 22)[0] // 8
    body = data[start + 8 :]
    return _pcm(body[: len(body) - len(body) % (width * channels)], width, channels, rate, str(path))


def load(source: Source | Audio, rate: int | None = None, start: float = 0.0, end: float | None = None) -> Audio:
    """Any source as Audio, cut to [start, end) seconds. Integer arrays are taken as 16-bit PCM."""
    if isinstance(source, Audio):
        audio = source
    elif isinstance(source, np.ndarray):
        if rate is None:
            raise ValueError("an array of samples needs its rate")
        samples = source.astype(np.float64)
        if np.issubdtype(source.dtype, np.integer):
            samples = samples / 32768.0
        audio = Audio(samples.reshape(-1), rate)
    else:
        audio = read_wav(source)
    first = max(0, int(start * audio.rate))
    last = len(audio.samples) if end is None else min(len(audio.samples), int(end * audio.rate))
    return Audio(audio.samples[first:last], audio.rate)


def _loud_blocks(audio: Audio, block_seconds: float, silence_dbfs: float) -> list[np.ndarray]:
    size = max(16, int(block_seconds * audio.rate))
    floor = 10 ** (silence_dbfs / 10)  # mean power of the threshold level (full-scale sine = -3 dBFS, 0.5)
    blocks = []
    for first in range(0, len(audio.samples) - size + 1, size):
        block = audio.samples[first : first + size]
        block = block - block.mean()
        if np.mean(block**2) >= floor:
            blocks.append(block)
    return blocks


def tone_shares(
    source: Source | Audio,
    freqs: list[float],
    *,
    rate: int | None = None,
    start: float = 0.0,
    end: float | None = None,
    block_seconds: float = BLOCK_SECONDS,
    silence_dbfs: float = SILENCE_DBFS,
    tolerance_hz: float = TOLERANCE_HZ,
) -> dict[float, float]:
    """For each frequency, its share (0-1) of the energy of the non-silent audio; all 0 if there is none."""
    audio = load(source, rate, start, end)
    blocks = _loud_blocks(audio, block_seconds, silence_dbfs)
    total = sum(float(np.mean(b**2)) for b in blocks)
    if not blocks or total <= 0:
        return dict.fromkeys(freqs, 0.0)
    offsets = np.linspace(-tolerance_hz, tolerance_hz, 5) if tolerance_hz > 0 else np.zeros(1)
    shares = {}
    for freq in freqs:
        energy = sum(max(goertzel_power(b, audio.rate, freq + off) for off in offsets) for b in blocks)
        shares[freq] = min(1.0, energy / total)
    return shares


def tone_present(
    source: Source | Audio,
    freq: float,
    *,
    min_share: float = 0.3,
    min_seconds: float = 0.2,
    rate: int | None = None,
    start: float = 0.0,
    end: float | None = None,
    silence_dbfs: float = SILENCE_DBFS,
    tolerance_hz: float = TOLERANCE_HZ,
) -> bool:
    """Whether ``freq`` carries at least ``min_share`` of the energy of at least ``min_seconds`` of audio that is
    not silence, within [start, end)."""
    audio = load(source, rate, start, end)
    if loud_seconds(audio, silence_dbfs=silence_dbfs) < min_seconds:
        return False
    share = tone_shares(audio, [freq], silence_dbfs=silence_dbfs, tolerance_hz=tolerance_hz)[freq]
    return share >= min_share


def tone_seconds(
    source: Source | Audio,
    freq: float,
    *,
    min_share: float = 0.5,
    rate: int | None = None,
    start: float = 0.0,
    end: float | None = None,
    silence_dbfs: float = SILENCE_DBFS,
    tolerance_hz: float = TOLERANCE_HZ,
) -> float:
    """How many seconds of the audio are ``freq`` for the most part: blocks not silent in which that frequency
    carries at least ``min_share`` of the energy. "Heard the tone for a second" is ``tone_seconds(...) >= 1``."""
    audio = load(source, rate, start, end)
    offsets = np.linspace(-tolerance_hz, tolerance_hz, 5) if tolerance_hz > 0 else np.zeros(1)
    blocks = _loud_blocks(audio, BLOCK_SECONDS, silence_dbfs)
    toned = [
        b
        for b in blocks
        if max(goertzel_power(b, audio.rate, freq + off) for off in offsets) >= min_share * np.mean(b**2)
    ]
    return len(toned) * BLOCK_SECONDS


def loud_seconds(
    source: Source | Audio,
    *,
    rate: int | None = None,
    start: float = 0.0,
    end: float | None = None,
    silence_dbfs: float = SILENCE_DBFS,
) -> float:
    """How many seconds of the audio are louder than ``silence_dbfs``."""
    audio = load(source, rate, start, end)
    return len(_loud_blocks(audio, BLOCK_SECONDS, silence_dbfs)) * BLOCK_SECONDS


def level_dbfs(
    source: Source | Audio, *, rate: int | None = None, start: float = 0.0, end: float | None = None
) -> float:
    """Mean power of the whole audio in dBFS (a full-scale sine is -3 dBFS); -inf for digital silence."""
    audio = load(source, rate, start, end)
    power = float(np.mean(audio.samples**2)) if len(audio.samples) else 0.0
    return 10 * np.log10(power) if power > 0 else float("-inf")


def dominant_frequencies(
    source: Source | Audio,
    *,
    count: int = 3,
    rate: int | None = None,
    start: float = 0.0,
    end: float | None = None,
    min_hz: float = 50.0,
    max_hz: float | None = None,
    silence_dbfs: float = SILENCE_DBFS,
) -> list[tuple[float, float]]:
    """The strongest spectral peaks of the non-silent audio as (frequency in Hz, share), strongest first."""
    audio = load(source, rate, start, end)
    blocks = _loud_blocks(audio, 0.1, silence_dbfs)
    if not blocks:
        return []
    size = len(blocks[0])
    n_fft = max(audio.rate, size)  # 1 Hz bins
    window = np.hanning(size)
    spectrum = sum(np.abs(np.fft.rfft(b * window, n_fft)) ** 2 for b in blocks)
    bins = np.fft.rfftfreq(n_fft, 1.0 / audio.rate)
    top = max_hz if max_hz is not None else audio.rate / 2
    usable = (bins >= min_hz) & (bins <= top)
    peaks = np.where(usable[1:-1] & (spectrum[1:-1] > spectrum[:-2]) & (spectrum[1:-1] >= spectrum[2:]))[0] + 1
    peaks = sorted(peaks, key=lambda i: spectrum[i], reverse=True)
    if peaks:  # a peak 30 dB under the strongest is leakage or noise, not a tone
        peaks = [i for i in peaks if spectrum[i] >= spectrum[peaks[0]] * 1e-3]
    chosen: list[float] = []
    spacing = 3 * audio.rate / size  # one main lobe of the Hann window: neighbours are the same peak
    for index in peaks:
        freq = float(bins[index])
        if all(abs(freq - other) > spacing for other in chosen):
            chosen.append(freq)
        if len(chosen) == count:
            break
    shares = tone_shares(audio, chosen, silence_dbfs=silence_dbfs)
    return [(freq, shares[freq]) for freq in chosen]
