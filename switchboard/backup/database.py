"""The database's part of a backup: a consistent snapshot taken while the server writes, the row counts and the
recording paths of that same snapshot, and putting a snapshot back into an empty database.

SQLite: the online backup API copies every page in one step under one read transaction (a file copy of a live WAL
database can miss committed pages still in the -wal file, or catch a page half-written). PostgreSQL: `pg_dump`
runs on a snapshot exported from our own REPEATABLE READ transaction, so the counts and recording paths we read
are those of the dump. Connection details go to pg_dump and pg_restore in the environment (PGPASSWORD...), never
on a command line `ps` shows.
"""

import asyncio
import glob
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from recording.models import Recording
from switchboard.core.errors import InvalidInput, Unavailable

SQLITE_FILE = "database/switchboard.db"
PG_FILE = "database/switchboard.dump"  # pg_dump's custom format


@dataclass(frozen=True)
class Snapshot:
    backend: str  # sqlite, postgresql
    file: Path
    tables: dict[str, int]
    recordings: list[str]  # paths (relative to the store) of the live recordings the snapshot's rows name


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def sqlite_path(url: str) -> Path:
    return Path(make_url(url).database or "")


_LIVE_RECORDINGS = f"SELECT path FROM {Recording.__tablename__} WHERE deleted_at IS NULL ORDER BY path"


def _sqlite_tables(db: sqlite3.Connection) -> dict[str, int]:
    names = [
        n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    ]
    return {name: db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in sorted(names)}


def sqlite_snapshot(url: str, target: Path) -> Snapshot:
    """Blocking: copy the live database into `target` with the online backup API, then read counts and recording
    paths from the copy, which is exactly what the archive holds."""
    source = sqlite3.connect(sqlite_path(url), timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # pages=-1: every page in one step, one read transaction: one point in time
        tables = _sqlite_tables(copy)
        recordings = [path for (path,) in copy.execute(_LIVE_RECORDINGS)]
    finally:
        copy.close()
        source.close()
    return Snapshot("sqlite", target, tables, recordings)


def sqlite_counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        return _sqlite_tables(db)
    finally:
        db.close()


def pg_tool(name: str) -> str:
    """The newest server version's client (pg_dump must not be older than the server), else the one on PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    if on_path := shutil.which(name):
        return on_path
    raise Unavailable(f"找不到 {name}：请安装 PostgreSQL 客户端（apt-get install postgresql-client）")


def pg_environ(url: str) -> dict[str, str]:
    """libpq's variables for the configured URL: the password never appears among a process's arguments."""
    parts = make_url(url)
    values = {
        "PGHOST": parts.host,
        "PGPORT": str(parts.port) if parts.port else None,
        "PGUSER": parts.username,
        "PGPASSWORD": parts.password,
        "PGDATABASE": parts.database,
    }
    return os.environ | {key: value for key, value in values.items() if value}


async def _pg_tables(conn: AsyncConnection) -> dict[str, int]:
    names = (
        await conn.execute(
            text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
            )
        )
    ).scalars()
    return {name: (await conn.execute(text(f'SELECT count(*) FROM "{name}"'))).scalar_one() for name in list(names)}


async def _run(args: list[str], url: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *args, env=pg_environ(url), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    if process.returncode:
        message = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise Unavailable(f"{Path(args[0]).name} 失败：{message[0]}")


async def pg_snapshot(url: str, target: Path) -> Snapshot:
    """pg_dump on our transaction's exported snapshot, which stays open until the dump has finished."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                snapshot_id = (await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
                tables = await _pg_tables(conn)
                recordings = list((await conn.execute(text(_LIVE_RECORDINGS))).scalars())
                dump = [pg_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot_id}", f"--file={target}"]
                await _run(dump, url)
    finally:
        await engine.dispose()
    return Snapshot("postgresql", target, tables, recordings)


async def pg_counts(url: str) -> dict[str, int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await _pg_tables(conn)
    finally:
        await engine.dispose()


async def pg_restore(url: str, dump: Path) -> None:
    """Into an empty database only: a restore never merges with or overwrites rows already there."""
    if await pg_counts(url):
        raise InvalidInput(f"目标数据库 {make_url(url).database} 不是空的：只能还原到空数据库", field="database")
    args = [pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
    await _run([*args, f"--dbname={make_url(url).database}", str(dump)], url)
