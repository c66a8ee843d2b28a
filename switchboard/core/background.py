"""Work a handler starts and does not wait for (filing a recording once its writer closed it), kept referenced
until done and waited for at shutdown, so that nothing started is dropped half-way."""

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str | None = None) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for everything started so far (its failures are logged, not raised)."""
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task

    async def cancel(self) -> None:
        """Stop everything started so far and wait until it has stopped (for work not worth finishing at shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
