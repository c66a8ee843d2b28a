"""Retention on a schedule: every `[recordings] retention_check_seconds` the recordings older than
`retention_days` are deleted (each deletion audited by the store), except those on hold and those of incidents
still open, whose recordings the inquiry may yet need."""

import asyncio
import logging

from sqlalchemy import select

from recording.store import RecordingStore
from switchboard.core.context import Context
from switchboard.incidents.models import Incident, Status

log = logging.getLogger(__name__)


async def purge_expired(ctx: Context, store: RecordingStore) -> int:
    async with ctx.db.reader() as session:
        open_incidents = set(await session.scalars(select(Incident.id).where(Incident.status != Status.closed)))
    return await store.purge(ctx.settings.recordings.retention_days, open_incidents)


async def watch(ctx: Context, store: RecordingStore) -> None:
    while True:
        try:
            if purged := await purge_expired(ctx, store):
                log.info("retention deleted %d expired recordings", purged)
        except Exception:  # a database hiccup must not end the schedule for good
            log.exception("recording retention failed; trying again")
        await asyncio.sleep(ctx.settings.recordings.retention_check_seconds)
