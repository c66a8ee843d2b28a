"""Database: SQLAlchemy 2 async over SQLite (WAL, the embedded default) or PostgreSQL.

SQLite allows one writer: write transactions start with BEGIN IMMEDIATE so that writers from other processes
(the CLI beside the server) queue on the busy timeout instead of failing mid-transaction, and writers within this
process queue on an asyncio lock first, in order, rather than in SQLite's sleeping busy handler. Read sessions stay
deferred and run beside them. Small writes that arrive together (calls placed, recordings filed) share one
transaction (`Database.together`), since each transaction holds that one writer for all its round trips.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any, TypeVar

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from switchboard.core.errors import NotFound

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_POOL = 16  # SQLite connections kept open (readers beside the one writer)

# Autoincrementing 64-bit key: SQLite only autoincrements a column declared INTEGER.
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite would otherwise hand back naive ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


Row = TypeVar("Row")
Result = TypeVar("Result")
Write = Callable[[AsyncSession], Awaitable[Result]]


async def get_or_404(
    session: AsyncSession, model: type[Row], key: str, *, what: str, field: str, lock: bool = False
) -> Row:
    """The row of `model` with primary key `key`, or a 404 saying in Chinese which `what` is missing. A row
    deleted softly (its `deleted_at` set, as recordings are) is missing too."""
    found = await session.get(model, key, with_for_update=lock or None)
    if found is None or getattr(found, "deleted_at", None) is not None:
        raise NotFound(f"{what} {key} 不存在", field=field)
    return found


class Database:
    """One engine, a writer and a reader session factory. `session_info` rides along in every session's `info`:
    what work inside a transaction needs from outside the database (the audit ledger's key and head file)."""

    def __init__(self, url: str, *, echo: bool = False, session_info: dict[str, Any] | None = None) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            # Each connection is a thread (aiosqlite) and its pragmas: readers beyond the pool kept (5 by default)
            # were opened and closed again with bursts of API reads (7 % of the server's CPU in one calls bench run).
            options.update(connect_args={"timeout": 30}, pool_size=SQLITE_POOL, max_overflow=SQLITE_POOL)
        else:
            options.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            _sqlite_pragmas(self.engine)
        info = session_info or {}
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False, info=info)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._reader = async_sessionmaker(
            self.engine.execution_options(switchboard_readonly=True), expire_on_commit=False, info=info
        )
        self._gathered: list[tuple[Write[Any], asyncio.Future[Any]]] = []
        self._committing: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed on success and rolled back on error. Its end (commit or rollback, and the
        connection's return to the pool) runs to completion even if our task is cancelled meanwhile, as shutdown
        cancels background work wherever it is: ended in our task (`session.begin()`), a cancellation cut the pool's
        reset short and SQLAlchemy logged a CancelledError trace."""
        if self._write_lock is None:
            async with self._writer.begin() as session:
                yield session
            return
        async with self._write_lock, self._writer.begin() as session:
            yield session

    async def together(self, write: Write[Result]) -> Result:
        """Run `write` in a write transaction shared with the writes that arrive while one commits (group commit),
        and return its result once committed. A write arriving when none is under way starts at once; one whose
        caller is cancelled still goes ahead (and `close` waits for it).

        Why: a transaction holds SQLite's one writer for its every round trip to the database thread; placed one
        transaction each (six round trips, 25 ms on a loop busy with calls), calls at 50/s queued a second behind
        that lock. `write` may run twice: a batch that fails is rolled back and its writes run again one by one,
        so that a bad one fails only its own caller."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._gathered.append((write, future))
        if self._committing is None:
            self._committing = asyncio.create_task(self._commit_gathered(), name="database:together")
        return await future

    async def _commit_gathered(self) -> None:
        batch: list[tuple[Write[Any], asyncio.Future[Any]]] = []
        try:
            while self._gathered:
                batch, self._gathered = self._gathered, []
                await self._commit(batch)
        except BaseException:  # cancelled (shutdown): no caller is left waiting for an answer
            for _, future in batch + self._gathered:
                future.cancel()
            self._gathered = []
            raise
        finally:
            self._committing = None

    async def _commit(self, batch: list[tuple[Write[Any], asyncio.Future[Any]]]) -> None:
        """One transaction for `batch`; if it fails, one for each of its writes."""
        try:
            async with self.session() as session:
                results = [await write(session) for write, _ in batch]
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
            else:
                for one in batch:
                    await self._commit([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """A reader whose every query sees the database as of its first one, for checks spanning many queries
        while writers carry on: PostgreSQL's REPEATABLE READ; SQLite's read transaction already is one."""
        async with self._reader() as session:
            if not self.is_sqlite:
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        if self._committing is not None:  # the writes gathered so far, first
            await asyncio.wait([self._committing])
        await self.engine.dispose()


def _settle(future: asyncio.Future[Any], result: Any = None, *, error: Exception | None = None) -> None:
    if future.done():  # its caller was cancelled meanwhile
        if error is not None:
            log.error("a write whose caller had gone failed", exc_info=error)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get("switchboard_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("switchboard").joinpath("migrations")))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
