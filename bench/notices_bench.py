"""A notice to the province's 129 desks by voice (issue 15): Switchboard beside raw AMI, same peers, same lines.

    .venv/bin/python -m bench.notices_bench [--desks 129] [--lines 30,60] [--ring 30] [--rounds 2] [--retry 60]
        [--escalate 60]

About 18 minutes with the defaults (a raw and a Switchboard run per line count).

One local Asterisk (sip.engine.Engine, the default dialplan with the trunk on a free port, as bench/calls_bench.py)
and one SIPp process on the trunk's port that is every desk (tests/support/voice_desks.py): the desks are the
first --desks divisions of Shanxi (province, cities, counties), each with one number reached through the trunk.
Each desk rings 2-15 s (uniform, seeded), answers, hears the message and the prompt "收到请按1，重听请按2", and
presses 1 (RFC 4733) once the prompt has played; 5 % of them (rounded) never answer: their calls ring out after
--ring seconds, --rounds times, --retry seconds apart, and then the controller gives up on them.

For each of --lines, two runs, one after the other:
- raw AMI: the benchmark itself originates what sip/calls.py originates for a voice notification (a Local channel
  whose far half runs the dispatch loop, whose near half plays the message in switchboard-voice, same variables,
  the same audio file), at most `lines` calls at once, each desk round after round as broadcast/channels/voice.py
  does; no Switchboard process runs meanwhile.
- Switchboard: `switchboard serve` (own process, external mode, SQLite, `[voice] lines` = lines) is sent a notice
  (POST /api/v1/notices) to a directory group of the desks on the voice channel, with an escalation policy whose
  tier 2 (the desk unit's leader on duty, from the roster, by voice) falls due --escalate seconds after the issue;
  the outbox and the voice channel place the calls, the notices' watch confirms and escalates (`NoticeToDesks`).

Both runs are timed from the start (the Originates, the POST) until each desk's outcome is known to the controller
(raw: the call's Hangup carrying the dialplan's SB_VOICE; Switchboard: the recipient's confirmed_at on the board).
The desks that never answer are given up on by the raw controller after their rounds; Switchboard escalates them,
and their time is when their leader's key confirmed for them. A second AMI link of the benchmark's sees every call
of both runs alike: calls placed, their lengths, how many were up at once (line use: mean calls up / lines, from
the start until every desk had been dialled once). CPU is utime+stime from /proc of Asterisk, `switchboard serve`
(raw: the benchmark's own process, which is the raw controller) and SIPp over each run; the controller's CPU is also
measured for 10 s before the run with nothing to do, and what the run took above that rate is given per call.
"""

import argparse
import asyncio
import csv
import io
import math
import os
import random
import socket
import time
import wave
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from panoramisk.message import Message

from bench.calls_bench import (
    HOST,
    PASSWORD,
    Bench,
    Processes,
    call_id,
    cpu_seconds,
    execute,
    free_port,
    local_asterisk,
    say,
)
from broadcast.models import PublicWarning
from broadcast.render import render
from sip import dialplan
from sip.calls import DESK_LEG, DIAL_LEG, VOICE_CALLER
from sip.dialing import (
    CALL_ID,
    DISPATCH_CONTEXT,
    INCIDENT_ID,
    RECORD,
    RING_TIMEOUT,
    TARGETS,
    VOICE_CONTEXT,
    VOICE_FILE,
    VOICE_OUTCOME,
    VOICE_PLAYS,
    VOICE_WAIT,
    channel_variables,
    inherited,
)
from sip.engine import Engine
from switchboard.core import speech
from switchboard.core.db import utcnow
from switchboard.core.divisions import all_divisions
from tests.support.voice_desks import NEVER_ANSWERS, desk_number, dtmf_pcap, ring_of, scenario

GROUP = "全省值班台"
POLICY = "基准"  # the [notices] policies entry the notice names: tier 2, the desk unit's leader by voice
LEADER_RING = 3  # seconds a leader's phone rings before it answers
CONFIRMED_SHARE = 0.95
NEVER_SHARE = 0.05
PROMPT_MARGIN_MS = 1000  # after the prompt's end (Read waits digit_seconds for the key): the desk presses 1
POLL_SECONDS = 2.0  # how often the delivery report is read while a Switchboard run goes on
IDLE_SECONDS = 10.0  # the controller's CPU is measured this long before each run, nothing to do


@dataclass(frozen=True)
class Desk:
    code: str  # GB/T 2260 division the desk serves
    name: str
    number: str


def desks(count: int, seed: int) -> list[Desk]:
    """The first `count` divisions of Shanxi, each a desk ringing 2-15 s; 5 % (rounded) never answer."""
    rng = random.Random(seed)
    divisions = list(all_divisions().values())[:count]
    never = set(rng.sample(range(len(divisions)), round(len(divisions) * NEVER_SHARE)))
    return [
        Desk(d.code, f"{d.name}值班台", desk_number(i, NEVER_ANSWERS if i in never else rng.randint(2, 15)))
        for i, d in enumerate(divisions)
    ]


def _warning_script() -> str:
    """The text read out: what the voice channel reads for a warning (broadcast.render, channel voice), here the
    notice's text, so that the message is as long as in the earlier runs of this benchmark."""
    content = {
        "event": "暴雨",
        "headline": "暴雨橙色预警",
        "description": "太原、晋中今夜有暴雨，请各地值班室做好防汛准备。",
        "category": ["Met"],
        "urgency": "Immediate",
        "certainty": "Likely",
        "colour": "orange",
        "areas": [{"code": "140000"}],
        "expires": "2026-12-31T00:00:00+08:00",
        "sender_name": "山西省应急管理厅",
    }
    return render(PublicWarning(msg_type="Alert", colour="orange", content=content, references=[]), "voice").text


SUBJECT = "暴雨橙色预警"
TEXT = _warning_script()


def spoken_text() -> str:
    """The text the voice channel reads out for the notice (switchboard/notices/live.py composes it so)."""
    return "通知：" + f"{SUBJECT}\n{TEXT}".replace("\n", "。")


def seconds_of(wav: Path) -> float:
    with wave.open(str(wav)) as w:
        return w.getnframes() / w.getframerate()


# ------------------------------------------------------------------------------------------------ what is measured


@dataclass
class Outcome:
    """A desk's end as the controller knows it: confirmed, unconfirmed (answered, no 1) or failed (nobody)."""

    state: str
    at: float  # seconds since the start
    detail: str = ""


@dataclass
class CallSeen:
    up: float
    down: float | None = None
    outcome: str = ""  # the dialplan's SB_VOICE


@dataclass
class Watch:
    """The benchmark's own AMI link: every voice call of either run, by the near half's Uniqueid (<id>-desk)."""

    start: float = 0.0
    calls: dict[str, CallSeen] = field(default_factory=dict)
    ended: dict[str, asyncio.Future[str]] = field(default_factory=dict)  # raw calls waiting for their Hangup

    first: dict[str, float] = field(default_factory=dict)  # desk number -> when its first call dialled it

    def reset(self) -> None:
        self.start, self.calls, self.first = time.time(), {}, {}

    def on_event(self, message: Message) -> None:
        unique = message.get("Uniqueid", "") or ""
        now = time.time() - self.start
        if message.get("Event") == "DialBegin" and unique.endswith(DIAL_LEG):  # the loop's half dials a desk
            self.first.setdefault(message.get("DialString", "").partition("@")[0], now)
        if not unique.endswith(DESK_LEG):
            return
        if message.get("Event") == "Newchannel":
            self.calls[unique] = CallSeen(now)
        elif message.get("Event") == "Hangup":
            outcome = channel_variables(message).get(VOICE_OUTCOME, "")
            if (seen := self.calls.get(unique)) is not None:
                seen.down, seen.outcome = now, outcome
            if (future := self.ended.pop(unique, None)) and not future.done():
                future.set_result(outcome)

    def figures(self, until: float, lines: int) -> dict[str, float]:
        """Calls ended until `until` (95 % confirmed), and the mean share of the lines in use while desks still
        waited for their first call (afterwards the lines drain)."""
        ended = [c for c in self.calls.values() if c.down is not None and c.down <= until]
        filled = max(self.first.values(), default=0.0)
        busy = sum(max(0.0, min(c.down or filled, filled) - c.up) for c in self.calls.values())
        answered = [c.down - c.up for c in self.calls.values() if c.down is not None and c.outcome]
        return {
            "calls": len(self.calls),
            "calls_per_min": len(ended) / until * 60 if until else math.nan,
            "line_use": busy / (lines * filled) if filled else math.nan,
            "answered_call_s": sum(answered) / len(answered) if answered else math.nan,
        }


@dataclass
class Run:
    outcomes: dict[str, Outcome]
    cpu: dict[str, float]
    watch: dict[str, float] = field(default_factory=dict)

    def confirmed_at(self, share: float) -> float:
        times = sorted(o.at for o in self.outcomes.values() if o.state == "confirmed")
        needed = math.ceil(len(self.outcomes) * share)
        return times[needed - 1] if len(times) >= needed else math.nan


# ------------------------------------------------------------------------------------------------ the two controllers


class Lines:
    """At most `count` calls up. A desk's later round takes the next free line before desks not yet called, as in
    the voice channel: a later round waits for a line, while a row not yet called is offered again 2 s later."""

    def __init__(self, count: int) -> None:
        self.free = count
        self.waiting: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())  # later rounds, first rounds

    async def take(self, later_round: bool) -> None:
        if self.free and not any(self.waiting):
            self.free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        self.waiting[0 if later_round else 1].append(turn)
        await turn

    def give(self) -> None:
        for queue in self.waiting:
            if queue:
                queue.popleft().set_result(None)
                return
        self.free += 1


@dataclass
class Rig:
    """What both controllers run on: the engine, the desks, the benchmark's own AMI link and what it sees."""

    bench: Bench
    watch: Watch
    ami: Any
    desks: list[Desk]
    audio: Path  # the message, as Switchboard synthesises it (same text, same cache)
    sipp_pid: int

    def cpu(self, controller: int | None) -> dict[str, float]:
        return {
            "asterisk": cpu_seconds(self.bench.engine.pid()),
            "control": cpu_seconds(controller) if controller else time.process_time(),
            "sipp": cpu_seconds(self.sipp_pid),
        }

    async def measured(
        self, controller: int | None, lines: int, go: Callable[[], Awaitable[dict[str, Outcome]]]
    ) -> Run:
        """`go` from an idle engine, with the CPU it took; beforehand the controller's CPU while idle."""
        await self.bench.wait_idle()
        before = self.cpu(controller)
        await asyncio.sleep(IDLE_SECONDS)
        idle = (self.cpu(controller)["control"] - before["control"]) / IDLE_SECONDS
        self.watch.reset()
        before = self.cpu(controller)
        outcomes = await go()
        after = self.cpu(controller)
        run = Run(outcomes, {k: after[k] - before[k] for k in before} | {"control_idle_per_s": idle})
        run.cpu["wall"] = time.time() - self.watch.start
        run.watch = self.watch.figures(run.confirmed_at(CONFIRMED_SHARE), lines)
        return run

    async def raw(self, lines: int) -> Run:
        """What the voice channel does, straight over AMI: each desk round after round, a line per round."""
        args = self.bench.args
        gate = Lines(lines)
        outcomes: dict[str, Outcome] = {}
        originations: list[asyncio.Task[Any]] = []

        async def call(number: str) -> str:
            cid = call_id()
            ended = self.watch.ended[f"{cid}{DESK_LEG}"] = asyncio.get_running_loop().create_future()
            loop = [(TARGETS, f"PJSIP/{number}@trunk"), (RING_TIMEOUT, args.ring), (RECORD, 1)]
            variables = [inherited(INCIDENT_ID, ""), inherited(CALL_ID, cid)]
            variables += [inherited(name, value) for name, value in loop]
            variables += [f"{VOICE_FILE}={self.audio.with_suffix('')}", f"{VOICE_PLAYS}={args.replays + 1}"]
            variables += [f"{VOICE_WAIT}={args.digit_seconds}"]
            ring_ms = (args.ring + 10) * 1000
            action = {"Action": "Originate", "Channel": f"Local/s@{DISPATCH_CONTEXT}/n", "Context": VOICE_CONTEXT}
            action |= {"Exten": "s", "Priority": "1", "Timeout": str(ring_ms), "CallerID": VOICE_CALLER}
            action |= {"Variable": variables, "Async": "true", "ChannelId": f"{cid}{DESK_LEG}"}
            action |= {"OtherChannelId": f"{cid}{DIAL_LEG}"}
            originations.append(asyncio.create_task(self.ami.action(action, timeout=args.ring + 25)))
            return await asyncio.wait_for(ended, args.ring + 600)

        async def desk(number: str) -> None:
            for round_ in range(1, args.rounds + 1):
                await gate.take(later_round=round_ > 1)
                try:
                    outcome = await call(number)
                finally:
                    gate.give()
                if outcome or round_ == args.rounds:
                    break
                await asyncio.sleep(args.retry)
            state = "confirmed" if outcome.startswith("confirmed") else "unconfirmed" if outcome else "failed"
            outcomes[number] = Outcome(state, time.time() - self.watch.start, f"{round_} 轮")

        async def go() -> dict[str, Outcome]:
            await asyncio.gather(*(desk(d.number) for d in self.desks))
            await asyncio.gather(*originations, return_exceptions=True)
            return outcomes

        return await self.measured(None, lines, go)

    async def switchboard(self, lines: int) -> Run:
        a = self.args_environ(lines)
        async with self.bench.server(**a) as server:
            issuer = NoticeToDesks(server.http, self.desks)
            await issuer.prepare()

            async def go() -> dict[str, Outcome]:
                await issuer.issue()
                while not await issuer.settled():
                    await asyncio.sleep(POLL_SECONDS)
                return await issuer.outcomes(self.watch.start)

            return await self.measured(server.pid, lines, go)

    def args_environ(self, lines: int) -> dict[str, str]:
        args = self.bench.args
        monitor = dialplan.Layout.for_settings(self.bench.settings).base / "spool" / "monitor"
        return {
            "SWITCHBOARD_VOICE_LINES": str(lines),
            "SWITCHBOARD_VOICE_RING_SECONDS": str(args.ring),
            "SWITCHBOARD_VOICE_ROUNDS": str(args.rounds),
            "SWITCHBOARD_VOICE_RETRY_SECONDS": str(args.retry),
            "SWITCHBOARD_VOICE_REPLAYS": str(args.replays),
            "SWITCHBOARD_VOICE_DIGIT_SECONDS": str(args.digit_seconds),
            "SWITCHBOARD_ASTERISK_MONITOR_DIR": str(monitor),  # calls are recorded and filed as in a deployment
            "SWITCHBOARD_NOTICES_POLICIES": f"{POLICY}=leader:voice@{args.escalate:g}",
            "SWITCHBOARD_NOTICES_WAIT_SECONDS": str(args.ring * args.rounds + args.retry),  # then given up on
        }


class NoticeToDesks:
    """Switchboard's way to the desks: a notice (POST /api/v1/notices) to their directory group on the voice channel
    with the escalation policy POLICY (tier 2, `--escalate` seconds on: the roster's leader on duty at the desk's
    unit, by voice); outcomes from its confirmation board. Only the desks that never answer have a leader on the
    roster (numbers that answer after LEADER_RING s), so the escalation measured is theirs; a desk merely not reached
    yet when tier 2 falls due is escalated to nobody (无带班领导) and confirms when its call comes."""

    BASE = "/api/v1/notices"

    def __init__(self, admin: httpx.AsyncClient, desks: list[Desk]) -> None:
        self.http, self.desks = admin, desks
        self.as_: dict[str, dict[str, str]] = {}
        self.body: dict[str, Any] = {}
        self.notice_id = ""

    async def prepare(self) -> None:
        """People, the directory group, the leaders on the roster, an incident: everything before the issue."""
        user = "bench-duty-officer"
        await self.http.post("/api/v1/users", json={"username": user, "password": PASSWORD, "roles": ["duty_officer"]})
        token = await self.http.post("/api/v1/auth/token", json={"username": user, "password": PASSWORD})
        self.as_["duty_officer"] = {"Authorization": f"Bearer {token.json()['access_token']}"}
        never = [d for d in self.desks if ring_of(d.number) == NEVER_ANSWERS]
        rows = io.StringIO()
        writer = csv.writer(rows)
        writer.writerow(["organisation", "department", "name", "office_phone", "groups"])
        writer.writerows([d.code, "应急管理局", d.name, d.number, GROUP] for d in self.desks)
        writer.writerows([d.code, "应急管理局", leader_of(d), leader_number(i), ""] for i, d in enumerate(never))
        files = {"file": ("desks.csv", rows.getvalue().encode(), "text/csv")}
        imported = await self.checked("/api/v1/directory/import", files=files)
        assert imported["created"] + imported["updated"] == len(self.desks) + len(never), imported
        now = utcnow().replace(microsecond=0)
        for desk in never:
            found = await self.http.get(
                "/api/v1/directory/contacts", params={"q": leader_of(desk)}, headers=self.as_["duty_officer"]
            )
            leader = next(c for c in found.json() if c["name"] == leader_of(desk))
            shift = {"org_code": leader["org_code"], "person_id": leader["id"], "role": "带班领导"}
            shift |= {"starts_at": now.isoformat(), "ends_at": (now + timedelta(days=1)).isoformat()}
            await self.checked("/api/v1/directory/roster", json=shift)
        groups = (await self.http.get("/api/v1/directory/groups", headers=self.as_["duty_officer"])).json()
        incident = {"title": "全省暴雨", "category": "natural_disaster", "level": "II", "area_code": "140000"}
        self.body = {
            "subject": SUBJECT,
            "text": TEXT,
            "incident_id": (await self.checked("/api/v1/incidents", json=incident))["id"],
            "group_ids": [next(g["id"] for g in groups if g["name"] == GROUP)],
            "channels": ["voice"],
            "policy": POLICY,
        }

    async def issue(self) -> None:
        answer = await self.checked(self.BASE, json=self.body)
        assert answer["recipients"] == len(self.desks), answer
        self.notice_id = answer["id"]

    async def board(self) -> dict[str, Any]:
        url = f"{self.BASE}/{self.notice_id}/confirmations"
        return (await self.http.get(url, headers=self.as_["duty_officer"])).json()

    async def settled(self) -> bool:
        """Every desk confirmed (by itself or its leader), or given up on: the notice complete."""
        return bool((await self.board())["complete"])

    async def outcomes(self, start: float) -> dict[str, Outcome]:
        """Each desk's end, timed from the wall clock of the start (the rows' times are the server's, same clock):
        confirmed by its own key, escalated (its leader's key confirmed for it), or the state it ended in."""
        outcomes = {}
        for item in (await self.board())["items"]:
            if item["about_id"]:
                continue
            number = item["deliveries"][0]["recipient"]  # the desk's own call, written with the issue
            state = item["state"]
            if state == "confirmed" and item["confirmed_by"] != item["name"]:
                state = "escalated"
            at = item["confirmed_at"] or max(d["updated_at"] for d in item["deliveries"])
            outcomes[number] = Outcome(state, datetime.fromisoformat(at).timestamp() - start, item["reason"])
        return outcomes

    async def checked(self, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.http.post(path, headers=self.as_["duty_officer"], **kwargs)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST {path} {response.status_code}: {response.text[:300]}")
        return response.json()


def leader_of(desk: Desk) -> str:
    return f"{desk.name}带班领导"


def leader_number(index: int) -> str:
    """The leader of the `index`-th desk that never answers: a number SIPp answers after LEADER_RING s."""
    return desk_number(900 + index, LEADER_RING)


# ------------------------------------------------------------------------------------------------ main


async def run(args: argparse.Namespace, work: Path, procs: Processes) -> dict[str, Any]:
    settings, runtime = await local_asterisk(work, max(600, max(args.lines) * 8 + 200))
    trunk_port = free_port(socket.SOCK_DGRAM)
    definition = dialplan.load_definition()
    trunks = [t.model_copy(update={"host": HOST, "port": trunk_port}) for t in definition.trunks]
    engine = Engine(settings, runtime, definition.model_copy(update={"trunks": trunks}))
    a = settings.asterisk
    bench = Bench(args, work, procs, engine, settings, a.ami_port, dialplan.ami_secret(settings), a.sip_port, 0, 0, "")
    the_desks = desks(args.desks, args.seed)
    audio = await speech.synthesize(work / "switchboard", spoken_text())  # where the server will look first
    watch = Watch()
    ami = bench.ami()
    ami.on_event(watch.on_event)
    say(f"Asterisk {runtime.version}: SIP {a.sip_port}, AMI {a.ami_port}, desks on {trunk_port}")
    try:
        await engine.start(timeout=30)  # it synthesises the prompts
        message_s = seconds_of(audio)
        prompt_s = seconds_of(dialplan.Layout.for_settings(settings).prompts / "voice-confirm.wav")
        listen_ms = round((0.5 + message_s + prompt_s) * 1000) + PROMPT_MARGIN_MS  # the dialplan waits 0.5 s first
        results: dict[str, Any] = {"asterisk": runtime.version, "message_s": message_s, "listen_ms": listen_ms}
        results |= {"desks": the_desks, "runs": {}}
        (work / "desks.xml").write_text(scenario(listen_ms, dtmf_pcap(work / "press-1.pcap")))
        argv = ["sipp", "-sf", str(work / "desks.xml"), "-i", HOST, "-p", str(trunk_port), "-mi", HOST]
        argv += ["-mp", str(free_port(socket.SOCK_DGRAM)), "-t", "u1", "-nostdin", "-aa", "-trace_err"]
        argv += ["-max_recv_loops", "10000", "-max_sched_loops", "10000"]
        argv += ["-watchdog_minor_maxtriggers", "1000000", "-watchdog_major_maxtriggers", "1000000"]  # a busy machine
        sipp = procs.start("sipp-desks", argv, cwd=work, stderr=(work / "sipp.err").open("ab"))
        ami.start()
        await ami.wait_up(15)
        rig = Rig(bench, watch, ami, the_desks, audio, sipp.pid)
        for lines in args.lines:
            say(f"raw AMI: {len(the_desks)} desks on {lines} lines")
            raw = await rig.raw(lines)
            say(f"raw AMI: 95 % confirmed after {raw.confirmed_at(CONFIRMED_SHARE):.1f} s")
            say(f"Switchboard: a notice to {len(the_desks)} desks on {lines} lines")
            product = await rig.switchboard(lines)
            say(f"Switchboard: 95 % confirmed after {product.confirmed_at(CONFIRMED_SHARE):.1f} s")
            results["runs"][lines] = {"raw AMI": raw, "Switchboard": product}
            if sipp.poll() is not None:
                raise SystemExit(f"SIPp exited: {(work / 'sipp.err').read_text()[-800:]}")
        return results
    finally:
        await ami.stop()
        await engine.stop()


def report(results: dict[str, Any], args: argparse.Namespace, load: tuple[str, str]) -> None:
    the_desks: list[Desk] = results["desks"]
    never = [d.number for d in the_desks if ring_of(d.number) == NEVER_ANSWERS]
    print(
        f"\nA notice by voice to {len(the_desks)} desks ({len(never)} never answer; the others ring 2-15 s, hear "
        f"{results['message_s']:.1f} s of message and the prompt, press 1 {results['listen_ms'] / 1000:.1f} s after "
        f"answering); ring {args.ring} s, {args.rounds} rounds {args.retry:g} s apart; Asterisk {results['asterisk']}, "
        f"{os.cpu_count()} cores shared. Times in seconds from the start; CPU in seconds over the run."
    )
    head = (
        f"{'lines':>5} {'path':12} {'confirmed':>9} {'95% s':>7} {'all s':>7} {'calls':>5} {'calls/min':>9} "
        f"{'line use':>8} {'call s':>6} {'run s':>6} {'Asterisk':>8} {'control':>7} {'idle/s':>6} {'ms/call':>7} "
        f"{'SIPp':>5}"
        "  never answering: raw given up after s; Switchboard confirmed by the tier-2 leader (e) after s"
    )
    print(head)
    for lines, paths in results["runs"].items():
        for name, r in paths.items():
            confirmed = [o.at for o in r.outcomes.values() if o.state == "confirmed"]
            others = sorted((o.at, n, o.state) for n, o in r.outcomes.items() if o.state != "confirmed")
            gave_up = ", ".join(  # e: escalated, u: unconfirmed
                f"{at:.0f}" + ("" if state == "failed" else f" ({state[0]})") for at, _, state in others
            )
            w, cpu = r.watch, r.cpu
            busy = cpu["control"] - cpu["control_idle_per_s"] * cpu["wall"]  # what the calls cost above idling
            print(
                f"{lines:>5} {name:12} {len(confirmed):>4}/{len(r.outcomes):<4} {r.confirmed_at(CONFIRMED_SHARE):7.1f} "
                f"{max(confirmed, default=math.nan):7.1f} {w['calls']:>5} {w['calls_per_min']:9.1f} "
                f"{w['line_use']:8.2f} {w['answered_call_s']:6.1f} {cpu['wall']:6.0f} {cpu['asterisk']:8.1f} "
                f"{cpu['control']:7.1f} {cpu['control_idle_per_s']:6.3f} {busy * 1000 / w['calls']:7.0f} "
                f"{cpu['sipp']:5.1f}  {gave_up}"
            )
        raw, product = paths["raw AMI"], paths["Switchboard"]
        ratio = product.confirmed_at(CONFIRMED_SHARE) / raw.confirmed_at(CONFIRMED_SHARE)
        rate = product.watch["calls_per_min"] / raw.watch["calls_per_min"]
        print(f"{lines:>5} {'Switchboard/raw':12} {'':9} {ratio:7.2f} {'':7} {'':5} {rate:9.2f}")
    print(f"\nnumbers that never answer: {', '.join(never)}")
    print(f"load average before: {load[0]}; after: {load[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--desks", type=int, default=129, help="desks called (the first N divisions of Shanxi)")
    parser.add_argument(
        "--lines", type=lambda text: [int(n) for n in text.split(",")], default=[30, 60], help="[voice] lines"
    )
    parser.add_argument("--ring", type=int, default=30, help="[voice] ring_seconds")
    parser.add_argument("--rounds", type=int, default=2, help="[voice] rounds")
    parser.add_argument("--retry", type=float, default=60, help="[voice] retry_seconds")
    parser.add_argument("--replays", type=int, default=2, help="[voice] replays")
    parser.add_argument("--digit-seconds", type=int, default=8, help="[voice] digit_seconds")
    parser.add_argument("--seed", type=int, default=15, help="which desks never answer, how long each rings")
    parser.add_argument("--escalate", type=float, default=60, help="seconds after the issue tier 2 (leader) is due")
    execute(run, report, parser.parse_args())


if __name__ == "__main__":
    main()
