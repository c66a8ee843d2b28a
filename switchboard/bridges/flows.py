"""Bridge flows: each one user-visible action of a moderator, across the directory, the incident record, dispatch
calls and ConfBridge. Controls act on Asterisk at once and are audited after it accepted them."""

from typing import Any

from conference.bridges.models import BridgeSession
from conference.bridges.service import BridgeService, Invitee
from sip.calls import CallService
from sip.models import Call, CallState
from switchboard.bridges.models import ConveneRequest
from switchboard.core import numbers
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.core.errors import Conflict
from switchboard.directory import service as directory
from switchboard.directory.models import ContactOut
from switchboard.incidents import service as incidents


async def convene(
    ctx: Context, bridges: BridgeService, actor: str, number: str, request: ConveneRequest
) -> tuple[BridgeSession, list[dict[str, Any]]]:
    """Dial everyone into bridge `number` at once; the roll call is written before this returns."""
    bridges.bridge(number)
    await incidents.filed_under(ctx, request.incident_id)
    session, rows = await bridges.convene(
        actor,
        number,
        await _invitees(ctx, request),
        incident_id=request.incident_id,
        rounds=request.rounds,
        ring_seconds=request.ring_seconds,
    )
    detail = request.model_dump(mode="json") | {"session": session.id}
    await audit.record_alone(ctx, actor, "bridge.convene", "bridge", number, detail)
    return session, rows


async def _invitees(ctx: Context, request: ConveneRequest) -> list[Invitee]:
    """Group members, contacts and raw numbers, each person once (the first mention wins)."""
    contacts: list[ContactOut] = []
    if request.group_id:
        contacts += await directory.group_members(ctx, request.group_id, field="group_id")
    for i, contact_id in enumerate(request.contact_ids):
        contacts.append(await directory.contact_for(ctx, contact_id, field=f"contact_ids.{i}"))
    invitees, seen = [], set()
    for contact in contacts:
        if contact.id not in seen:
            seen.add(contact.id)
            dialled = [number for number, _ in directory.dial_numbers(contact)]
            invitees.append(Invitee(contact.name, dialled, contact.org_name, contact.id))
    dialled = [numbers.normalise(raw, field=f"numbers.{i}") for i, raw in enumerate(request.numbers)]
    owners = await directory.find_by_numbers(ctx, dialled) if dialled else {}
    for number in dialled:
        known = owners.get(number)
        if known and known.id in seen:
            continue
        invitees.append(
            Invitee(known.name if known else "", [number], known.org_name if known else "", known and known.id)
        )
    return invitees


async def pull(
    ctx: Context, bridges: BridgeService, calls: CallService, actor: str, number: str, call_id: str
) -> list[dict[str, Any]]:
    """Both legs of a live dispatch call into the bridge (AMI Redirect with ExtraChannel)."""
    call = await calls.get(call_id)
    if call.state not in (CallState.answered, CallState.held):
        raise Conflict("只有通话中的呼叫可以转入会议", field="call_id")
    rows = await bridges.pull(actor, number, _legs(call), incident_id=call.incident_id)
    await audit.record_alone(ctx, actor, "bridge.pull", "bridge", number, {"call_id": call.id})
    return rows


def _legs(call: Call) -> list[tuple[str, str, str]]:
    """(channel, name, number) of each leg of `call` that is up."""
    legs = []
    if call.desk_channel:
        legs.append((call.desk_channel, f"调度台 {call.desk}" if call.desk else "调度台", call.desk or ""))
    if call.party_channel:
        legs.append((call.party_channel, call.party_name, call.number_used))
    return legs


async def mute(
    ctx: Context, bridges: BridgeService, actor: str, number: str, participant_id: str | None, muted: bool
) -> None:
    """One participant, or (`participant_id` None) everyone except the moderators."""
    await bridges.mute(actor, number, participant_id, muted)
    if participant_id is None:
        await audit.record_alone(ctx, actor, "bridge.mute_all", "bridge", number, {"muted": muted})
    else:
        detail = {"participant_id": participant_id, "muted": muted}
        await audit.record_alone(ctx, actor, "bridge.mute", "bridge", number, detail)


async def kick(ctx: Context, bridges: BridgeService, actor: str, number: str, participant_id: str) -> None:
    await bridges.kick(actor, number, participant_id)
    await audit.record_alone(ctx, actor, "bridge.kick", "bridge", number, {"participant_id": participant_id})


async def end(ctx: Context, bridges: BridgeService, actor: str, number: str) -> None:
    await bridges.end(actor, number)
    await audit.record_alone(ctx, actor, "bridge.end", "bridge", number, {})


async def lock(ctx: Context, bridges: BridgeService, actor: str, number: str, locked: bool) -> None:
    await bridges.lock(actor, number, locked)
    await audit.record_alone(ctx, actor, "bridge.lock", "bridge", number, {"locked": locked})


async def record(ctx: Context, bridges: BridgeService, actor: str, number: str, recording: bool) -> None:
    await bridges.record(actor, number, recording)
    await audit.record_alone(ctx, actor, "bridge.recording", "bridge", number, {"recording": recording})
