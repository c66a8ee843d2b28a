"""Call routes. Placing a call answers at once (201) with the call in `ringing_desk`; its progress follows
over WS /api/v1/events (call.dialing, call.answered, call.ended ...)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from sip.calls import CallService, Target, normalise_number
from switchboard.api.deps import Ctx, audited, require, telephony_part
from switchboard.auth.models import Principal, Role
from switchboard.calls.models import CallCreate, CallOut, TransferRequest
from switchboard.core.errors import InvalidInput, NotFound
from switchboard.directory import service as directory
from switchboard.incidents import service as incidents

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])
Dispatcher = Annotated[Principal, Depends(require(Role.duty_officer, Role.leader))]


Calls = Annotated[CallService, Depends(telephony_part("calls", ""))]


@router.post("", status_code=201, response_model=CallOut)
async def place_call(ctx: Ctx, calls: Calls, who: Dispatcher, body: CallCreate) -> CallOut:
    if body.incident_id:
        try:
            await incidents.get(ctx, body.incident_id)
        except NotFound:
            raise InvalidInput(f"事件 {body.incident_id} 不存在", field="incident_id") from None
    name = org = ""
    if body.contact_id:
        try:
            contact = await directory.get_contact(ctx, body.contact_id)
        except NotFound:
            raise InvalidInput(f"联系人 {body.contact_id} 不存在", field="contact_id") from None
        targets = [Target(number, kind) for number, kind in directory.voice_numbers(contact)]
        name, org = contact.name, contact.org_name
    else:
        targets = [Target(normalise_number(body.number or ""))]
        known = await directory.find_by_number(ctx, targets[0].number)
        if known:
            name, org = known.name, known.org_name
    call = await calls.place(
        who.username,
        targets,
        desk=body.desk,
        incident_id=body.incident_id,
        party_name=name,
        party_org=org,
        contact_id=body.contact_id,
        ring_seconds=body.ring_seconds,
    )
    await audited(ctx, who, "call.place", "call", call.id, body.model_dump(mode="json"))
    return CallOut.model_validate(call)


@router.get("", response_model=list[CallOut])
async def list_calls(
    calls: Calls,
    _: Dispatcher,
    incident_id: Annotated[str | None, Query(max_length=26)] = None,
    active: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[CallOut]:
    """Newest first; `active` keeps the calls still in progress (what the console's call panel shows)."""
    return [CallOut.model_validate(c) for c in await calls.recent(incident_id=incident_id, active=active, limit=limit)]


@router.get("/{call_id}", response_model=CallOut)
async def get_call(calls: Calls, _: Dispatcher, call_id: str) -> CallOut:
    return CallOut.model_validate(await calls.get(call_id))


@router.delete("/{call_id}", response_model=CallOut)
async def hang_up(ctx: Ctx, calls: Calls, who: Dispatcher, call_id: str) -> CallOut:
    call = await calls.hangup(who.username, call_id)
    await audited(ctx, who, "call.hangup", "call", call_id, {})
    return CallOut.model_validate(call)


@router.post("/{call_id}/transfer", response_model=CallOut)
async def transfer(ctx: Ctx, calls: Calls, who: Dispatcher, call_id: str, body: TransferRequest) -> CallOut:
    call = await calls.transfer(who.username, call_id, Target(normalise_number(body.number)))
    await audited(ctx, who, "call.transfer", "call", call_id, {"to": body.number})
    return CallOut.model_validate(call)
