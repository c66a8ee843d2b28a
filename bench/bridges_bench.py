"""Conference bridges (issue 4): participants in one ConfBridge, convened through Switchboard's API, held with RTP.

    .venv/bin/python -m bench.bridges_bench [--sizes 10,50,100] [--hold 30] [--convene 20] [--repeat 5]

About 3.5 minutes with the defaults on two shared cores.

One local Asterisk (sip.engine.Engine from the default dialplan, trunk on a free port, as bench/calls_bench.py)
with bridge 8600 copied from the default definition with max_members raised (largest size + 20, at most 200) and
announce off: no join/leave prompts and no count prompt, so a leg is in the bridge as soon as it answers (the
prompts cost CPU at join time only). Recording stays as defined (on). A SIPp UAS on the trunk's port is every
participant: a convened leg is Local/s@switchboard-dispatch/n, whose far half dials PJSIP/<number>@trunk and whose
near half enters the bridge once SIPp answers.

1. Convene (no RTP). The same N legs go into the bridge twice:
   - raw AMI: the benchmark sends the Originate conference/bridges/service.py sends (same channel, context and
     variables), all N at once, and times it until the N-th ConfbridgeJoin arrives on its AMI link; no Switchboard
     process runs meanwhile;
   - API: `switchboard serve` runs as its own process (external mode, SQLite), the benchmark POSTs
     /api/v1/bridges/8600/convene {"numbers": [...], "rounds": 1} and times it until the N-th `bridge.joined`
     arrives on WS /api/v1/events.
   Each of --sizes once, then --convene legs --repeat times. Between runs everybody is kicked (AMI ConfbridgeKick
   all) and the bridge ends.
2. Hold. For each size, N legs convened through the API are held --hold seconds while every SIPp leg sends A-law
   at 50 packets/s (rtp_stream, a 10 s loop: 1 s of 440 Hz, then 9 s of silence; each leg starts it after a random
   0-10 s pause so the legs do not talk in step, i.e. about a tenth of the legs talk at any moment). Packets are
   Asterisk's own per-channel counters (`pjsip show channelstats` at the start and end of the hold; received, lost
   by sequence gaps, sent) on the trunk legs; expected = 50/s x N x the time between the two readings. CPU of
   Asterisk, the control plane, SIPp and the whole machine is utime+stime from /proc over the hold.
   Event lag: manager.conf has timestampevents=yes, so every AMI event carries Asterisk's wall-clock Timestamp;
   the benchmark keeps its own AMI link, notes the Timestamp of each ConfbridgeJoin and ConfbridgeTalking by
   channel, and the lag is the WS arrival time (time.time(), same machine) minus that Timestamp. bridge.joined
   lags come from every API run, bridge.talking lags from the holds; those raised while the hold's convene was
   still being processed (Timestamp before the last bridge.joined reached the WS) are also reported apart.

The benchmark's dialplan (the default with the raised max_members, a YAML in the work dir) reaches both sides: the
engine gets it directly, `switchboard serve` through SWITCHBOARD_ASTERISK_DIALPLAN.

Everything binds to 127.0.0.1; Asterisk, SIPp and the server are stopped in `finally`, even on error.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import socket
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from panoramisk.message import Message

from bench.calls_bench import (
    HOST,
    PACKET_MS,
    Bench,
    Processes,
    Server,
    call_id,
    cpu_seconds,
    execute,
    free_port,
    local_asterisk,
    machine_busy,
    number,
    percentile,
    rtp_stats,
    say,
    uas_scenario,
    write_tone,
)
from sip import dialplan
from sip.dialing import BRIDGE_CONTEXT, DISPATCH_CONTEXT
from sip.engine import Engine

TALK_ON, TALK_OFF = 1.0, 9.0  # seconds of tone, then of silence, in each leg's loop
SPREAD_MS = int((TALK_ON + TALK_OFF) * 1000)  # random pause before a leg's media: one loop


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


async def until(tick: asyncio.Event, check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until `check()` holds; `tick` is set whenever something arrived."""
    deadline = time.monotonic() + timeout
    while True:
        tick.clear()
        if check():
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tick.wait(), remaining)


# ------------------------------------------------------------------------------------------------ observers


@dataclass
class Watch:
    """The benchmark's own AMI link: what Asterisk reports, with its Timestamp header and our arrival time."""

    bridge: str
    joins: dict[str, tuple[float, float]] = field(default_factory=dict)  # channel -> (Timestamp, perf arrival)
    talking: dict[str, list[tuple[bool, float]]] = field(default_factory=lambda: defaultdict(list))
    ends: int = 0
    tick: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.joins.clear()
        self.talking.clear()

    def on_event(self, message: Message) -> None:
        name = message.get("Event", "")
        if not name.startswith("Confbridge") or message.get("Conference") != self.bridge:
            return
        stamp = float(message.get("Timestamp") or time.time())
        if name == "ConfbridgeJoin":
            self.joins[message.get("Channel", "")] = (stamp, time.perf_counter())
        elif name == "ConfbridgeTalking":
            self.talking[message.get("Channel", "")].append((message.get("TalkingStatus") == "on", stamp))
        elif name == "ConfbridgeEnd":
            self.ends += 1
        self.tick.set()


@dataclass
class Arrival:
    type: str
    wall: float  # time.time(), to compare with Asterisk's Timestamp
    perf: float
    data: dict[str, Any]


@dataclass
class BridgeServer(Server):
    """`switchboard serve` whose WS events the benchmark keeps (bridge.* only)."""

    arrivals: list[Arrival] = field(default_factory=list)
    tick: asyncio.Event = field(default_factory=asyncio.Event)

    async def _read(self, ws: Any) -> None:
        async for text in ws:
            wall, perf = time.time(), time.perf_counter()
            event = json.loads(text)
            if str(event.get("type", "")).startswith("bridge."):
                self.arrivals.append(Arrival(event["type"], wall, perf, event.get("data") or {}))
                self.tick.set()

    def of(self, kind: str, since: int = 0) -> list[Arrival]:
        return [a for a in self.arrivals[since:] if a.type == kind]


# ------------------------------------------------------------------------------------------------ runs


@dataclass
class Rig:
    bench: Bench
    watch: Watch
    ami: Any  # the benchmark's AmiSession
    bridge: str
    tone: Path
    media_base: int = field(default_factory=lambda: random.Random().randrange(42000, 52000, 1000))

    async def trunk(self, media: bool) -> None:
        """A fresh SIPp UAS on the trunk port for each run, on its own media ports."""
        bench = self.bench
        await bench.stop_agents()
        kind = "hold" if media else "setup"
        scenario = uas_scenario(
            f"trunk {kind}",
            "[rtpstream_audio_port]" if media else "[media_port]",
            str(self.tone) if media else "",
            spread_ms=SPREAD_MS,
        )
        bench.write(f"trunk-{bench.trunk_port}.xml", scenario)
        bench.control["trunk"] = free_port(socket.SOCK_DGRAM)
        self.media_base = 42000 + (self.media_base - 42000 + 1000) % 10000
        argv = bench.sipp_argv(
            "trunk", bench.trunk_port, self.media_base, "-cp", str(bench.control["trunk"]), "-rtp_threadtasks", "50"
        )
        bench.sipp["trunk"] = bench.procs.start("sipp-trunk", argv, stderr=(bench.work / "trunk.err").open("ab"))
        await asyncio.sleep(0.5)
        if bench.sipp["trunk"].poll() is not None:
            raise SystemExit(f"SIPp exited: {(bench.work / 'trunk.err').read_text()[-800:]}")

    async def kick_all(self, server: BridgeServer | None = None) -> float:
        """ConfbridgeKick all; waits for the end of the bridge (bridge.ended on the WS when a server runs).
        Returns seconds from the kick until then."""
        ends, since = self.watch.ends, len(server.arrivals) if server else 0
        began = time.perf_counter()
        await self.ami.action({"Action": "ConfbridgeKick", "Conference": self.bridge, "Channel": "all"}, timeout=30)
        await until(self.watch.tick, lambda: self.watch.ends > ends, 60, "ConfbridgeEnd")
        ended = time.perf_counter()
        if server is not None:
            try:
                await until(server.tick, lambda: bool(server.of("bridge.ended", since)), 60, "bridge.ended")
                ended = server.of("bridge.ended", since)[0].perf
            except TimeoutError as exc:
                say(str(exc))
                ended = math.nan
        await self.bench.wait_idle()
        return ended - began

    async def raw(self, n: int, ring: int) -> dict[str, Any]:
        """N Originates as conference/bridges/service.py sends them, all at once, until N ConfbridgeJoin."""
        await self.trunk(media=False)
        self.watch.reset()
        engine = cpu_seconds(self.bench.engine.pid())
        began = time.perf_counter()
        originations = [
            asyncio.create_task(
                self.ami.action(
                    {
                        "Action": "Originate",
                        "Channel": f"Local/s@{DISPATCH_CONTEXT}/n",
                        "Context": BRIDGE_CONTEXT,
                        "Exten": self.bridge,
                        "Priority": "1",
                        "Timeout": str((ring + 10) * 1000),
                        "CallerID": f'"{self.bridge}" <{self.bridge}>',
                        "Variable": [
                            "__INCIDENT_ID=",
                            f"__SB_CALL_ID={call_id()}",
                            f"__SB_TARGETS=PJSIP/{number(i)}@trunk",
                            f"__SB_RING_TIMEOUT={ring}",
                            "SB_ROLE=participant",
                            "SB_ROUND=1",
                        ],
                        "Async": "true",
                    },
                    timeout=ring + 30,
                )
            )
            for i in range(n)
        ]
        try:
            await until(self.watch.tick, lambda: len(self.watch.joins) >= n, ring + 30, f"{n} ConfbridgeJoin")
        finally:
            legs = sorted(arrival - began for _, arrival in self.watch.joins.values())
            engine = cpu_seconds(self.bench.engine.pid()) - engine
            await asyncio.gather(*originations, return_exceptions=True)
            teardown = await self.kick_all()
        return {
            "joined": len(legs),
            "total": legs[-1] if legs else math.nan,
            "legs": legs,
            "asterisk_ms": engine * 1000 / max(len(legs), 1),
            "teardown": teardown,
        }

    async def api(self, server: BridgeServer, n: int, ring: int, hold: float = 0) -> dict[str, Any]:
        """POST convene for N outside numbers, until N bridge.joined on the WS; then optionally hold with RTP."""
        await self.trunk(media=bool(hold))
        self.watch.reset()
        since = len(server.arrivals)
        body = {"numbers": [number(i) for i in range(n)], "rounds": 1, "ring_seconds": ring}
        before, engine = cpu_seconds(server.pid), cpu_seconds(self.bench.engine.pid())
        began = time.perf_counter()
        response = await server.http.post(f"/api/v1/bridges/{self.bridge}/convene", json=body)
        accepted = time.perf_counter() - began
        if response.status_code != 202:
            raise RuntimeError(f"convene {response.status_code}: {response.text[:300]}")
        try:
            await until(server.tick, lambda: len(server.of("bridge.joined", since)) >= n, ring + 60, f"{n} joined")
        finally:
            after, engine = cpu_seconds(server.pid), cpu_seconds(self.bench.engine.pid()) - engine
            joined = server.of("bridge.joined", since)
        legs, stamps = sorted(a.perf - began for a in joined), self.watch.joins
        result: dict[str, Any] = {
            "joined": len(legs),
            "total": legs[-1] if legs else math.nan,
            "legs": legs,
            "accepted": accepted,
            "server_ms": (after - before) * 1000 / max(len(legs), 1),
            "asterisk_ms": engine * 1000 / max(len(legs), 1),
            "join_lags": [a.wall - stamps[c][0] for a in joined if (c := a.data.get("channel")) in stamps],
        }
        if hold:
            result |= await self.hold(server, n, hold, since, max((a.wall for a in joined), default=math.inf))
        result["teardown"] = await self.kick_all(server)
        return result

    async def hold(self, server: BridgeServer, n: int, seconds: float, since: int, last_join: float) -> dict[str, Any]:
        bench = self.bench
        say(f"hold: {n} joined; waiting {SPREAD_MS / 1000:g} s until every leg's media runs, then {seconds:g} s")
        await asyncio.sleep(SPREAD_MS / 1000 + 1)
        pids = {"asterisk": bench.engine.pid(), "switchboard": server.pid}
        sipp = bench.sipp["trunk"].pid

        def cpu_now() -> dict[str, float]:
            now = {k: cpu_seconds(p) for k, p in pids.items()} | {"sipp": cpu_seconds(sipp)}
            return now | {"bench": time.process_time(), "whole machine": machine_busy()}

        t0 = time.perf_counter()
        first = {q["channel"]: q for q in await rtp_stats(bench) if q["channel"].startswith("trunk-")}
        t1 = time.perf_counter()
        cpu_before = cpu_now()
        await asyncio.sleep(seconds)
        cpu_after = cpu_now()
        t2 = time.perf_counter()
        last = {q["channel"]: q for q in await rtp_stats(bench) if q["channel"].startswith("trunk-")}
        t3 = time.perf_counter()
        wall = t2 - t1
        between = (t2 + t3) / 2 - (t0 + t1) / 2  # midpoints of the two readings
        both = [c for c in last if c in first]
        delta = {k: sum(last[c][k] - first[c][k] for c in both) for k in ("rxcount", "lp", "txcount")}
        talking = server.of("bridge.talking", since)
        during = [a for a in talking if t1 <= a.perf <= t2]
        return {
            "channels": len(both),
            "rx": delta["rxcount"],
            "lost": delta["lp"],
            "tx": delta["txcount"],
            "expected": round(len(both) * between * 1000 / PACKET_MS),
            "wall": wall,
            "cpu": {k: (cpu_after[k] - cpu_before[k]) / wall for k in cpu_before},
            "talking_per_s": len(during) / wall,
            "talk_lags": [lag for a, lag in self.talk_lags(talking) if a in during],  # steady state
            "talk_lags_all": [lag for _, lag in self.talk_lags(talking)],  # also while the legs were joining
            # raised (Asterisk's Timestamp) before the last bridge.joined reached the WS: while joins were processed
            "talk_lags_convening": [lag for a, lag in self.talk_lags(talking) if a.wall - lag <= last_join],
        }

    def talk_lags(self, talking: list[Arrival]) -> list[tuple[Arrival, float]]:
        """Each WS bridge.talking matched with the ConfbridgeTalking of the same channel and state, in order."""
        seen: dict[tuple[str, bool], int] = defaultdict(int)
        lags = []
        for arrival in talking:
            key = (arrival.data.get("channel", ""), bool(arrival.data.get("talking")))
            ami = [stamp for on, stamp in self.watch.talking.get(key[0], []) if on == key[1]]
            if seen[key] < len(ami):
                lags.append((arrival, arrival.wall - ami[seen[key]]))
            seen[key] += 1
        return lags


# ------------------------------------------------------------------------------------------------ main


def definition_for(trunk_port: int, members: int) -> tuple[dialplan.Definition, str]:
    definition = dialplan.load_definition()
    trunks = [t.model_copy(update={"host": HOST, "port": trunk_port}) for t in definition.trunks]
    conference = definition.conferences[0].model_copy(update={"max_members": members, "announce": False})
    definition = definition.model_copy(update={"trunks": trunks, "conferences": [conference]})
    return definition, conference.number


async def run(args: argparse.Namespace, work: Path, procs: Processes) -> dict[str, Any]:
    largest = max([*args.sizes, args.convene])
    settings, runtime = await local_asterisk(work, max(600, largest * 4 + 200))  # RTP + RTCP per trunk leg
    trunk_port = free_port(socket.SOCK_DGRAM)
    definition, bridge = definition_for(trunk_port, min(200, largest + 20))
    written = work / "dialplan.yaml"
    written.write_text(yaml.safe_dump(definition.model_dump(mode="json"), allow_unicode=True), "utf-8")
    dialplan.load_definition(written)  # the server will read it back: it must validate
    engine = Engine(settings, runtime, definition)
    a = settings.asterisk
    bench = Bench(
        args, work, procs, engine, settings, a.ami_port, dialplan.ami_secret(settings), a.sip_port, trunk_port, 0, ""
    )
    say(f"Asterisk {runtime.version}: SIP {a.sip_port}, AMI {a.ami_port}, trunk {trunk_port}, bridge {bridge}")
    watch = Watch(bridge)
    ami = bench.ami()
    ami.on_event(watch.on_event)
    rig = Rig(bench, watch, ami, bridge, write_tone(work / "talk.alaw", TALK_ON, TALK_OFF))
    results: dict[str, Any] = {
        "asterisk": runtime.version,
        "max_members": definition.conferences[0].max_members,
        "raw": {},
        "api": {},
        "hold": {},
    }
    runs = [*args.sizes, *[args.convene] * args.repeat]
    try:
        await engine.start(timeout=30)
        ami.start()
        await ami.wait_up(15)
        for i, n in enumerate(runs):  # no Switchboard process runs meanwhile
            say(f"raw AMI: {n} legs into the bridge")
            results["raw"].setdefault(n, []).append(await rig.raw(n, args.ring))
            say(f"raw AMI: {n} joined in {results['raw'][n][-1]['total']:.2f} s ({i + 1}/{len(runs)})")
        async with bench.server(BridgeServer, SWITCHBOARD_ASTERISK_DIALPLAN=str(written)) as server:
            for i, n in enumerate(runs):
                say(f"API: convene {n}")
                results["api"].setdefault(n, []).append(await rig.api(server, n, args.ring))
                say(f"API: {n} joined in {results['api'][n][-1]['total']:.2f} s ({i + 1}/{len(runs)})")
            if args.hold:
                for n in args.sizes:
                    say(f"hold: convene {n} with RTP")
                    results["hold"][n] = await rig.api(server, n, args.ring, args.hold)
        return results
    finally:
        await ami.stop()
        await bench.stop_agents()
        await engine.stop()


def ms(seconds: float) -> str:
    return "" if math.isnan(seconds) else f"{seconds * 1000:,.0f}"


def report(results: dict[str, Any], args: argparse.Namespace, load: tuple[str, str]) -> None:
    print(
        f"\nConvening outside numbers into one ConfBridge (max_members {results['max_members']}, announce off, "
        f"recording on), Asterisk {results['asterisk']}, {os.cpu_count()} cores shared by Asterisk, SIPp, server, "
        "load generator and other work. Time from the Originates (raw AMI) or the POST (API) until each leg's "
        "ConfbridgeJoin (raw) or bridge.joined on the WS (API); all legs at once; no RTP."
    )
    print(
        f"{'legs':>5} {'path':16} {'runs':>4} {'joined':>7} {'202 ms':>7} {'leg p50':>8} {'leg p95':>8} "
        f"{'all ms':>8} {'srv ms/leg':>10} {'ast ms/leg':>10} {'join lag':>13} {'end ms':>7}"
    )
    for n in dict.fromkeys([*args.sizes, args.convene]):
        rows = {"raw AMI": results["raw"].get(n, []), "Switchboard API": results["api"].get(n, [])}
        for path, runs in rows.items():
            if not runs:
                continue
            legs = [leg for r in runs for leg in r["legs"]]
            joined = min(r["joined"] for r in runs)
            accepted = [r["accepted"] for r in runs if "accepted" in r]
            server = f"{p50([r['server_ms'] for r in runs]):.1f}" if accepted else ""
            lags = [lag for r in runs for lag in r.get("join_lags", [])]
            lag = f"{ms(p50(lags))}/{ms(percentile(lags, 0.95))}" if lags else ""
            print(
                f"{n:5} {path:16} {len(runs):4} {joined:>7} {ms(p50(accepted)):>7} {ms(p50(legs)):>8} "
                f"{ms(percentile(legs, 0.95)):>8} {ms(p50([r['total'] for r in runs])):>8} "
                f"{server:>10} {p50([r['asterisk_ms'] for r in runs]):>10.1f} {lag:>13} "
                f"{ms(p50([r['teardown'] for r in runs])):>7}"
            )
        if all(rows.values()):
            raw = [leg for r in rows["raw AMI"] for leg in r["legs"]]
            api = [leg for r in rows["Switchboard API"] for leg in r["legs"]]
            total = p50([r["total"] for r in rows["Switchboard API"]]) / p50([r["total"] for r in rows["raw AMI"]])
            print(f"{'':5} {'API/raw':16} {'':4} {'':7} {'':7} {p50(api) / p50(raw):8.2f} {'':8} {total:8.2f}")
    print(
        "srv ms/leg: CPU of `switchboard serve` from the POST to the last bridge.joined, per leg; ast ms/leg: "
        "Asterisk's CPU from the Originates or the POST to the last join, per leg; join lag: p50/p95 ms "
        "from Asterisk's ConfbridgeJoin Timestamp to bridge.joined on the WS; end ms: ConfbridgeKick all until "
        "ConfbridgeEnd (raw) or bridge.ended (API)"
    )
    if not results["hold"]:
        print(f"\nload average before: {load[0]}; after: {load[1]}")
        return
    print(
        f"\nHeld {args.hold:g} s after convening through the API; every leg sends A-law at 50 packets/s "
        f"({TALK_ON:g} s tone, {TALK_OFF:g} s silence, looped, legs out of step). Packets: Asterisk's counters on "
        "the trunk legs over the hold; CPU in cores over the hold."
    )
    print(
        f"{'legs':>5} {'joined':>6} {'all ms':>7} {'rx packets':>11} {'expected':>9} {'rx/exp':>7} {'lost':>5} "
        f"{'tx/s':>6} {'Asterisk':>8} {'server':>7} {'SIPp':>6} {'machine':>7} {'talk/s':>6} {'join lag':>15} "
        f"{'talk lag':>15} {'end ms':>7}"
    )
    for n, h in results["hold"].items():
        cpu = h["cpu"]
        jl, tl = h["join_lags"], h["talk_lags"]
        print(
            f"{n:5} {h['joined']:6} {ms(h['total']):>7} {h['rx']:11,} {h['expected']:9,} "
            f"{h['rx'] / h['expected'] if h['expected'] else math.nan:7.4f} {h['lost']:5} {h['tx'] / h['wall']:6.0f} "
            f"{cpu['asterisk']:8.3f} {cpu['switchboard']:7.3f} {cpu['sipp']:6.3f} {cpu['whole machine']:7.3f} "
            f"{h['talking_per_s']:6.1f} {ms(p50(jl)) + '/' + ms(percentile(jl, 0.95)):>15} "
            f"{ms(p50(tl)) + '/' + ms(percentile(tl, 0.95)):>15} {ms(h['teardown']):>7}"
        )
    print(
        "join lag, talk lag: p50/p95 ms from Asterisk's event Timestamp to the WS arrival (talk lag: events that "
        "arrived during the hold); talk/s: bridge.talking events per second on the WS during the hold; end ms: "
        "ConfbridgeKick all until bridge.ended on the WS"
    )
    for n, h in results["hold"].items():
        every = h["talk_lags_all"]
        print(
            f"{n} legs: bridge.talking lag counting the events raised while the legs were still joining too "
            f"({len(every)} events): p50 {ms(p50(every))} ms, p95 {ms(percentile(every, 0.95))} ms, "
            f"max {ms(max(every, default=math.nan))} ms"
        )
        convening = h["talk_lags_convening"]
        print(
            f"{n} legs: bridge.talking lag of the events raised during the convene (before the last bridge.joined "
            f"arrived; {len(convening)} events): p50 {ms(p50(convening))} ms, p95 {ms(percentile(convening, 0.95))} "
            f"ms, max {ms(max(convening, default=math.nan))} ms"
        )
    print(f"\nload average before: {load[0]}; after: {load[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[10, 50, 100],
        help="participants per bridge, comma-separated (default 10,50,100)",
    )
    parser.add_argument("--hold", type=float, default=30, help="seconds each size is held with RTP (0: skip)")
    parser.add_argument("--convene", type=int, default=20, help="legs of the timed convene (default 20)")
    parser.add_argument("--repeat", type=int, default=5, help="how often the timed convene runs on each path")
    parser.add_argument("--ring", type=int, default=30, help="ring_seconds of each leg")
    args = parser.parse_args()
    if max([*args.sizes, args.convene]) > 180:
        parser.error("at most 180 legs (a bridge takes at most 200 members)")
    execute(run, report, args)


if __name__ == "__main__":
    main()
