"""What came back of the probe's tone: found in the received audio frame by frame (20 ms, one G.711 packet), where
a frame carries the tone if it is not silence and the tone holds most of its energy. The first such frame, refined
to the sample, gives the round-trip delay; the tone's frames counted from there give the loss and the level."""

import io
import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAME_SECONDS = 0.02
SILENCE_DBFS = -50.0  # mean power below this is silence (full-scale sine = -3 dBFS)
MIN_SHARE = 0.5  # a frame carries the tone when the tone holds at least this share of its energy
_HEADER = 44  # the canonical WAV header pjmedia's writer puts first


def goertzel_power(samples: np.ndarray, rate: int, freq: float) -> float:
    """Mean power of the component at ``freq`` (A²/2 for a sine of amplitude A): the Goertzel filter's output,
    computed in closed form as the single DFT term at that frequency."""
    n = len(samples)
    if n == 0:
        return 0.0
    phase = np.exp(-2j * np.pi * freq / rate * np.arange(n))
    term = np.dot(samples, phase)
    return float(2.0 * abs(term) ** 2 / n**2)


@dataclass(frozen=True)
class Echo:
    level_dbfs: float | None  # the tone's level as heard back; None: not heard
    delay_ms: float | None  # from the tone's first sample sent to its first sample heard
    loss: float  # share of the tone's frames not heard back (1.0: none)


def echo_of(path: Path, freq: float, tone_seconds: float) -> Echo:
    """The tone sent for ``tone_seconds`` as heard in ``path``: 16-bit mono WAV, recorded from when it was sent."""
    rate, pcm = _pcm(path)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    size = int(FRAME_SECONDS * rate)
    starts = range(0, len(samples) - size + 1, size)
    first = next((i for i in starts if _carries(samples[i : i + size], rate, freq)), None)
    if first is None:
        return Echo(None, None, 1.0)
    onset = _onset(samples, first, size)
    expected = round(tone_seconds / FRAME_SECONDS)
    frames = [samples[onset + j * size : onset + (j + 1) * size] for j in range(expected)]
    heard = [f for f in frames if len(f) == size and _carries(f, rate, freq)]
    if not heard:  # only the partial first frame carried it
        return Echo(None, None, 1.0)
    power = float(np.mean([goertzel_power(f, rate, freq) for f in heard]))
    return Echo(10 * math.log10(power), onset / rate * 1000, 1 - len(heard) / expected)


def _pcm(path: Path) -> tuple[int, bytes]:
    """The sample rate and 16-bit samples of the recorder's WAV. A file whose recorder has not closed it yet still has
    0 in its sizes (seen in a full test run on a busy machine: "not a WAVE file"); its samples are then what follows
    the 44-byte header pjmedia writes first, at the rate that header names."""
    data = path.read_bytes()
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getframerate(), wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        if len(data) < _HEADER or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
            raise
        body = data[_HEADER:]
        return int.from_bytes(data[24:28], "little"), body[: len(body) - len(body) % 2]


def _carries(frame: np.ndarray, rate: int, freq: float) -> bool:
    power = float(np.mean(frame**2))
    return power >= 10 ** (SILENCE_DBFS / 10) and goertzel_power(frame, rate, freq) >= MIN_SHARE * power


def _onset(samples: np.ndarray, first: int, size: int) -> int:
    """The tone's first sample: in the frame before the first that carries it, or in that one, the first sample to
    reach half the tone's amplitude (a sine does within a sixth of its period)."""
    half = float(np.max(np.abs(samples[first : first + size]))) / 2
    start = max(0, first - size)
    return start + int(np.argmax(np.abs(samples[start : first + size]) >= half))
