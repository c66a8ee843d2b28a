"""A test RTSP camera: GStreamer's RTSP server (Debian gir1.2-gst-rtsp-server-1.0, python3-gi) serving a moving
640x480 test pattern as H.264 (constrained baseline, what browsers decode) at rtsp://HOST:PORT/camera, or an MP4 clip
already encoded (bench/cameras_bench.py: the same clip its GB/T 28181 cameras stream), played at its own pace.

Run with Debian's python3 (it has gi): `python3 tests/support/peers/rtsp_camera.py HOST PORT [CLIP.mp4]`. Printing
"ready" means it listens; SIGTERM stops it (the camera "drops")."""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=25/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=800 "
    "! video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


CLIP = "( filesrc location={} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"


def main(host: str, port: str, clip: str = "") -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(host)
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(CLIP.format(clip) if clip else PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/camera", factory)
    server.attach(None)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main(*sys.argv[1:4])
