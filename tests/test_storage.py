"""Storage: the migrations build exactly the tables the models declare, on SQLite and PostgreSQL."""

import asyncio
import logging
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, func, select, text

from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.incidents.models import Incident
from switchboard.models import Base


async def test_migrated_schema_matches_models(ctx: Context) -> None:
    def diff(connection):  # type: ignore[no-untyped-def]
        migration = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(migration, Base.metadata)

    async with ctx.db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def _incident() -> Incident:
    now = utcnow()
    return Incident(
        title="测试",
        category="natural_disaster",
        level="IV",
        area_code="140105",
        reported_at=now,
        first_report_due_at=now,
        created_by="t",
    )


async def test_datetimes_come_back_aware_and_in_utc(ctx: Context) -> None:
    incident = _incident()
    now = incident.reported_at
    async with ctx.db.session() as session:
        session.add(incident)
    async with ctx.db.reader() as session:
        loaded = await session.get(Incident, incident.id)
    assert loaded is not None
    assert loaded.reported_at == now
    assert loaded.reported_at.utcoffset().total_seconds() == 0


async def test_sqlite_runs_in_wal_mode(ctx: Context) -> None:
    if not ctx.db.is_sqlite:
        pytest.skip("SQLite only")
    async with ctx.db.reader() as session:
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"


async def test_a_write_cancelled_as_it_ends_still_ends_cleanly(ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    """Shutdown cancels background work wherever it is. A write cancelled just as its connection goes back to the
    pool (the pool's reset, a rollback) must still commit and return the connection, not leave the pool to log a
    CancelledError trace: what a server stopped mid-write used to print."""
    worker: asyncio.Task[None] | None = None

    def cancel_worker(*_: Any) -> None:
        assert worker is not None
        worker.cancel()

    async def write() -> None:
        async with ctx.db.session() as session:
            session.add(_incident())

    event.listen(ctx.db.engine.sync_engine.pool, "reset", cancel_worker, once=True)
    worker = asyncio.create_task(write())
    with pytest.raises(asyncio.CancelledError):
        await worker
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    async with ctx.db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(Incident)) == 1
