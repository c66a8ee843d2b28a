"""Writes batched per tick: live state changes in memory at once and reaches the database in one transaction per
tick for everything that changed, instead of one transaction per change.

Why: a write transaction costs ~5-8 ms of the one event loop that also follows the engines (AMI, SMPP, ...), and
following a call or a convened leg took about ten of them; batched, a change costs a share of one statement. What
is given up: a change reaches the database up to one tick (`TICK_SECONDS`) plus one commit after it was made, so a
crash loses at most that much (the owners say what a restart then does). Readers that must see everything already
announced call `settle()` first, so what the API reads is never older than the events a console has seen.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import bindparam, inspect, update
from sqlalchemy.orm import make_transient_to_detached

from switchboard.core.db import Base, Database

log = logging.getLogger(__name__)

TICK_SECONDS = 0.05

B = TypeVar("B", bound=Base)


class Ticker:
    """Runs `flush` every `seconds`, and at once for `settle()`; flushes never overlap. A failed tick is logged and
    tried again at the next (the flush keeps what it could not write)."""

    def __init__(self, name: str, flush: Callable[[], Awaitable[None]], seconds: float = TICK_SECONDS) -> None:
        self.name, self.seconds, self._flush = name, seconds, flush
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=f"{self.name}:ticks")

    async def stop(self) -> None:
        """Stop ticking, then write what is left."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.settle()

    async def settle(self) -> None:
        """Write now everything recorded so far."""
        async with self._lock:
            await self._flush()

    async def flushed(self) -> None:
        """Wait until a flush under way (if any) has written its batch, without starting another."""
        async with self._lock:
            pass

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            try:
                await self.settle()
            except Exception:
                log.exception("%s: could not write this tick; trying again at the next", self.name)


class RowWrites:
    """Rows whose live state changed in memory since the last tick. Each is written whole, as it is at the flush,
    by one executemany UPDATE per table in one transaction; the rows were inserted (durably, before anyone was
    told of them) by their owners."""

    def __init__(self, db: Database, seconds: float = TICK_SECONDS) -> None:
        self.db = db
        self._rows: dict[tuple[type[Base], Any], Base] = {}
        self.ticker = Ticker("row writes", self.flush, seconds)

    def changed(self, row: Base) -> None:
        self._rows[(type(row), inspect(row).identity)] = row

    async def settle(self) -> None:
        await self.ticker.settle()

    async def settle_row(self, model: type[Base], key: Any) -> None:
        """`settle()` if this row has changes not yet written: reading one row that has none (a call ended a tick
        ago, its recording being filed) need not write everyone else's in a transaction of its own."""
        await self.ticker.flushed()  # its last change may be in a batch being written (or put back by a failed one)
        if (model, (key,)) in self._rows:
            await self.settle()

    async def flush(self) -> None:
        if not self._rows:
            return
        rows, self._rows = self._rows, {}
        by_table: dict[type[Base], list[dict[str, Any]]] = {}
        for (model, _), row in rows.items():  # values taken now: a change made while this writes waits for the next
            by_table.setdefault(model, []).append(_values(row))
        try:
            async with self.db.session() as session:
                connection = await session.connection()
                for model, values in by_table.items():
                    await connection.execute(_statement(model), values)
        except Exception:
            self._rows = rows | self._rows
            raise


def with_defaults(model: type[Base], values: dict[str, Any]) -> dict[str, Any]:
    """`values` for every column of `model`: one left out takes its Python-side default, as the ORM would give it
    on insert, or None. For rows inserted in one executemany whose live copies need every value."""
    out = {}
    for column in model.__table__.columns:
        if column.key in values:
            out[column.key] = values[column.key]
        elif column.default is None:
            out[column.key] = None
        else:
            default = column.default
            out[column.key] = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
    return out


def live_row(model: type[B], values: dict[str, Any]) -> B:
    """A row its owner inserted (`values`, every column), for its live state to carry on in: detached, so that
    `RowWrites.changed` knows it by its key, and apart from `values`, which stay as written for whoever answers
    with them."""
    row = model(**{key: list(value) if isinstance(value, list) else value for key, value in values.items()})
    make_transient_to_detached(row)
    return row


_STATEMENTS: dict[type[Base], Any] = {}


def _statement(model: type[Base]) -> Any:
    """UPDATE <table> SET every column WHERE primary key, with b_-prefixed parameters (a column's own name is
    taken by the SET clause)."""
    if model not in _STATEMENTS:
        mapper = inspect(model)
        (key,) = mapper.primary_key
        columns = {a.key: a.columns[0] for a in mapper.column_attrs if a.columns[0] is not key}
        values = {c.name: bindparam(f"b_{name}", type_=c.type) for name, c in columns.items()}
        _STATEMENTS[model] = update(model.__table__).where(key == bindparam("b__key")).values(values)
    return _STATEMENTS[model]


def _values(row: Base) -> dict[str, Any]:
    mapper = inspect(type(row))
    (key,) = mapper.primary_key
    values = {f"b_{a.key}": getattr(row, a.key) for a in mapper.column_attrs if a.columns[0] is not key}
    return values | {"b__key": inspect(row).identity[0]}
