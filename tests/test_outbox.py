"""The durable outbox against a scripted channel: pace (rate and concurrency, measured), back-off on retry_after and
on failures, permanent failures, receipts by remote id, expired leases, the completion entry on the timeline."""

import asyncio
import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from broadcast.channel import Message, ReceiptHandler, SendResult
from broadcast.channels.email import message_id
from broadcast.channels.sms import SmsChannel
from broadcast.models import Delivery, WarningContent
from broadcast.outbox import Outbox, OutboxSettings
from broadcast.writes import DeliveryWrites
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.incidents import service as incidents
from switchboard.incidents import timeline
from switchboard.incidents.models import IncidentCreate, TimelineEntry
from switchboard.warnings import flows as warnings
from tests.support.wait import until

ROOT = Path(__file__).resolve().parent.parent
Script = Callable[[Message, int], SendResult]


class ScriptedChannel:
    """A Channel whose answers a test decides: script(message, attempt number for that recipient)."""

    def __init__(self, script: Script | None = None, *, rate: float = 1000.0, concurrency: int = 8) -> None:
        self.name = "fake"
        self.receipts = False
        self.rate_per_second = rate
        self.concurrency = concurrency
        self.script = script or (lambda message, attempt: SendResult(True, remote_id=f"m-{message.recipient}"))
        self.sends: list[tuple[float, Message]] = []
        self.in_flight = self.peak = 0
        self.on_receipt: ReceiptHandler | None = None
        self.latency = 0.02

    async def start(self, on_receipt: ReceiptHandler) -> None:
        self.on_receipt = on_receipt

    async def stop(self) -> None:
        pass

    async def send(self, message: Message) -> SendResult:
        self.sends.append((time.monotonic(), message))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
            return self.script(message, sum(m.recipient == message.recipient for _, m in self.sends))
        finally:
            self.in_flight -= 1


async def issue(ctx: Context, recipients: int, channel: str = "fake", domain: str = "") -> tuple[str, str]:
    """An issued warning to `recipients` addresses on `channel`: (incident id, warning id)."""
    incident = await incidents.create(
        ctx, "duty_officer", IncidentCreate(title="暴雨", category="natural_disaster", level="III", area_code="140105")
    )
    public = [{"channel": channel, "recipient": f"r{i:03d}{domain}"} for i in range(recipients)]
    content = WarningContent.model_validate(
        {
            "event": "暴雨",
            "headline": "暴雨橙色预警",
            "description": "预计未来 3 小时内降雨量将达 50 毫米以上。",
            "colour": "orange",
            "areas": [{"code": "140105"}],
            "audiences": {"public": public},
            "expires": (utcnow() + timedelta(hours=6)).isoformat(),
        }
    )
    warning = await warnings.create(ctx, "alert_officer", incident.id, content)
    await warnings.submit(ctx, "alert_officer", warning.id)
    await warnings.approve(ctx, "approver", warning.id)
    ready = {channel: {"status": "ok"}}  # the API passes the outbox's health; these tests start their outbox later
    await warnings.issue(ctx, "alert_officer", warning.id, ready)
    return incident.id, warning.id


async def rows(ctx: Context, warning_id: str) -> list[Delivery]:
    async with ctx.db.reader() as session:
        query = select(Delivery).where(Delivery.warning_id == warning_id).order_by(Delivery.recipient)
        return list((await session.scalars(query)).all())


async def settled(ctx: Context, warning_id: str, timeout: float = 20) -> list[Delivery]:
    """The warning's rows, once none is pending or sending any more."""
    found: list[Delivery] = []

    async def done() -> bool:
        found[:] = await rows(ctx, warning_id)
        return all(r.state not in ("pending", "sending") for r in found)

    await until(
        done,
        timeout=timeout,
        what=lambda: f"every delivery to settle: {[(r.recipient, r.state, r.last_error) for r in found]}",
    )
    return found


async def running(ctx: Context, channel: ScriptedChannel, **settings: Any) -> Outbox:
    outbox = Outbox(ctx, [channel], OutboxSettings(poll_seconds=0.05, **settings))
    await outbox.start()
    return outbox


def count_polls(outbox: Outbox) -> Callable[[], int]:
    """Count the outbox's finished claims (one per turn of its lane loop): "and then it left the row alone" needs
    a poll that happened afterwards to stand on. Install before `start`; returns the counter."""
    polls = 0
    claim = outbox._claim

    async def counted(channel: str, limit: int) -> Any:
        nonlocal polls
        try:
            return await claim(channel, limit)
        finally:
            polls += 1

    outbox._claim = counted  # type: ignore[method-assign]
    return lambda: polls


async def test_rate_and_concurrency_are_respected(ctx: Context) -> None:
    _, warning_id = await issue(ctx, 21)
    channel = ScriptedChannel(rate=20, concurrency=2)
    channel.latency = 0.15  # slower than 1/rate: concurrency is what holds it back at first
    outbox = await running(ctx, channel)
    try:
        found = await settled(ctx, warning_id)
    finally:
        await outbox.stop()
    assert [r.state for r in found] == ["sent"] * 21
    starts = sorted(at for at, _ in channel.sends)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 21 and channel.peak <= 2
    assert min(gaps) >= 1 / 20 - 0.005, gaps  # never two sends closer than 1/rate
    # 2 in flight at 0.15 s each allow ~13/s: the whole run takes at least 20 sends / 13.3 per second.
    assert starts[-1] - starts[0] >= 20 * 0.15 / 2 - 0.05


async def test_pace_alone_limits_a_fast_peer(ctx: Context) -> None:
    _, warning_id = await issue(ctx, 11)
    channel = ScriptedChannel(rate=10, concurrency=8)
    channel.latency = 0.001
    outbox = await running(ctx, channel)
    try:
        await settled(ctx, warning_id)
    finally:
        await outbox.stop()
    starts = sorted(at for at, _ in channel.sends)
    assert 1.0 - 0.02 <= starts[-1] - starts[0] <= 1.5  # 11 sends at 10/s: 10 gaps of 0.1 s


async def test_retry_after_pauses_and_does_not_spend_an_attempt(ctx: Context) -> None:
    _, warning_id = await issue(ctx, 1)

    def script(message: Message, attempt: int) -> SendResult:
        if attempt == 1:
            return SendResult(False, retry_after=0.6, detail="ESME_RTHROTTLED")
        return SendResult(True, remote_id="m-1")

    channel = ScriptedChannel(script)
    outbox = await running(ctx, channel)
    try:
        [row] = await settled(ctx, warning_id)
    finally:
        await outbox.stop()
    first, second = (at for at, _ in channel.sends)
    assert second - first >= 0.6 - 0.01
    assert row.state == "sent" and row.attempts == 1 and row.remote_id == "m-1"


async def test_failures_back_off_then_fail_and_permanent_fails_at_once(ctx: Context) -> None:
    _, warning_id = await issue(ctx, 2)

    def script(message: Message, attempt: int) -> SendResult:
        if message.recipient == "r000":
            return SendResult(False, permanent=True, detail="550 no such user")
        raise ConnectionResetError("peer went away")

    channel = ScriptedChannel(script)
    outbox = await running(ctx, channel, backoff_base=0.2, max_attempts=3)
    try:
        bad, flaky = await settled(ctx, warning_id)
    finally:
        await outbox.stop()
    assert (bad.state, bad.attempts, bad.last_error) == ("failed", 1, "550 no such user")
    assert flaky.state == "failed" and flaky.attempts == 3 and "ConnectionResetError" in flaky.last_error
    tries = [at for at, m in channel.sends if m.recipient == "r001"]
    gaps = [b - a for a, b in zip(tries, tries[1:], strict=False)]
    assert gaps[0] >= 0.2 * 0.8 - 0.01 and gaps[1] >= 0.4 * 0.8 - 0.01  # exponential: 0.2 s, then 0.4 s


async def test_receipts_update_rows_by_remote_id_even_when_early(ctx: Context) -> None:
    _, warning_id = await issue(ctx, 3)
    channel = ScriptedChannel()
    early: list[str] = []

    original = channel.send

    async def send(message: Message) -> SendResult:
        result = await original(message)
        if message.recipient == "r002":  # the receipt overtakes the `sent` commit
            assert channel.on_receipt
            await channel.on_receipt("fake", result.remote_id or "", True, "DELIVRD")
            early.append(message.recipient)
        return result

    channel.send = send  # type: ignore[method-assign]
    outbox = await running(ctx, channel)
    try:
        await settled(ctx, warning_id)
        assert channel.on_receipt
        await channel.on_receipt("fake", "m-r000", True, "DELIVRD")
        await channel.on_receipt("fake", "m-r001", False, "UNDELIV")
        expected = [("delivered", "m-r000"), ("failed", "m-r001"), ("delivered", "m-r002")]

        async def receipted() -> list[Delivery] | None:  # written with the next tick's batch
            found = await rows(ctx, warning_id)
            return found if [(r.state, r.remote_id) for r in found] == expected else None

        found = await until(receipted, timeout=10, what="the receipts to be written")
    finally:
        await outbox.stop()
    assert found[0].delivered_at and found[1].last_error == "UNDELIV" and early == ["r002"]


async def test_a_receipt_overtaking_its_result_in_a_flush_is_held_not_lost(ctx: Context) -> None:
    """Seen with 100,000 SMS on a busy machine (2 receipts never applied): the receipt is in the batch a flush
    took, the send's result is recorded while that flush waits for the database. The receipt must not be applied
    before the row has its remote id (it would match nothing and be gone); it is held and applied by the next flush."""
    _, warning_id = await issue(ctx, 1)
    async with ctx.db.session() as session:
        await session.execute(update(Delivery).values(state="sending", worker="w1", attempts=1))
    [row] = await rows(ctx, warning_id)
    writes = DeliveryWrites(ctx, "w1", hold_seconds=60)
    writes.receipt("fake", "m-r000", True, "DELIVRD")
    flushing = asyncio.create_task(writes.flush())
    await asyncio.sleep(0)  # the flush has taken its batch (the receipt alone) and waits for the database
    writes.sent(row.id, warning_id, "fake", SendResult(True, remote_id="m-r000"), utcnow())
    await flushing
    assert [r.state for r in await rows(ctx, warning_id)] == ["sending"]
    await writes.flush()
    [done] = await rows(ctx, warning_id)
    assert (done.state, done.remote_id) == ("delivered", "m-r000") and done.delivered_at is not None


async def test_expired_lease_is_resent_once_and_a_live_one_is_left_alone(ctx: Context) -> None:
    _, warning_id = await issue(ctx, 2)
    now = utcnow()
    async with ctx.db.session() as session:  # a dead worker's claim (lease over) and a live one's (lease running)
        await session.execute(
            update(Delivery)
            .where(Delivery.warning_id == warning_id, Delivery.recipient == "r000")
            .values(state="sending", worker="dead", attempts=1, lease_until=now - timedelta(seconds=1))
        )
        await session.execute(
            update(Delivery)
            .where(Delivery.warning_id == warning_id, Delivery.recipient == "r001")
            .values(state="sending", worker="alive", attempts=1, lease_until=now + timedelta(hours=1))
        )
    channel = ScriptedChannel()
    outbox = Outbox(ctx, [channel], OutboxSettings(poll_seconds=0.05))
    polls = count_polls(outbox)
    await outbox.start()
    try:

        async def dead_one_sent() -> bool:
            return any(r.recipient == "r000" and r.state == "sent" for r in await rows(ctx, warning_id))

        await until(dead_one_sent, timeout=20, what="the row whose lease ran out to be sent again")
        # The claim under way now may have begun before that send; the one after it saw the live lease for sure.
        seen = polls()
        await until(lambda: polls() >= seen + 2, timeout=20, what="a whole poll of the outbox after the resend")
        resent, live = await rows(ctx, warning_id)
    finally:
        await outbox.stop()
    assert [m.recipient for _, m in channel.sends] == ["r000"]
    assert (resent.state, resent.attempts, resent.worker) == ("sent", 2, outbox.worker_id)
    assert (live.state, live.worker) == ("sending", "alive")


async def test_the_finished_broadcast_lands_on_the_timeline_once(ctx: Context) -> None:
    timeline.subscribe(ctx)
    incident_id, warning_id = await issue(ctx, 3)
    outbox = await running(ctx, ScriptedChannel())
    try:
        await settled(ctx, warning_id)

        async def sent_entries() -> list[TimelineEntry]:
            async with ctx.db.reader() as session:
                query = select(TimelineEntry).where(
                    TimelineEntry.incident_id == incident_id, TimelineEntry.type == "warning.sent"
                )
                return list((await session.scalars(query)).all())

        entries = await until(sent_entries, timeout=20, what="the warning.sent entry on the timeline")
    finally:
        await outbox.stop()
    assert len(entries) == 1 and "成功 3 条" in entries[0].summary and entries[0].refs == [warning_id]


async def test_a_receipt_that_does_not_come_in_time_leaves_the_row_unconfirmed(ctx: Context, smsc_factory: Any) -> None:
    """A real SMSC whose receipts come 10 s after each part, an outbox that waits 1 s for them: the rows show
    unconfirmed (counted, with the reason), and the late receipts still make them delivered. (The margin is for a
    busy machine: the sweep must run before the receipts come.)"""
    smsc = smsc_factory(receipt_delay=10)
    _, warning_id = await issue(ctx, 2, channel="sms")
    async with ctx.db.session() as session:  # the public outlets of `issue` become two mobile numbers
        for i, row in enumerate(await session.scalars(select(Delivery).where(Delivery.warning_id == warning_id))):
            row.recipient = f"1390000{i:04d}"
    channel = SmsChannel("127.0.0.1", smsc.port, "switchboard", "secret", source_addr="12379")
    outbox = Outbox(ctx, [channel], OutboxSettings(poll_seconds=0.05, receipt_timeout_seconds=1, sweep_seconds=0.2))
    await outbox.start()
    try:

        async def states(wanted: str) -> list[Delivery] | None:
            found = await rows(ctx, warning_id)
            return found if {r.state for r in found} == {wanted} else None

        unconfirmed = await until(lambda: states("unconfirmed"), timeout=9, what="the rows to become unconfirmed")
        assert unconfirmed[0].last_error == "发送后 1 秒仍未收到送达回执"
        delivered = await until(lambda: states("delivered"), timeout=30, what="the late receipts to be applied")
        assert all(row.delivered_at and row.last_error.startswith("回执：已送达") for row in delivered)  # its words
    finally:
        await outbox.stop()


# --- a worker process killed mid-broadcast ------------------------------------------------------------------------


class Mailbox:
    """The receiving SMTP server's handler. Like a mail store that dedupes, it keeps one copy per Message-ID (made
    from the outbox's idempotency key) and counts every copy it was handed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kept: dict[str, str] = {}  # delivery id -> recipient
        self.copies: dict[str, int] = {}  # delivery id -> times received

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        delivery = str(parsed["X-Switchboard-Delivery"])
        assert str(parsed["Message-ID"]) == message_id(delivery, "yjglj@switchboard.local")  # the dedupe key
        assert str(parsed["Subject"]).startswith("【橙色预警】") and parsed.get_body(("html",)) is not None
        with self.lock:
            self.copies[delivery] = self.copies.get(delivery, 0) + 1
            self.kept.setdefault(delivery, envelope.rcpt_tos[0])
        return "250 OK"

    def received(self) -> int:
        with self.lock:
            return len(self.kept)


def smtp_channels(settings: Any) -> list[Any]:
    """The worker process's channels: the real e-mail channel, pointed at the test's server."""
    from broadcast.channels.email import EmailChannel

    port = int(os.environ["OUTBOX_TEST_SMTP_PORT"])
    return [EmailChannel("127.0.0.1", port, "yjglj@switchboard.local", rate_per_second=50, concurrency=4)]


def _worker(
    ctx: Context, port: int, channels: str = "tests.test_outbox:smtp_channels", *more: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")} | {
        "SWITCHBOARD_DATABASE_URL": ctx.db.url,
        "SWITCHBOARD_PATHS_VAR_DIR": str(ctx.settings.var_path),
        "SWITCHBOARD_AUTH_TOKEN_SECRET": ctx.settings.auth.token_secret,
        "SWITCHBOARD_ASTERISK_MODE": "off",
        "OUTBOX_TEST_SMTP_PORT": str(port),
    }
    command = [sys.executable, "-m", "broadcast.worker", "--config", str(ctx.settings.var_path / "absent.toml")]
    # A short lease makes the restart quick; its half is the send timeout, which must stay well above what one
    # mail takes on a busy machine, or a mail the server accepted after the timeout goes twice (SMTP has no 2PC).
    command += ["--channels", channels, "--lease", "6", "--poll", "0.05", *more]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _relay(handler: Any) -> tuple[Any, int]:
    """An SMTP server on a free local port, started, with `handler`."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, port


async def test_sigkilled_worker_restarts_without_losing_or_repeating_a_mail(ctx: Context) -> None:
    mailbox = Mailbox()
    controller, port = _relay(mailbox)
    try:
        _, warning_id = await issue(ctx, 100, channel="email", domain="@example.cn")

        first = _worker(ctx, port)

        def thirty_received() -> bool:
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            return mailbox.received() >= 30

        # Polled often: the kill should land mid-broadcast, long before the 100th mail.
        await until(thirty_received, timeout=60, what="the worker to send 30 mails", interval=0.002)
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = mailbox.received()
        states = [r.state for r in await rows(ctx, warning_id)]
        assert at_kill < 100 and states.count("sent") < 100, (at_kill, states)  # killed mid-broadcast
        in_flight = {r.id for r in await rows(ctx, warning_id) if r.state == "sending"}

        second = _worker(ctx, port)
        try:
            found = await settled(ctx, warning_id, timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(10)
    finally:
        controller.stop()

    assert [r.state for r in found] == ["sent"] * 100
    by_recipient: dict[str, int] = {}
    for recipient in mailbox.kept.values():
        by_recipient[recipient] = by_recipient.get(recipient, 0) + 1
    assert by_recipient == {f"r{i:03d}@example.cn": 1 for i in range(100)}  # each once, none missing
    assert set(mailbox.kept) == {r.id for r in found}
    # A second copy can only be of a mail in flight at the kill (accepted by the server, not yet marked sent),
    # and carries the same delivery id, so the store above recognised it.
    repeated = {d for d, n in mailbox.copies.items() if n > 1}
    assert repeated <= in_flight and all(n <= 2 for n in mailbox.copies.values())
    print(
        f"killed after {at_kill} of 100; rows in flight at the kill: {len(in_flight)}; copies repeated: {len(repeated)}"
    )


# --- a notice row withdrawn while another worker process holds it -------------------------------------------------


class HeldMailbox:
    """An SMTP server that holds the first mail's DATA until `release` (a slow relay), recording who got a mail."""

    def __init__(self) -> None:
        self.arrived: list[str] = []  # recipients, in the order their DATA came
        self.gate = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrived.append(envelope.rcpt_tos[0])
        if len(self.arrived) == 1:
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 60)
        return "250 OK"


def one_line_smtp(settings: Any) -> list[Any]:
    """The worker process's channel: e-mail to the test's server, one mail at a time."""
    from broadcast.channels.email import EmailChannel

    port = int(os.environ["OUTBOX_TEST_SMTP_PORT"])
    return [EmailChannel("127.0.0.1", port, "yjglj@switchboard.local", rate_per_second=50, concurrency=1)]


async def test_a_worker_process_sends_nothing_for_a_notice_row_withdrawn_after_its_claim(ctx: Context) -> None:
    """A notice to 甲 and 乙 by e-mail, sent by a worker process (`--compose`): it claims both rows, the relay holds
    the first mail; meanwhile the other person confirms by SMS, which withdraws their claimed row. The worker reads
    the row again before its send and sends nothing; a notice to 丙, claimed after it, shows the worker got past it."""
    from switchboard.directory.models import ContactPoint, Organisation, Person
    from switchboard.notices import flows as notices
    from switchboard.notices.models import NoticeCreate, NoticeRecipient

    async with ctx.db.session() as session:
        org = Organisation(code="140105", name="小店区应急管理局", level="county", area_code="140105")
        session.add(org)
        await session.flush()
        people = [Person(org_id=org.id, name=name, roles=[]) for name in ("甲", "乙", "丙")]
        session.add_all(people)
        await session.flush()
        session.add_all(
            ContactPoint(person_id=p.id, kind="email", value=f"p{i}@example.cn") for i, p in enumerate(people)
        )
    links = {"email": {"status": "ok"}}

    async def send(*who: Person) -> None:
        body = NoticeCreate(
            subject="停电通知", text="今晚机房停电。", contact_ids=[p.id for p in who], channels=["email"]
        )
        await notices.issue(ctx, "tester", body, links)

    mailbox = HeldMailbox()
    controller, port = _relay(mailbox)
    compose = ("--compose", "switchboard.notices.live:composer", "--lease", "60")  # sends time out after 30 s
    worker = _worker(ctx, port, "tests.test_outbox:one_line_smtp", *compose)
    try:
        await send(people[0], people[1])
        await until(lambda: mailbox.arrived, timeout=60, what="the worker's first mail to reach the relay")
        first = mailbox.arrived[0]
        async with ctx.db.reader() as session:
            rows = (
                await session.execute(
                    select(Delivery, NoticeRecipient).join(
                        NoticeRecipient, NoticeRecipient.id == Delivery.notice_recipient_id
                    )
                )
            ).all()
        assert {d.state for d, _ in rows} == {"sending"}  # both claimed by the worker
        other = next(r for d, r in rows if d.recipient != first)
        assert await notices.confirm(
            ctx,
            None,
            other.id,
            channel="sms",
            address="13800000000",
            at=utcnow(),
            delivery_id=None,
            how="短信回复“收到”",
        )
        mailbox.gate.set()
        await send(people[2])
        await until(lambda: "p2@example.cn" in mailbox.arrived, timeout=60, what="the mail to 丙")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
        controller.stop()

    assert mailbox.arrived == [first, "p2@example.cn"]  # nothing to the one who confirmed
    async with ctx.db.reader() as session:
        withdrawn = await session.scalar(select(Delivery).where(Delivery.notice_recipient_id == other.id))
    assert withdrawn is not None and withdrawn.state == "cancelled"
    assert withdrawn.last_error == "已通过短信确认，撤回"
