"""Dispatch calls: ring the officer's desk, then the party's numbers in priority order, and track every leg.

The fallback loop runs in Asterisk's dialplan (context `switchboard-dispatch`), so a control-plane restart in
the middle of a call neither drops it nor skips a number; Switchboard follows it through AMI events (its own
UserEvents mark each attempt) and writes what happened to the call's row, the event bus and so the incident
timeline. A voice notification (`notify`) is the same call without a desk: the loop runs on the far half of a
Local channel whose near half plays the message to whoever answers and reads their key (`switchboard-voice`).
"""

import asyncio
import base64
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from panoramisk.message import Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sip.ami import AmiActionFailed, AmiLinkDown, AmiSession
from sip.dialing import (
    CALL_ID,
    DESK_LEG,
    DIAL_LEG,
    DISPATCH_CONTEXT,
    HOLD_CONTEXT,
    INCIDENT_ID,
    RECORD,
    RESULT_NAMES,
    RING_TIMEOUT,
    TARGETS,
    TRANSFER_CONTEXT,
    VOICE_CONTEXT,
    VOICE_FILE,
    VOICE_OUTCOME,
    VOICE_PLAYS,
    VOICE_WAIT,
    channel_variables,
    dial_result,
    inherited,
)
from sip.dialplan import config_path
from sip.models import ACTIVE, Call, CallState
from switchboard.core.context import Context
from switchboard.core.db import get_or_404, utcnow
from switchboard.core.errors import Conflict, InvalidInput, NotFound, SwitchboardError
from switchboard.core.events import Event
from switchboard.core.ids import new_id
from switchboard.core.ticks import RowWrites

log = logging.getLogger(__name__)

REQUEUE_SECONDS = 120  # a call queued while the link was down is still placed if the link returns this soon
VOICE_CALLER = '"预警通知" <12379>'  # 12379: the national emergency warning number, what a voice call shows


@dataclass(frozen=True)
class Routing:
    """What the dialplan offers dispatch: which numbers are desk extensions, and the trunk for the rest."""

    desks: frozenset[str]
    trunk: str
    default_desk: str | None = None
    record: bool = True  # MixMonitor the conversation

    def dial_string(self, number: str) -> str:
        if number in self.desks:
            return f"PJSIP/{number}"
        return f"PJSIP/{number}@{self.trunk}"


@dataclass(frozen=True)
class Target:
    number: str
    kind: str = "number"  # the directory's contact kind, or "number" for a raw one


@dataclass(frozen=True)
class Voice:
    """What a voice notification plays: `audio` (a WAV Asterisk can read) at most `plays` times, each followed by
    the prompt, which waits `digit_seconds` for a key."""

    audio: Path
    plays: int
    digit_seconds: int


@dataclass(frozen=True)
class Heard:
    """How a voice notification ended: the call (its attempts, the number that answered), whether 1 was pressed
    and when, and how often the message was played (0: nobody answered)."""

    call: Call
    confirmed_at: datetime | None
    plays: int


InboundLookup = Callable[[str], Awaitable[dict[str, str] | None]]
Alongside = Callable[[AsyncSession, Call], Awaitable[Any]]  # more writes committed with the call's row


class CallService:
    """Calls in progress live in memory (`_live`): AMI events change them there and publish at once, and their rows
    follow in the next tick's batch (`writes`). A call's row is inserted before `place` returns; readers settle the
    batch first, so the API never shows a call older than the events already published about it."""

    def __init__(
        self,
        ctx: Context,
        ami: AmiSession,
        routing: Routing,
        writes: RowWrites,
        lookup: InboundLookup | None = None,
    ) -> None:
        self.ctx, self.ami, self.routing, self.writes, self.lookup = ctx, ami, routing, writes, lookup
        self._by_channel: dict[str, str] = {}  # Asterisk channel name -> call id
        self._live: dict[str, Call] = {}  # calls not yet ended, by id
        self._synced = False  # after the first resync every unfinished call is in _live
        self._originations: set[asyncio.Task[None]] = set()
        self._notified: dict[str, asyncio.Future[Heard]] = {}  # voice call id -> its outcome, once it ended
        ami.on_event(self._on_event)
        ami.on_resync(self._resync)

    def dial_string(self, number: str) -> str:
        return self.routing.dial_string(number)

    # Actions from the API ---------------------------------------------------------------------------------------

    async def place(
        self,
        actor: str,
        targets: list[Target],
        *,
        desk: str | None,
        incident_id: str | None,
        party_name: str = "",
        party_org: str = "",
        contact_id: str | None = None,
        ring_seconds: int = 30,
        alongside: Alongside | None = None,
    ) -> Call:
        """Write the call's row (with `alongside`, e.g. its audit entry, in the same transaction) and start placing
        it; returns at once."""
        desk = desk or self.routing.default_desk
        if not desk:
            raise InvalidInput("请指定发起呼叫的调度台分机", field="desk")
        if desk not in self.routing.desks:
            raise InvalidInput(f"调度台分机 {desk} 不存在", field="desk")
        call = await self._queued(
            targets,
            "contact_id",
            direction="outbound",
            desk=desk,
            incident_id=incident_id,
            party_name=party_name,
            party_org=party_org,
            contact_id=contact_id,
            created_by=actor,
            ring_seconds=ring_seconds,
            alongside=alongside,
        )
        self._start_origination(call)
        return call

    async def notify(
        self,
        targets: list[Target],
        voice: Voice,
        *,
        incident_id: str | None,
        party_name: str = "",
        ring_seconds: int = 30,
    ) -> Heard:
        """A voice notification: the targets in priority order until one answers, who hears the message until they
        press 1 (or it was played `voice.plays` times). Returns once the call has ended. Recorded and filed like a
        dispatch call (its row, events and MixMonitor file are a dispatch call's, without a desk)."""
        config_path(voice.audio)  # it becomes a dialplan argument
        call = await self._queued(
            targets,
            "recipient",
            direction="voice",
            desk=None,
            incident_id=incident_id,
            party_name=party_name,
            created_by="system",
            ring_seconds=ring_seconds,
        )
        heard = self._notified[call.id] = asyncio.get_running_loop().create_future()
        try:
            self._start_origination(call, voice)
            return await heard
        except asyncio.CancelledError:  # withdrawn (confirmed elsewhere): the ringing or playing call ends too
            with contextlib.suppress(SwitchboardError):
                await asyncio.shield(self.hangup("system", call.id))
            raise
        finally:
            self._notified.pop(call.id, None)

    async def _queued(
        self, targets: list[Target], field: str, alongside: Alongside | None = None, **values: Any
    ) -> Call:
        """The call's row, written queued (with `alongside` in the same transaction), once it has numbers to try and
        Asterisk is reachable; from then on it lives in memory until it ends."""
        if not targets:
            raise InvalidInput("没有可拨打的号码", field=field)
        if self.ami.state != "up":
            raise AmiLinkDown(self.ami.last_error)
        dialled = [{"number": t.number, "kind": t.kind, "dial": self.dial_string(t.number)} for t in targets]
        call = Call(id=new_id(), targets=dialled, attempts=[], state=CallState.queued, **values)

        async def write(session: AsyncSession) -> None:
            session.add(call)
            if alongside is not None:
                await alongside(session, call)

        await self.ctx.db.together(write)  # with the calls placed meanwhile: one INSERT of them all
        self._live[call.id] = call
        return call

    def _start_origination(self, call: Call, voice: Voice | None = None) -> None:
        task = asyncio.create_task(self._originate(call, voice))
        self._originations.add(task)
        task.add_done_callback(self._originations.discard)

    async def get(self, call_id: str) -> Call:
        await self.writes.settle_row(Call, call_id)
        async with self.ctx.db.reader() as session:
            return await get_or_404(session, Call, call_id, what="呼叫", field="call_id")

    async def _find(self, call_id: str) -> Call | None:
        """The unfinished call, or None: bridge convene legs run the same dialplan loop with their own ids. Until
        the first resync has loaded the unfinished calls, one from before a restart is looked up."""
        if call_id in self._live or self._synced:
            return self._live.get(call_id)
        async with self.ctx.db.reader() as session:
            call = await session.get(Call, call_id)
        if call is not None and call.state in ACTIVE:
            self._live[call.id] = call
            return call
        return None

    async def recent(self, *, incident_id: str | None, active: bool, limit: int) -> list[Call]:
        """Newest first."""
        query = select(Call)
        if incident_id:
            query = query.where(Call.incident_id == incident_id)
        if active:
            query = query.where(Call.state.in_(ACTIVE))
        await self.writes.settle()
        async with self.ctx.db.reader() as session:
            return list((await session.scalars(query.order_by(Call.id.desc()).limit(limit))).all())

    async def attach(self, actor: str, call_id: str, incident_id: str) -> Call:
        """File the call under an incident (a hotline call becomes one's first report, or joins one already
        open): its later events and its recording go to that incident's timeline."""
        call = self._live.get(call_id)
        if call is not None:
            call.incident_id = incident_id
            self.writes.changed(call)
        else:
            await self.writes.settle()  # an ended call's last change must not land over this one
            async with self.ctx.db.session() as session:
                call = await session.get(Call, call_id)
                if call is None:
                    raise NotFound(f"呼叫 {call_id} 不存在", field="call_id")
                call.incident_id = incident_id
        who = call.party_name or (call.targets[0]["number"] if call.targets else "未知号码")
        verb = "来电" if call.direction == "inbound" else "通话"
        await self._publish("call.attached", call, actor, {"summary": f"关联{verb}：{who}", "refs": [call.id]})
        return call

    async def hangup(self, actor: str, call_id: str) -> Call:
        call = await self.get(call_id)
        if call.state not in ACTIVE:
            raise Conflict("呼叫已结束", field="call_id")
        channels = [c for c in (call.desk_channel, call.party_channel) if c]
        if not channels:
            await self._finish(call.id, CallState.failed, "cancelled")
        for channel in channels:
            with contextlib.suppress(AmiActionFailed):  # hanging up one leg may already have ended the other
                await self.ami.action({"Action": "Hangup", "Channel": channel, "Cause": "16"})
        await self._publish("call.hangup_requested", call, actor)
        return await self.get(call_id)

    async def hold(self, actor: str, call_id: str, held: bool) -> Call:
        """Hold: both legs leave their bridge together, the outside party to a hold tone, the desk to silence;
        resume: AMI Bridge joins them again. The desk's recording (MixMonitor, bridged audio only) pauses meanwhile."""
        call = await self.get(call_id)
        expected = CallState.answered if held else CallState.held
        if call.state != expected or not (call.desk_channel and call.party_channel):
            raise Conflict("只有通话中的呼叫可以保持" if held else "该呼叫未处于保持状态", field="call_id")
        # The outside party: the caller of a hotline call (its first channel), else the party dialled.
        legs = (call.desk_channel, call.party_channel)
        outside, officer = legs if call.direction == "inbound" else legs[::-1]
        if held:
            action = {"Action": "Redirect", "Channel": outside, "Context": HOLD_CONTEXT, "Exten": "party"}
            action |= {"Priority": "1", "ExtraChannel": officer, "ExtraContext": HOLD_CONTEXT}
            action |= {"ExtraExten": "desk", "ExtraPriority": "1"}
        else:
            action = {"Action": "Bridge", "Channel1": officer, "Channel2": outside, "Tone": "no"}
        await self.ami.action(action)
        await self._update(call.id, state=CallState.held if held else CallState.answered)  # publishes call.<state>
        return await self.get(call_id)

    async def transfer(self, actor: str, call_id: str, target: Target) -> Call:
        """Blind transfer of the far party to another number; the desk is released."""
        call = await self.get(call_id)
        if call.state not in (CallState.answered, CallState.held) or not call.party_channel:
            raise Conflict("只有通话中的呼叫可以转接", field="call_id")
        dial = self.dial_string(target.number)
        await self.ami.action(
            {"Action": "Setvar", "Channel": call.party_channel, "Variable": "SB_TRANSFER", "Value": dial}
        )
        await self.ami.action(
            {
                "Action": "Redirect",
                "Channel": call.party_channel,
                "Context": TRANSFER_CONTEXT,
                "Exten": "s",
                "Priority": "1",
            }
        )
        await self._publish("call.transferred", call, actor, {"to": target.number})
        return call

    # Asterisk side ---------------------------------------------------------------------------------------------

    async def _originate(self, call: Call, voice: Voice | None = None) -> None:
        """Hand the call to Asterisk. If the link drops first, a dispatch call stays queued and the next resync
        places it, unless it has waited longer than REQUEUE_SECONDS (then it fails, saying why); a voice call
        fails at once (its sender retries by its own policy)."""
        loop = [
            (TARGETS, "&".join(t["dial"] for t in call.targets)),
            (RING_TIMEOUT, call.ring_seconds),
            (RECORD, int(self.routing.record)),
        ]
        variables = [inherited(INCIDENT_ID, call.incident_id or ""), inherited(CALL_ID, call.id)]
        if voice is None:  # the desk answers, then runs the loop itself
            ring_seconds = call.ring_seconds
            variables += [f"{name}={value}" for name, value in loop]
            leg = {"Channel": f"PJSIP/{call.desk}", "Context": DISPATCH_CONTEXT}
            leg |= {"CallerID": f'"调度" <{call.targets[0]["number"]}>'}
            await self._update(call.id, state=CallState.ringing_desk)
        else:  # the Local channel's far half runs the loop (what it dials with is inherited), the near half plays
            ring_seconds = call.ring_seconds * len(call.targets) + 10
            variables += [inherited(name, value) for name, value in loop]
            variables += [f"{VOICE_FILE}={voice.audio.with_suffix('')}", f"{VOICE_PLAYS}={voice.plays}"]
            variables += [f"{VOICE_WAIT}={voice.digit_seconds}"]
            leg = {"Channel": f"Local/s@{DISPATCH_CONTEXT}/n", "Context": VOICE_CONTEXT, "CallerID": VOICE_CALLER}
            leg |= {"OtherChannelId": f"{call.id}{DIAL_LEG}"}
            await self._update(call.id, state=CallState.dialing)
        try:
            response = await self.ami.action(
                {
                    "Action": "Originate",
                    **leg,
                    "Exten": "s",
                    "Priority": "1",
                    "Timeout": str(ring_seconds * 1000),
                    "Variable": variables,
                    "Async": "true",
                    "ChannelId": f"{call.id}{DESK_LEG}",
                },
                timeout=ring_seconds + 15,
            )
        except AmiLinkDown:
            if voice is None:
                await self._update(call.id, state=CallState.queued)  # _resync places it when the link is back
            else:
                await self._finish(call.id, CallState.failed, "engine_down")
            return
        responses = response if isinstance(response, list) else [response]
        final = next((m for m in responses if m.get("Event") == "OriginateResponse"), None)
        if final is None or final.get("Response") == "Success":
            return
        if voice is None:
            await self._finish(call.id, CallState.failed, "desk_no_answer")
        elif not (await self.get(call.id)).desk_channel:  # no channel was ever made: no Hangup will end it
            await self._finish(call.id, CallState.failed, "unreachable")

    async def _on_event(self, message: Message) -> None:
        name = message.get("Event", "")
        if name == "UserEvent" and message.get("UserEvent") in ("SwitchboardInbound", "SwitchboardDeskCall"):
            await self._announced(message)
            return
        call_id = message.get("CallId") if name == "UserEvent" else self._call_of(message)
        if not call_id:
            return
        if name == "Newchannel" or (name == "OriginateResponse" and message.get("Channel")):
            self._by_channel[message["Channel"]] = call_id
            if not message.get("Uniqueid", "").endswith(DIAL_LEG):  # the loop's half of a voice call's Local channel
                await self._update(call_id, desk_channel=message["Channel"])
        elif name == "UserEvent":
            await self._user_event(call_id, message)
        elif name == "DialBegin" and message.get("DestChannel"):
            self._by_channel[message["DestChannel"]] = call_id
            await self._update(call_id, party_channel=message["DestChannel"], state=CallState.dialing)
        elif name == "DialEnd" and message.get("DialStatus") == "ANSWER":
            await self._update(
                call_id, state=CallState.answered, answered_at=utcnow(), **await self._answerer(call_id, message)
            )
        elif name in ("Hold", "Unhold"):
            await self._update(call_id, state=CallState.held if name == "Hold" else CallState.answered)
        elif name == "Hangup":
            self._by_channel.pop(message.get("Channel", ""), None)
            call = await self._find(call_id)
            if call and (message.get("Channel") == call.desk_channel or call.desk_channel is None):
                cause = message.get("Cause-txt", "") or message.get("Cause", "")
                answered = call.answered_at is not None
                outcome = channel_variables(message).get(VOICE_OUTCOME, "")
                await self._finish(
                    call_id, CallState.ended if answered else CallState.failed, cause or "hangup", outcome=outcome
                )

    def _call_of(self, message: Message) -> str | None:
        channel = message.get("Channel", "")
        if channel in self._by_channel:
            return self._by_channel[channel]
        unique = message.get("Uniqueid", "") or ""
        if len(unique) == 31 and unique[26:] in (DESK_LEG, DIAL_LEG):
            return unique[:26]  # our ChannelIds name a call's legs after the call
        return None

    async def _user_event(self, call_id: str, message: Message) -> None:
        kind = message.get("UserEvent")
        attempt = int(message.get("Attempt") or 0)
        call = await self._find(call_id)
        if call is None:
            return
        attempts = list(call.attempts)
        if kind == "SwitchboardAttempt" and 0 < attempt <= len(call.targets):
            number = call.targets[attempt - 1]["number"]
            attempts.append({"attempt": attempt, "number": number, "started_at": utcnow().isoformat(), "result": None})
            await self._update(call_id, attempts=attempts, state=CallState.dialing, announce={"attempt": attempt})
        elif kind == "SwitchboardAttemptEnd" and attempts:
            attempts[-1] = attempts[-1] | {
                "ended_at": utcnow().isoformat(),
                "result": dial_result(message.get("DialStatus", "")),
            }
            await self._update(call_id, attempts=attempts)
        elif kind == "SwitchboardExhausted":
            await self._finish(call_id, CallState.failed, "all_numbers_failed")

    async def _announced(self, message: Message) -> None:
        """A call the dialplan announces: a hotline call (SwitchboardInbound) or one dialled on a desk phone
        (SwitchboardDeskCall), numbers already filtered to digits, with the name of its MixMonitor file. The
        other party is looked up in the directory; the console is told who is calling."""
        inbound = message.get("UserEvent") == "SwitchboardInbound"
        number = message.get("CallerNum" if inbound else "Number", "")
        who = await self.lookup(number) if self.lookup and number else None
        try:
            shown_name = base64.b64decode(message.get("CallerNameB64", "")).decode("utf-8", "replace")
        except ValueError:
            shown_name = ""
        desk = message.get("Desk", "")
        call = Call(
            direction="inbound" if inbound else "desk",
            desk=desk if desk in self.routing.desks else None,
            party_name=(who or {}).get("name", shown_name),
            party_org=(who or {}).get("org", ""),
            contact_id=(who or {}).get("contact_id"),
            targets=[{"number": number, "kind": "caller" if inbound else "number", "dial": ""}],
            attempts=[],
            state=CallState.dialing,
            desk_channel=message.get("Channel"),
            created_by="inbound" if inbound else f"desk:{desk}",
            recording=_monitor_name(message.get("Recording", "")),
        )
        async with self.ctx.db.session() as session:
            session.add(call)
        self._live[call.id] = call
        self._by_channel[message["Channel"]] = call.id
        if inbound:
            extra = {"number": number, "known": who is not None, "hotline": message.get("Hotline", "")}
            await self._publish("call.incoming", call, None, extra)
        else:
            await self._publish("call.dialing", call, None, {"number": number})

    async def _answerer(self, call_id: str, message: Message) -> dict[str, str]:
        """For a hotline call still without a desk: the desk whose phone answered it."""
        endpoint = message.get("DestChannel", "").partition("/")[2].rpartition("-")[0]
        if endpoint not in self.routing.desks:
            return {}
        call = await self._find(call_id)
        return {"desk": endpoint} if call and call.direction == "inbound" and call.desk is None else {}

    async def _resync(self, channels: list[Message]) -> None:
        """After a (re)connect: re-learn which channels belong to which call, close the calls whose channels
        vanished while the link was down, and place the calls still queued (if they are recent enough for
        the officer still to be waiting on them)."""
        live = {m.get("Channel", "") for m in channels}
        self._by_channel = {c: i for c, i in self._by_channel.items() if c in live}
        for message in channels:
            channel = message.get("Channel", "")
            if channel in self._by_channel:
                continue
            try:
                value = await self.ami.action({"Action": "Getvar", "Channel": channel, "Variable": CALL_ID})
            except Exception:  # noqa: BLE001 - the channel may have gone meanwhile
                continue
            if value.get("Value"):
                self._by_channel[channel] = value["Value"]
        await self.writes.settle()
        async with self.ctx.db.reader() as session:
            active = (await session.scalars(select(Call).where(Call.state.in_(ACTIVE)))).all()
        self._live = {c.id: self._live.get(c.id, c) for c in active}
        self._synced = True
        tracked = set(self._by_channel.values())
        for call in list(self._live.values()):
            if call.id in tracked:
                continue
            if call.state != CallState.queued:
                await self._finish(
                    call.id, CallState.ended if call.answered_at else CallState.failed, "lost_on_restart"
                )
            elif call.desk and (utcnow() - call.created_at).total_seconds() < REQUEUE_SECONDS:
                self._start_origination(call)
            else:
                await self._finish(call.id, CallState.failed, "engine_down")

    # Persistence ------------------------------------------------------------------------------------------------

    async def _update(self, call_id: str, *, announce: dict[str, Any] | None = None, **values: Any) -> None:
        """Set `values` on an unfinished call (its row follows in the next tick); publish `call.<state>` when the
        state changed, or when `announce` (extra event data) asks for it even though the state stayed (a second
        attempt is still `dialing`)."""
        call = await self._find(call_id)
        if call is None:
            return
        changed = values.get("state") not in (None, call.state)
        for key, value in values.items():
            setattr(call, key, value)
        self.writes.changed(call)
        if changed or announce is not None:
            await self._publish(f"call.{call.state}", call, None, announce)

    async def _finish(self, call_id: str, state: CallState, cause: str, detail: str = "", outcome: str = "") -> None:
        """End the call and say so. A voice call's `outcome` (the dialplan's VOICE_OUTCOME) becomes its cause,
        confirmed or unconfirmed, and its awaited result."""
        result, _, rest = outcome.partition("/")
        plays, _, epoch = rest.partition("/")
        call = await self._find(call_id)
        if call is None:
            return
        self._live.pop(call_id, None)
        call.state, call.cause, call.ended_at = state, result or cause, utcnow()
        if call.attempts and call.attempts[-1].get("result") is None:
            # Hung up mid-attempt: the dialplan never reached its AttemptEnd event.
            last = call.attempts[-1] | {"ended_at": call.ended_at.isoformat()}
            last["result"] = "answered" if call.answered_at else "cancelled"
            call.attempts = [*call.attempts[:-1], last]
        self.writes.changed(call)
        confirmed_at = datetime.fromtimestamp(int(epoch), UTC) if epoch.isdigit() else None
        zone = ZoneInfo(self.ctx.settings.incidents.timezone)
        summary = _summary(call, confirmed_at.astimezone(zone) if confirmed_at else None)
        await self._publish("call.ended", call, None, {"summary": summary, "refs": [call.id], "detail": detail})
        if (heard := self._notified.get(call_id)) is not None and not heard.done():
            heard.set_result(Heard(call, confirmed_at, int(plays) if plays.isdigit() else 0))

    async def _publish(self, type_: str, call: Call, actor: str | None, extra: dict[str, Any] | None = None) -> None:
        data = call.snapshot() | {"attempts": call.attempts} | (extra or {})
        await self.ctx.bus.publish(
            Event(type_, incident_id=call.incident_id, actor=actor or call.created_by, data=data)
        )


def _monitor_name(value: str) -> str | None:
    """The dialplan's <UNIQUEID>.wav, refused when it is anything else (it becomes a path under the spool)."""
    return value if re.fullmatch(r"[0-9]+\.[0-9]+\.wav", value) else None


def tried(call: Call) -> str:
    """Each number tried and how, in Chinese: "8002 无法接通；8004 占线"."""
    return "；".join(
        f"{a['number']} {RESULT_NAMES.get(a.get('result') or '', a.get('result') or '')}" for a in call.attempts
    )


def _summary(call: Call, confirmed_at: datetime | None = None) -> str:
    who = call.party_name or (call.targets[0]["number"] if call.targets else "")
    if call.direction == "inbound":
        return f"来电：{who}（{call.party_org or '未登记'}）"
    if call.direction == "desk":
        talked = (
            f"通话 {int((call.ended_at - call.answered_at).total_seconds())} 秒"
            if call.answered_at and call.ended_at
            else "未接通"
        )
        return f"分机 {call.desk or ''} 呼叫 {who}，{talked}"
    tries = tried(call)
    if call.direction == "voice" and call.answered_at:
        verdict = f"已确认（{confirmed_at:%H:%M:%S} 按1）" if confirmed_at else "未确认"
        return f"语音通知 {who}：{verdict}（{tries}）"
    if call.answered_at and call.ended_at:
        seconds = int((call.ended_at - call.answered_at).total_seconds())
        return f"呼叫 {who}，通话 {seconds} 秒（{tries}）"
    return f"呼叫 {who} 未接通：{call.cause}" + (f"（{tries}）" if tries else "")
