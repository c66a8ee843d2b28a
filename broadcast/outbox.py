"""The durable outbox: delivery rows, written with the issue, are claimed by workers and sent through the channels.

Claiming (switchboard.core.jobs, shared with the fax sender). A worker takes due rows in one write transaction:
`SELECT id ... LIMIT n FOR UPDATE SKIP LOCKED`, then `UPDATE deliveries SET state='sending', worker=me,
lease_until=... WHERE id IN (those) RETURNING ...` (on SQLite the single writer, BEGIN IMMEDIATE, serialises claims;
FOR UPDATE is not rendered there). A row is due when it is `pending` and its next_attempt_at has come, or when it is
`sending` and its lease has run out.

Never twice. A row is `sending` (with the worker's id and a lease) before the channel is called and `sent` within
one tick after the peer accepts. The only moment a duplicate can arise is a crash between the peer's acceptance and
that write. The rule: a row left `sending` is re-sent only after its lease expires (the lease is twice the send
timeout, and a send starts within a quarter of a lease of its claim or the row is handed back, so a live worker has
always finished or given up on its send by then), and with the same delivery id, which channels hand to the peer
wherever the peer can carry it (e-mail: the X-Switchboard-Delivery header), so a receiver can recognise and drop the
duplicate. SMTP has no two-phase commit: a mail the server accepted just before the crash, and not yet marked sent,
goes again (tests/test_outbox.py measures 1-5 such copies per kill at 50 mails/s, a tick's results among them, all
with the same delivery id). Rows merely claimed, or whose send had not completed, go once.

Pace. Each channel has a lane in each worker: at most `concurrency` sends in flight, and sends spaced at
1/`rate_per_second`; both limits are per worker process (several workers share a channel's peer budget by
configuring each channel with its share). A peer's retry_after (SMPP ESME_RTHROTTLED, HTTP 429) pauses the whole
lane and puts the row back without spending an attempt. Other failures back off exponentially
(base * 2^(attempt-1), capped, with jitter) until max_attempts; a permanent failure fails the row at once.

Writes. The claim is a transaction of its own, taken ahead for many rows (`_Lane.ahead`), the next one while half of
the last one's rows are still to be sent (so that sends never wait for it; not after a claim that found fewer rows
than it asked for, which would only claim again after every send); results and receipts are written in
batches, one transaction per tick (`broadcast/writes.py`, which says what that costs in the crash window). What the
API reads is at most one tick (`tick_seconds`, 50 ms) behind the peers.

Rows of a notice's recipient (`notice_recipient_id`; a warning's directory groups are a notice too, whose rows
also carry the `warning_id`) go through the same lanes; their
message comes from the `compose` the wiring hands over (switchboard/notices renders them: broadcast knows no
notices), and an outbox without one (a `broadcast.worker` process not given `--compose`) leaves them to the
others. Rows withdrawn (the recipient confirmed elsewhere, the warning cancelled) are cancelled by their owner, also
when a worker has claimed them: the composer reads the row right before the send and sends nothing for a cancelled
one. The owner tells its own outbox (`withdrawn`) so a channel still working on one (a voice call's later rounds)
stops at once; a channel in another process finds out before its next round (`wanted`).

Receipts. Channels report receipts by remote id; a receipt that overtakes its row's result is held briefly and
applied with it. A row sent on a channel with receipts that gets none within `receipt_timeout_seconds` becomes
`unconfirmed` (a receipt that comes later still moves it to delivered or failed).
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.core import jobs
from switchboard.core.config import Settings
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.events import Event
from switchboard.core.ids import new_id
from switchboard.core.ticks import Ticker

from .channel import Channel, Message, SendResult
from .models import Delivery, DeliveryState, PublicWarning
from .pace import Pace
from .render import MAX_SMS_PARTS, MessageFactory
from .writes import RECEIPTED, DeliveryWrites

log = logging.getLogger(__name__)

UNSETTLED = (DeliveryState.pending, DeliveryState.sending)
# (delivery id, notice recipient id, channel, recipient address) -> the message of a notice's row; None: the row
# was withdrawn since it was claimed (its owner read it again), so nothing is sent and nothing written
Compose = Callable[[str, str, str, str], Awaitable[Message | None]]
COMPLETION_SECONDS = 1.0  # how often warnings whose rows changed are checked for completion


@dataclass
class OutboxSettings:
    lease_seconds: float = 60.0  # a claimed row belongs to its worker this long; sends time out at half of it
    poll_seconds: float = 0.25  # how often an idle lane looks for due rows, at first (see Outbox._idle)
    tick_seconds: float = 0.05  # results and receipts are written in one transaction this often
    max_attempts: int = 8
    backoff_base: float = 2.0  # seconds before the 2nd attempt; doubles each attempt
    backoff_max: float = 600.0
    receipt_hold_seconds: float = 60.0  # keep a receipt that arrived before its row's remote id this long
    receipt_timeout_seconds: float = 1800.0  # a row sent on a channel with receipts and none by then: unconfirmed
    sweep_seconds: float = 10.0  # how often rows are checked for that
    max_claim: int = 500  # rows one claim takes ahead for a lane (fewer for a slow channel: see _Lane.ahead)
    sms_parts: int = MAX_SMS_PARTS  # the most parts one warning SMS may take

    @classmethod
    def configured(cls, settings: Settings, **overrides: Any) -> "OutboxSettings":
        """The defaults, with what [channels] configures."""
        c = settings.channels
        return cls(receipt_timeout_seconds=c.receipt_timeout_seconds, sms_parts=c.sms_max_parts, **overrides)


@dataclass
class _Lane:
    channel: Channel
    inflight: set[asyncio.Task[None]] = field(default_factory=set)
    # a free place among the channel's `concurrency` sends: taken before a send starts, given back when it ends
    # (waiting on the in-flight tasks themselves costs a callback on each of them per send)
    places: asyncio.Semaphore = field(init=False)
    claimed: deque["_Claimed"] = field(default_factory=deque)  # claimed, not yet started
    claiming: asyncio.Task[None] | None = None  # the next claim, taken while the rows of the last one are sent
    drained: bool = False  # a claim found fewer due rows than it asked for: none is taken ahead until these are sent
    pace: Pace = field(default_factory=Pace)
    task: asyncio.Task[None] | None = None
    idle: int = 0  # polls in a row that found nothing

    def __post_init__(self) -> None:
        self.places = asyncio.Semaphore(max(self.channel.concurrency, 1))

    def sent(self, task: asyncio.Task[None]) -> None:
        self.inflight.discard(task)
        self.places.release()

    def ahead(self, settings: OutboxSettings) -> int:
        """How many rows to claim at once: what the channel sends in a quarter of a lease (so none of them waits
        for its send until the lease runs out), at least what it may have in flight, at most max_claim."""
        quarter = int(self.channel.rate_per_second * settings.lease_seconds / 4)
        return max(self.channel.concurrency, min(quarter, settings.max_claim))


@dataclass(frozen=True)
class _Claimed:
    id: str
    warning_id: str | None
    notice_recipient_id: str | None
    recipient: str
    attempts: int
    resumed: bool  # re-claimed after another worker's lease ran out
    claimed_at: float  # monotonic


class Outbox:
    def __init__(
        self,
        ctx: Context,
        channels: Iterable[Channel] = (),
        settings: OutboxSettings | None = None,
        worker_id: str | None = None,
        compose: Compose | None = None,
    ) -> None:
        self.ctx = ctx
        self.compose = compose  # set by the wiring before start: the notices' composer
        self.settings = settings or OutboxSettings()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
        self.lanes: dict[str, _Lane] = {c.name: _Lane(c) for c in channels}
        self.messages = MessageFactory(self.settings.sms_parts)
        self.writes = DeliveryWrites(ctx, self.worker_id, self.settings.receipt_hold_seconds)
        self._wake = asyncio.Event()
        self._running = False
        self._warnings: dict[str, PublicWarning] = {}
        self._ticks = Ticker("outbox", self._tick, self.settings.tick_seconds)
        self._checked = self._swept = time.monotonic()

    # --- life cycle ---

    async def start(self) -> None:
        self._running = True
        self.ctx.bus.subscribe(self._on_event)
        for lane in self.lanes.values():
            await self._start_lane(lane)
        self._ticks.start()

    async def _on_event(self, event: Event) -> None:
        """Issuing or cancelling a warning has just committed its delivery rows: send now, not at the next poll."""
        if event.type in ("warning.issued", "warning.cancelled"):
            self.wake()

    async def add(self, channel: Channel) -> None:
        """Add a channel (before or after start)."""
        lane = self.lanes[channel.name] = _Lane(channel)
        if self._running:
            await self._start_lane(lane)

    async def _start_lane(self, lane: _Lane) -> None:
        if hasattr(lane.channel, "wanted"):  # a channel that works on a row after its send (voice rounds)
            lane.channel.wanted = self.wanted
        await lane.channel.start(self.on_receipt)
        lane.task = asyncio.create_task(self._run(lane), name=f"outbox:{lane.channel.name}")

    async def stop(self) -> None:
        """Stop claiming, let sends in flight finish (up to the send timeout), write their results, hand back the
        rows claimed but not started, stop the channels."""
        self._running = False
        self._wake.set()
        for lane in self.lanes.values():
            if lane.task:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
            if lane.claiming is not None:
                await asyncio.wait([lane.claiming])
            if lane.inflight:
                await asyncio.wait(lane.inflight, timeout=self.settings.lease_seconds / 2)
        with contextlib.suppress(Exception):  # what cannot be written now is resent after its lease
            await self._ticks.stop()
            await self._release([row.id for lane in self.lanes.values() for row in lane.claimed])
        for lane in self.lanes.values():
            lane.claimed.clear()
            with contextlib.suppress(Exception):
                await lane.channel.stop()
        await self._check_completion()

    def health(self) -> dict[str, dict[str, str]]:
        """Each channel's `health()` by channel name (/healthz shows each as component `channel:<name>`)."""
        return {name: lane.channel.health() for name, lane in self.lanes.items()}

    def wake(self) -> None:
        """New rows were written: look now rather than at the next poll."""
        self._wake.set()

    def withdrawn(self, delivery_ids: Iterable[str]) -> None:
        """Rows their owner has cancelled after the send: a channel still working on one (a voice call's later
        rounds) stops. Only this process's channels hear it."""
        for lane in self.lanes.values():
            if (withdraw := getattr(lane.channel, "withdraw", None)) is not None:
                for delivery_id in delivery_ids:
                    withdraw(delivery_id)

    async def wanted(self, delivery_id: str) -> bool:
        """Whether a row a channel still works on after its send is still wanted: not withdrawn (cancelled by its
        owner, perhaps in another process, which cannot tell this one's channels)."""
        async with self.ctx.db.reader() as session:
            state = await session.scalar(select(Delivery.state).where(Delivery.id == delivery_id))
        return state != DeliveryState.cancelled

    # --- the lane loop ---

    async def _run(self, lane: _Lane) -> None:
        name = lane.channel.name
        while self._running:
            try:
                if lane.places.locked():
                    await lane.places.acquire()
                    lane.places.release()
                    continue
                ahead = lane.ahead(self.settings)
                if not lane.claimed and lane.claiming is not None:
                    await asyncio.wait([lane.claiming])  # not cancelled with this loop: stop() hands its rows back
                if not lane.claimed:
                    lane.claimed.extend(await self._claim(name, ahead))
                    lane.drained = len(lane.claimed) < ahead
                    if not lane.claimed:
                        await self._idle(lane)
                        continue
                    lane.idle = 0
                if await self._release_stale(lane):
                    continue
                row = lane.claimed.popleft()
                if lane.claiming is None and not lane.drained and len(lane.claimed) < ahead // 2:
                    lane.claiming = asyncio.create_task(self._claim_ahead(lane, ahead - len(lane.claimed)))
                await lane.places.acquire()  # free: checked above, and nothing else takes places
                task = asyncio.create_task(self._deliver(lane, row))
                lane.inflight.add(task)
                task.add_done_callback(lane.sent)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox lane %s failed; retrying", name)
                await asyncio.sleep(1)

    async def _idle(self, lane: _Lane) -> None:
        """Until a wake or the next poll: `poll_seconds`, doubling while the lane keeps finding nothing, up to four
        times that. Rows issued in this process wake it at once; retries and other processes' rows wait at most
        that long. (Every idle lane polling 4 times a second took 9 % of the server's CPU during a 100-leg convene.)"""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds * min(2**lane.idle, 4))
            lane.idle = 0
        except TimeoutError:
            lane.idle += 1

    async def _claim_ahead(self, lane: _Lane, limit: int) -> None:
        """Claim the next rows while the last claim's are still being sent, so that the sends never wait for a
        claim's transaction (behind a tick's write on SQLite's single writer)."""
        try:
            rows = await self._claim(lane.channel.name, limit)
            lane.claimed.extend(rows)
            lane.drained = len(rows) < limit
        except Exception:
            log.exception("outbox lane %s could not claim ahead", lane.channel.name)
        finally:
            lane.claiming = None

    async def _claim(self, channel: str, limit: int) -> list[_Claimed]:
        where = Delivery.channel == channel
        if self.compose is None:  # notice rows wait for an outbox that can render them
            where &= Delivery.notice_recipient_id.is_(None)
        rows = await jobs.claim(
            self.ctx,
            Delivery,
            where=where,
            limit=limit,
            worker=self.worker_id,
            lease_seconds=self.settings.lease_seconds,
            returning=(Delivery.warning_id, Delivery.notice_recipient_id, Delivery.recipient),
        )
        now = time.monotonic()
        return [
            _Claimed(r.id, r.warning_id, r.notice_recipient_id, r.recipient, r.attempts, r.attempts > 1, now)
            for r in rows
        ]

    async def _release_stale(self, lane: _Lane) -> bool:
        """A send started later than a quarter of the lease after its claim might still run when the lease ends,
        and the row be claimed and sent again (by any worker): rows left that long (a slow peer, a busy machine)
        are handed back instead. True when some were."""
        cutoff = time.monotonic() - self.settings.lease_seconds / 4
        if lane.claimed[0].claimed_at > cutoff:
            return False
        stale = []
        while lane.claimed and lane.claimed[0].claimed_at <= cutoff:  # in claim order: the oldest first
            stale.append(lane.claimed.popleft().id)
        await self._release(stale)
        log.info("outbox %s handed back %d rows claimed too long ago", lane.channel.name, len(stale))
        return True

    async def _release(self, ids: list[str]) -> None:
        """Rows claimed and never started go back to pending at once (not after their lease), attempt not spent."""
        if not ids:
            return
        async with self.ctx.db.session() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.state == DeliveryState.sending, Delivery.worker == self.worker_id)
                .values(state=DeliveryState.pending, attempts=Delivery.attempts - 1, lease_until=None, worker=None)
                .execution_options(synchronize_session=False)
            )

    async def _warning(self, warning_id: str) -> PublicWarning:
        warning = self._warnings.get(warning_id)
        if warning is None:
            async with self.ctx.db.reader() as session:
                warning = await session.get(PublicWarning, warning_id)
            assert warning is not None
            if len(self._warnings) > 1000:
                self._warnings.clear()
            self._warnings[warning_id] = warning
        return warning

    async def _deliver(self, lane: _Lane, row: _Claimed) -> None:
        result = await self._attempt(lane, row)
        if result is not None:
            self._record(lane, row, result)

    async def _attempt(self, lane: _Lane, row: _Claimed) -> SendResult | None:
        """The send's result; None for a notice row withdrawn after its claim (not sent)."""
        channel = lane.channel
        try:
            if row.notice_recipient_id is not None:  # a notice's row (a warning's groups too): the notices render it
                assert self.compose is not None
                message = await self.compose(row.id, row.notice_recipient_id, channel.name, row.recipient)
                return None if message is None else await self._send(lane, message)
            assert row.warning_id is not None
            warning = await self._warning(row.warning_id)
        except Exception as exc:  # noqa: BLE001 - the database may be back next time
            return SendResult(False, detail=f"{type(exc).__name__}: {exc}"[:500])
        try:
            message = self.messages.message(warning, channel.name, row.id, row.recipient)
        except Exception as exc:  # noqa: BLE001 - what cannot be rendered now will not render next time
            log.exception("cannot render delivery %s", row.id)
            return SendResult(False, permanent=True, detail=f"无法生成消息：{exc}"[:500])
        return await self._send(lane, message)

    async def _send(self, lane: _Lane, message: Message) -> SendResult:
        channel = lane.channel
        await lane.pace.wait(channel.rate_per_second)  # right before the send, in this task: the spacing promised
        try:
            async with asyncio.timeout(self.settings.lease_seconds / 2):
                return await channel.send(message)
        except Exception as exc:  # noqa: BLE001 - a failed send is a result to record, not a crash
            return SendResult(False, detail=f"{type(exc).__name__}: {exc}"[:500])

    def _record(self, lane: _Lane, row: _Claimed, result: SendResult) -> None:
        """What became of the send, for the next write (one tick away at most)."""
        now = utcnow()
        writes = self.writes
        if result.accepted:
            writes.sent(row.id, row.warning_id, lane.channel.name, result, now)
        elif result.permanent:
            writes.failed(row.id, row.warning_id, result.detail or "对端拒绝（不可重试）", now, result.via)
        elif result.retry_after is not None:
            lane.pace.pause(result.retry_after)
            detail = result.detail or f"对端要求 {result.retry_after:g} 秒后重试"
            next_at = now + timedelta(seconds=result.retry_after)
            writes.retry(row.id, row.warning_id, detail, now, next_at, undo=1, via=result.via)
        elif row.attempts >= self.settings.max_attempts:
            detail = f"重试 {row.attempts} 次后仍失败：{result.detail}"
            writes.failed(row.id, row.warning_id, detail, now, result.via)
        else:
            next_at = now + timedelta(seconds=self.backoff(row.attempts))
            writes.retry(row.id, row.warning_id, result.detail, now, next_at, undo=0, via=result.via)

    def backoff(self, attempts: int) -> float:
        return jobs.backoff(attempts, self.settings.backoff_base, self.settings.backoff_max)

    # --- writes, receipts and completion ---

    async def _tick(self) -> None:
        """Write the tick's results and receipts; now and then check completion and sweep unconfirmed rows."""
        await self.writes.flush()
        if time.monotonic() - self._checked >= COMPLETION_SECONDS:
            self._checked = time.monotonic()
            await self._check_completion()
        if time.monotonic() - self._swept >= self.settings.sweep_seconds:
            self._swept = time.monotonic()
            await self._sweep_unconfirmed()

    async def on_receipt(
        self,
        channel: str,
        remote_id: str,
        delivered: bool | None,
        detail: str,
        *,
        via: str = "",
        at: datetime | None = None,
    ) -> None:
        """A channel's delivery receipt: written with the next tick's results."""
        self.writes.receipt(channel, remote_id, delivered, detail, via, at)

    async def _sweep_unconfirmed(self) -> None:
        """Rows sent on a channel with receipts whose receipt has not come within the timeout: unconfirmed."""
        channels = [name for name, lane in self.lanes.items() if lane.channel.receipts]
        if not channels:
            return
        now = utcnow()
        timeout = self.settings.receipt_timeout_seconds
        waited = f"{timeout:g} 秒" if timeout < 120 else f"{timeout / 60:g} 分钟"
        async with self.ctx.db.session() as session:
            result = await session.execute(
                update(Delivery)
                .where(
                    Delivery.channel.in_(channels),
                    Delivery.state == DeliveryState.sent,
                    Delivery.sent_at < now - timedelta(seconds=timeout),
                )
                .values(
                    state=DeliveryState.unconfirmed,
                    updated_at=now,
                    last_error=f"发送后 {waited}仍未收到送达回执",
                )
                .returning(Delivery.warning_id)
                .execution_options(synchronize_session=False)
            )
            self.writes.touched |= {warning_id for (warning_id,) in result.all()}

    async def _open_row(self, session: AsyncSession, warning_id: str) -> bool:
        """Whether a row of the warning is still pending or sending. The first one found will do (no count over a
        large warning): first along the claim index on each of this outbox's channels, where a warning being sent
        has its open rows; only if none is there, along the warning's own rows on every channel (a walk over the
        settled ones first, 30 ms at 100,000 rows, so not at every check while the warning is sent)."""
        for channel in self.lanes:
            probe = select(Delivery.id).where(
                Delivery.channel == channel, Delivery.state.in_(UNSETTLED), Delivery.warning_id == warning_id
            )
            if await session.scalar(probe.limit(1)):
                return True
        probe = select(Delivery.id).where(Delivery.warning_id == warning_id, Delivery.state.in_(UNSETTLED))
        return bool(await session.scalar(probe.limit(1)))

    async def _check_completion(self) -> None:
        """Once every delivery of a warning is settled, say so on its incident's timeline (exactly once, claimed)."""
        if not self.writes.touched:
            return
        touched, self.writes.touched = self.writes.touched, set()
        touched.discard(None)  # type: ignore[arg-type]  # a notice's rows: the notices follow their own
        events = []
        async with self.ctx.db.session() as session:
            for warning_id in touched:
                if await self._open_row(session, warning_id):
                    self.writes.touched.add(warning_id)  # looked at again at the next check
                    continue
                claimed = await session.execute(
                    update(PublicWarning)
                    .where(PublicWarning.id == warning_id, PublicWarning.completed_at.is_(None))
                    .values(completed_at=utcnow())
                    .returning(PublicWarning.incident_id, PublicWarning.identifier)
                    .execution_options(synchronize_session=False)
                )
                row = claimed.first()
                if row is None:
                    continue
                counts = dict(
                    (
                        await session.execute(
                            select(Delivery.state, func.count())
                            .where(Delivery.warning_id == warning_id)
                            .group_by(Delivery.state)
                        )
                    ).all()
                )
                ok = sum(counts.get(state, 0) for state in RECEIPTED)  # accepted by the peer
                failed = counts.get(DeliveryState.failed, 0)
                summary = f"预警 {row.identifier} 发送完成：成功 {ok} 条，失败 {failed} 条"
                if counts.get(DeliveryState.cancelled):
                    summary += f"，取消 {counts[DeliveryState.cancelled]} 条"
                data = {"warning_id": warning_id, "counts": counts, "summary": summary, "refs": [warning_id]}
                events.append(Event("warning.sent", incident_id=row.incident_id, actor="system", data=data))
        for event in events:
            await self.ctx.bus.publish(event)
