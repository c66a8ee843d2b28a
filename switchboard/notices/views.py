"""Notice routes: issue one (duty officer or leader), list them, and the confirmation board (JSON or CSV)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from switchboard.api.deps import Ctx, Officer, Outboxes, Reader
from switchboard.notices import flows
from switchboard.notices.models import Board, Issued, NoticeCreate, NoticeOut, NoticeState

router = APIRouter(prefix="/api/v1/notices", tags=["notices"])


@router.post("", status_code=201, response_model=Issued)
async def issue_notice(ctx: Ctx, who: Officer, outbox: Outboxes, body: NoticeCreate) -> Issued:
    """Recipients (contacts, groups' members, bare numbers) on `channels`, confirmation asked unless `confirm` is
    false, escalated by the `[notices] policies` entry named `policy`. Every delivery is written before the 201."""
    issued = await flows.issue(ctx, who.username, body, outbox.health())
    outbox.wake()
    return issued


@router.get("", response_model=list[NoticeOut])
async def list_notices(
    ctx: Ctx,
    _: Reader,
    incident_id: Annotated[str | None, Query(max_length=26)] = None,
    state: NoticeState | None = None,
    warning_id: Annotated[str | None, Query(max_length=26, description="a warning's directory groups")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NoticeOut]:
    """Newest first."""
    found = await flows.listed(ctx, incident_id, state, limit, warning_id=warning_id)
    return [NoticeOut.model_validate(n) for n in found]


@router.get("/{notice_id}", response_model=NoticeOut)
async def get_notice(ctx: Ctx, _: Reader, notice_id: str) -> NoticeOut:
    return NoticeOut.model_validate(await flows.get(ctx, notice_id))


@router.get(
    "/{notice_id}/confirmations",
    response_model=Board,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or the board as CSV with format=csv"}},
)
async def confirmations(
    ctx: Ctx, _: Reader, notice_id: str, format: Literal["json", "csv"] = "json"
) -> Board | Response:
    """Each recipient's state, confirming channel, address and time, attempts and tier; counts; once complete,
    who never confirmed and why. Live changes arrive as notice.* events."""
    board = await flows.board(ctx, notice_id)
    if format == "csv":
        headers = {"Content-Disposition": f'attachment; filename="confirmations-{notice_id}.csv"'}
        return Response(flows.board_csv(board), media_type="text/csv; charset=utf-8", headers=headers)
    return board
