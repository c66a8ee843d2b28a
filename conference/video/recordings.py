"""Room recordings: Janus writes one .mjr file per published stream; `janus-pp-rec` turns each video stream into
a playable file (.webm for VP8, .mp4 for H.264) without transcoding."""

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path

# videoroom-<room>-user-<participant id>-<microseconds>-video-<mid>.mjr (Janus 1.1 multistream naming)
_NAME = re.compile(r"^videoroom-(?P<room>\d+)-user-(?P<user>\d+)-(?P<ts>\d+)-video-(?P<mid>\w+)\.mjr$")
CONTAINERS = {"vp8": "webm", "vp9": "webm", "h264": "mp4", "av1": "mp4"}


class ConversionFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Stream:
    path: Path
    participant_id: int
    started_us: int


def video_streams(rec_dir: Path) -> list[Stream]:
    streams = []
    for path in sorted(rec_dir.glob("*.mjr")):
        if match := _NAME.match(path.name):
            streams.append(Stream(path, int(match["user"]), int(match["ts"])))
    return streams


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
    """The playable file beside the .mjr; raises ConversionFailed when it has no frames."""
    codec = await codec_of(pp_rec, stream.path)
    target = stream.path.with_suffix("." + CONTAINERS.get(codec, "webm"))
    code, output = await _run(pp_rec, str(stream.path), str(target))
    if code or not target.is_file() or target.stat().st_size == 0:
        raise ConversionFailed(f"janus-pp-rec 处理 {stream.path.name} 失败：{output[-300:]}")
    return target


async def count_frames(pp_rec: str, mjr: Path) -> int:
    """Video frames in a recording as janus-pp-rec's parser counts them (--parse prints one line per packet,
    the frames are the distinct RTP timestamps)."""
    code, output = await _run(pp_rec, "--parse", str(mjr))
    timestamps = set(re.findall(r"ts=(\d+)", output))
    return len(timestamps)
