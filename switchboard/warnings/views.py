"""Warning routes: compose, submit, approve (a second person), issue, update, cancel; CAP, preview, deliveries."""

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from broadcast import render
from broadcast.capxml import to_xml
from broadcast.models import (
    CHANNEL_NAMES,
    DELIVERY_STATE_NAMES,
    Delivery,
    DeliveryState,
    PublicWarning,
    WarningContent,
    WarningState,
)
from broadcast.workflow import alert_of, check_content
from switchboard.api.deps import Ctx, Outboxes, Reader, require
from switchboard.auth.models import Principal, Role
from switchboard.auth.service import display_names
from switchboard.core.db import utcnow
from switchboard.core.errors import Conflict
from switchboard.warnings import flows, progress
from switchboard.warnings.links import trouble
from switchboard.warnings.models import (
    CancelOut,
    ChannelState,
    DeliveryOut,
    DeliveryReport,
    IssueOut,
    Preview,
    Progress,
    Rendering,
    Stuck,
    WarningCreate,
    WarningOut,
)

router = APIRouter(prefix="/api/v1/warnings", tags=["warnings"])
AlertOfficer = Annotated[Principal, Depends(require(Role.alert_officer))]
Approver = Annotated[Principal, Depends(require(Role.approver))]
Canceller = Annotated[Principal, Depends(require(Role.alert_officer, Role.approver))]
CAP_TYPE = "application/cap+xml"


@router.post("", status_code=201, response_model=WarningOut)
async def create_warning(ctx: Ctx, who: AlertOfficer, body: WarningCreate) -> WarningOut:
    content = WarningContent.model_validate(body.model_dump(exclude={"incident_id"}))
    return WarningOut.model_validate(await flows.create(ctx, who.username, body.incident_id, content))


@router.get("", response_model=list[WarningOut])
async def list_warnings(
    ctx: Ctx,
    _: Reader,
    state: WarningState | None = None,
    incident_id: Annotated[str | None, Query(max_length=26)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[WarningOut]:
    """Newest first: the alert office's list and the approver's queue (state=submitted)."""
    return await _named(ctx, await flows.listed(ctx, state, incident_id, limit))


@router.get("/channels", response_model=list[ChannelState])
async def channel_states(_: Reader, outbox: Outboxes) -> list[ChannelState]:
    """Every channel a warning can use, whether it is configured and whether it can carry deliveries now."""
    links = outbox.health()
    return [
        ChannelState(
            channel=channel,
            name=name,
            configured=channel in links,
            ready=trouble(channel, links) is None,
            trouble=trouble(channel, links) or "",
        )
        for channel, name in CHANNEL_NAMES.items()
    ]


@router.get("/deliveries-by-channel", response_model=dict[str, dict[str, int]])
async def deliveries_by_channel(
    ctx: Ctx, _: Reader, hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24
) -> dict[str, dict[str, int]]:
    """Channel -> state -> deliveries of the warnings issued in the last `hours`: the dashboard's chart."""
    return await flows.deliveries_by_channel(ctx, utcnow() - timedelta(hours=hours))


@router.post("/preview", response_model=Preview)
async def preview_content(ctx: Ctx, _: AlertOfficer, body: WarningContent) -> Preview:
    """The composer's live preview: every channel's rendering of content not yet saved, with the SMS parts."""
    check_content(body)
    draft = PublicWarning(msg_type="Alert", colour=body.colour, content=body.model_dump(mode="json"))
    return _preview(ctx, draft)


@router.get("/{warning_id}", response_model=WarningOut)
async def get_warning(ctx: Ctx, _: Reader, warning_id: str) -> WarningOut:
    [out] = await _named(ctx, [await flows.get(ctx, warning_id)])
    return out


async def _named(ctx: Ctx, warnings: list[PublicWarning]) -> list[WarningOut]:
    """The warnings with the names of the people who drafted, submitted, approved, issued and cancelled them."""
    people = {getattr(w, f"{step}_by") for w in warnings for step in _STEPS} - {None}
    names = await display_names(ctx, people)
    return [WarningOut.model_validate(w).model_copy(update={"names": names}) for w in warnings]


_STEPS = ("created", "submitted", "approved", "issued", "cancelled")


@router.post("/{warning_id}/submit", response_model=WarningOut)
async def submit_warning(ctx: Ctx, who: AlertOfficer, warning_id: str) -> WarningOut:
    return WarningOut.model_validate(await flows.submit(ctx, who.username, warning_id))


@router.post("/{warning_id}/approve", response_model=WarningOut)
async def approve_warning(ctx: Ctx, who: Approver, warning_id: str) -> WarningOut:
    """Approval by a second person: whoever drafted or submitted the warning is refused (403)."""
    return WarningOut.model_validate(await flows.approve(ctx, who.username, warning_id))


@router.post("/{warning_id}/issue", response_model=IssueOut)
async def issue_warning(ctx: Ctx, outbox: Outboxes, who: AlertOfficer, warning_id: str) -> IssueOut:
    """Answers once the CAP identifier and every delivery row are committed; the outbox sends from there.
    Refused (409) while a channel the warning needs is not configured or its link is down."""
    warning, count = await flows.issue(ctx, who.username, warning_id, outbox.health(), outbox)
    return IssueOut.model_validate(WarningOut.model_validate(warning).model_dump() | {"deliveries": count})


@router.post("/{warning_id}/update", status_code=201, response_model=WarningOut)
async def update_warning(ctx: Ctx, who: AlertOfficer, warning_id: str, body: WarningContent) -> WarningOut:
    """A draft CAP Update replacing the issued warning; it is submitted, approved and issued like the first."""
    return WarningOut.model_validate(await flows.update(ctx, who.username, warning_id, body))


@router.post("/{warning_id}/cancel", response_model=CancelOut)
async def cancel_warning(ctx: Ctx, outbox: Outboxes, who: Canceller, warning_id: str) -> CancelOut:
    """Issued: the CAP Cancel goes to whoever may have had it, and the directory groups' confirmation stops."""
    result = await flows.cancel(ctx, who.username, warning_id, outbox)
    return CancelOut(
        warning=WarningOut.model_validate(result.warning),
        notice=WarningOut.model_validate(result.notice) if result.notice else None,
        retired=result.retired,
        notices=result.notices,
    )


@router.get(
    "/{warning_id}/cap",
    response_class=Response,
    responses={200: {"content": {CAP_TYPE: {}}, "description": "The CAP 1.2 document, schema-valid"}},
)
async def get_cap(ctx: Ctx, _: Reader, warning_id: str) -> Response:
    warning = await flows.get(ctx, warning_id)
    if warning.state not in (WarningState.issued, WarningState.cancelled) or not warning.identifier:
        raise Conflict("预警尚未发布，还没有 CAP 文档", field="state")
    return Response(to_xml(alert_of(warning)), media_type=CAP_TYPE)


@router.post("/{warning_id}/preview", response_model=Preview)
async def preview_warning(ctx: Ctx, _: Canceller, warning_id: str) -> Preview:
    """Every channel's rendering, with the SMS segment count, before the warning is issued."""
    warning = await flows.get(ctx, warning_id)
    return _preview(ctx, warning)


def _preview(ctx: Ctx, warning: PublicWarning) -> Preview:
    renderings = render.render_all(warning, sms_parts=ctx.settings.channels.sms_max_parts)
    return Preview(renderings=[Rendering.model_validate(r, from_attributes=True) for r in renderings])


@router.get(
    "/{warning_id}/deliveries",
    response_model=DeliveryReport,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or every row as CSV with format=csv"}},
)
async def get_deliveries(
    ctx: Ctx,
    outbox: Outboxes,
    _: Reader,
    warning_id: str,
    format: Literal["json", "csv"] = "json",
    channel: Annotated[str | None, Query(max_length=32)] = None,
    state: DeliveryState | None = None,
    q: Annotated[str, Query(max_length=100, description="part of the address or of the person's name")] = "",
    cursor: Annotated[str | None, Query(max_length=26, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> DeliveryReport | Response:
    """Per-recipient rows with the filters, counts of every row, and why the unsettled ones wait."""
    filters = {"channel": channel, "state": state, "search": q}
    if format == "csv":
        _, rows, names = await flows.deliveries(ctx, warning_id, after=None, limit=None, **filters)
        headers = {"Content-Disposition": f'attachment; filename="deliveries-{warning_id}.csv"'}
        return Response(flows.deliveries_csv(rows, names), media_type="text/csv; charset=utf-8", headers=headers)
    counts, rows, names = await flows.deliveries(ctx, warning_id, after=cursor, limit=limit, **filters)
    warning = await flows.get(ctx, warning_id)
    return DeliveryReport(
        counts=counts,
        items=[_delivery(row, names) for row in rows],
        next_cursor=rows[-1].id if len(rows) == limit else None,
        stuck=[Stuck.model_validate(s) for s in await progress.stuck(ctx, warning_id, outbox.health())],
        completed_at=warning.completed_at,
    )


def _delivery(row: Delivery, names: dict[str, str]) -> DeliveryOut:
    return DeliveryOut(
        **{name: getattr(row, name) for name in _DELIVERY_COLUMNS},
        name=names.get(row.recipient, ""),
        channel_name=CHANNEL_NAMES.get(row.channel, row.channel),
        state_name=DELIVERY_STATE_NAMES[DeliveryState(row.state)],
    )


_DELIVERY_COLUMNS = DeliveryOut.model_fields.keys() - {"name", "channel_name", "state_name"}


@router.get("/{warning_id}/progress", response_model=Progress)
async def get_progress(ctx: Ctx, _: Reader, warning_id: str) -> Progress:
    """Each channel's pending/sent/delivered/failed over time: the console's delivery chart."""
    warning = await flows.get(ctx, warning_id)
    return Progress(series=await progress.series(ctx, warning), completed_at=warning.completed_at)
