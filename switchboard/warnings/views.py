"""Warning routes: compose, submit, approve (a second person), issue, update, cancel; CAP, preview, deliveries."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from broadcast import render
from broadcast.capxml import to_xml
from broadcast.models import WarningContent, WarningState
from broadcast.workflow import alert_of
from switchboard.api.deps import Ctx, Reader, require
from switchboard.auth.models import Principal, Role
from switchboard.core.errors import Conflict
from switchboard.warnings import flows
from switchboard.warnings.models import (
    CancelOut,
    DeliveryOut,
    DeliveryReport,
    IssueOut,
    Preview,
    Rendering,
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


@router.get("/{warning_id}", response_model=WarningOut)
async def get_warning(ctx: Ctx, _: Reader, warning_id: str) -> WarningOut:
    return WarningOut.model_validate(await flows.get(ctx, warning_id))


@router.post("/{warning_id}/submit", response_model=WarningOut)
async def submit_warning(ctx: Ctx, who: AlertOfficer, warning_id: str) -> WarningOut:
    return WarningOut.model_validate(await flows.submit(ctx, who.username, warning_id))


@router.post("/{warning_id}/approve", response_model=WarningOut)
async def approve_warning(ctx: Ctx, who: Approver, warning_id: str) -> WarningOut:
    """Approval by a second person: whoever drafted or submitted the warning is refused (403)."""
    return WarningOut.model_validate(await flows.approve(ctx, who.username, warning_id))


@router.post("/{warning_id}/issue", response_model=IssueOut)
async def issue_warning(ctx: Ctx, who: AlertOfficer, warning_id: str) -> IssueOut:
    """Answers once the CAP identifier and every delivery row are committed; the outbox sends from there."""
    warning, count = await flows.issue(ctx, who.username, warning_id)
    return IssueOut.model_validate(WarningOut.model_validate(warning).model_dump() | {"deliveries": count})


@router.post("/{warning_id}/update", status_code=201, response_model=WarningOut)
async def update_warning(ctx: Ctx, who: AlertOfficer, warning_id: str, body: WarningContent) -> WarningOut:
    """A draft CAP Update replacing the issued warning; it is submitted, approved and issued like the first."""
    return WarningOut.model_validate(await flows.update(ctx, who.username, warning_id, body))


@router.post("/{warning_id}/cancel", response_model=CancelOut)
async def cancel_warning(ctx: Ctx, who: Canceller, warning_id: str) -> CancelOut:
    result = await flows.cancel(ctx, who.username, warning_id)
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
    return Preview(renderings=[Rendering.model_validate(r, from_attributes=True) for r in render.render_all(warning)])


@router.get(
    "/{warning_id}/deliveries",
    response_model=DeliveryReport,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or every row as CSV with format=csv"}},
)
async def get_deliveries(
    ctx: Ctx,
    _: Reader,
    warning_id: str,
    format: Literal["json", "csv"] = "json",
    cursor: Annotated[str | None, Query(max_length=26, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> DeliveryReport | Response:
    if format == "csv":
        _, rows = await flows.deliveries(ctx, warning_id, after=None, limit=None)
        headers = {"Content-Disposition": f'attachment; filename="deliveries-{warning_id}.csv"'}
        return Response(flows.deliveries_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
    counts, rows = await flows.deliveries(ctx, warning_id, after=cursor, limit=limit)
    return DeliveryReport(
        counts=counts,
        items=[DeliveryOut.model_validate(r) for r in rows],
        next_cursor=rows[-1].id if len(rows) == limit else None,
    )
