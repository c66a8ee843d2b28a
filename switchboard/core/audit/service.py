"""Append to and verify the audit chain.

Each entry's hash is an HMAC-SHA256, under the ledger's key (outside the database), of its own fields and the
previous entry's hash; the head row holds the last one. Appends run inside the caller's transaction, so a state
change and its audit entry commit together; once they have, the head is also appended to the ledger's external
file (`ledger.py`), which verification holds the database to.
"""

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from switchboard.core.audit.ledger import LEDGER, Ledger
from switchboard.core.audit.models import AuditEntry, AuditHead
from switchboard.core.context import Context
from switchboard.core.db import utcnow

GENESIS = "0" * 64
_CHAIN = "audit_chain"  # session.info: the transaction's appends (_Chain), until it commits or rolls back


def canonical(entry: AuditEntry) -> bytes:
    """What an entry's hash covers: every field but the hash, and the previous entry's hash."""
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
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode()


def ledger_of(session: AsyncSession | Session) -> Ledger:
    try:
        return session.info[LEDGER]
    except KeyError:
        raise RuntimeError("database opened without the audit ledger; open it with Context.from_settings") from None


async def record(
    session: AsyncSession, actor: str, action: str, target_type: str, target_id: str, detail: dict[str, Any]
) -> AuditEntry:
    """Append one entry. The transaction's first append reads the head row and locks it, which orders concurrent
    appenders; its entries are written together when it commits (SQL Core: this runs on every change). A
    transaction gathering many changes (`Database.together`) so costs three statements, not three per entry."""
    chain = session.info.get(_CHAIN)
    if chain is None:
        conn = await session.connection()
        head = AuditHead.__table__
        seq, prev = (await conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1).with_for_update())).one()
        chain = session.info[_CHAIN] = _Chain(seq, prev)
    entry = AuditEntry(
        seq=chain.seq + 1,
        at=utcnow(),
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        detail=json.loads(json.dumps(detail, ensure_ascii=False, default=str)),
        prev_hash=chain.hash,
    )
    entry.hash = ledger_of(session).seal(canonical(entry))
    chain.seq, chain.hash = entry.seq, entry.hash
    chain.entries.append({column.key: getattr(entry, column.key) for column in AuditEntry.__table__.columns})
    return entry


@dataclass
class _Chain:
    """The head as this transaction's appends left it, and the entries still to write."""

    seq: int
    hash: str
    entries: list[dict[str, Any]] = field(default_factory=list)


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    """The transaction's entries and its new head, in two statements (an AsyncSession commits in a greenlet, where
    these synchronous calls run on its connection)."""
    chain = session.info.get(_CHAIN)
    if chain is None or not chain.entries:
        return
    conn = session.connection()
    conn.execute(insert(AuditEntry.__table__), chain.entries)
    head = AuditHead.__table__
    conn.execute(update(head).where(head.c.id == 1).values(seq=chain.seq, hash=chain.hash))
    chain.entries = []


@event.listens_for(Session, "after_commit")
def _anchor(session: Session) -> None:
    """The transaction's last entry has committed: copy it to the external file (one line per commit)."""
    if chain := session.info.pop(_CHAIN, None):
        ledger_of(session).anchor(chain.seq, chain.hash)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_CHAIN, None)


async def record_alone(
    ctx: Context, actor: str, action: str, target_type: str, target_id: str, detail: dict[str, Any]
) -> None:
    """Audit an action the engine carries out on its own schedule (a call, a bridge control): the entry follows
    the request rather than sharing a transaction with rows the engine's events write later."""
    async with ctx.db.session() as session:
        await record(session, actor, action, target_type, target_id, detail)


@dataclass(frozen=True)
class Finding:
    seq: int
    problem: str  # missing, edited, unkeyed, chain_broken, head_mismatch, log_missing, log_mismatch

    def describe(self) -> str:
        return {
            "missing": "条目缺失（被删除）",
            "edited": "条目内容被修改（哈希与密钥签名不符）",
            "unkeyed": "条目的哈希是不带密钥的 SHA-256（升级前的旧条目，或有人在数据库内重算了哈希链）",
            "chain_broken": "前一条目的哈希被改写",
            "head_mismatch": "链尾与记录不符（末尾条目被删除或链头被修改）",
            "log_missing": "外部链头文件记有此条目，数据库中却没有（条目被删除、末尾被截断或数据库被回滚）",
            "log_mismatch": "条目的哈希与外部链头文件所记不符（条目被改写、重排或数据库被回滚）",
        }[self.problem]


async def verify(session: AsyncSession, batch: int = 5000) -> AsyncIterator[tuple[int, Finding | None]]:
    """Walk the chain in order, then hold it to the external head file, yielding (entries checked so far,
    finding or None) as it goes. `session` must be a fresh `Database.snapshot()`: the file's length is taken
    before its first query, so every line counted was appended after a commit the snapshot sees."""
    ledger = ledger_of(session)
    horizon = ledger.horizon()
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
            if (problem := _seal_problem(ledger, entry)) is not None:
                yield checked, Finding(entry.seq, problem)
            prev, expected_seq, last_seq = entry.hash, entry.seq + 1, entry.seq
            checked += 1
        yield checked, None
    if head.seq != last_seq or head.hash != prev:
        yield checked, Finding(head.seq, "head_mismatch")
    async for finding in _held_to_file(session, ledger, horizon, batch):
        yield checked, finding


def _seal_problem(ledger: Ledger, entry: AuditEntry) -> str | None:
    """None when the entry's hash is its HMAC under our key; "unkeyed" names a plain SHA-256 recomputation."""
    payload = canonical(entry)
    if ledger.seal(payload) == entry.hash:
        return None
    return "unkeyed" if hashlib.sha256(payload).hexdigest() == entry.hash else "edited"


async def _held_to_file(session: AsyncSession, ledger: Ledger, horizon: int, batch: int) -> AsyncIterator[Finding]:
    """Every head the file recorded must still be in the database, with the same hash; so the database's head is
    never behind the file's. The other way round is no finding: a crash between a commit and its append leaves
    the file lagging, and the entries past its last line are still sealed and chained, and anchored again by the
    next append (its hash covers theirs)."""
    for heads in ledger.heads(horizon, batch):
        query = select(AuditEntry.seq, AuditEntry.hash).where(AuditEntry.seq.in_([seq for seq, _ in heads]))
        stored = {seq: digest for seq, digest in (await session.execute(query)).all()}
        for seq, digest in heads:
            if seq not in stored:
                yield Finding(seq, "log_missing")
            elif stored[seq] != digest:
                yield Finding(seq, "log_mismatch")
