"""Camera ingest: one camera's live H.264 into a VideoRoom as a remote publisher, in a process of its own.

    python -m conference.video.ingest --source ps-udp|ps-tcp --socket-fd FD --janus HOST:PORT
    python -m conference.video.ingest --source ps-tcp --connect HOST:PORT --bind ADDRESS --janus HOST:PORT
    python -m conference.video.ingest --source rtsp --janus HOST:PORT          (URL in $SB_INGEST_RTSP)

A GB/T 28181 device streams MPEG-PS over RTP (payload type 96, section 9.2 and Appendix C). Neither GStreamer 1.22
(no PS depayloader) nor libavformat (no RTP handler for MP2P) takes that as it comes, so this process strips the RTP
header itself (one recv and one slice per packet, in order, gaps counted as loss) and hands the PS bytes to
libavformat's `mpeg` demuxer (PyAV); every H.264 access unit then goes out through libavformat's RTP muxer
(packetisation in C) to the Janus VideoRoom remote publisher the control plane added: SSRC 1000 (Janus's remote
publisher maps SSRC 1000 + 10 * mindex to a stream), payload type 107 (Janus's H.264). Nothing is decoded. An RTSP
camera takes the same path from libavformat's RTSP client, which is far cheaper than a WebRTC publisher (aiortc
encrypts every packet in Python: BENCHMARKS.md).

The socket is the control plane's (inherited as `--socket-fd`: bound UDP, or a TCP listener for RTP over TCP,
`a=setup:passive`), so the port the device was INVITEd to stays the same when this process is restarted (over TCP
the device's connection does not survive that). With `--connect` (RTP over TCP, `a=setup:active`: the device
listens on the address its answer gave) this process connects from `--bind` itself, again after a restart; either
way the TCP stream is read the same way (RFC 4571). What happens is told on stdout, one JSON object a line: `streaming`
(codec, and milliseconds from start to the first frame sent), `refused` (a codec browsers here cannot decode:
H.265), `stats` (packets, lost) every few seconds.
"""

import argparse
import json
import logging
import os
import socket
import struct
import sys
import time
from typing import Any

log = logging.getLogger(__name__)

REMOTE_SSRC = 1000  # Janus VideoRoom: REMOTE_PUBLISHER_BASE_SSRC + 10 * mindex, our one video stream is mindex 0
H264_PT = 107  # Janus's payload type for H.264
PACKET_SIZE = 1200  # RTP packets Janus relays into DTLS-SRTP: leave room for the SRTP tag and TURN
STATS_SECONDS = 5.0
RECEIVE_SECONDS = 10.0  # no packet for this long: the device stopped, the process exits (and is restarted)
CONNECT_SECONDS = 5.0  # a device may open its listener a moment after its 200 OK: refusals retried this long
DECODABLE = {"h264": "h264"}
REFUSED = {"hevc": "H.265"}


def say(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, **data}), flush=True)


class PsOverRtp:
    """The PS bytes of an RTP stream as a file libavformat reads: RTP header, CSRCs, extension and padding stripped;
    packets older than the last one taken are dropped, gaps counted as lost. From a UDP socket, or from a connected
    TCP socket (RFC 4571: a 2-byte length before each packet), whichever side opened the connection."""

    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(RECEIVE_SECONDS)
        self.sock = sock
        self.stream = sock.makefile("rb") if sock.type == socket.SOCK_STREAM else None
        self.buffer = bytearray(65536)
        self.pending = b""
        self.expected: int | None = None
        self.packets = 0
        self.lost = 0

    def read(self, size: int) -> bytes:
        """Up to `size` bytes; none (the end of the stream) after RECEIVE_SECONDS without a packet, or once the
        device closed its TCP connection."""
        while not self.pending:
            try:
                packet = self._packet()
            except TimeoutError:
                return b""
            if packet is None:
                return b""
            self.pending = self._payload(packet)
        taken, self.pending = self.pending[:size], self.pending[size:]
        return taken

    def _packet(self) -> memoryview | None:
        if self.stream is None:
            return memoryview(self.buffer)[: self.sock.recv_into(self.buffer)]
        head = self.stream.read(2)
        if len(head) < 2:
            return None
        length = struct.unpack("!H", head)[0]
        data = self.stream.read(length)
        return memoryview(data) if len(data) == length else None

    def _payload(self, packet: memoryview) -> bytes:
        length = len(packet)
        if length < 12 or packet[0] >> 6 != 2:
            return b""
        first, sequence = packet[0], struct.unpack_from("!H", packet, 2)[0]
        if self.expected is not None:
            gap = (sequence - self.expected) & 0xFFFF
            if gap >= 0x8000:
                return b""  # late or duplicate: its place in the stream has gone
            self.lost += gap
        self.expected = (sequence + 1) & 0xFFFF
        self.packets += 1
        start = 12 + 4 * (first & 0x0F)
        if first & 0x10:
            start += 4 + 4 * struct.unpack_from("!H", packet, start + 2)[0]
        end = length - (packet[length - 1] if first & 0x20 else 0)
        return bytes(packet[start:end])


class Timeline:
    """Output timestamps that only move forward: a camera's PTS may jump (its encoder restarted, a looped clip,
    33-bit wrap); the muxer refuses a DTS that goes back, so the stream is shifted to carry on one frame later."""

    JUMP = 10 * 90000  # a gap this long (in 90 kHz ticks) is a discontinuity, not a stall

    def __init__(self) -> None:
        self.offset = 0
        self.last: int | None = None
        self.step = 3600  # one frame at 25 fps, until the stream shows its own

    def place(self, packet: Any) -> None:
        dts = packet.dts + self.offset
        if self.last is not None:
            if dts <= self.last or dts - self.last > self.JUMP:
                self.offset += self.last + self.step - dts
                dts = self.last + self.step
            else:
                self.step = dts - self.last
        packet.pts, packet.dts = packet.pts + self.offset, dts
        self.last = dts


def accepted(listener: socket.socket) -> socket.socket:
    """The one connection the device makes to our listener (`a=setup:passive`)."""
    listener.settimeout(RECEIVE_SECONDS)
    return listener.accept()[0]


def connected(address: str, source: str) -> socket.socket:
    """A connection from `source` to the device's listener (`a=setup:active`), retried while it refuses: a device
    may answer the INVITE before it listens."""
    host, _, port = address.rpartition(":")
    deadline, delay = time.monotonic() + CONNECT_SECONDS, 0.05
    while True:
        try:
            return socket.create_connection((host, int(port)), RECEIVE_SECONDS, source_address=(source, 0))
        except ConnectionRefusedError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def open_source(args: argparse.Namespace) -> tuple[Any, PsOverRtp | None]:
    import av

    if args.source == "rtsp":
        url = os.environ.get("SB_INGEST_RTSP", "")
        options = {"rtsp_transport": "tcp", "timeout": str(int(RECEIVE_SECONDS * 1e6))}
        return av.open(url, options=options), None
    if args.source == "ps-udp":
        reader = PsOverRtp(socket.socket(fileno=args.socket_fd))
    elif args.connect:
        reader = PsOverRtp(connected(args.connect, args.bind))
    else:
        reader = PsOverRtp(accepted(socket.socket(fileno=args.socket_fd)))
    return av.open(reader, format="mpeg", options={"probesize": "262144", "analyzeduration": "2000000"}), reader


def run(args: argparse.Namespace) -> int:
    import av

    started = time.monotonic()
    source, reader = open_source(args)
    video = next((stream for stream in source.streams.video), None)
    if video is None:
        say("refused", codec="", reason="no video")
        return 3
    codec = video.codec_context.name
    if codec not in DECODABLE:
        say("refused", codec=REFUSED.get(codec, codec))
        return 3
    host, _, port = args.janus.rpartition(":")
    target = av.open(
        f"rtp://{host}:{port}?pkt_size={PACKET_SIZE}", mode="w", format="rtp",
        options={"ssrc": str(REMOTE_SSRC), "payload_type": str(H264_PT)},
    )  # fmt: skip
    out = target.add_stream_from_template(video)
    first = True
    told = time.monotonic()
    timeline = Timeline()
    for packet in source.demux(video):
        if packet.size == 0 or (packet.pts is None and packet.dts is None):
            continue
        if packet.dts is None:
            packet.dts = packet.pts
        if packet.pts is None:
            packet.pts = packet.dts
        timeline.place(packet)
        packet.stream = out
        target.mux(packet)
        if first:
            first = False
            say("streaming", codec=codec, first_frame_ms=round((time.monotonic() - started) * 1000))
        if reader is not None and time.monotonic() - told >= STATS_SECONDS:
            told = time.monotonic()
            say("stats", packets=reader.packets, lost=reader.lost)
    log.warning("camera stream ended")
    return 2


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A camera's H.264 into a Janus VideoRoom remote publisher")
    parser.add_argument("--source", choices=["ps-udp", "ps-tcp", "rtsp"], required=True)
    parser.add_argument("--socket-fd", type=int, default=-1, help="ps-udp, ps-tcp: the bound (listening) socket")
    parser.add_argument("--connect", default="", help="ps-tcp: HOST:PORT the device listens on, instead of a socket")
    parser.add_argument("--bind", default="", help="--connect: the address to connect from (the INVITE's c=)")
    parser.add_argument("--janus", required=True, help="HOST:PORT of the remote publisher")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s ingest %(levelname)s %(message)s")
    parsed = parser.parse_args()
    try:
        sys.exit(run(parsed))
    except OSError as exc:  # av.error.* included: the camera refused or vanished
        log.warning("camera stream failed: %s", exc)
        sys.exit(2)
