"""Room recordings: Janus writes one .mjr file per published stream; `janus-pp-rec` turns each into a playable
file without transcoding: video to .webm (VP8) or .mp4 (H.264), audio to .opus (Ogg)."""

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path

# videoroom-<room>-user-<participant id>-<microseconds>-<audio|video>-<mid>.mjr (Janus 1.1 multistream naming)
_NAME = re.compile(r"^videoroom-(?P<room>\d+)-user-(?P<user>\d+)-(?P<ts>\d+)-(?P<kind>audio|video)-(?P<mid>\w+)\.mjr$")
CONTAINERS = {"vp8": "webm", "vp9": "webm", "h264": "mp4", "av1": "mp4", "opus": "opus", "g711": "wav"}


class ConversionFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Stream:
    path: Path
    participant_id: int
    started_us: int
    kind: str  # audio, video


def streams(rec_dir: Path) -> list[Stream]:
    """The room's closed-and-not-yet-filed recordings, oldest first (video before audio of the same site)."""
    found = []
    for path in rec_dir.glob("*.mjr"):
        if match := _NAME.match(path.name):
            found.append(Stream(path, int(match["user"]), int(match["ts"]), match["kind"]))
    return sorted(found, key=lambda s: (s.started_us, s.participant_id, s.kind != "video"))


async def _run(*argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


async def codec_of(pp_rec: str, mjr: Path) -> str:
    """The stream's codec from the .mjr header (janus-pp-rec --json)."""
    code, output = await _run(pp_rec, "--json", str(mjr))
    start = output.find("{")
    if code or start < 0:
        raise ConversionFailed(f"janus-pp-rec 无法读取 {mjr.name}：{output[-300:]}")
    return str(json.loads(output[start : output.rindex("}") + 1]).get("c", "")).lower()


async def convert(pp_rec: str, stream: Stream) -> Path:
    """The playable file beside the .mjr; raises ConversionFailed when janus-pp-rec makes none."""
    codec = await codec_of(pp_rec, stream.path)
    if codec not in CONTAINERS:
        raise ConversionFailed(f"{stream.path.name}：不支持的编码 {codec!r}")
    target = stream.path.with_suffix("." + CONTAINERS[codec])
    code, output = await _run(pp_rec, str(stream.path), str(target))
    if code or not target.is_file() or target.stat().st_size == 0:
        raise ConversionFailed(f"janus-pp-rec 处理 {stream.path.name} 失败：{output[-300:]}")
    return target
