"""The audit chain: every change leaves an entry sealed with a key outside the database and its head in an
append-only file outside it; an edited, deleted, re-chained or truncated entry is detected."""

import asyncio
import secrets
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.core import config
from switchboard.core.audit import service as audit
from switchboard.core.audit.ledger import Ledger
from switchboard.core.audit.models import AuditEntry, AuditHead
from switchboard.core.context import Context
from switchboard.core.errors import InvalidInput, SwitchboardError
from switchboard.incidents import service as incidents
from switchboard.incidents.models import IncidentCreate, IncidentUpdate, Status
from tests.conftest import settings_for
from tests.support import forgery

NEW = IncidentCreate(title="吕梁市山体滑坡", category="natural_disaster", level="III", area_code="141100")


async def _findings(ctx: Context) -> list[tuple[int, str]]:
    async with ctx.db.snapshot() as session:
        return [(f.seq, f.problem) async for _, f in audit.verify(session, batch=2) if f]


def _head_lines(ctx: Context) -> list[tuple[int, str]]:
    return [(int(seq), digest) for seq, digest, _at in map(str.split, Ledger.of(ctx.settings).head_log.open())]


async def _five_changes(ctx: Context) -> None:
    incident = await incidents.create(ctx, "duty", NEW)
    await incidents.add_note(ctx, "duty", incident.id, "已通知县应急局")
    await incidents.change(ctx, "duty", incident.id, IncidentUpdate(level="II"))
    await incidents.change(ctx, "duty", incident.id, IncidentUpdate(status=Status.responding))
    await incidents.add_note(ctx, "leader", incident.id, "启动二级响应")


async def test_each_change_is_chained_and_anchored_outside_the_database(ctx: Context) -> None:
    await _five_changes(ctx)
    entries = await forgery.entries(ctx)
    assert [e.action for e in entries] == [
        "incident.create",
        "incident.note",
        "incident.update",
        "incident.update",
        "incident.note",
    ]
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert all(len(e.hash) == 64 and e.hash != forgery.plain_sha256(audit.canonical(e)) for e in entries)
    assert _head_lines(ctx) == [(e.seq, e.hash) for e in entries]
    var = ctx.settings.var_path
    modes = {path: path.stat().st_mode & 0o777 for path in (var / "ledger_key", var / "ledger")}
    modes[var / "ledger" / "audit-head.log"] = (var / "ledger" / "audit-head.log").stat().st_mode & 0o777
    assert modes == {var / "ledger_key": 0o600, var / "ledger": 0o700, var / "ledger" / "audit-head.log": 0o600}
    assert await _findings(ctx) == []


def test_the_key_comes_from_config_or_environment(tmp_path: Path) -> None:
    key = secrets.token_urlsafe(32)
    settings = settings_for(tmp_path, "sqlite+aiosqlite://", SWITCHBOARD_AUDIT_LEDGER_KEY=key)
    assert Ledger.of(settings).key == key.encode()
    assert not (tmp_path / "ledger_key").exists()
    with pytest.raises(config.ConfigError, match="audit.ledger_key"):
        settings_for(tmp_path, "sqlite+aiosqlite://", SWITCHBOARD_AUDIT_LEDGER_KEY="too-short")


async def test_edited_entry_is_detected(ctx: Context) -> None:
    await _five_changes(ctx)
    async with ctx.db.session() as session:
        await session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="someone-else"))
    assert await _findings(ctx) == [(3, "edited")]


async def test_rehashed_entry_breaks_the_chain_even_with_the_key(ctx: Context) -> None:
    await _five_changes(ctx)
    async with ctx.db.session() as session:
        entry = await session.get(AuditEntry, 2)
        entry.detail = {"text": "改写"}
        entry.hash = Ledger.of(ctx.settings).seal(audit.canonical(entry))
    assert await _findings(ctx) == [(3, "chain_broken"), (2, "log_mismatch")]


async def test_deleted_entry_is_detected(ctx: Context) -> None:
    await _five_changes(ctx)
    async with ctx.db.session() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    assert await _findings(ctx) == [(2, "missing"), (2, "log_missing")]


async def test_truncated_tail_is_detected(ctx: Context) -> None:
    await _five_changes(ctx)
    async with ctx.db.session() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq >= 4))
    assert await _findings(ctx) == [(5, "head_mismatch"), (4, "log_missing"), (5, "log_missing")]
    async with ctx.db.reader() as session:
        assert (await session.get(AuditHead, 1)).seq == 5


@pytest.mark.parametrize(("forger", "problem"), [("sha256", "unkeyed"), ("wrong_key", "edited")])
async def test_a_rechained_history_is_detected(ctx: Context, forger: str, problem: str) -> None:
    """The review's attack: entry 3 deleted, entry 4 re-attributed, the rest renumbered, the chain recomputed
    (with plain SHA-256, or an HMAC under a key of the attacker's) and the head row rewritten to match."""
    await _five_changes(ctx)
    entries = await forgery.entries(ctx)
    tail = [forgery.fields(entries[3], actor="leader"), forgery.fields(entries[4])]
    await forgery.rewrite_tail(ctx, 3, tail, forgery.SEALS[forger]())
    assert [(e.seq, e.actor, e.action) for e in await forgery.entries(ctx)][2:] == [
        (3, "leader", "incident.update"),
        (4, "leader", "incident.note"),
    ]
    assert await _findings(ctx) == [
        (3, problem),
        (4, problem),
        (3, "log_mismatch"),
        (4, "log_mismatch"),
        (5, "log_missing"),
    ]


async def test_a_tail_cut_with_the_head_row_rewritten_is_caught_by_the_file(ctx: Context) -> None:
    """The newest entries deleted and the head row pointed at the one before: the chain alone holds together."""
    await _five_changes(ctx)
    await forgery.rewrite_tail(ctx, 4, [], forgery.plain_sha256)
    assert [e.seq for e in await forgery.entries(ctx)] == [1, 2, 3]
    assert await _findings(ctx) == [(4, "log_missing"), (5, "log_missing")]


async def test_a_file_lagging_after_a_crash_is_no_finding(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between a commit and its append: the entry is in the database, the file misses its line."""
    await _five_changes(ctx)
    with monkeypatch.context() as crash:
        crash.setattr(Ledger, "anchor", lambda *_: None)
        await incidents.create(ctx, "duty", NEW)
    assert [seq for seq, _ in _head_lines(ctx)] == [1, 2, 3, 4, 5]
    assert await _findings(ctx) == []
    await incidents.create(ctx, "duty", NEW)
    assert [seq for seq, _ in _head_lines(ctx)] == [1, 2, 3, 4, 5, 7]
    assert await _findings(ctx) == []


async def test_an_unreadable_head_file_stops_verification(ctx: Context) -> None:
    await _five_changes(ctx)
    with Ledger.of(ctx.settings).head_log.open("a") as log:
        log.write("6 not-a-hash\n")
    with pytest.raises(SwitchboardError, match="第 6 行无法解析"):
        await _findings(ctx)


async def test_concurrent_writers_keep_one_chain(ctx: Context) -> None:
    await asyncio.gather(*(incidents.create(ctx, f"duty{i}", NEW) for i in range(20)))
    async with ctx.db.reader() as session:
        seqs = (await session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq))).all()
    assert seqs == list(range(1, 21))
    assert sorted(seq for seq, _ in _head_lines(ctx)) == seqs
    assert await _findings(ctx) == []


async def test_writes_arriving_together_share_a_transaction_and_a_bad_one_fails_alone(ctx: Context) -> None:
    """`Database.together`: ten audited writes at once commit in fewer transactions than writes (one head line per
    transaction), chained in order; of ten more, the one that raises fails its own caller only."""

    async def write(n: int) -> int:
        async def audited(session: AsyncSession) -> int:
            await audit.record(session, "duty", "test.write", "test", str(n), {"n": n})
            if n == 17:
                raise InvalidInput("第 17 条写入无效", field="n")
            return n

        return await ctx.db.together(audited)

    assert await asyncio.gather(*(write(n) for n in range(10))) == list(range(10))
    assert len(_head_lines(ctx)) < 10
    outcomes = await asyncio.gather(*(write(n) for n in range(10, 20)), return_exceptions=True)
    assert isinstance(outcomes[7], InvalidInput) and outcomes[7].field == "n"
    assert outcomes[:7] + outcomes[8:] == [n for n in range(10, 20) if n != 17]
    entries = await forgery.entries(ctx)
    assert [int(e.target_id) for e in entries] == [n for n in range(20) if n != 17]
    assert [e.seq for e in entries] == list(range(1, 20))
    assert await _findings(ctx) == []
    assert _head_lines(ctx)[-1] == (entries[-1].seq, entries[-1].hash)
