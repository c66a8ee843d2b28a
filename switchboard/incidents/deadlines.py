"""The background watch that fires 初报 deadline events."""

import asyncio
import logging

from switchboard.core.context import Context
from switchboard.incidents.service import check_deadlines

log = logging.getLogger(__name__)


async def watch(ctx: Context) -> None:
    while True:
        try:
            await check_deadlines(ctx)
        except Exception:  # a database hiccup must not end the watch for good
            log.exception("report deadline check failed; trying again")
        await asyncio.sleep(ctx.settings.incidents.deadline_check_seconds)
