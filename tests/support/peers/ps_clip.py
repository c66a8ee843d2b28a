"""A pre-encoded PS clip for the GB/T 28181 device simulator: many streams, or a codec GStreamer's mpegpsmux cannot
carry (H.265), at the cost of encoding once. `make` encodes a moving test pattern (PyAV: libx264 or libx265) and
muxes each frame into MPEG-PS with libavformat's `mpeg` muxer (pack header, system header and PSM with the
stream type, PES), keeping each frame's PS bytes apart; then

    python -m tests.support.peers.ps_clip CLIP SSRC udp|tcp HOST:PORT    (send to, or connect to, HOST:PORT)
    python -m tests.support.peers.ps_clip CLIP SSRC accept FD            (listen on the inherited bound socket FD)

sends the clip in a loop as RTP payload type 96 (at most 1400 bytes a packet, the last of a frame marked,
GB/T 28181-2016 Appendix C; over UDP, or over TCP with RFC 4571 framing, connecting to a platform that listens,
`a=setup:passive` in its offer, or taking the one connection of a platform that connects, `a=setup:active`) at the
clip's frame rate, never re-encoding. SIGTERM stops it.

Clip file: b"PSCLIP1\\n", then per frame a 4-byte big-endian length and its PS bytes; the frame rate is in the name
the caller chose (`clip_path`)."""

import signal
import socket
import struct
import sys
import time
from pathlib import Path

MAGIC = b"PSCLIP1\n"
CHUNK = 1400
FPS = 25


def clip_path(folder: Path, codec: str, width: int, height: int, kbps: int, seconds: int) -> Path:
    return folder / f"noisy-pattern-{codec}-{width}x{height}-{kbps}k-{seconds}s-{FPS}fps.psclip"


class _Frames:
    """What the muxer writes, cut where each frame's mux ends."""

    def __init__(self) -> None:
        self.current = bytearray()
        self.frames: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.current += data
        return len(data)

    def cut(self) -> None:
        if self.current:
            self.frames.append(bytes(self.current))
            self.current = bytearray()


def make(path: Path, codec: str = "libx264", width: int = 1920, height: int = 1080, kbps: int = 3000,
         seconds: int = 10) -> Path:  # fmt: skip
    """Encode once unless `path` exists; return `path`. A square crossing a gradient under fresh noise each frame (so
    the encoder spends the bit rate asked for, as a real scene at night does), a key frame each second."""
    if path.exists():
        return path
    import av
    import numpy

    sink = _Frames()
    out = av.open(sink, "w", format="mpeg", options={"flush_packets": "1"})
    stream = out.add_stream(codec, rate=FPS)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.bit_rate = kbps * 1000
    stream.options = {"g": str(FPS), "bf": "0", "preset": "veryfast", "tune": "zerolatency"}
    if codec == "libx264":
        stream.options |= {"profile": "high"}
    rows = numpy.linspace(0, 255, height, dtype=numpy.uint8)[:, None]
    ramp = numpy.repeat(numpy.repeat(rows, width, axis=1)[:, :, None], 3, axis=2)
    radius = height // 10
    noise = numpy.random.default_rng(28181)
    for index in range(seconds * FPS):
        image = ramp + noise.integers(0, 48, size=ramp.shape, dtype=numpy.uint8)
        x = int((index * 17) % (width - 2 * radius)) + radius
        y = int(abs(((index * 11) % (2 * (height - 2 * radius))) - (height - 2 * radius))) + radius
        image[y - radius : y + radius, x - radius : x + radius] = (255, 255, 255)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        for packet in stream.encode(frame):
            out.mux(packet)
            sink.cut()
    for packet in stream.encode():
        out.mux(packet)
        sink.cut()
    out.close()
    sink.cut()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as file:
        file.write(MAGIC)
        for data in sink.frames:
            file.write(struct.pack("!I", len(data)) + data)
    partial.rename(path)
    return path


def frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.startswith(MAGIC), f"{path} is not a PS clip"
    found, at = [], len(MAGIC)
    while at < len(data):
        (length,) = struct.unpack_from("!I", data, at)
        found.append(data[at + 4 : at + 4 + length])
        at += 4 + length
    return found


def opened(mode: str, target: str) -> socket.socket:
    """The socket the clip goes out on: UDP to HOST:PORT, TCP connected to HOST:PORT, or (accept) the one connection
    taken on the inherited bound socket FD, which then listens no more."""
    if mode == "accept":
        with socket.socket(fileno=int(target)) as listener:
            listener.listen(1)
            return listener.accept()[0]
    host, _, port = target.rpartition(":")
    if mode == "tcp":
        return socket.create_connection((host, int(port)), timeout=10)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    sock.connect((host, int(port)))
    return sock


def send(path: Path, sock: socket.socket, ssrc: int) -> None:
    """The clip over RTP on `sock`, looped, paced by the clock at FPS (a late frame is sent at once, never skipped);
    over TCP each packet after its 2-byte length (RFC 4571)."""
    clip = frames(path)
    tcp = sock.type == socket.SOCK_STREAM
    deliver = sock.sendall if tcp else sock.send
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    sequence, started, index = 0, time.monotonic(), 0
    while not stopped:
        data = clip[index % len(clip)]
        stamp = (index * 90000 // FPS) & 0xFFFFFFFF
        for start in range(0, len(data), CHUNK):
            marker = 0x80 if start + CHUNK >= len(data) else 0
            packet = (
                struct.pack("!BBHII", 0x80, marker | 96, sequence & 0xFFFF, stamp, ssrc) + data[start : start + CHUNK]
            )
            deliver(struct.pack("!H", len(packet)) + packet if tcp else packet)
            sequence += 1
        index += 1
        delay = started + index / FPS - time.monotonic()
        if delay > 0:
            time.sleep(delay)


if __name__ == "__main__":  # until connected, SIGTERM's default action ends the process (in accept, in connect)
    send(Path(sys.argv[1]), opened(sys.argv[3], sys.argv[4]), int(sys.argv[2]))
