"""Camera ingest: one camera's live H.264 into a VideoRoom as a remote publisher, in a process of its own.

    python -m conference.video.ingest --source ps-udp --socket-fd FD --janus HOST:PORT
    python -m conference.video.ingest --source rtsp --janus HOST:PORT          (URL in $SB_INGEST_RTSP)

A GB/T 28181 device streams MPEG-PS over RTP (payload type 96, section 9.2 and Appendix C). Neither GStreamer 1.22
(no PS depayloader) nor libavformat (no RTP handler for MP2P) takes that as it comes, so this process strips the RTP
header itself (one recv and one slice per packet, in order, gaps counted as loss) and hands the PS bytes to
libavformat's `mpeg` demuxer (PyAV); every H.264 access unit then goes out through libavformat's RTP muxer
(packetisation in C) to the Janus VideoRoom remote publisher the control plane added: SSRC 1000 (Janus's remote
publisher maps SSRC 1000 + 10 * mindex to a stream), payload type 107 (Janus's H.264). Nothing is decoded. An RTSP
camera takes the same path from libavformat's RTSP client, which is far cheaper than a WebRTC publisher (aiortc
encrypts every packet in Python: BENCHMARKS.md).

The UDP socket is the control plane's (inherited as `--socket-fd`), so the port the device was INVITEd to stays
the same when this process is restarted. What happens is told on stdout, one JSON object a line: `streaming`
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
DECODABLE = {"h264": "h264"}
REFUSED = {"hevc": "H.265"}


def say(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, **data}), flush=True)


class PsOverRtp:
    """The PS bytes of an RTP/UDP stream as a file libavformat reads: RTP header, CSRCs, extension and padding
    stripped; packets older than the last one taken are dropped, gaps counted as lost."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(RECEIVE_SECONDS)
        self.buffer = bytearray(65536)
        self.pending = b""
        self.expected: int | None = None
        self.packets = 0
        self.lost = 0

    def read(self, size: int) -> bytes:
        """Up to `size` bytes; none (the end of the stream) after RECEIVE_SECONDS without a packet."""
        while not self.pending:
            try:
                self.pending = self._payload()
            except TimeoutError:
                return b""
        taken, self.pending = self.pending[:size], self.pending[size:]
        return taken

    def _payload(self) -> bytes:
        length = self.sock.recv_into(self.buffer)
        if length < 12 or self.buffer[0] >> 6 != 2:
            return b""
        first, sequence = self.buffer[0], struct.unpack_from("!H", self.buffer, 2)[0]
        if self.expected is not None:
            gap = (sequence - self.expected) & 0xFFFF
            if gap >= 0x8000:
                return b""  # late or duplicate: its place in the stream has gone
            self.lost += gap
        self.expected = (sequence + 1) & 0xFFFF
        self.packets += 1
        start = 12 + 4 * (first & 0x0F)
        if first & 0x10:
            start += 4 + 4 * struct.unpack_from("!H", self.buffer, start + 2)[0]
        end = length - (self.buffer[length - 1] if first & 0x20 else 0)
        return bytes(self.buffer[start:end])


def open_source(args: argparse.Namespace) -> tuple[Any, PsOverRtp | None]:
    import av

    if args.source == "rtsp":
        url = os.environ.get("SB_INGEST_RTSP", "")
        options = {"rtsp_transport": "tcp", "timeout": str(int(RECEIVE_SECONDS * 1e6))}
        return av.open(url, options=options), None
    reader = PsOverRtp(socket.socket(fileno=args.socket_fd))
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
    for packet in source.demux(video):
        if packet.size == 0 or (packet.pts is None and packet.dts is None):
            continue
        if packet.dts is None:
            packet.dts = packet.pts
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
    parser.add_argument("--source", choices=["ps-udp", "rtsp"], required=True)
    parser.add_argument("--socket-fd", type=int, default=-1, help="ps-udp: the bound UDP socket, inherited")
    parser.add_argument("--janus", required=True, help="HOST:PORT of the remote publisher")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s ingest %(levelname)s %(message)s")
    parsed = parser.parse_args()
    try:
        sys.exit(run(parsed))
    except OSError as exc:  # av.error.* included: the camera refused or vanished
        log.warning("camera stream failed: %s", exc)
        sys.exit(2)
