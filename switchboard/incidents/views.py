"""Incident routes: record, timeline, reports upward."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from switchboard.api.deps import Ctx, DutyOfficer, Reader
from switchboard.auth import service as auth
from switchboard.core.fields import SearchText
from switchboard.incidents import service, timeline
from switchboard.incidents.document import printable, report_json
from switchboard.incidents.models import (
    IncidentCreate,
    IncidentOut,
    IncidentPage,
    IncidentUpdate,
    NoteCreate,
    ReportCreate,
    ReportDocument,
    ReportOut,
    Status,
    TimelineEntryOut,
    TimelinePage,
)

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.post("", status_code=201, response_model=IncidentOut)
async def create_incident(ctx: Ctx, who: DutyOfficer, body: IncidentCreate) -> IncidentOut:
    return IncidentOut.model_validate(await service.create(ctx, who.username, body))


@router.get("", response_model=IncidentPage)
async def list_incidents(
    ctx: Ctx,
    _: Reader,
    status: Status | None = None,
    area_code: Annotated[str | None, Query(pattern=r"^\d{2,6}$")] = None,
    q: Annotated[SearchText | None, Query()] = None,  # type: ignore[valid-type]
    cursor: Annotated[str | None, Query(max_length=26, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> IncidentPage:
    items = await service.search(ctx, status=status, area_code=area_code, q=q, before=cursor, limit=limit)
    return IncidentPage(
        items=[IncidentOut.model_validate(i) for i in items],
        next_cursor=items[-1].id if len(items) == limit else None,
    )


@router.get("/{incident_id}", response_model=IncidentOut)
async def get_incident(ctx: Ctx, _: Reader, incident_id: str) -> IncidentOut:
    return IncidentOut.model_validate(await service.get(ctx, incident_id))


@router.patch("/{incident_id}", response_model=IncidentOut)
async def update_incident(ctx: Ctx, who: DutyOfficer, incident_id: str, body: IncidentUpdate) -> IncidentOut:
    return IncidentOut.model_validate(await service.change(ctx, who.username, incident_id, body))


@router.get("/{incident_id}/timeline", response_model=TimelinePage)
async def get_timeline(
    ctx: Ctx,
    _: Reader,
    incident_id: str,
    after: Annotated[int, Query(ge=0, le=2**62, description="next_cursor of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=timeline.MAX_PAGE)] = 100,
    kind: Annotated[str | None, Query(max_length=16)] = None,
) -> TimelinePage:
    await service.get(ctx, incident_id)
    async with ctx.db.reader() as session:
        entries = await timeline.page(session, incident_id, after, limit, kind)
    names = await auth.display_names(ctx, {e.actor for e in entries if e.actor})
    items = [
        TimelineEntryOut.model_validate(e).model_copy(update={"actor_name": names.get(e.actor, "")}) for e in entries
    ]
    return TimelinePage(items=items, next_cursor=entries[-1].id if len(entries) == limit else None)


@router.post("/{incident_id}/timeline", status_code=201)
async def add_note(ctx: Ctx, who: DutyOfficer, incident_id: str, body: NoteCreate) -> dict[str, str]:
    await service.add_note(ctx, who.username, incident_id, body.text)
    return {"status": "ok"}


@router.post("/{incident_id}/reports", status_code=201, response_model=ReportOut)
async def submit_report(ctx: Ctx, who: DutyOfficer, incident_id: str, body: ReportCreate) -> ReportOut:
    return ReportOut.model_validate(await service.submit_report(ctx, who.username, incident_id, body))


@router.get(
    "/{incident_id}/reports/{report_id}",
    response_model=ReportDocument,
    responses={200: {"content": {"text/html": {}}, "description": "JSON, or the printable document with format=html"}},
)
async def get_report(
    ctx: Ctx,
    _: Reader,
    request: Request,
    incident_id: str,
    report_id: str,
    format: Literal["json", "html"] | None = None,
) -> JSONResponse | HTMLResponse:
    incident, report = await service.get_report(ctx, incident_id, report_id)
    wants_html = format == "html" or (format is None and "text/html" in request.headers.get("accept", ""))
    if wants_html:
        return HTMLResponse(await printable(ctx, incident, report))
    return JSONResponse(report_json(incident, report))
