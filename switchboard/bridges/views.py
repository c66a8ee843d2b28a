"""Bridge routes. Convening answers 202 at once with the roll call written; joins, leaves, talking and mute state
follow over WS /api/v1/events (bridge.joined, bridge.left, bridge.talking, bridge.muted ...). Moderator controls
act on Asterisk (Confbridge* AMI actions) and are audited."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from conference.bridges.service import BridgeService, Invitee
from sip.calls import normalise_number
from switchboard.api.deps import Ctx, Reader, audited, require, telephony_part
from switchboard.auth.models import Principal, Role
from switchboard.bridges.models import (
    BridgeOut,
    ConveneRequest,
    LockRequest,
    MemberOut,
    MuteRequest,
    ParticipantOut,
    PullRequest,
    RecordingRequest,
    RollCallOut,
    SessionOut,
)
from switchboard.core.context import Context
from switchboard.core.errors import Conflict, InvalidInput, NotFound
from switchboard.directory import service as directory
from switchboard.incidents import service as incidents

router = APIRouter(prefix="/api/v1/bridges", tags=["bridges"])
Moderator = Annotated[Principal, Depends(require(Role.duty_officer, Role.leader))]


Bridges = Annotated[BridgeService, Depends(telephony_part("bridges", ""))]


async def _bridge_out(bridges: BridgeService, number: str) -> BridgeOut:
    bridge = bridges.bridge(number)
    room = bridges.rooms.get(number)
    session = await bridges.current_session(number)
    return BridgeOut(
        number=bridge.number,
        name=bridge.name,
        max_members=bridge.max_members,
        record=bridge.record,
        pin=bridge.pin,
        moderator_pin=bridge.moderator_pin,
        active=room is not None,
        locked=bool(room and room.locked),
        recording=bool(room and room.recording),
        members=[MemberOut.model_validate(m.out()) for m in room.members.values()] if room else [],
        session=SessionOut.model_validate(session) if session else None,
    )


@router.get("", response_model=list[BridgeOut])
async def list_bridges(bridges: Bridges, _: Moderator) -> list[BridgeOut]:
    """Every bridge of the dialplan with its PINs (officers read them out to participants) and live state."""
    return [await _bridge_out(bridges, number) for number in bridges.bridges]


@router.get("/{number}", response_model=BridgeOut)
async def get_bridge(bridges: Bridges, _: Moderator, number: str) -> BridgeOut:
    return await _bridge_out(bridges, number)


@router.post("/{number}/convene", status_code=202, response_model=RollCallOut)
async def convene(ctx: Ctx, bridges: Bridges, who: Moderator, number: str, body: ConveneRequest) -> RollCallOut:
    bridges.bridge(number)
    if body.incident_id:
        try:
            await incidents.get(ctx, body.incident_id)
        except NotFound:
            raise InvalidInput(f"事件 {body.incident_id} 不存在", field="incident_id") from None
    invitees = await _invitees(ctx, body)
    session, rows = await bridges.convene(
        who.username,
        number,
        invitees,
        incident_id=body.incident_id,
        rounds=body.rounds,
        ring_seconds=body.ring_seconds,
    )
    await audited(ctx, who, "bridge.convene", "bridge", number, body.model_dump(mode="json") | {"session": session.id})
    return RollCallOut(
        session=SessionOut.model_validate(session), participants=[ParticipantOut.model_validate(r) for r in rows]
    )


async def _invitees(ctx: Context, body: ConveneRequest) -> list[Invitee]:
    """Group members, contacts and raw numbers, each person once (the first mention wins)."""
    contacts = []
    if body.group_id:
        try:
            contacts += await directory.group_members(ctx, body.group_id)
        except NotFound:
            raise InvalidInput(f"群组 {body.group_id} 不存在", field="group_id") from None
    for i, contact_id in enumerate(body.contact_ids):
        try:
            contacts.append(await directory.get_contact(ctx, contact_id))
        except NotFound:
            raise InvalidInput(f"联系人 {contact_id} 不存在", field=f"contact_ids.{i}") from None
    invitees, seen = [], set()
    for contact in contacts:
        if contact.id not in seen:
            seen.add(contact.id)
            numbers = [number for number, _ in directory.voice_numbers(contact)]
            invitees.append(Invitee(contact.name, numbers, contact.org_name, contact.id))
    for i, raw in enumerate(body.numbers):
        number = normalise_number(raw, field=f"numbers.{i}")
        known = await directory.find_by_number(ctx, number)
        if known and known.id in seen:
            continue
        invitees.append(
            Invitee(known.name if known else "", [number], known.org_name if known else "", known and known.id)
        )
    return invitees


@router.get("/{number}/roll-call", response_model=RollCallOut)
async def roll_call(
    bridges: Bridges, _: Reader, number: str, session_id: Annotated[str | None, Query(max_length=26)] = None
) -> RollCallOut:
    """Who was convened, who joined and when, who never answered and why: the current session, or `session_id`."""
    bridges.bridge(number)
    session = await bridges.get_session(session_id) if session_id else await bridges.current_session(number)
    if session is None or session.bridge != number:
        sessions = await bridges.sessions(number, limit=1)
        if session_id or not sessions:
            raise NotFound(f"会议 {number} 没有这次会议记录", field="session_id")
        session = sessions[0]
    rows = await bridges.roll_call(session.id)
    return RollCallOut(
        session=SessionOut.model_validate(session), participants=[ParticipantOut.model_validate(r) for r in rows]
    )


@router.post("/{number}/participants/{participant_id}/mute", status_code=204)
async def mute_one(
    ctx: Ctx, bridges: Bridges, who: Moderator, number: str, participant_id: str, body: MuteRequest
) -> None:
    await bridges.mute(who.username, number, participant_id, body.muted)
    await audited(ctx, who, "bridge.mute", "bridge", number, {"participant_id": participant_id, "muted": body.muted})


@router.post("/{number}/mute", status_code=204)
async def mute_all(ctx: Ctx, bridges: Bridges, who: Moderator, number: str, body: MuteRequest) -> None:
    """Every participant except the moderators."""
    await bridges.mute(who.username, number, None, body.muted)
    await audited(ctx, who, "bridge.mute_all", "bridge", number, {"muted": body.muted})


@router.delete("/{number}/participants/{participant_id}", status_code=204)
async def kick(ctx: Ctx, bridges: Bridges, who: Moderator, number: str, participant_id: str) -> None:
    await bridges.kick(who.username, number, participant_id)
    await audited(ctx, who, "bridge.kick", "bridge", number, {"participant_id": participant_id})


@router.post("/{number}/lock", status_code=204)
async def lock(ctx: Ctx, bridges: Bridges, who: Moderator, number: str, body: LockRequest) -> None:
    await bridges.lock(who.username, number, body.locked)
    await audited(ctx, who, "bridge.lock", "bridge", number, {"locked": body.locked})


@router.post("/{number}/recording", status_code=204)
async def recording(ctx: Ctx, bridges: Bridges, who: Moderator, number: str, body: RecordingRequest) -> None:
    await bridges.record(who.username, number, body.recording)
    await audited(ctx, who, "bridge.recording", "bridge", number, {"recording": body.recording})


@router.post("/{number}/pull", status_code=202, response_model=list[ParticipantOut])
async def pull(
    ctx: Ctx, bridges: Bridges, who: Moderator, request: Request, number: str, body: PullRequest
) -> list[ParticipantOut]:
    """Both legs of a live dispatch call into the bridge (AMI Redirect with ExtraChannel)."""
    calls = request.app.state.telephony.calls
    call = await calls.get(body.call_id)
    if call.state not in ("answered", "held"):
        raise Conflict("只有通话中的呼叫可以转入会议", field="call_id")
    legs = []
    if call.desk_channel:
        legs.append((call.desk_channel, f"调度台 {call.desk}" if call.desk else "调度台", call.desk or ""))
    if call.party_channel:
        number_used = call.attempts[-1]["number"] if call.attempts else call.targets[0]["number"]
        legs.append((call.party_channel, call.party_name, number_used))
    rows = await bridges.pull(who.username, number, legs, incident_id=call.incident_id)
    await audited(ctx, who, "bridge.pull", "bridge", number, {"call_id": call.id})
    return [ParticipantOut.model_validate(r) for r in rows]
