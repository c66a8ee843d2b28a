"""What someone with write access to the database, but not the ledger key, can do to the audit chain: rewrite
entries, renumber them and chain them again, with plain SHA-256 or an HMAC under a key of their own."""

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select, update

from switchboard.core.audit import service as audit
from switchboard.core.audit.models import AuditEntry, AuditHead
from switchboard.core.context import Context

Seal = Callable[[bytes], str]


def plain_sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def wrong_key() -> Seal:
    """An HMAC-SHA256 under a key that is not the ledger's."""
    key = secrets.token_bytes(32)
    return lambda payload: hmac.new(key, payload, hashlib.sha256).hexdigest()


SEALS = {"sha256": lambda: plain_sha256, "wrong_key": wrong_key}  # a forger's seal by name, made afresh per test


async def entries(ctx: Context) -> list[AuditEntry]:
    async with ctx.db.reader() as session:
        return list((await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all())


def fields(entry: AuditEntry, **changes: Any) -> dict[str, Any]:
    """An entry's own fields (not its seq or hashes), some changed."""
    keep = ("at", "actor", "action", "target_type", "target_id", "detail")
    return {name: getattr(entry, name) for name in keep} | changes


async def rewrite_tail(ctx: Context, first: int, tail: list[dict[str, Any]], seal: Seal) -> None:
    """Replace the entries from `first` on with `tail`, renumbered and chained by `seal`, and point the head row
    at the new last one."""
    async with ctx.db.session() as session:
        prev = (await session.get(AuditEntry, first - 1)).hash if first > 1 else audit.GENESIS
        await session.execute(delete(AuditEntry).where(AuditEntry.seq >= first))
        for seq, values in enumerate(tail, first):
            entry = AuditEntry(**values, seq=seq, prev_hash=prev)
            entry.hash = prev = seal(audit.canonical(entry))
            session.add(entry)
        await session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=first + len(tail) - 1, hash=prev))
