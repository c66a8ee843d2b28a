"""Telephone dispatch (issue 3): call set-up through Switchboard's API beside raw AMI, then calls held with RTP.

    .venv/bin/python -m bench.calls_bench [--calls 150] [--rate 5,50] [--concurrent 100] [--hold 60]

About 3 minutes with the defaults. Bigger (not tried here): --calls 1000 --rate 5,20,50,100 --concurrent 300 --hold 300.

One local Asterisk (sip.engine.Engine, the default dialplan with the trunk pointed at a free port, as
tests/support/asterisk_fixture.py does) and two SIPp user agents stand in for the phones:

- the desk: SIPp REGISTERs as desk 8001 (digest auth, a one-call UAC scenario), then a SIPp UAS on the same
  port answers every INVITE Asterisk sends to 8001. One registered contact can take any number of calls, so one
  UAS answers all the desk legs. (Redefining the desk as a trunk number would have bypassed the desk endpoint
  and its registration, i.e. not the path a duty room uses.)
- the outside world: a SIPp UAS bound to the trunk's port answers every `PJSIP/<number>@trunk` leg.

1. Set-up. The same N dispatch calls (desk 8001, then one outside number) are placed twice at R calls/s:
   - raw AMI: the benchmark sends the very Originate that sip/calls.py sends (desk channel into
     switchboard-dispatch, same variables, ChannelId, CallerID, Async) and times it until the DialEnd ANSWER of
     that call; no Switchboard process runs meanwhile;
   - API: `switchboard serve` runs as its own process (SWITCHBOARD_ASTERISK_MODE=external, SQLite), the
     benchmark POSTs /api/v1/calls and times it until `call.answered` arrives on WS /api/v1/events.
   The outside party hangs up 1 s after answering (--talk), so calls do not pile up.
2. Hold. --concurrent calls are placed through the API and held --hold seconds with RTP both ways: the desk
   plays an A-law tone (SIPp rtp_stream, 50 packets/s), Asterisk relays it to the outside party, which echoes it
   (SIPp -rtp_echo), and Asterisk relays the echo back to the desk. Packet counts are Asterisk's own per
   channel (`pjsip show channelstats` just before hang-up: received, lost by sequence gaps, sent); SIPp 3.6
   does not report RTP counts in its screen dump. CPU of Asterisk, the control plane and SIPp comes from
   /proc/<pid>/stat (utime+stime) over the hold.

Everything binds to 127.0.0.1; Asterisk, SIPp and the server are stopped in `finally`, even on error.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from sip import dialplan
from sip.ami import AmiSession
from sip.dialing import DISPATCH_CONTEXT
from sip.engine import Engine
from sip.provision import provision
from switchboard.core import config
from tests.support.sipp import audio_sdp, reply

with warnings.catch_warnings():  # deprecated in 3.11, still here: only to write the test tone
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ROOT = Path(__file__).resolve().parent.parent
SWITCHBOARD = str(ROOT / ".venv" / "bin" / "switchboard")
PASSWORD = "bench-password-1"
DESK = "8001"
HOST = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")
PACKET_MS = 20  # SIPp rtp_stream sends A-law in 20 ms packets (160 bytes)


def say(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def free_sip_port() -> int:
    """Free for both UDP and TCP (Asterisk binds both transports to its SIP port)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, contextlib.suppress(OSError):
            tcp.bind((HOST, port))
            return port
    raise RuntimeError("no free SIP port")


def call_id() -> str:
    """26 characters like the control plane's ids (its event handler recognises `<26>-desk` channels)."""
    return "".join(random.choices(string.digits + string.ascii_uppercase, k=26))


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def machine_busy() -> float:
    """Seconds of CPU the whole machine has spent outside idle and iowait, all cores, since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * p) - 1)]


# ------------------------------------------------------------------------------------------------ SIPp scenarios

REGISTER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register desk">
  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[service]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:[service]@[local_ip]:[local_port]>
Max-Forwards: 70
Expires: 3600
Content-Length: 0

]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[service]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]>
Call-ID: [call_id]
CSeq: 2 REGISTER
Contact: <sip:[service]@[local_ip]:[local_port]>
[authentication]
Max-Forwards: 70
Expires: 3600
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""

_OK = reply("200 OK", contact=True, sdp=audio_sdp("{port}")) + '  <recv request="ACK" crlf="true"/>\n'
_ANSWER_BYE = reply("200 OK", tag=False)


def uas_scenario(name: str, port_keyword: str, media: str = "", talk_ms: int = 0, spread_ms: int = 0) -> str:
    """Answer with PCMA; optionally start media (after a random 0..spread_ms pause, so that many calls' media do not
    run in step); then either wait for the BYE or send one after talk_ms."""
    capture = ""
    if talk_ms:  # a UAS-initiated BYE swaps From and To and goes to the INVITE's Contact
        capture = """ <action>
      <ereg regexp="^.*$" search_in="hdr" header="From:" check_it="true" assign_to="their_from"/>
      <ereg regexp="^.*$" search_in="hdr" header="To:" check_it="true" assign_to="our_to"/>
      <ereg regexp="sip:[^&gt;]*" search_in="hdr" header="Contact:" check_it="true" assign_to="contact"/>
    </action>"""
    body = f'<recv request="INVITE" crlf="true">{capture}</recv>\n' + _OK.format(port=port_keyword)
    if media and spread_ms:
        body += f'  <pause distribution="uniform" min="0" max="{spread_ms}"/>\n'
    if media:
        body += f'  <nop><action><exec rtp_stream="{media},-1,8"/></action></nop>\n'
    if talk_ms:
        body += f"""  <pause milliseconds="{talk_ms}"/>
  <send retrans="500"><![CDATA[
BYE [$contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$our_to];tag=[pid]SIPpTag01[call_number]
To: [$their_from]
[last_Call-ID:]
CSeq: 1 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
"""
    else:
        body += '  <recv request="BYE"/>\n' + _ANSWER_BYE
    return f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n  {body}</scenario>\n'


def write_tone(path: Path, on: float = 1.0, off: float = 0.0) -> Path:
    """A-law 440 Hz for `on` seconds, then `off` seconds of silence (rtp_stream loops the file)."""
    if not path.exists():
        pcm = b"".join(
            int(8000 * math.sin(2 * math.pi * 440 * i / 8000)).to_bytes(2, "little", signed=True)
            for i in range(int(8000 * on))
        )
        path.write_bytes(audioop.lin2alaw(pcm + bytes(2 * int(8000 * off)), 2))
    return path


# ------------------------------------------------------------------------------------------------ processes


@dataclass
class Processes:
    """Everything started, stopped by pid in reverse order (never by name)."""

    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        child = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.children.append((name, child))
        return child

    def stop(self, child: subprocess.Popen[bytes], first: int = signal.SIGTERM, wait: float = 10) -> None:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(first)
            try:
                child.wait(wait)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                child.wait(5)
        self.children = [(n, c) for n, c in self.children if c is not child]

    def stop_all(self) -> None:
        for _, child in reversed(list(self.children)):
            self.stop(child)


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    procs: Processes
    engine: Engine
    settings: config.Settings
    ami_port: int
    ami_secret: str
    sip_port: int
    trunk_port: int
    desk_port: int
    desk_password: str
    sipp: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    control: dict[str, int] = field(default_factory=dict)

    # SIPp -------------------------------------------------------------------------------------------------------

    def sipp_argv(self, scenario: str, port: int, media_port: int, *extra: str) -> list[str]:
        path = self.work / f"{scenario.split()[0]}-{port}.xml"
        return [
            "sipp", "-sf", str(path), "-i", HOST, "-p", str(port), "-mi", HOST, "-mp", str(media_port),
            "-t", "u1", "-nostdin", "-aa", "-max_recv_loops", "10000", "-max_sched_loops", "10000", *extra,
        ]  # fmt: skip

    def write(self, name: str, text: str) -> Path:
        path = self.work / name
        path.write_text(text)
        return path

    def register_desk(self) -> None:
        self.write(f"register-{self.desk_port}.xml", REGISTER)
        argv = self.sipp_argv("register", self.desk_port, 47000)
        argv += [f"{HOST}:{self.sip_port}", "-s", DESK, "-au", DESK, "-ap", self.desk_password]
        argv += ["-m", "1", "-timeout", "10s"]
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        if result.returncode != 0:
            raise SystemExit(f"desk REGISTER failed ({result.returncode}): {result.stderr.decode()[-500:]}")

    async def start_agents(self, media: bool) -> None:
        """Desk UAS on the registered port, outside-world UAS on the trunk port."""
        await self.stop_agents()
        tone = write_tone(self.work / "tone.alaw")  # 1 s of 440 Hz, looped by rtp_stream
        kind = "hold" if media else "setup"
        port_keyword = "[rtpstream_audio_port]" if media else "[media_port]"
        desk = uas_scenario(f"desk {kind}", port_keyword, str(tone) if media else "")
        self.write(f"desk-{self.desk_port}.xml", desk)
        talk = 0 if media else int(self.args.talk * 1000)
        self.write(f"trunk-{self.trunk_port}.xml", uas_scenario(f"trunk {kind}", "[media_port]", talk_ms=talk))
        for name, port, media_port, extra in (
            ("desk", self.desk_port, 44000, ()),
            ("trunk", self.trunk_port, 46000, ("-rtp_echo",) if media else ()),
        ):
            screen = self.work / f"{name}-{kind}.screen"
            self.control[name] = free_port(socket.SOCK_DGRAM)
            argv = self.sipp_argv(
                name, port, media_port, "-trace_screen", "-screen_file", str(screen),
                "-cp", str(self.control[name]), *extra,
            )  # fmt: skip
            self.sipp[name] = self.procs.start(f"sipp-{name}", argv, stderr=(self.work / f"{name}.err").open("ab"))
        await asyncio.sleep(0.5)
        for name, child in self.sipp.items():
            if child.poll() is not None:
                raise SystemExit(f"SIPp {name} exited: {(self.work / f'{name}.err').read_text()[-800:]}")

    async def stop_agents(self) -> None:
        for name in self.sipp:  # `q` on SIPp's control port: it quits and writes its screen file
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control, contextlib.suppress(OSError):
                control.sendto(b"q", (HOST, self.control[name]))
        deadline = time.monotonic() + 5
        while any(c.poll() is None for c in self.sipp.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for name in list(self.sipp):
            self.procs.stop(self.sipp.pop(name))  # still running: SIGTERM, then SIGKILL
        await asyncio.sleep(0.3)

    # Asterisk ---------------------------------------------------------------------------------------------------

    async def channels(self) -> int:
        _, out = await self.engine.cli("core show channels count")
        match = re.search(r"(\d+) active channel", out)
        return int(match.group(1)) if match else -1

    async def wait_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while (n := await self.channels()) != 0:
            if time.monotonic() > deadline:
                say(f"{n} channels still up; hanging them up")
                await self.engine.cli("channel request hangup all")
                await asyncio.sleep(1)
                return
            await asyncio.sleep(0.5)

    def ami(self) -> AmiSession:
        return AmiSession(HOST, self.ami_port, self.settings.asterisk.ami_username, self.ami_secret)

    # switchboard serve ------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def server(self, kind: type["Server"] | None = None, **environ: str) -> AsyncIterator[Any]:
        """`switchboard serve` in external mode on this Asterisk (more settings in `environ`), logged in, WS
        connected."""
        var = self.work / "switchboard"
        var.mkdir(exist_ok=True)
        port = free_port()
        env = (
            os.environ
            | {
                "SWITCHBOARD_PATHS_VAR_DIR": str(var),
                "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{var}/bench.db",
                "SWITCHBOARD_SERVER_HOST": HOST,
                "SWITCHBOARD_SERVER_PORT": str(port),
                "SWITCHBOARD_AUTH_ADMIN_PASSWORD": PASSWORD,
                "SWITCHBOARD_CONFIG": str(var / "none.toml"),
                "SWITCHBOARD_ASTERISK_MODE": "external",
                "SWITCHBOARD_ASTERISK_AMI_HOST": HOST,
                "SWITCHBOARD_ASTERISK_AMI_PORT": str(self.ami_port),
                "SWITCHBOARD_ASTERISK_AMI_SECRET": self.ami_secret,
                "SWITCHBOARD_JANUS_MODE": "off",  # no video here
            }
            | environ
        )
        log = (self.work / "server.log").open("ab")
        child = self.procs.start("switchboard", [SWITCHBOARD, "serve"], env=env, stdout=log, stderr=log)
        try:
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", limits=limits, timeout=60) as http:
                for _ in range(600):  # a loaded machine takes a while to import and connect
                    with contextlib.suppress(httpx.TransportError):
                        health = (await http.get("/healthz")).json()
                        if health.get("components", {}).get("asterisk", {}).get("status") == "ok":
                            break
                    if child.poll() is not None:
                        raise SystemExit(f"switchboard serve exited: {(self.work / 'server.log').read_text()[-800:]}")
                    await asyncio.sleep(0.1)
                else:
                    raise SystemExit("switchboard serve: AMI link not up after 60 s")
                login = {"username": "admin", "password": PASSWORD}
                token = (await http.post("/api/v1/auth/token", json=login)).json()["access_token"]
                http.headers["Authorization"] = f"Bearer {token}"
                async with (kind or Server).connect(http, child.pid, port, token) as server:
                    yield server
        finally:
            self.procs.stop(child)


@dataclass
class Server:
    http: httpx.AsyncClient
    pid: int
    answered: dict[str, float] = field(default_factory=dict)
    waiting: dict[str, asyncio.Future[float]] = field(default_factory=dict)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, http: httpx.AsyncClient, pid: int, port: int, token: str) -> AsyncIterator["Server"]:
        server = cls(http, pid)
        async with websockets.connect(f"ws://{HOST}:{port}/api/v1/events?token={token}", max_queue=None) as ws:
            reader = asyncio.create_task(server._read(ws))
            try:
                yield server
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                    await reader

    async def _read(self, ws: Any) -> None:
        async for text in ws:
            event = json.loads(text)
            if event.get("type") == "call.answered":
                cid = event["data"]["call_id"]
                now = time.perf_counter()
                self.answered[cid] = now
                if (future := self.waiting.pop(cid, None)) and not future.done():
                    future.set_result(now)

    async def until_answered(self, cid: str, timeout: float) -> float:
        if cid in self.answered:
            return self.answered[cid]
        future = self.waiting.setdefault(cid, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(future, timeout)

    async def place(self, number: str, ring_seconds: int) -> str:
        body = {"number": number, "desk": DESK, "ring_seconds": ring_seconds}
        response = await self.http.post("/api/v1/calls", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/v1/calls {response.status_code}: {response.text[:200]}")
        return response.json()["id"]


# ------------------------------------------------------------------------------------------------ measurements


async def open_loop(count: int, rate: float, one: Any) -> tuple[list[float], int, float]:
    """Start `one(i)` at `rate` per second regardless of completions; returns latencies, failures, elapsed
    from the first start to the last answer."""
    latencies: list[float] = []
    failures: list[str] = []
    ends: list[float] = []

    async def run(i: int) -> None:
        start = time.perf_counter()
        try:
            end = await one(i)
        except Exception as exc:  # noqa: BLE001 - counted and shown
            failures.append(f"{type(exc).__name__}: {exc}")
            return
        latencies.append(end - start)
        ends.append(end)

    began = time.perf_counter()
    tasks = []
    for i in range(count):
        await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(run(i)))
    await asyncio.gather(*tasks)
    if failures:
        say(f"{len(failures)} failed, e.g. {failures[0]}")
    return latencies, len(failures), (max(ends) - began) if ends else math.nan


def summary(latencies: list[float], failures: int, elapsed: float, cpu: dict[str, float]) -> dict[str, float]:
    return {
        "answered": len(latencies),
        "failed": failures,
        "cps": len(latencies) / elapsed if latencies else 0.0,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else math.nan,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "max_ms": max(latencies, default=math.nan) * 1000,
        **{f"cpu_{k}": v for k, v in cpu.items()},
    }


def number(i: int) -> str:
    return f"139{i:08d}"


async def setup_raw_ami(bench: Bench, rate: float) -> dict[str, float]:
    """The Originate sip/calls.py sends, straight over AMI, timed until that call's DialEnd ANSWER."""
    args = bench.args
    ami = bench.ami()
    answered: dict[str, asyncio.Future[float]] = {}
    events = [0]

    def on_event(message: Any) -> None:
        events[0] += 1
        if message.get("Event") == "DialEnd" and message.get("DialStatus") == "ANSWER":
            unique = message.get("Uniqueid", "")
            future = answered.get(unique.removesuffix("-desk"))
            if future and not future.done():
                future.set_result(time.perf_counter())

    ami.on_event(on_event)
    ami.start()
    await ami.wait_up(15)
    loop = asyncio.get_running_loop()
    originations: set[asyncio.Task[Any]] = set()

    async def one(i: int) -> float:
        cid = call_id()
        answered[cid] = loop.create_future()
        target = number(i)
        fields = {
            "Action": "Originate",
            "Channel": f"PJSIP/{DESK}",
            "Context": DISPATCH_CONTEXT,
            "Exten": "s",
            "Priority": "1",
            "Timeout": str(args.ring * 1000),
            "CallerID": f'"调度" <{target}>',
            "Variable": [
                "__INCIDENT_ID=",
                f"__SB_CALL_ID={cid}",
                f"SB_TARGETS=PJSIP/{target}@trunk",
                f"SB_RING_TIMEOUT={args.ring}",
            ],
            "Async": "true",
            "ChannelId": f"{cid}-desk",
        }
        # as sip/calls.py: the action's future resolves at OriginateResponse; it runs beside the call
        task = asyncio.create_task(ami.action(fields, timeout=args.ring + 15))
        originations.add(task)
        return await asyncio.wait_for(answered[cid], args.ring + 15)

    asterisk = bench.engine.pid()
    before = cpu_seconds(asterisk), time.process_time()
    try:
        latencies, failures, elapsed = await open_loop(args.calls, rate, one)
        cpu = {"asterisk": cpu_seconds(asterisk) - before[0], "bench": time.process_time() - before[1]}
        await asyncio.gather(*originations, return_exceptions=True)
        await bench.wait_idle()
    finally:
        await ami.stop()
    return summary(latencies, failures, elapsed, cpu) | {"ami_events": events[0] / args.calls}


async def setup_api(bench: Bench, server: Server, rate: float) -> dict[str, float]:
    args = bench.args

    async def one(i: int) -> float:
        cid = await server.place(number(i), args.ring)
        return await server.until_answered(cid, args.ring + 15)

    asterisk = bench.engine.pid()
    before = cpu_seconds(asterisk), cpu_seconds(server.pid), time.process_time()
    latencies, failures, elapsed = await open_loop(args.calls, rate, one)
    cpu = {
        "asterisk": cpu_seconds(asterisk) - before[0],
        "switchboard": cpu_seconds(server.pid) - before[1],
        "bench": time.process_time() - before[2],
    }
    await bench.wait_idle()
    return summary(latencies, failures, elapsed, cpu)


_STATS = re.compile(
    r"^\s*\S+\s+(?P<channel>\S+)\s+(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d)\s+\S+\s+(?P<rx>\d+)(?P<rxk>K?)\s+(?P<rxlost>\d+)\S*\s+\d+\s+\S+"
    r"\s+(?P<tx>\d+)(?P<txk>K?)\s+",
    re.M,
)


async def rtp_stats(bench: Bench) -> list[dict[str, Any]]:
    """Asterisk's own RTP counters of every channel (`pjsip show channelstats`): received, lost, sent."""
    _, out = await bench.engine.cli("pjsip show channelstats", timeout=30)
    return [
        {
            "channel": m["channel"],
            "uptime": int(m["h"]) * 3600 + int(m["m"]) * 60 + int(m["s"]),
            "rxcount": int(m["rx"]) * (1000 if m["rxk"] else 1),
            "lp": int(m["rxlost"]),
            "txcount": int(m["tx"]) * (1000 if m["txk"] else 1),
        }
        for m in _STATS.finditer(out)
    ]


async def hold(bench: Bench, server: Server) -> dict[str, Any]:
    args = bench.args
    await bench.start_agents(media=True)
    say(f"hold: placing {args.concurrent} calls through the API at {args.hold_rate}/s")

    placed: list[str] = []

    async def one(i: int) -> float:
        cid = await server.place(number(i), args.ring)
        placed.append(cid)
        return await server.until_answered(cid, args.ring + 15)

    latencies, failures, elapsed = await open_loop(args.concurrent, args.hold_rate, one)
    pids = {
        "asterisk": bench.engine.pid(),
        "switchboard": server.pid,
        "sipp (both)": None,
    }
    sipp_pids = [c.pid for c in bench.sipp.values()]
    up = await bench.channels()
    say(f"hold: {len(latencies)} answered, {up} channels up; holding {args.hold} s")
    _, bridges = await bench.engine.cli("bridge show all")
    technologies = sorted(set(re.findall(r"\b(native_rtp|simple_bridge|softmix|holding_bridge)\b", bridges)))
    before = {k: cpu_seconds(p) for k, p in pids.items()} | {"sipp (both)": sum(map(cpu_seconds, sipp_pids))}
    before |= {"bench": time.process_time(), "whole machine": machine_busy()}
    began = time.perf_counter()
    await asyncio.sleep(args.hold)
    wall = time.perf_counter() - began
    after = {k: cpu_seconds(p) for k, p in pids.items()} | {"sipp (both)": sum(map(cpu_seconds, sipp_pids))}
    after |= {"bench": time.process_time(), "whole machine": machine_busy()}
    qos = await rtp_stats(bench)
    say("hold: hanging up through the API")
    sem = asyncio.Semaphore(16)

    async def hang(cid: str) -> None:
        async with sem:
            await server.http.delete(f"/api/v1/calls/{cid}")

    await asyncio.gather(*(hang(c) for c in placed), return_exceptions=True)
    await bench.wait_idle()
    await bench.stop_agents()

    def total(prefix: str, key: str) -> int:
        return sum(int(q.get(key, 0) or 0) for q in qos if q["channel"].startswith(prefix))

    return {
        "answered": len(latencies),
        "failed": failures,
        "channels": up,
        "bridges": ", ".join(technologies) or "?",
        "setup_p50_ms": statistics.median(latencies) * 1000 if latencies else math.nan,
        "setup_p95_ms": percentile(latencies, 0.95) * 1000,
        "wall": wall,
        "cpu": {k: (after[k] - before[k]) / wall for k in before},
        "desk_rx": total(f"{DESK}-", "rxcount"),  # from the desk's player into Asterisk
        "desk_tx": total(f"{DESK}-", "txcount"),  # the echo, relayed back to the desk
        "desk_lost": total(f"{DESK}-", "lp"),
        "trunk_tx": total("trunk-", "txcount"),  # relayed to the outside party
        "trunk_rx": total("trunk-", "rxcount"),  # its echo
        "trunk_lost": total("trunk-", "lp"),
        "desk_expected": total(f"{DESK}-", "uptime") * 1000 // PACKET_MS,  # the player's 50/s since creation
        "qos_channels": len(qos),
    }


# ------------------------------------------------------------------------------------------------ main


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    # short path: Asterisk's control socket path must stay under 107 bytes
    if os.environ.get("CALLS_BENCH_KEEP"):  # keep configs, logs and SIPp screens for a look afterwards
        work = tempfile.mkdtemp(prefix="sbcb-", dir="/tmp")
        say(f"work dir (kept): {work}")
        yield Path(work)
        return
    with tempfile.TemporaryDirectory(prefix="sbcb-", dir="/tmp") as work:
        yield Path(work)


async def local_asterisk(work: Path, span: int) -> tuple[config.Settings, Any]:
    """Settings of a throwaway Asterisk under `work` (free SIP and AMI ports, `span` RTP ports at a random base,
    as tests/support/asterisk_fixture.py does) and the provisioned runtime."""
    sip_port, ami_port = free_sip_port(), free_port()
    base = random.Random().randrange(30000, 40000 - span, 100)
    var = work / "var"
    settings = config.load(
        path=work / "absent.toml",
        environ={
            "SWITCHBOARD_PATHS_VAR_DIR": str(var),
            "SWITCHBOARD_ASTERISK_SIP_HOST": HOST,
            "SWITCHBOARD_ASTERISK_SIP_PORT": str(sip_port),
            "SWITCHBOARD_ASTERISK_AMI_PORT": str(ami_port),
            "SWITCHBOARD_ASTERISK_RTP_PORT_START": str(base),
            "SWITCHBOARD_ASTERISK_RTP_PORT_END": str(base + span - 1),
            "SWITCHBOARD_ASTERISK_UDPTL_PORT_START": str(40000),
            "SWITCHBOARD_ASTERISK_UDPTL_PORT_END": str(40199),
        },
    )
    return settings, await provision(settings, lambda step, detail: None)


async def run(args: argparse.Namespace, work: Path, procs: Processes) -> dict[str, Any]:
    span = max(600, args.concurrent * 4 + 200)  # an RTP and an RTCP port per channel, two channels per call
    settings, runtime = await local_asterisk(work, span)
    sip_port, ami_port = settings.asterisk.sip_port, settings.asterisk.ami_port
    trunk_port, desk_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    definition = dialplan.load_definition()
    trunks = [t.model_copy(update={"host": HOST, "port": trunk_port}) for t in definition.trunks]
    definition = definition.model_copy(update={"trunks": trunks})
    engine = Engine(settings, runtime, definition)
    bench = Bench(
        args, work, procs, engine, settings, ami_port, dialplan.ami_secret(settings), sip_port, trunk_port,
        desk_port, dialplan.phone_secrets(settings, definition)[DESK],
    )  # fmt: skip
    say(f"Asterisk {runtime.version}: SIP {sip_port}, AMI {ami_port}, trunk {trunk_port}, desk {desk_port}")
    try:
        await engine.start(timeout=30)
        bench.register_desk()
        await bench.start_agents(media=False)
        results: dict[str, Any] = {"asterisk": runtime.version}
        results["setup"] = {rate: {} for rate in args.rate}
        for rate in args.rate:  # no Switchboard process runs meanwhile
            say(f"set-up, raw AMI: {args.calls} calls at {rate:g}/s")
            results["setup"][rate]["raw AMI"] = await setup_raw_ami(bench, rate)
        async with bench.server() as server:
            for rate in args.rate:
                say(f"set-up, API: {args.calls} calls at {rate:g}/s")
                results["setup"][rate]["Switchboard API"] = await setup_api(bench, server, rate)
            results["hold"] = await hold(bench, server) if args.concurrent else None
        return results
    finally:
        await bench.stop_agents()
        await engine.stop()


def report(results: dict[str, Any], args: argparse.Namespace, load: tuple[str, str]) -> None:
    print(
        f"\nDispatch call set-up: desk 8001 answers, then one outside number through the trunk, the far end hangs "
        f"up after {args.talk:g} s; {args.calls} calls offered per row (open loop), Asterisk "
        f"{results['asterisk']}, {os.cpu_count()} cores shared by Asterisk, SIPp, server and load generator. "
        f"Latency: Originate or POST until answered; CPU: ms per call."
    )
    print(
        f"{'offered/s':>9} {'path':16} {'answered':>9} {'calls/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
        f"{'Asterisk':>8} {'server':>7} {'bench':>7}"
    )
    for rate, paths in results["setup"].items():
        for path in ("raw AMI", "Switchboard API"):
            r = paths[path]
            n = max(r["answered"], 1)
            print(
                f"{rate:9g} {path:16} {r['answered']:>5}/{args.calls:<3} {r['cps']:8.1f} {r['p50_ms']:8.1f} "
                f"{r['p95_ms']:8.1f} {r['max_ms']:8.1f} {r['cpu_asterisk'] * 1000 / n:8.1f} "
                f"{r.get('cpu_switchboard', 0) * 1000 / n:7.1f} {r['cpu_bench'] * 1000 / n:7.1f}"
            )
        raw, api = paths["raw AMI"], paths["Switchboard API"]
        print(
            f"{'':9} {'API/raw':16} {'':9} {api['cps'] / raw['cps'] if raw['cps'] else math.nan:8.2f} "
            f"{api['p50_ms'] / raw['p50_ms']:8.2f} {api['p95_ms'] / raw['p95_ms']:8.2f}"
        )
    events = [paths["raw AMI"]["ami_events"] for paths in results["setup"].values()]
    print(f"AMI events per dispatch call (every AMI client receives them all): {statistics.mean(events):.0f}")
    h = results.get("hold")
    if h:
        print(
            f"\n{h['answered']}/{args.concurrent} calls through the API held {h['wall']:.0f} s with RTP both ways "
            f"({h['channels']} channels, bridge technology {h['bridges']}; set-up p50 {h['setup_p50_ms']:.0f} ms, "
            f"p95 {h['setup_p95_ms']:.0f} ms)"
        )
        rows = [
            ("desk -> Asterisk (desk leg rx)", h["desk_rx"], h["desk_lost"]),
            ("Asterisk -> far end (trunk leg tx)", h["trunk_tx"], None),
            ("far end echo -> Asterisk (trunk leg rx)", h["trunk_rx"], h["trunk_lost"]),
            ("Asterisk -> desk (desk leg tx)", h["desk_tx"], None),
        ]
        print(f"{'RTP packets (Asterisk counts, whole call)':42} {'packets':>10} {'lost':>6}")
        for name, count, lost in rows:
            print(f"{name:42} {count:10,} {'' if lost is None else lost:>6}")
        if h["desk_rx"]:
            print(f"{'returned/sent (desk tx / desk rx)':42} {h['desk_tx'] / h['desk_rx']:10.4f}")
        print(
            f"{'desk player at 50/s over channel uptime':42} {h['desk_expected']:10,} "
            "(approx.: uptime in whole seconds)"
        )
        print(f"{'CPU over the hold':28} {'cores':>6}  (whole machine: all processes, ours and others')")
        for name, share in h["cpu"].items():
            print(f"{name:28} {share:6.3f}")
    print(f"\nload average before: {load[0]}; after: {load[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=150, help="calls per set-up row")
    parser.add_argument(
        "--rate",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[5.0, 50.0],
        help="calls offered per second, comma-separated: one set-up row pair per rate (default 5,50)",
    )
    parser.add_argument("--hold-rate", type=float, default=10, help="calls/s placing the held calls")
    parser.add_argument("--concurrent", type=int, default=100, help="calls held with RTP (0: skip)")
    parser.add_argument("--hold", type=float, default=60, help="seconds the concurrent calls are held")
    parser.add_argument("--talk", type=float, default=1.0, help="seconds the far end talks in the set-up runs")
    parser.add_argument("--ring", type=int, default=30, help="ring_seconds of each call")
    execute(run, report, parser.parse_args())


def execute(
    run: Callable[[argparse.Namespace, Path, "Processes"], Awaitable[Any]],
    report: Callable[[Any, argparse.Namespace, tuple[str, str]], None],
    args: argparse.Namespace,
) -> None:
    """Run a benchmark in a scratch directory, stop every process it started, print the report with the load
    average before and after; on failure show the tails of the logs."""
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    procs = Processes()
    with workspace() as work:
        try:
            results = asyncio.run(run(args, work, procs))
        except BaseException:
            say(f"failed; logs were in {work}: " + ", ".join(p.name for p in work.glob("*.err")))
            for log in [work / "server.log", *work.glob("*.err")]:
                if log.exists() and log.stat().st_size:
                    print(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}", file=sys.stderr)
            raise
        finally:
            procs.stop_all()
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    report(results, args, (" ".join(load_before), " ".join(load_after)))


if __name__ == "__main__":
    main()
