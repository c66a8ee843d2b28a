"""Waiting for a condition, never for a while: a fixed sleep is either too short on a busy machine (a flaky
test) or too long everywhere else. `until` polls the condition itself, briefly apart, and fails after a generous
deadline with a message naming what did not happen.

    await until(lambda: channel.session.bound, timeout=10, what="the SMPP link to bind")
    found = await until(lambda: rows(ctx, warning_id), timeout=20, what="the delivery rows")  # async works too

The condition's first true(ish) value is returned, so a poll that fetches something can hand it back.
`until_sync` is the same for code that has no event loop (set-up in threads, subprocess tests).
"""

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.05  # seconds between polls: quick to notice, cheap to ask

What = str | Callable[[], str]  # a callable is asked only on failure, so it can describe the state at the end


def _timed_out(timeout: float, what: What) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g} s waiting for {what() if callable(what) else what}")


async def until(
    condition: Callable[[], T | Awaitable[T]], *, timeout: float, what: What, interval: float = INTERVAL
) -> T:
    """Poll `condition` (sync or async) until it returns a true value, and return that value; raise
    AssertionError naming `what` if it has not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what)
        await asyncio.sleep(interval)


def until_sync(condition: Callable[[], T], *, timeout: float, what: What, interval: float = INTERVAL) -> T:
    """`until` for code without an event loop: the condition is a plain function, the thread sleeps between polls."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what)
        time.sleep(interval)
    return value
