"""Append to and verify the audit chain.

Each entry's hash covers its own fields and the previous entry's hash; the head row holds the last one.
Appends run inside the caller's transaction, so a state change and its audit entry commit together.
"""

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.core.audit.models import AuditEntry, AuditHead
from switchboard.core.context import Context
from switchboard.core.db import utcnow

GENESIS = "0" * 64


def entry_hash(entry: AuditEntry) -> str:
    payload = [
        entry.seq,
        entry.at.isoformat(),
        entry.actor,
        entry.action,
        entry.target_type,
        entry.target_id,
        entry.detail,
        entry.prev_hash,
    ]
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def record(
    session: AsyncSession, actor: str, action: str, target_type: str, target_id: str, detail: dict[str, Any]
) -> AuditEntry:
    """Append one entry; the head row's lock orders concurrent appenders (SQL Core: this runs on every change)."""
    conn = await session.connection()
    head = AuditHead.__table__
    seq, prev = (await conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1).with_for_update())).one()
    entry = AuditEntry(
        seq=seq + 1,
        at=utcnow(),
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        detail=json.loads(json.dumps(detail, ensure_ascii=False, default=str)),
        prev_hash=prev,
    )
    entry.hash = entry_hash(entry)
    values = {column.key: getattr(entry, column.key) for column in AuditEntry.__table__.columns}
    await conn.execute(insert(AuditEntry.__table__), values)
    await conn.execute(update(head).where(head.c.id == 1).values(seq=entry.seq, hash=entry.hash))
    return entry


async def record_alone(
    ctx: Context, actor: str, action: str, target_type: str, target_id: str, detail: dict[str, Any]
) -> None:
    """Audit an action the engine carries out on its own schedule (a call, a bridge control): the entry follows
    the request rather than sharing a transaction with rows the engine's events write later."""
    async with ctx.db.session() as session:
        await record(session, actor, action, target_type, target_id, detail)


@dataclass
class Finding:
    seq: int
    problem: str  # missing, edited, chain_broken, head_mismatch

    def describe(self) -> str:
        return {
            "missing": "条目缺失（被删除）",
            "edited": "条目内容被修改",
            "chain_broken": "前一条目的哈希被改写",
            "head_mismatch": "链尾与记录不符（末尾条目被删除或链头被修改）",
        }[self.problem]


async def verify(session: AsyncSession, batch: int = 5000) -> AsyncIterator[tuple[int, Finding | None]]:
    """Walk the chain in order, yielding (entries checked so far, finding or None) as it goes."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    expected_seq, prev = 1, GENESIS
    checked, last_seq = 0, 0
    while True:
        rows = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(batch)
            )
        ).all()
        if not rows:
            break
        for entry in rows:
            if entry.seq != expected_seq:
                yield checked, Finding(expected_seq, "missing")
            elif entry.prev_hash != prev:
                yield checked, Finding(entry.seq, "chain_broken")
            if entry_hash(entry) != entry.hash:
                yield checked, Finding(entry.seq, "edited")
            prev, expected_seq, last_seq = entry.hash, entry.seq + 1, entry.seq
            checked += 1
        yield checked, None
    if head.seq != last_seq or head.hash != prev:
        yield checked, Finding(head.seq, "head_mismatch")
