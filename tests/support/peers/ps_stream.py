"""A GB/T 28181 device's live stream: a moving test pattern as H.264 in MPEG-PS (GStreamer: videotestsrc, x264enc,
mpegpsmux from gst-plugins-bad) sent as RTP payload type 96 with the SSRC the platform chose (the offer's `y=`),
each PS buffer cut into packets of at most 1400 bytes, the last one marked (GB/T 28181-2016 Appendix C).

Run with Debian's python3 (it has gi): `python3 tests/support/peers/ps_stream.py HOST PORT SSRC`; SIGTERM stops it."""

import signal
import socket
import struct
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

PIPELINE = (
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=25/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=800 "
    "! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! mpegpsmux "
    "! appsink name=out emit-signals=true sync=false"
)
CHUNK = 1400


def main(host: str, port: str, ssrc: str) -> None:
    Gst.init(None)
    target = (host, int(port))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    state = {"seq": 0}
    pipeline = Gst.parse_launch(PIPELINE)

    def sample(sink: Gst.Element) -> Gst.FlowReturn:
        buffer = sink.emit("pull-sample").get_buffer()
        data = buffer.extract_dup(0, buffer.get_size())
        stamp = (buffer.pts * 90000 // Gst.SECOND) & 0xFFFFFFFF if buffer.pts != Gst.CLOCK_TIME_NONE else 0
        for start in range(0, len(data), CHUNK):
            last = start + CHUNK >= len(data)
            header = struct.pack("!BBHII", 0x80, (0x80 if last else 0) | 96, state["seq"] & 0xFFFF, stamp, int(ssrc))
            sock.sendto(header + data[start : start + CHUNK], target)
            state["seq"] += 1
        return Gst.FlowReturn.OK

    pipeline.get_by_name("out").connect("new-sample", sample)
    pipeline.set_state(Gst.State.PLAYING)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    loop.run()
    pipeline.set_state(Gst.State.NULL)


if __name__ == "__main__":
    main(*sys.argv[1:4])
