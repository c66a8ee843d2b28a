"""Writes batched per tick (switchboard/core/ticks.py) against the real database: a change reaches its row at the
next tick or when a reader settles, and a reader of one row settles only when that row has changes unwritten."""

from sqlalchemy import select

from sip.models import Call, CallState
from switchboard.core.context import Context
from switchboard.core.ticks import RowWrites


async def _calls(ctx: Context, count: int) -> list[Call]:
    calls = [
        Call(direction="outbound", targets=[], attempts=[], state=CallState.queued, created_by="t")
        for _ in range(count)
    ]
    async with ctx.db.session() as session:
        session.add_all(calls)
    return calls


async def _states(ctx: Context) -> dict[str, str]:
    async with ctx.db.reader() as session:
        return {key: state for key, state in (await session.execute(select(Call.id, Call.state))).all()}


async def test_settle_row_writes_only_when_that_row_has_changes(ctx: Context) -> None:
    writes = RowWrites(ctx.db, seconds=3600)  # no tick comes by itself: only settling writes
    first, second = await _calls(ctx, 2)
    first.state = CallState.dialing
    writes.changed(first)

    await writes.settle_row(Call, second.id)  # nothing of its own to write: the other row's change waits
    assert (await _states(ctx))[first.id] == CallState.queued

    await writes.settle_row(Call, first.id)
    assert (await _states(ctx))[first.id] == CallState.dialing

    second.state, first.state = CallState.answered, CallState.ended
    writes.changed(second)
    writes.changed(first)
    await writes.settle()
    assert await _states(ctx) == {first.id: CallState.ended, second.id: CallState.answered}
