"""Public warnings (issue 5): one warning to 10,000 mobiles and 2,000 mailboxes, outbox beside a bare client loop.

    .venv/bin/python -m bench.warnings_bench [--sms 10000] [--email 2000] [--pg] [--receipt-delay 1.0]

Peers, on 127.0.0.1 free ports, each its own process: the test SMSC (tests/support/peers/smsc.py, smpp34's server,
delivery receipts `--receipt-delay` seconds after each accepted part) and an aiosmtpd server (this module with
`--serve-smtp`, accepting every mail). One directory group holds `--sms` members with a mobile number and `--email`
members with an e-mail address (the first min(sms, email) people have both), bulk-inserted into a fresh SQLite
database (WAL, synchronous=NORMAL) and, with --pg, a throwaway PostgreSQL cluster with fsync on.

Each measured run is a child process of its own (so its ru_maxrss is its own):
- outbox: `switchboard.warnings.flows.issue` of a warning created, submitted and approved by two other actors
  (timed: resolving the audience and writing the delivery rows), then the in-process `Outbox` with `SmsChannel`
  and `EmailChannel` drives it until every row is sent and every SMS receipt is in (polled every 0.25 s).
- bare: the same rendered SMS text and the same e-mail (same MIME, built by `EmailChannel.compose`) to the same
  number of recipients, without database or outbox: `SmsChannel.send` from `--sms-concurrency` asyncio workers
  (no pacing) and `aiosmtplib.SMTP` sessions, one per `--email-concurrency` worker, both at once as the outbox
  runs its two lanes at once. This is the ceiling the outbox is compared with (`--bracket` runs it before the
  outbox too, and takes the faster run: other load on a shared machine moves during a run).

The warning's SMS text is Chinese and 2 UCS-2 parts long, so --sms 10000 means 20,000 submit_sm.
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
SMS_SOURCE, MAIL_SENDER = "12121", "yujing@example.cn"
TICK = 0.25  # how often the outbox run looks at the delivery rows


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """This process's own peak (VmHWM): ru_maxrss would carry the parent's, which seeded the database, over exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds() -> tuple[float, float]:
    """(the event loop's thread, all other threads: aiosqlite's) CPU seconds of this process so far."""
    pid, ticks = os.getpid(), os.sysconf("SC_CLK_TCK")
    loop = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end meanwhile
            fields = (task / "stat").read_text().rpartition(")")[2].split()
            seconds = (int(fields[11]) + int(fields[12])) / ticks
            loop, others = (loop + seconds, others) if task.name == str(pid) else (loop, others + seconds)
    return loop, others


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def settings(var_dir: Path, url: str) -> Any:
    from switchboard.core import config

    return config.load(
        path=var_dir / "absent.toml",
        environ={
            "SWITCHBOARD_PATHS_VAR_DIR": str(var_dir),
            "SWITCHBOARD_DATABASE_URL": url,
            "SWITCHBOARD_AUTH_TOKEN_SECRET": "bench-secret-not-for-production-0123456789",
            "SWITCHBOARD_ASTERISK_MODE": "off",
            "SWITCHBOARD_CHANNELS_WEATHER_PUSH": "false",
        },
    )


# --- the SMTP server (its own process) ---


def serve_smtp(port: int) -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        received = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Sink.received += 1
            return "250 OK queued"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    print("READY", flush=True)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    try:
        while not stop[0]:
            time.sleep(0.1)
    finally:
        controller.stop()
        print(json.dumps({"received": Sink.received}), flush=True)


# --- set-up, in the parent: database, directory group, a warning created, submitted and approved ---


def mobile_number(i: int) -> str:
    return f"139{i:08d}"


async def prepare(
    url: str, var_dir: Path, n_sms: int, n_email: int, mobile: Callable[[int], str] = mobile_number
) -> tuple[str, dict[str, float]]:
    """A fresh database, a directory group of `max(n_sms, n_email)` people (the i-th mobile `mobile(i)`), and a
    warning to it created, submitted and approved: (warning id, seeding figures)."""
    from broadcast.models import WarningContent
    from switchboard.core.context import Context
    from switchboard.core.db import utcnow
    from switchboard.core.ids import new_id
    from switchboard.directory.models import ContactPoint, Group, GroupMember, Organisation, Person
    from switchboard.incidents import service as incidents
    from switchboard.incidents.models import IncidentCreate
    from switchboard.warnings import flows as warnings

    ctx = Context.from_settings(settings(var_dir, url))
    try:
        await ctx.db.migrate()
        began = time.perf_counter()
        people = max(n_sms, n_email)
        org_id, group_id = new_id(), new_id()
        person_ids = [new_id() for _ in range(people)]
        persons = [dict(id=p, org_id=org_id, name=f"接收人{i:05d}", roles=[]) for i, p in enumerate(person_ids)]
        points = [
            dict(id=new_id(), person_id=p, kind="mobile", value=mobile(i)) for i, p in enumerate(person_ids[:n_sms])
        ]
        points += [
            dict(id=new_id(), person_id=p, kind="email", value=f"r{i:05d}@example.cn")
            for i, p in enumerate(person_ids[:n_email])
        ]
        members = [dict(group_id=group_id, person_id=p) for p in person_ids]
        async with ctx.db.session() as session:
            await session.execute(
                insert(Organisation),
                [dict(id=org_id, code="bench-org", name="小店区应急管理局", level="county", area_code="140105")],
            )
            await session.execute(insert(Group), [dict(id=group_id, name="预警接收-基准")])
            for table, rows in ((Person, persons), (ContactPoint, points), (GroupMember, members)):
                for start in range(0, len(rows), 5000):
                    await session.execute(insert(table), rows[start : start + 5000])
        seeded = time.perf_counter() - began

        incident = await incidents.create(
            ctx,
            "duty_officer",
            IncidentCreate(title="小店区暴雨", category="natural_disaster", level="III", area_code="140105"),
        )
        content = WarningContent.model_validate(
            {
                "event": "暴雨",
                "headline": "太原市气象台发布暴雨橙色预警信号",
                "description": "预计未来3小时内小店区、迎泽区降雨量将达50毫米以上，伴有雷电、短时大风。",
                "instruction": "请停止户外作业，转移低洼地带人员，远离河道。",
                "category": ["Met"],
                "urgency": "Immediate",
                "certainty": "Likely",
                "colour": "orange",
                "areas": [{"code": "140105"}],
                # a mass list, sent as to the public: nobody is asked to confirm (no notice, no watch)
                "audiences": {"groups": [group_id], "channels": ["sms", "email"], "confirm": False},
                "expires": (utcnow() + timedelta(hours=12)).isoformat(),
                "sender_name": "太原市应急管理局",
            }
        )
        warning = await warnings.create(ctx, "alert_officer", incident.id, content)
        await warnings.submit(ctx, "alert_officer", warning.id)
        await warnings.approve(ctx, "approver", warning.id)
        return warning.id, {"seed_s": seeded, "rows": len(persons) + len(points) + len(members)}
    finally:
        await ctx.db.close()


# --- the measured runs (each a child process) ---


def channels(args: argparse.Namespace) -> tuple[Any, Any]:
    from broadcast.channels.email import EmailChannel
    from broadcast.channels.sms import SmsChannel

    sms = SmsChannel(
        "127.0.0.1",
        args.smsc_port,
        "switchboard",
        "secret",
        source_addr=SMS_SOURCE,
        window=args.sms_window,
        rate_per_second=args.sms_rate,
        concurrency=args.sms_concurrency,
    )
    email = EmailChannel(
        "127.0.0.1",
        args.smtp_port,
        MAIL_SENDER,
        start_tls=False,
        rate_per_second=args.email_rate,
        concurrency=args.email_concurrency,
    )
    return sms, email


async def run_outbox(args: argparse.Namespace) -> dict[str, Any]:
    from broadcast.models import Delivery, DeliveryState
    from broadcast.outbox import Outbox, OutboxSettings
    from switchboard.core.context import Context
    from switchboard.warnings import flows as warnings

    ctx = Context.from_settings(settings(Path(args.var_dir), args.db))
    sms, email = channels(args)
    outbox = Outbox(ctx, [sms, email], OutboxSettings(poll_seconds=TICK))
    await outbox.start()
    try:
        assert await sms.session.wait_bound(10), "SMSC bind failed"
        result: dict[str, Any] = {"rss_before_mb": rss_mb()}
        if args.tracemalloc:
            tracemalloc.start()
        cpu0, began, threads0 = time.process_time(), time.perf_counter(), thread_cpu_seconds()
        _, count = await warnings.issue(ctx, "alert_officer", args.warning, outbox.health())
        result["issue_s"] = time.perf_counter() - began
        result["deliveries"] = count
        outbox.wake()
        issued = time.perf_counter()
        done: dict[str, float] = {}

        # Watched along the claim index, asking only whether a row is left unsettled (the database holds this
        # warning's rows alone): a count over a warning's rows reads each of them, 70 ms at 100,000 on this
        # machine, four times a second in the measured process, more than the outbox's own writes.
        async def any_left(channel: str, *states: DeliveryState) -> bool:
            probe = select(Delivery.id).where(Delivery.channel == channel, Delivery.state.in_(states)).limit(1)
            async with ctx.db.reader() as session:
                return await session.scalar(probe) is not None

        open_states = (DeliveryState.pending, DeliveryState.sending)
        deadline = issued + args.timeout
        while True:
            await asyncio.sleep(TICK)
            now = time.perf_counter() - issued
            for channel in ("sms", "email"):
                if f"{channel}_sent_s" not in done and not await any_left(channel, *open_states):
                    done[f"{channel}_sent_s"] = now
            if "sms_sent_s" in done and not await any_left("sms", *open_states, DeliveryState.sent):
                done["sms_receipts_s"] = now
            if len(done) == 3 or time.perf_counter() > deadline:
                break
        result |= done
        result["cpu_s"] = time.process_time() - cpu0
        loop, others = (after - before for after, before in zip(thread_cpu_seconds(), threads0, strict=True))
        result["thread_cpu_s"] = {"event loop": round(loop, 2), "database thread": round(others, 2)}
        counts: dict[str, dict[str, int]] = {}
        query = (
            select(Delivery.channel, Delivery.state, func.count())
            .where(Delivery.warning_id == args.warning)
            .group_by(Delivery.channel, Delivery.state)
        )
        async with ctx.db.reader() as session:
            for channel, state, n in (await session.execute(query)).all():
                counts.setdefault(channel, {})[state] = n
        result["counts"] = counts
        result["smpp_binds"] = sms.session.connects
        if args.tracemalloc:
            result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    finally:
        await outbox.stop()
        await ctx.db.close()
    result["maxrss_mb"] = peak_rss_mb()
    return result


async def run_bare(args: argparse.Namespace) -> dict[str, Any]:
    import aiosmtplib

    from broadcast.channel import Message
    from broadcast.models import PublicWarning
    from broadcast.render import MessageFactory
    from switchboard.core.context import Context

    ctx = Context.from_settings(settings(Path(args.var_dir), args.db))
    async with ctx.db.reader() as session:
        warning = await session.get(PublicWarning, args.warning)
    await ctx.db.close()
    factory = MessageFactory()
    sms_text = factory.message(warning, "sms", "x", "x").text
    template = factory.message(warning, "email", "x", "x")

    sms, email = channels(args)
    got = {"receipts": 0, "delivered": 0}
    all_receipts = asyncio.Event()

    async def on_receipt(channel: str, remote_id: str, delivered: bool, detail: str) -> None:
        got["receipts"] += 1
        got["delivered"] += delivered
        if got["receipts"] >= args.sms:
            all_receipts.set()

    await sms.start(on_receipt)
    await email.start(on_receipt)  # only for compose(); sends go through aiosmtplib below
    result: dict[str, Any] = {"rss_before_mb": rss_mb()}
    try:
        assert await sms.session.wait_bound(10), "SMSC bind failed"
        if args.tracemalloc:
            tracemalloc.start()
        cpu0, began = time.process_time(), time.perf_counter()
        marks: dict[str, float] = {}
        refused: list[str] = []
        sms_next, mail_next = iter(range(args.sms)), iter(range(args.email))

        async def sms_worker() -> None:
            for i in sms_next:
                sent = await sms.send(Message(f"bare-sms-{i}", mobile_number(i), sms_text))
                if not sent.accepted:
                    refused.append(sent.detail)

        async def mail_worker() -> None:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=args.smtp_port, start_tls=False, timeout=30)
            await client.connect()
            try:
                for i in mail_next:
                    recipient = f"r{i:05d}@example.cn"
                    mime = email.compose(
                        Message(
                            f"bare-email-{i}",
                            recipient,
                            template.text,
                            template.subject,
                            template.html,
                            template.attachments,
                        )
                    )
                    await client.send_message(mime, sender=MAIL_SENDER, recipients=[recipient])
            finally:
                await client.quit()

        async def timed(name: str, workers: list[Any]) -> None:
            await asyncio.gather(*workers)
            marks[name] = time.perf_counter() - began

        async def receipts() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_receipts.wait(), args.timeout)
            marks["sms_receipts_s"] = time.perf_counter() - began

        await asyncio.gather(
            timed("sms_sent_s", [sms_worker() for _ in range(args.sms_concurrency)]),
            timed("email_sent_s", [mail_worker() for _ in range(args.email_concurrency)]),
            receipts(),
        )
        result |= marks | {"cpu_s": time.process_time() - cpu0, "refused": len(refused), **got}
        result["smpp_binds"] = sms.session.connects
        if args.tracemalloc:
            result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    finally:
        await sms.stop()
        await email.stop()
    result["maxrss_mb"] = peak_rss_mb()
    return result


# --- the parent ---


class Peers:
    """The SMSC and the SMTP server; both stopped on exit, whatever happens."""

    def __init__(self, tmp: Path, receipt_delay: float) -> None:
        self.tmp, self.receipt_delay = tmp, receipt_delay
        self.smsc_port, self.smtp_port = free_port(), free_port()
        self.record = tmp / "submits.jsonl"
        self.smsc: subprocess.Popen[str] | None = None
        self.smtp: subprocess.Popen[str] | None = None
        self.smtp_received: int | None = None

    def __enter__(self) -> "Peers":
        try:
            self.record.touch()
            self.smsc = self._start(
                "tests.support.peers.smsc",
                [
                    "--port",
                    str(self.smsc_port),
                    "--record",
                    str(self.record),
                    "--receipt-delay",
                    str(self.receipt_delay),
                ],
            )
            self.smtp = self._start("bench.warnings_bench", ["--serve-smtp", str(self.smtp_port)])
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self, module: str, args: list[str]) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        if process.stdout.readline().strip() != "READY":
            process.kill()
            process.wait(5)
            raise SystemExit(f"{module} did not start")
        return process

    def cpu(self) -> dict[str, float]:
        return {
            name: cpu_seconds(p.pid) for name, p in (("smsc", self.smsc), ("smtp", self.smtp)) if p and p.poll() is None
        }

    def submits(self) -> int:
        from tests.support.channel_peers import submit_records  # not at the top: the measured children import this

        return sum(1 for _ in submit_records(self.record))

    def __exit__(self, *_: object) -> None:
        if self.smtp is not None and self.smtp.poll() is None:
            self.smtp.terminate()
            with contextlib.suppress(Exception):
                out, _ = self.smtp.communicate(timeout=10)
                self.smtp_received = json.loads(out.strip().splitlines()[-1])["received"]
        for process in (self.smsc, self.smtp):
            if process is not None and process.poll() is None:
                process.kill()
            if process is not None:
                with contextlib.suppress(Exception):
                    process.wait(5)


def child(phase: str, args: argparse.Namespace, peers: Peers, url: str, var_dir: Path, warning_id: str) -> dict:
    argv = [sys.executable, "-m", "bench.warnings_bench", "--phase", phase, "--db", url, "--var-dir", str(var_dir)]
    argv += ["--warning", warning_id, "--smsc-port", str(peers.smsc_port), "--smtp-port", str(peers.smtp_port)]
    for name in (
        "sms",
        "email",
        "sms_rate",
        "email_rate",
        "sms_concurrency",
        "sms_window",
        "email_concurrency",
        "timeout",
    ):
        argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.tracemalloc:
        argv.append("--tracemalloc")
    if args.profile:  # sampled from outside: the profile costs the measured process nothing but the samples
        spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw", "--rate", "50"]
        samples = Path(args.profile) / f"{phase}-{url.partition('+')[0]}.txt"
        argv = [*spy, "--nonblocking", "-o", str(samples), "--", *argv]
    cpu0, submits0 = peers.cpu(), peers.submits()
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        out, _ = process.communicate(timeout=args.timeout + 120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    if process.returncode != 0:
        raise SystemExit(f"{phase} run failed (exit {process.returncode})")
    result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    cpu1 = peers.cpu()
    result["peer_cpu_s"] = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
    result["submit_sm"] = peers.submits() - submits0
    return result


async def orchestrate(args: argparse.Namespace) -> None:
    from tests.support import throwaway_pg

    load_before = uptime()
    print(f"… {load_before}", file=sys.stderr)
    results: dict[str, dict[str, Any]] = {}
    setup: dict[str, dict[str, float]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-warnings-"))
    try:
        with contextlib.ExitStack() as stack:
            peers = stack.enter_context(Peers(tmp, args.receipt_delay))
            pg = None if not args.pg else stack.enter_context(throwaway_pg.cluster(durable=True))
            backends = ["sqlite"] + ([] if pg is None else ["postgresql"])
            sqlite_db: tuple[str, Path, str] | None = None
            for backend in backends:
                var_dir = tmp / backend
                var_dir.mkdir()
                if backend == "sqlite":
                    url = f"sqlite+aiosqlite:///{var_dir}/switchboard.db"
                else:
                    await throwaway_pg.create_database(pg, "bench_warnings")
                    url = f"{pg}/bench_warnings"
                print(f"… {backend}: seeding {max(args.sms, args.email):,} people", file=sys.stderr)
                warning_id, setup[backend] = await prepare(url, var_dir, args.sms, args.email)
                if backend == "sqlite" and args.bracket:
                    print("… bare client loop, before the outbox", file=sys.stderr)
                    results["bare, before"] = child("bare", args, peers, url, var_dir, warning_id)
                print(f"… {backend}: issue and outbox", file=sys.stderr)
                results[backend] = child("outbox", args, peers, url, var_dir, warning_id)
                if backend == "sqlite":
                    sqlite_db = (url, var_dir, warning_id)
                    print("… bare client loop", file=sys.stderr)
                    results["bare"] = child("bare", args, peers, *sqlite_db)
        if peers.smtp_received is not None:
            setup["peers"] = {"smtp_received": peers.smtp_received}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, setup, args, load_before, uptime())


def hot_spots(raw: Path, top: int = 12) -> list[tuple[float, str]]:
    """Share of the samples per function and per package, self time (the innermost frame), from py-spy's raw
    (collapsed stacks) output: what the measured process was doing when it was on a core."""
    functions: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frame = stack.rpartition(";")[2]
        name, _, where = frame.partition(" (")
        path = where.rsplit(":", 1)[0]
        package = path.split("site-packages/")[-1].split("/")[0] if "site-packages/" in path else path.split("/")[0]
        functions[f"{name} ({path.rsplit('/', 1)[-1]})"] += int(count)
        packages[package.removesuffix(".py")] += int(count)
        total += int(count)
    top_functions = [(100 * n / total, name) for name, n in functions.most_common(top)]
    return top_functions + [(100 * n / total, f"[package] {name}") for name, n in packages.most_common(8)]


def report(results: dict, setup: dict, args: argparse.Namespace, before: str, after: str) -> None:
    bares = [r for name, r in results.items() if name.startswith("bare")]
    bare = min(bares, key=lambda r: r.get("sms_sent_s") or float("inf"))  # the SMSC's ceiling: the fastest bare run
    print(
        f"\nOne warning to {args.sms:,} mobiles (2 UCS-2 parts: {2 * args.sms:,} submit_sm)"
        f" and {args.email:,} mailboxes;"
        f" receipts {args.receipt_delay:g} s after each part; sms {args.sms_concurrency} in flight (window"
        f" {args.sms_window}, {args.sms_rate:g}/s), email {args.email_concurrency} sessions ({args.email_rate:g}/s);"
        f" {os.cpu_count()} cores shared by peers and client"
    )
    loads = [text.partition("load average:")[2].strip() for text in (before, after)]
    print(f"load average: before [{loads[0]}]  after [{loads[1]}]")
    for backend, s in setup.items():
        if backend != "peers":
            print(f"seed {backend}: {s['rows']:,} rows bulk-inserted in {s['seed_s']:.1f} s")
    cols = ("issue_s", "sms_sent_s", "sms_receipts_s", "email_sent_s", "cpu_s", "maxrss_mb")
    heads = ("issue s", "SMS sent s", "SMS rcpt s", "mail sent s", "CPU s", "RSS MB")
    print(f"\n{'path':22} " + " ".join(f"{h:>11}" for h in heads) + f" {'SMS/s':>8} {'mail/s':>8} {'submit_sm':>10}")

    def row(name: str, r: dict) -> None:
        cells = [f"{r[c]:11.2f}" if c in r else f"{'':>11}" for c in cols]
        sms_rate = args.sms / r["sms_sent_s"] if r.get("sms_sent_s") else 0
        mail_rate = args.email / r["email_sent_s"] if r.get("email_sent_s") else 0
        print(f"{name:22} " + " ".join(cells) + f" {sms_rate:8.0f} {mail_rate:8.0f} {r.get('submit_sm', 0):10,}")

    if "bare, before" in results:
        row("bare, before outbox", results["bare, before"])
    row("bare client loop", results["bare"])
    for backend in ("sqlite", "postgresql"):
        if backend not in results:
            continue
        r = results[backend]
        row(f"outbox, {backend}", r)
        ratios = [f"{'':>11}"]
        for c in cols[1:]:
            ratios.append(f"{r[c] / bare[c]:11.2f}" if r.get(c) and bare.get(c) else f"{'':>11}")
        print(f"{'  time outbox/bare':22} " + " ".join(ratios))
        if r.get("sms_sent_s") and bare.get("sms_sent_s"):
            print(f"  SMS/s of the SMSC's ceiling (the fastest bare run): {bare['sms_sent_s'] / r['sms_sent_s']:.2f}")
    print()
    for name, r in results.items():
        extra = {
            k: r[k]
            for k in (
                "counts",
                "thread_cpu_s",
                "peer_cpu_s",
                "rss_before_mb",
                "tracemalloc_peak_mb",
                "delivered",
                "refused",
                "smpp_binds",
            )
            if k in r
        }
        print(f"{name}: {json.dumps(extra, ensure_ascii=False)}")
    if "peers" in setup:
        print(f"SMTP server received {setup['peers']['smtp_received']:,} mails in all")
    if args.profile:
        written = [raw for db in ("sqlite", "postgresql") for raw in Path(args.profile).glob(f"*-{db}.txt")]
        for raw in sorted(written):  # the runs' own samples, not whatever else is in the directory
            print(f"\nwhere the time went, {raw.stem} run (py-spy, self time, % of samples):")
            for share, name in hot_spots(raw):
                print(f"  {share:5.1f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sms", type=int, default=10_000, help="members with a mobile number")
    parser.add_argument("--email", type=int, default=2_000, help="members with an e-mail address")
    parser.add_argument("--receipt-delay", type=float, default=1.0, help="SMSC receipt delay, seconds")
    parser.add_argument("--sms-rate", type=float, default=5000.0, help="outbox SMS lane pace, messages/s")
    parser.add_argument("--email-rate", type=float, default=500.0, help="outbox e-mail lane pace, mails/s")
    parser.add_argument("--sms-concurrency", type=int, default=32)
    parser.add_argument("--sms-window", type=int, default=32, help="SMPP submit_sm in flight on the bind")
    parser.add_argument("--email-concurrency", type=int, default=8)
    parser.add_argument("--pg", action="store_true", help="also PostgreSQL (fsync on): about 3.5 min more")
    parser.add_argument(
        "--bracket",
        action="store_true",
        help="also run the bare loop before the outbox (on a shared machine the load moves): the faster of the two"
        " bare runs is the SMSC's ceiling the outbox is compared with",
    )
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slows runs)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on a run after this many seconds")
    parser.add_argument("--profile", help="directory: sample each run with py-spy, print where its time went")
    # internal: the SMTP server process and the measured children
    parser.add_argument("--serve-smtp", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("outbox", "bare"), help=argparse.SUPPRESS)
    for name in ("--db", "--var-dir", "--warning"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    for name in ("--smsc-port", "--smtp-port"):
        parser.add_argument(name, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_smtp:
        serve_smtp(args.serve_smtp)
    elif args.phase:
        result = asyncio.run(run_outbox(args) if args.phase == "outbox" else run_bare(args))
        print(json.dumps(result, default=str))
    else:
        asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
