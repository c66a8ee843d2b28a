"""The incident timeline: typed entries appended in the writer's transaction or from domain events."""

import logging
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.core.context import Context
from switchboard.core.errors import InvalidInput
from switchboard.core.events import Event
from switchboard.incidents.models import Incident, TimelineEntry

# Subjects whose events other subsystems publish and the timeline persists on their behalf. The incident's
# own entries (created, updated, note, report, deadlines) are written inside the incident's transaction.
EVENT_KINDS = {"call", "bridge", "recording", "fax", "warning", "consultation", "notice"}
KINDS = EVENT_KINDS | {"incident", "note", "report"}

MAX_PAGE = 1000
log = logging.getLogger(__name__)


async def append(
    session: AsyncSession, incident_id: str, event: Event, summary: str, refs: list[str] | None = None
) -> None:
    row = {
        "incident_id": incident_id,
        "kind": event.subject,
        "type": event.type,
        "at": event.at,
        "actor": event.actor or "",
        "summary": summary,
        "data": event.data,
        "refs": refs or [],
    }
    await session.flush()  # the entry's incident may still be pending in the session; Core does not autoflush
    await (await session.connection()).execute(insert(TimelineEntry.__table__), row)
    # Live, the event reads as its entry does, and says it is filed (the subscriber below must not file it again).
    event.data.setdefault("summary", summary)
    event.data["on_timeline"] = True


async def page(
    session: AsyncSession, incident_id: str, after: int, limit: int, kind: str | None
) -> list[TimelineEntry]:
    query = select(TimelineEntry).where(TimelineEntry.incident_id == incident_id, TimelineEntry.id > after)
    if kind:
        if kind not in KINDS:
            raise InvalidInput(f"未知的时间线类型 {kind!r}，可选: {', '.join(sorted(KINDS))}", field="kind")
        query = query.where(TimelineEntry.kind == kind)
    return list((await session.scalars(query.order_by(TimelineEntry.id).limit(limit))).all())


def subscribe(ctx: Context) -> None:
    """Persist other subsystems' events that name an incident and carry a `summary`: the publisher marks
    which of its events are the record (a call's end), as opposed to live progress (ringing, dialing).
    The bus awaits this before fan-out."""

    async def on_event(event: Event) -> None:
        if event.subject not in EVENT_KINDS or not event.incident_id or not event.data.get("summary"):
            return
        if event.data.get("on_timeline"):
            return
        async with ctx.db.session() as session:
            if await session.get(Incident, event.incident_id) is None:
                # An id naming no incident is the publisher's bug, not a reason to fail the publisher's work.
                log.warning("event %s names unknown incident %s; not on any timeline", event.type, event.incident_id)
                return
            summary = str(event.data["summary"])
            refs: list[Any] = event.data.get("refs") or []
            await append(session, event.incident_id, event, summary, [str(r) for r in refs])

    ctx.bus.subscribe(on_event)
