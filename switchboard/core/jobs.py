"""Durable job rows claimed by workers: the claim and the retry backoff shared by the warning outbox and the fax
sender.

A job table has `state`, `next_attempt_at`, `lease_until`, `worker`, `attempts` and `updated_at` columns. A row is
due when it is `pending` and its next attempt has come, or `sending` with its lease run out (its worker died).
Claiming takes due rows in one write transaction: `SELECT id ... LIMIT n FOR UPDATE SKIP LOCKED`, then `UPDATE ...
SET state='sending', worker=me, lease_until=..., attempts=attempts+1 WHERE id IN (those)` (on SQLite the single
writer, BEGIN IMMEDIATE, serialises claims; FOR UPDATE is not rendered there). A read looks first whether any row
is due: an idle worker's polls then take no write transaction, which on SQLite held the writer from calls being
placed (35 ms a poll on a busy loop).

The two kinds of due row are looked up apart, each along the table's claim index (`<where>, state,
next_attempt_at`): rows whose lease ran out first, then pending rows in next_attempt_at order. One query with
`state = pending ... OR state = sending ...` ordered by (next_attempt_at, id) made the database read and sort every
pending row of the channel for each claim (a warning's rows all share one next_attempt_at): 30-60 ms per claim of
500 at 100,000 rows on SQLite, the claims of one warning growing with its size squared.
"""

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, update

from switchboard.core.context import Context
from switchboard.core.db import utcnow


async def claim(
    ctx: Context,
    model: Any,
    *,
    where: ColumnElement[bool],
    limit: int,
    worker: str,
    lease_seconds: float,
    returning: tuple[Any, ...] = (),
    pending: str = "pending",
    sending: str = "sending",
) -> list[Any]:
    """Claim up to `limit` due rows of `model` matching `where`; returns the claimed rows' `returning` columns
    (always with id and attempts, the latter already counting this attempt)."""
    now = utcnow()
    expired = select(model.id).where(where, model.state == sending, model.lease_until < now)
    pending_due = select(model.id).where(where, model.state == pending, model.next_attempt_at <= now)
    async with ctx.db.reader() as session:  # most polls find nothing, which needs no hold on SQLite's one writer
        if not await session.scalar(select(expired.exists() | pending_due.exists())):
            return []
    async with ctx.db.session() as session:
        # The ids selected (and locked) apart from the update, in one transaction: PostgreSQL may re-run an
        # `IN (SELECT ... LIMIT)` subquery per row and so claim more than `limit`; the ids locked are the ones updated.
        ids = list((await session.scalars(expired.limit(limit).with_for_update(skip_locked=True))).all())
        if len(ids) < limit:
            due = pending_due.order_by(model.next_attempt_at).limit(limit - len(ids))
            ids += (await session.scalars(due.with_for_update(skip_locked=True))).all()
        if not ids:
            return []
        statement = (
            update(model)
            .where(model.id.in_(ids))
            .values(
                state=sending,
                worker=worker,
                lease_until=now + timedelta(seconds=lease_seconds),
                attempts=model.attempts + 1,
                updated_at=now,
            )
            .returning(model.id, model.attempts, *returning)
            .execution_options(synchronize_session=False)
        )
        return list((await session.execute(statement)).all())


def backoff(attempts: int, base: float, ceiling: float) -> float:
    """Seconds before the next attempt after `attempts` failed ones: base * 2^(attempts-1), capped, with jitter."""
    delay = min(base * 2 ** (attempts - 1), ceiling)
    return delay * random.uniform(0.8, 1.0)
