"""Call flows: each one user-visible action of a duty officer, across the directory, the incident record and
Asterisk. Routes and the console call these; the outcome of a call reaches its incident through events."""

from sqlalchemy.ext.asyncio import AsyncSession

from recording.store import RecordingStore
from sip.calls import CallService, Target
from sip.models import Call
from switchboard.auth import service as auth
from switchboard.calls.models import CallCreate
from switchboard.core import numbers
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.directory import service as directory
from switchboard.incidents import service as incidents


async def place(ctx: Context, calls: CallService, actor: str, request: CallCreate) -> Call:
    """Ring the desk (the one asked for, else the officer's own, else the dialplan's default), then the party: a
    contact through their numbers in priority order, or one number."""
    await incidents.filed_under(ctx, request.incident_id)
    if request.contact_id:
        contact = await directory.contact_for(ctx, request.contact_id, field="contact_id")
        targets = [Target(number, kind) for number, kind in directory.dial_numbers(contact)]
    else:
        targets = [Target(numbers.normalise(request.number or ""))]
        contact = await directory.find_by_number(ctx, targets[0].number)
    detail = request.model_dump(mode="json")

    async def audited(session: AsyncSession, call: Call) -> None:
        await audit.record(session, actor, "call.place", "call", call.id, detail)

    return await calls.place(
        actor,
        targets,
        desk=request.desk or await auth.desk_of(ctx, actor),
        incident_id=request.incident_id,
        party_name=contact.name if contact else "",
        party_org=contact.org_name if contact else "",
        contact_id=request.contact_id,
        ring_seconds=request.ring_seconds,
        alongside=audited,  # one transaction for the call's row and its audit entry
    )


async def attach(
    ctx: Context, calls: CallService, recordings: RecordingStore, actor: str, call_id: str, incident_id: str
) -> Call:
    """新建事件 / 关联事件 from a call: the call, and its recording whether filed already or later, go to it."""
    await incidents.filed_under(ctx, incident_id)
    call = await calls.attach(actor, call_id, incident_id)
    await recordings.attach(call_id, incident_id, actor)
    await audit.record_alone(ctx, actor, "call.attach", "call", call_id, {"incident_id": incident_id})
    return call


async def hang_up(ctx: Context, calls: CallService, actor: str, call_id: str) -> Call:
    call = await calls.hangup(actor, call_id)
    await audit.record_alone(ctx, actor, "call.hangup", "call", call_id, {})
    return call


async def hold(ctx: Context, calls: CallService, actor: str, call_id: str, held: bool) -> Call:
    call = await calls.hold(actor, call_id, held)
    await audit.record_alone(ctx, actor, "call.hold" if held else "call.resume", "call", call_id, {})
    return call


async def transfer(ctx: Context, calls: CallService, actor: str, call_id: str, number: str) -> Call:
    """Blind transfer of the far party to `number`; the desk is released."""
    call = await calls.transfer(actor, call_id, Target(numbers.normalise(number)))
    await audit.record_alone(ctx, actor, "call.transfer", "call", call_id, {"to": number})
    return call
