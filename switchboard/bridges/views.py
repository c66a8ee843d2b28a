"""Bridge routes. Convening answers 202 at once with the roll call written; joins, leaves, talking and mute state
follow over WS /api/v1/events (bridge.joined, bridge.left, bridge.talking, bridge.muted ...). Moderator controls
act on Asterisk (Confbridge* AMI actions) and are audited."""

from typing import Annotated

from fastapi import APIRouter, Query

from conference.bridges.service import BridgeService
from switchboard.api.deps import Bridges, Calls, Ctx, Officer, Reader
from switchboard.bridges import flows
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
from switchboard.core.errors import NotFound

router = APIRouter(prefix="/api/v1/bridges", tags=["bridges"])


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
async def list_bridges(bridges: Bridges, _: Officer) -> list[BridgeOut]:
    """Every bridge of the dialplan with its PINs (officers read them out to participants) and live state."""
    return [await _bridge_out(bridges, number) for number in bridges.bridges]


@router.get("/{number}", response_model=BridgeOut)
async def get_bridge(bridges: Bridges, _: Officer, number: str) -> BridgeOut:
    return await _bridge_out(bridges, number)


@router.post("/{number}/convene", status_code=202, response_model=RollCallOut)
async def convene(ctx: Ctx, bridges: Bridges, who: Officer, number: str, body: ConveneRequest) -> RollCallOut:
    session, rows = await flows.convene(ctx, bridges, who.username, number, body)
    return RollCallOut(
        session=SessionOut.model_validate(session), participants=[ParticipantOut.model_validate(r) for r in rows]
    )


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
    ctx: Ctx, bridges: Bridges, who: Officer, number: str, participant_id: str, body: MuteRequest
) -> None:
    await flows.mute(ctx, bridges, who.username, number, participant_id, body.muted)


@router.post("/{number}/mute", status_code=204)
async def mute_all(ctx: Ctx, bridges: Bridges, who: Officer, number: str, body: MuteRequest) -> None:
    """Every participant except the moderators."""
    await flows.mute(ctx, bridges, who.username, number, None, body.muted)


@router.delete("/{number}/participants/{participant_id}", status_code=204)
async def kick(ctx: Ctx, bridges: Bridges, who: Officer, number: str, participant_id: str) -> None:
    await flows.kick(ctx, bridges, who.username, number, participant_id)


@router.post("/{number}/end", status_code=204)
async def end(ctx: Ctx, bridges: Bridges, who: Officer, number: str) -> None:
    """Stop convening and take everyone out of the bridge."""
    await flows.end(ctx, bridges, who.username, number)


@router.post("/{number}/lock", status_code=204)
async def lock(ctx: Ctx, bridges: Bridges, who: Officer, number: str, body: LockRequest) -> None:
    await flows.lock(ctx, bridges, who.username, number, body.locked)


@router.post("/{number}/recording", status_code=204)
async def recording(ctx: Ctx, bridges: Bridges, who: Officer, number: str, body: RecordingRequest) -> None:
    await flows.record(ctx, bridges, who.username, number, body.recording)


@router.post("/{number}/pull", status_code=202, response_model=list[ParticipantOut])
async def pull(
    ctx: Ctx, bridges: Bridges, calls: Calls, who: Officer, number: str, body: PullRequest
) -> list[ParticipantOut]:
    """Both legs of a live dispatch call into the bridge (AMI Redirect with ExtraChannel)."""
    rows = await flows.pull(ctx, bridges, calls, who.username, number, body.call_id)
    return [ParticipantOut.model_validate(r) for r in rows]
