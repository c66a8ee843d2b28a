"""Call routes. Placing a call answers at once (201) with the call in `ringing_desk`; its progress follows
over WS /api/v1/events (call.dialing, call.answered, call.ended ...)."""

from typing import Annotated

from fastapi import APIRouter, Query

from switchboard.api.deps import Calls, Ctx, Officer, Recordings
from switchboard.calls import flows
from switchboard.calls.models import AttachRequest, CallCreate, CallOut, HoldRequest, TransferRequest

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])


@router.post("", status_code=201, response_model=CallOut)
async def place_call(ctx: Ctx, calls: Calls, who: Officer, body: CallCreate) -> CallOut:
    return CallOut.model_validate(await flows.place(ctx, calls, who.username, body))


@router.get("", response_model=list[CallOut])
async def list_calls(
    calls: Calls,
    _: Officer,
    incident_id: Annotated[str | None, Query(max_length=26)] = None,
    active: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[CallOut]:
    """Newest first; `active` keeps the calls still in progress (what the console's call panel shows)."""
    return [CallOut.model_validate(c) for c in await calls.recent(incident_id=incident_id, active=active, limit=limit)]


@router.get("/{call_id}", response_model=CallOut)
async def get_call(calls: Calls, _: Officer, call_id: str) -> CallOut:
    return CallOut.model_validate(await calls.get(call_id))


@router.delete("/{call_id}", response_model=CallOut)
async def hang_up(ctx: Ctx, calls: Calls, who: Officer, call_id: str) -> CallOut:
    return CallOut.model_validate(await flows.hang_up(ctx, calls, who.username, call_id))


@router.post("/{call_id}/incident", response_model=CallOut)
async def attach(
    ctx: Ctx, calls: Calls, recordings: Recordings, who: Officer, call_id: str, body: AttachRequest
) -> CallOut:
    """File the call (and its recording) under an incident: 新建事件 or 关联事件 from the incoming-call pop-up."""
    return CallOut.model_validate(await flows.attach(ctx, calls, recordings, who.username, call_id, body.incident_id))


@router.post("/{call_id}/hold", response_model=CallOut)
async def hold(ctx: Ctx, calls: Calls, who: Officer, call_id: str, body: HoldRequest) -> CallOut:
    """Put the far party on hold (they hear a hold tone, the desk silence), or resume the conversation."""
    return CallOut.model_validate(await flows.hold(ctx, calls, who.username, call_id, body.held))


@router.post("/{call_id}/transfer", response_model=CallOut)
async def transfer(ctx: Ctx, calls: Calls, who: Officer, call_id: str, body: TransferRequest) -> CallOut:
    return CallOut.model_validate(await flows.transfer(ctx, calls, who.username, call_id, body.number))
