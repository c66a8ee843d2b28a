"""Duty ring groups (the hotlines): a group's last fallback is the mobile of the officer the roster has on duty now
for the group's organisation, rendered into the dialplan, and rendered again when the shift changes."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sip.dialplan import Definition
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.directory import service as directory
from switchboard.directory.models import ContactKind

log = logging.getLogger(__name__)

CHECK_SECONDS = 60.0
_MOBILE = (ContactKind.mobile,)


async def mobiles(ctx: Context, definition: Definition) -> dict[str, str]:
    """Ring group -> mobile of the first officer on duty now for the group's organisation (who has one)."""
    result: dict[str, str] = {}
    for group in definition.ring_groups:
        if not group.roster_org:
            continue
        for _, person in await directory.on_duty(ctx, group.roster_org, utcnow()):
            if found := directory.dial_numbers(person, _MOBILE):
                result[group.name] = found[0][0]
                break
    return result


async def watch(
    ctx: Context, definition: Definition, current: dict[str, str], changed: Callable[[dict[str, str]], Awaitable[None]]
) -> None:
    """Look at the roster every CHECK_SECONDS; hand `changed` the new fallbacks when a shift change moved them."""
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        try:
            now = await mobiles(ctx, definition)
            if now != current:
                current = now
                await changed(now)
                log.info("duty fallback numbers changed; dialplan reloaded")
        except Exception:
            log.exception("duty roster check failed; trying again")
