"""A warning's delivery progress for the console: each channel's pending/sent/delivered/failed/unconfirmed over time,
and what
holds back the deliveries that have not settled.

The series is rebuilt from the rows' own timestamps (sent_at, delivered_at, and updated_at of the failed and the
cancelled), so a page opened halfway through a broadcast sees its whole history, not only what it watched."""

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from broadcast.models import CHANNEL_NAMES, Delivery, DeliveryState, PublicWarning
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.warnings.links import Links, trouble

POINTS = 120  # samples per series: enough for a smooth line, small enough to poll every second
UNSETTLED = (DeliveryState.pending, DeliveryState.sending)


@dataclass
class _Times:
    """The moments each kind of change happened on one channel, sorted."""

    total: int = 0
    sent: list[datetime] = field(default_factory=list)
    delivered: list[datetime] = field(default_factory=list)
    failed_after_send: list[datetime] = field(default_factory=list)
    failed_unsent: list[datetime] = field(default_factory=list)
    cancelled: list[datetime] = field(default_factory=list)
    unconfirmed: list[datetime] = field(default_factory=list)

    def sort(self) -> None:
        for times in (
            self.sent,
            self.delivered,
            self.failed_after_send,
            self.failed_unsent,
            self.cancelled,
            self.unconfirmed,
        ):
            times.sort()

    def at(self, t: datetime) -> tuple[int, int, int, int, int]:
        """(pending, sent, delivered, failed, unconfirmed) at `t`; cancelled rows leave the count."""

        def upto(times: list[datetime]) -> int:
            return bisect_right(times, t)

        sent, delivered = upto(self.sent), upto(self.delivered)
        failed_sent, failed_unsent = upto(self.failed_after_send), upto(self.failed_unsent)
        pending = self.total - sent - failed_unsent - upto(self.cancelled)
        unconfirmed = upto(self.unconfirmed)
        return (
            pending,
            sent - delivered - failed_sent - unconfirmed,
            delivered,
            failed_sent + failed_unsent,
            unconfirmed,
        )


async def series(ctx: Context, warning: PublicWarning) -> dict[str, list[tuple[str, int, int, int, int, int]]]:
    """Channel -> [(time, pending, sent, delivered, failed, unconfirmed)] from the issue until now, or until its last
    change once it completed."""
    start = warning.issued_at or warning.created_at
    end = warning.completed_at or utcnow()  # receipts may come after completion: see below
    times: dict[str, _Times] = {}
    query = select(
        Delivery.channel, Delivery.state, Delivery.sent_at, Delivery.delivered_at, Delivery.updated_at
    ).where(Delivery.warning_id == warning.id)
    async with ctx.db.reader() as session:
        for channel, state, sent_at, delivered_at, updated_at in (await session.execute(query)).all():
            one = times.setdefault(channel, _Times())
            one.total += 1
            end = max(end, updated_at)
            if sent_at:
                one.sent.append(sent_at)
            if delivered_at:
                one.delivered.append(delivered_at)
            if state == DeliveryState.failed:
                (one.failed_after_send if sent_at else one.failed_unsent).append(updated_at)
            elif state == DeliveryState.cancelled:
                one.cancelled.append(updated_at)
            elif state == DeliveryState.unconfirmed:
                one.unconfirmed.append(updated_at)
    step = max((end - start) / (POINTS - 1), timedelta(milliseconds=200))
    moments = [start + step * i for i in range(POINTS) if start + step * i < end] + [end]
    out: dict[str, list[tuple[str, int, int, int, int, int]]] = {}
    for channel, one in times.items():
        one.sort()
        out[channel] = [(t.isoformat(timespec="milliseconds"), *one.at(t)) for t in moments]
    return out


async def stuck(ctx: Context, warning_id: str, links: Links) -> list[dict[str, object]]:
    """For each channel with unsettled rows, why they are waiting: the channel's trouble, or the last error of the
    rows waiting for a retry. Rows in their first attempt on a healthy channel are not stuck."""
    query = (  # counted by the database: the console asks every second, and a large broadcast has many rows open
        select(Delivery.channel, Delivery.last_error, func.count())
        .where(Delivery.warning_id == warning_id, Delivery.state.in_(UNSETTLED))
        .group_by(Delivery.channel, Delivery.last_error)
    )
    waiting: dict[str, Counter[str]] = {}
    async with ctx.db.reader() as session:
        for channel, error, n in (await session.execute(query)).all():
            waiting.setdefault(channel, Counter())[error] += n
    found: list[dict[str, object]] = []
    for channel, errors in sorted(waiting.items()):
        rows = sum(errors.values())
        reason = trouble(channel, links)
        if reason is None:
            retrying = {error: n for error, n in errors.items() if error}
            if not retrying:
                continue
            error = max(retrying, key=retrying.__getitem__)
            reason = f"{sum(retrying.values())} 条等待重试，最近的原因：{error}"
        found.append({"channel": channel, "name": CHANNEL_NAMES.get(channel, channel), "rows": rows, "reason": reason})
    return found
