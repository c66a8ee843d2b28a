"""Storage: the migrations build exactly the tables the models declare, on SQLite and PostgreSQL."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

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


async def test_datetimes_come_back_aware_and_in_utc(ctx: Context) -> None:
    now = utcnow()
    async with ctx.db.session() as session:
        incident = Incident(
            title="测试",
            category="natural_disaster",
            level="IV",
            area_code="140105",
            reported_at=now,
            first_report_due_at=now,
            created_by="t",
        )
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
