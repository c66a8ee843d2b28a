"""Mandarin speech for prompts and bulletins: espeak-ng speaks, sox makes it telephone audio (8 kHz, 16-bit,
mono WAV). Each text is synthesised once: files are cached under <var_dir>/speech by the hash of what shaped
them (text, voice, speed), so a bridge prompt or a warning bulletin played a thousand times costs one synthesis.
A recording somebody made (any format sox reads) becomes telephone audio the same way, cached by its content.
"""

import asyncio
import hashlib
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from switchboard.core.errors import InvalidInput, Unavailable

VOICE = "cmn"  # espeak-ng's Mandarin
WORDS_PER_MINUTE = 150  # slower than espeak's 175: bulletins are heard over phones and loudspeakers
MAX_CHARACTERS = 5000
_locks: dict[str, asyncio.Lock] = {}


async def synthesize(var_dir: Path, text: str, *, voice: str = VOICE, speed: int = WORDS_PER_MINUTE) -> Path:
    """The 8 kHz WAV of `text`, synthesising it only if not cached."""
    text = text.strip()
    if not text:
        raise InvalidInput("播报文本为空", field="text")
    if len(text) > MAX_CHARACTERS:
        raise InvalidInput(f"播报文本超过 {MAX_CHARACTERS} 字", field="text")

    async def speak(work: Path) -> Path:
        spoken = work / "spoken.wav"
        # The text goes in on stdin, never on a command line: it may come from a warning's author.
        await _run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(spoken), "--stdin"], text.encode())
        return spoken

    key = hashlib.sha256(f"{voice}\0{speed}\0{text}".encode()).hexdigest()
    return await _telephone(var_dir, key, speak, ("espeak-ng", "sox"))


async def recorded(var_dir: Path, data: bytes) -> Path:
    """The 8 kHz WAV of a recording (WAV, or any format sox reads from its header), converted only if not cached."""
    if not data:
        raise InvalidInput("录音为空", field="recording")

    async def upload(work: Path) -> Path:
        source = work / "recording"
        await asyncio.to_thread(source.write_bytes, data)
        return source

    key = hashlib.sha256(b"recording\0" + data).hexdigest()
    return await _telephone(var_dir, key, upload, ("sox",))


async def _telephone(
    var_dir: Path, key: str, source: Callable[[Path], Awaitable[Path]], tools: tuple[str, ...]
) -> Path:
    """<var_dir>/speech/<key>.wav, made (once, whoever asks at the same time) from the audio `source` writes into a
    work directory, converted to telephone audio."""
    target = var_dir / "speech" / f"{key}.wav"
    async with _locks.setdefault(key, asyncio.Lock()):
        if target.exists():
            return target
        for tool in tools:
            if shutil.which(tool) is None:
                raise Unavailable(f"找不到 {tool}：请运行 scripts/setup（它会安装 espeak-ng 和 sox）")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as work:
            audio, telephone = await source(Path(work)), Path(work) / "telephone.wav"
            await _run(["sox", str(audio), "-r", "8000", "-c", "1", "-b", "16", str(telephone)])
            os.replace(telephone, target)  # atomic: a reader never sees half a file
    return target


async def _run(argv: list[str], stdin: bytes | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, error = await process.communicate(stdin)
    if process.returncode != 0:
        raise Unavailable(f"语音合成失败（{argv[0]}）：{error.decode(errors='replace').strip()[:200]}")
