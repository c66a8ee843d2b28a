"""The audit chain: every change leaves an entry; an edited, deleted or truncated entry is detected."""

import asyncio

from sqlalchemy import delete, select, update

from switchboard.core.audit import service as audit
from switchboard.core.audit.models import AuditEntry, AuditHead
from switchboard.core.context import Context
from switchboard.incidents import service as incidents
from switchboard.incidents.models import IncidentCreate, IncidentUpdate, Status

NEW = IncidentCreate(title="吕梁市山体滑坡", category="natural_disaster", level="III", area_code="141100")


async def _findings(ctx: Context) -> list[tuple[int, str]]:
    async with ctx.db.reader() as session:
        return [(f.seq, f.problem) async for _, f in audit.verify(session, batch=2) if f]


async def _five_changes(ctx: Context) -> None:
    incident = await incidents.create(ctx, "duty", NEW)
    await incidents.add_note(ctx, "duty", incident.id, "已通知县应急局")
    await incidents.change(ctx, "duty", incident.id, IncidentUpdate(level="II"))
    await incidents.change(ctx, "duty", incident.id, IncidentUpdate(status=Status.responding))
    await incidents.add_note(ctx, "leader", incident.id, "启动二级响应")


async def test_each_change_is_chained(ctx: Context) -> None:
    await _five_changes(ctx)
    async with ctx.db.reader() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
    assert [e.action for e in entries] == [
        "incident.create",
        "incident.note",
        "incident.update",
        "incident.update",
        "incident.note",
    ]
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert await _findings(ctx) == []


async def test_edited_entry_is_detected(ctx: Context) -> None:
    await _five_changes(ctx)
    async with ctx.db.session() as session:
        await session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="someone-else"))
    assert await _findings(ctx) == [(3, "edited")]


async def test_rehashed_entry_breaks_the_chain(ctx: Context) -> None:
    await _five_changes(ctx)
    async with ctx.db.session() as session:
        entry = await session.get(AuditEntry, 2)
        entry.detail = {"text": "改写"}
        entry.hash = audit.entry_hash(entry)
    assert await _findings(ctx) == [(3, "chain_broken")]


async def test_deleted_entry_is_detected(ctx: Context) -> None:
    await _five_changes(ctx)
    async with ctx.db.session() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    assert await _findings(ctx) == [(2, "missing")]


async def test_truncated_tail_is_detected(ctx: Context) -> None:
    await _five_changes(ctx)
    async with ctx.db.session() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq >= 4))
    assert await _findings(ctx) == [(5, "head_mismatch")]
    async with ctx.db.reader() as session:
        assert (await session.get(AuditHead, 1)).seq == 5


async def test_concurrent_writers_keep_one_chain(ctx: Context) -> None:
    await asyncio.gather(*(incidents.create(ctx, f"duty{i}", NEW) for i in range(20)))
    async with ctx.db.reader() as session:
        seqs = (await session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq))).all()
    assert seqs == list(range(1, 21))
    assert await _findings(ctx) == []
