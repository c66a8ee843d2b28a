"""Live camera ingest (issue 18): N GB/T 28181 channels against N RTSP cameras through aiortc feeds, same clip, same
run.

    python -m bench.cameras_bench [--streams 16] [--width 1920] [--height 1080] [--kbps 3000] [--window 20]

The clip (a moving pattern, H.264 high profile, a key frame a second) is encoded once and cached under
~/.cache/switchboard/clips: as a PS clip for the GB/T 28181 side and remuxed (not re-encoded) into MP4 for RTSP.
Both paths run against one real Janus in the tests' private network namespace (tests/support/janus_fixture.py), one
after the other:
- GB/T 28181: one simulated NVR (tests/support/peers/gb28181_device.py, `--channels N --clip`) registers to the
  switchboard; all N channels are opened at once through the product's path (conference.video.cameras: INVITE, one
  ingest process per channel demultiplexing PS over RTP into a Janus remote publisher). Each channel's sender loops
  the clip (no encoding).
- RTSP: GStreamer's RTSP server plays the MP4 inside the namespace; a consultation gets N camera feeds at once
  (`POST .../feeds`: one aiortc process per feed publishing over WebRTC, H.264 passed through).
Measured over --window seconds after a settling pause: CPU of the ingest processes (GB) or feed processes (RTSP) per
stream (% of one core, /proc/<pid>/stat), Janus's CPU, packets lost (GB: RTP sequence gaps at the ingest's socket;
both: gaps in what Janus forwards of each stream to this process, `rtp_forward`), and the time from the request to
the first frame: GB, until the ingest sent its first frame into Janus; RTSP, until the first packet of the feed came
back out of Janus (polled at 50 ms). Needs root (the veth pair between the host and the namespace carries the GB
ingest's RTP to Janus and Janus's forwards back).
"""

import argparse
import asyncio
import contextlib
import os
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.video_bench import cpu_seconds
from conference.video.cameras import CAMERA_ROOM, CameraStreams
from conference.video.engine import Engine, admin_key, in_netns
from conference.video.models import Consultation
from switchboard.api.app import create_app
from switchboard.auth.models import Role
from switchboard.auth.service import add_user, issue_token
from switchboard.cameras import flows as camera_flows
from switchboard.cameras.models import Camera, CameraIn, CameraKind
from switchboard.core import config
from switchboard.core.context import Context
from tests.support import gb28181_peers
from tests.support.janus_fixture import engine_settings, host_link_for, link_host, make_netns, stop
from tests.support.peers import ps_clip
from tests.support.wait import until

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache" / "switchboard" / "clips"
PLATFORM_ID = "34020000002000000001"
DEVICE_ID = "34020000001320000001"
PASSWORD = "bench-camera-0417"
RTSP_PORT = 8554
SETTLE_SECONDS = 4.0


@dataclass
class Counter:
    """One stream as Janus forwards it to us: packets, how many went missing (sequence gaps), when the first came."""

    packets: int = 0
    lost: int = 0
    expected: int | None = None
    first_at: float | None = None


@dataclass
class Forwards:
    """UDP sockets on the host's end of the veth pair, one per stream, read by one thread (not the event loop)."""

    host: str
    counters: dict[int, Counter] = field(default_factory=dict)  # by port
    selector: selectors.DefaultSelector = field(default_factory=selectors.DefaultSelector)
    stopped: bool = False

    def open(self) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((self.host, 0))
        sock.setblocking(False)
        port = sock.getsockname()[1]
        self.counters[port] = Counter()
        self.selector.register(sock, selectors.EVENT_READ, port)
        return port

    def run(self) -> None:
        buffer = bytearray(2048)
        while not self.stopped:
            for key, _ in self.selector.select(0.2):
                counter = self.counters[key.data]
                with contextlib.suppress(BlockingIOError):
                    while True:
                        if key.fileobj.recv_into(buffer) < 12:  # type: ignore[union-attr]
                            continue
                        sequence = struct.unpack_from("!H", buffer, 2)[0]
                        if counter.expected is not None:
                            gap = (sequence - counter.expected) & 0xFFFF
                            counter.lost += gap if gap < 0x8000 else 0
                        counter.expected = (sequence + 1) & 0xFFFF
                        counter.packets += 1
                        counter.first_at = counter.first_at or time.monotonic()


def rtsp_clip(clip: Path, repeats: int) -> Path:
    """The PS clip's H.264 remuxed (not re-encoded) into MP4, `repeats` times over, for GStreamer's RTSP server."""
    target = clip.with_name(clip.stem + f"-x{repeats}.mp4")
    if target.exists():
        return target
    import io

    import av

    source = av.open(io.BytesIO(b"".join(ps_clip.frames(clip))), format="mpeg")
    video = source.streams.video[0]
    packets = [p for p in source.demux(video) if p.size]
    partial = target.with_suffix(".partial.mp4")
    out = av.open(str(partial), "w", format="mp4")
    stream = out.add_stream_from_template(video)
    step = 90000 // ps_clip.FPS
    for round_ in range(repeats):
        for index, packet in enumerate(packets):
            packet.stream = stream
            packet.time_base = video.time_base
            packet.pts = packet.dts = (round_ * len(packets) + index) * step
            out.mux(packet)
    out.close()
    partial.rename(target)
    return target


def sender_pids(clip: Path) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if b"ps_clip" in cmdline.read_bytes() and str(clip).encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
    return found


def cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


async def window(seconds: float, pids: dict[str, list[int]], counters: list[Counter]) -> dict[str, float]:
    """CPU (% of one core) of each group of processes over `seconds`, and Janus-side packets and losses."""
    await asyncio.sleep(SETTLE_SECONDS)
    before = {name: cpu(group) for name, group in pids.items()}
    sent0, lost0, started = sum(c.packets for c in counters), sum(c.lost for c in counters), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    found = {name: (cpu(group) - before[name]) / elapsed * 100 for name, group in pids.items()}
    packets, lost = sum(c.packets for c in counters) - sent0, sum(c.lost for c in counters) - lost0
    found |= {"janus_packets": packets, "janus_lost": lost, "janus_loss": lost / max(packets + lost, 1) * 100}
    found["load"] = os.getloadavg()[0]
    found["janus_rate"] = packets / elapsed / max(len(counters), 1)
    return found


async def rtp_forward(streams: CameraStreams, room: int, secret: str, publisher: int, forwards: Forwards) -> Counter:
    port = forwards.open()
    body = {"request": "rtp_forward", "room": room, "secret": secret, "publisher_id": publisher,
            "host": forwards.host, "streams": [{"mid": "0", "port": port}]}  # fmt: skip
    await streams.session.request(body)
    return forwards.counters[port]


async def camera_row(ctx: Context, camera_id: str) -> Camera | None:
    async with ctx.db.reader() as session:
        return await session.get(Camera, camera_id)


async def gb_round(ctx: Context, bench: "Bench", args: argparse.Namespace, clip: Path) -> dict[str, object]:
    live, streams = bench.services.cameras, bench.services.video.cameras
    body = CameraIn(kind=CameraKind.gb28181, name="基准NVR", organisation_code=bench.organisation,
                    device_id=DEVICE_ID, password=PASSWORD)  # fmt: skip
    camera = await camera_flows.register(ctx, live, body, "bench")
    device = await gb28181_peers.device(
        bench.work / "device.jsonl", DEVICE_ID, PASSWORD, PLATFORM_ID, live.platform.port, keepalive="5",
        channels=str(args.streams), clip=str(clip),
    ).start()  # fmt: skip
    try:

        async def online() -> Camera | None:
            row = await camera_row(ctx, camera.id)
            return row if row is not None and row.online and len(row.channels) == args.streams else None

        row = await until(online, timeout=60, what="the simulated NVR online with every channel")
        sources = [live.source(row, channel.channel_id) for channel in row.channels]
        opened = await asyncio.gather(*(streams.open(source) for source in sources))
        counters = [
            await rtp_forward(streams, CAMERA_ROOM, streams.secret, s.publisher, bench.forwards) for s in opened
        ]
        pids = {"ingest": [s.process.process.pid for s in opened if s.process and s.process.process],
                "janus": [bench.janus_pid], "senders": sender_pids(clip)}  # fmt: skip
        packets0, lost0 = sum(s.packets for s in opened), sum(s.lost for s in opened)
        found = await window(args.window, pids, counters)
        packets, lost = sum(s.packets for s in opened) - packets0, sum(s.lost for s in opened) - lost0
        found |= {"input_loss": lost / max(packets + lost, 1) * 100, "input_packets": packets}
        found["input_rate"] = packets / (args.window + SETTLE_SECONDS) / args.streams  # stats lag up to 5 s
        found["first_frame_ms"] = [s.first_frame_ms for s in opened]
        for source in sources:
            await streams.close(source.key)
        await until(lambda: len(device.events("bye")) >= args.streams, timeout=30, what="BYE to every channel")
        return found
    finally:
        await device.stop()


async def rtsp_round(bench: "Bench", args: argparse.Namespace, mp4: Path) -> dict[str, object]:
    streams, live = bench.services.video.cameras, bench.services.video.live
    server = bench.popen(["/usr/bin/python3", str(ROOT / "tests/support/peers/rtsp_camera.py"), "127.0.0.1",
                          str(RTSP_PORT), str(mp4)])  # fmt: skip
    try:
        body = {"title": "基准 RTSP", "max_sites": max(args.streams, 2)}
        answer = await bench.http.post("/api/v1/consultations", json=body, headers=bench.headers)
        assert answer.status_code == 201, answer.text
        cid = answer.json()["id"]
        async with bench.ctx.db.reader() as session:
            consultation = await session.get(Consultation, cid)
        assert consultation is not None
        room, secret = consultation.room, consultation.secret
        started = time.monotonic()
        feeds = await asyncio.gather(*(
            bench.http.post(f"/api/v1/consultations/{cid}/feeds", headers=bench.headers,
                            json={"url": f"rtsp://127.0.0.1:{RTSP_PORT}/camera", "site": f"摄像机{i + 1}"})
            for i in range(args.streams)
        ))  # fmt: skip
        ids = {feed.json()["participant_id"] for feed in feeds}
        counters: dict[int, Counter] = {}
        deadline = time.monotonic() + 120
        while len(counters) < len(ids) and time.monotonic() < deadline:
            for participant in await live.rooms.participants(room):
                if participant.id in ids and participant.publisher and participant.id not in counters:
                    counters[participant.id] = await rtp_forward(streams, room, secret, participant.id, bench.forwards)
            await asyncio.sleep(0.05)
        await until(lambda: all(c.first_at for c in counters.values()), timeout=60, what="media from every feed")
        first = [round((c.first_at - started) * 1000) for c in counters.values() if c.first_at]
        feed_pids = [f.process.pid for f in live.feeds.values() if getattr(f, "process", None)]
        found = await window(args.window, {"ingest": feed_pids, "janus": [bench.janus_pid]}, list(counters.values()))
        found["first_frame_ms"] = first
        found["publishing"] = len(counters)
        await bench.http.delete(f"/api/v1/consultations/{cid}", headers=bench.headers)
        return found
    finally:
        stop(server)


@dataclass
class Bench:
    ctx: Context
    services: Any
    http: httpx.AsyncClient
    headers: dict[str, str]
    organisation: str
    forwards: Forwards
    janus_pid: int
    work: Path
    netns: str

    def popen(self, argv: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(in_netns(self.netns, argv), start_new_session=True, stdout=subprocess.DEVNULL)


def describe(name: str, found: dict[str, Any], n: int) -> str:
    first = sorted(found["first_frame_ms"])
    return (
        f"{name:<12} CPU/stream {found['ingest'] / n:5.1f} %  Janus {found['janus']:5.1f} %  "
        f"loss at Janus {found['janus_loss']:.2f} % ({found['janus_lost']}/{found['janus_packets']})  "
        f"first frame median {statistics.median(first):.0f} ms, max {first[-1]:.0f} ms  load {found['load']:.1f}"
    )


async def run(args: argparse.Namespace) -> None:
    started = time.monotonic()
    clip = ps_clip.make(ps_clip.clip_path(CACHE, "h264", args.width, args.height, args.kbps, 10),
                        width=args.width, height=args.height, kbps=args.kbps, seconds=10)  # fmt: skip
    mp4 = rtsp_clip(clip, repeats=int((args.window + SETTLE_SECONDS + 60) // 10) + 1)
    rate = clip.stat().st_size * 8 / 10 / 1e6
    expected = sum(-(-len(frame) // ps_clip.CHUNK) for frame in ps_clip.frames(clip)) / 10
    print(f"clip {clip.name} ({rate:.2f} Mbit/s), ready in {time.monotonic() - started:.0f} s")
    work = Path(tempfile.mkdtemp(prefix="cameras-bench-"))
    holder, netns = make_netns()
    link = host_link_for(os.getpid())
    link_host(holder, netns, link)
    engine = Engine(engine_settings(work / "janus", netns, link))
    forwards = Forwards(link.host_address)
    reader = threading.Thread(target=forwards.run, daemon=True)
    reader.start()
    try:
        await engine.start()
        assert engine.process is not None
        env = {
            "SWITCHBOARD_JANUS_MODE": "external", "SWITCHBOARD_JANUS_API_SOCKET": str(engine.layout.api_socket),
            "SWITCHBOARD_JANUS_NETNS": netns, "SWITCHBOARD_JANUS_ADMIN_KEY": admin_key(engine.settings),
            "SWITCHBOARD_JANUS_PHONE_ADDRESS": link.inner_address,
            "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'bench.db'}",
            "SWITCHBOARD_PATHS_VAR_DIR": str(work / "app"), "SWITCHBOARD_ASTERISK_MODE": "off",
            "SWITCHBOARD_AUTH_TOKEN_SECRET": "bench-secret-0123456789-0123456789",
            "SWITCHBOARD_NETWORK_OUTBOUND_ALLOW": "127.0.0.1/32", "SWITCHBOARD_CHANNELS_WEATHER_PUSH": "false",
            "SWITCHBOARD_GB28181_ENABLED": "true", "SWITCHBOARD_GB28181_SIP_ID": PLATFORM_ID,
            "SWITCHBOARD_GB28181_PORT": "0",
        }  # fmt: skip
        ctx = Context.from_settings(config.load(path=work / "absent.toml", environ=env))
        app = create_app(ctx)
        async with app.router.lifespan_context(app):
            services = app.state.services
            await services.video.session.wait_up(10)
            user = await add_user(ctx, "bench", "bench", "bench-password", [Role.duty_officer, Role.admin])
            headers = {"Authorization": f"Bearer {issue_token(ctx.settings, user)}"}
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://bench") as http:
                organisations = (await http.get("/api/v1/directory/organisations", headers=headers)).json()
                bench = Bench(ctx, services, http, headers, organisations[0]["code"], forwards, engine.process.pid,
                              work, netns)  # fmt: skip
                gb = await gb_round(ctx, bench, args, clip)
                print(describe("GB/T 28181", gb, args.streams))
                print(f"{'':<12} loss at the ingest's socket {gb['input_loss']:.2f} % of {gb['input_packets']} packets "
                      f"({gb['input_rate']:.0f}/s a stream; the clip makes {expected:.0f}/s); Janus forwarded "
                      f"{gb['janus_rate']:.0f}/s a stream; senders (the simulator, not the product) "
                      f"{gb['senders'] / args.streams:.1f} %/stream")  # fmt: skip
                rtsp = await rtsp_round(bench, args, mp4)
                print(describe("RTSP aiortc", rtsp, args.streams))
                print(f"{'':<12} Janus forwarded {rtsp['janus_rate']:.0f}/s a stream ({rtsp['publishing']} publishing)")
        await ctx.db.close()
        print(
            f"\nratio RTSP (aiortc feeds) / GB/T 28181 (ingest), {args.streams} streams {args.width}x{args.height} "
            f"{args.kbps} kbit/s: CPU per stream {rtsp['ingest'] / max(gb['ingest'], 0.01):.1f}x, "
            f"Janus CPU {rtsp['janus'] / max(gb['janus'], 0.01):.1f}x, median first frame "
            f"{statistics.median(rtsp['first_frame_ms']) / max(statistics.median(gb['first_frame_ms']), 1):.1f}x"
        )
    finally:
        forwards.stopped = True
        await engine.stop()
        stop(holder)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--kbps", type=int, default=3000)
    parser.add_argument("--window", type=float, default=20.0)
    if os.geteuid() != 0:
        sys.exit("run as root: the veth pair between the host and Janus's namespace needs it")
    asyncio.run(run(parser.parse_args()))
