"""Bridges: convene a group onto a ConfBridge in one action, keep the roll call, and give the moderator control.

Convening writes one roll-call row per invitee, then originates a Local channel per invitee: its far half runs
the dispatch loop (`switchboard-dispatch`: the invitee's numbers in priority order), its near half enters the
bridge once somebody answers. Unanswered invitees are dialled again after a delay, up to the configured number of
rounds, and the roll call says why each never joined. Join, leave, talk and mute state comes from Asterisk's
Confbridge* events; controls are Confbridge* AMI actions. Subsystem rule: this package imports only
switchboard.core; the AMI session and the dial strings are handed in by the control plane.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import insert, select

from conference.bridges.live import Member, Room, member_of, yes
from conference.bridges.models import OPEN, PRESENCE_NAMES, REASON_NAMES, BridgeSession, Participant, Presence
from sip.ami import AmiActionFailed, AmiSession
from sip.dialing import (
    BRIDGE_CONTEXT,
    CALL_ID,
    DISPATCH_CONTEXT,
    INCIDENT_ID,
    RING_TIMEOUT,
    TARGETS,
    channel_variables,
    convene_far_leg,
    convene_leg,
    dial_result,
    inherited,
)
from switchboard.core.context import Context
from switchboard.core.db import get_or_404, utcnow
from switchboard.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from switchboard.core.events import Event
from switchboard.core.ticks import RowWrites, live_row, with_defaults

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long an answered convene leg may take to reach the bridge (greeting and count prompts included).
JOIN_WAIT_SECONDS = 30
# How long the dialling half of an unanswered convene leg may take to hang up after Asterisk gave up on it.
LEG_END_SECONDS = 10


@dataclass(frozen=True)
class Bridge:
    """A conference bridge as the dialplan defines it."""

    number: str
    name: str
    max_members: int
    pin: str
    moderator_pin: str
    record: bool


@dataclass(frozen=True)
class Invitee:
    name: str
    numbers: list[str]  # in priority order
    org: str = ""
    contact_id: str | None = None


@dataclass
class Policy:
    ring_seconds: int = 30  # per number
    retry_seconds: float = 60.0  # between rounds
    rounds: int = 3  # the first try plus retries


class BridgeService:
    """Each running session and its roll call live in memory (`_sessions`, `_rows`): dialling, the dialplan's
    attempt events and Confbridge events change them there and publish at once, and the rows follow in the next
    tick's batch (`writes`). Roll-call rows are inserted before `convene` returns; readers settle the batch first."""

    def __init__(
        self,
        ctx: Context,
        ami: AmiSession,
        bridges: list[Bridge],
        dial_string: Callable[[str], str],
        writes: RowWrites,
        policy: Policy | None = None,
    ) -> None:
        self.ctx, self.ami, self.dial_string, self.writes = ctx, ami, dial_string, writes
        self.bridges = {b.number: b for b in bridges}
        self.policy = policy or Policy()
        self.rooms: dict[str, Room] = {}
        self._kicked: set[str] = set()  # channels a moderator removed: their leave is recorded as kicked
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._progress: dict[str, asyncio.Event] = {}  # invitee being dialled -> set on their join or leg's end
        self._gone: set[str] = set()  # uniqueids of convene legs (either half) that have hung up
        # A resync and the Confbridge events take turns: an event that arrives while the rooms are being listed
        # applies after the listing, never under it.
        self._state_lock = asyncio.Lock()
        self._sessions: dict[str, BridgeSession] = {}  # bridge -> its running session
        self._rows: dict[str, Participant] = {}  # the running sessions' roll calls, by participant id
        self._early_talk: dict[str, bool] = {}  # channel -> talking it raised before its join was handled
        ami.on_event(self._on_event)
        ami.on_live_event({"ConfbridgeTalking"}, self._on_event)  # never behind a convene's joins
        ami.on_resync(self._resync)

    async def stop(self) -> None:
        for task in list(self._dialers.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # Reading ---------------------------------------------------------------------------------------------------

    def bridge(self, number: str) -> Bridge:
        try:
            return self.bridges[number]
        except KeyError:
            raise NotFound(f"会议桥 {number} 不存在", field="bridge") from None

    def room(self, number: str) -> Room:
        return self.rooms.get(self.bridge(number).number) or Room(number)

    async def current_session(self, number: str) -> BridgeSession | None:
        await self.writes.settle()
        async with self.ctx.db.reader() as session:
            query = select(BridgeSession).where(BridgeSession.bridge == number, BridgeSession.ended_at.is_(None))
            return (await session.scalars(query.order_by(BridgeSession.id.desc()).limit(1))).first()

    async def roll_call(self, session_id: str) -> list[Participant]:
        await self.writes.settle()
        async with self.ctx.db.reader() as session:
            query = select(Participant).where(Participant.session_id == session_id).order_by(Participant.id)
            return list((await session.scalars(query)).all())

    async def sessions(self, number: str, limit: int = 20) -> list[BridgeSession]:
        await self.writes.settle()
        async with self.ctx.db.reader() as session:
            query = select(BridgeSession).where(BridgeSession.bridge == number).order_by(BridgeSession.id.desc())
            return list((await session.scalars(query.limit(limit))).all())

    async def get_session(self, session_id: str) -> BridgeSession:
        await self.writes.settle()
        async with self.ctx.db.reader() as session:
            return await get_or_404(session, BridgeSession, session_id, what="会议记录", field="session_id")

    def _session_of(self, row: Participant) -> BridgeSession:
        """The running session a live roll-call row belongs to."""
        return next(s for s in self._sessions.values() if s.id == row.session_id)

    def _roll_of(self, bridge_session: BridgeSession) -> list[Participant]:
        """A running session's roll call, in the order written."""
        return sorted((r for r in self._rows.values() if r.session_id == bridge_session.id), key=lambda r: r.id)

    # Convene ---------------------------------------------------------------------------------------------------

    async def convene(
        self,
        actor: str,
        number: str,
        invitees: list[Invitee],
        *,
        incident_id: str | None,
        rounds: int | None = None,
        ring_seconds: int | None = None,
    ) -> tuple[BridgeSession, list[dict[str, Any]]]:
        bridge = self.bridge(number)
        if not invitees:
            # The request names at least one group, contact or number: nobody is left only when a group is empty.
            raise InvalidInput("没有要召集的人：所选群组没有成员", field="group_id")
        room = self.room(number)
        if len(room.members) + len(invitees) > bridge.max_members:
            raise InvalidInput(
                f"会议桥 {number} 最多 {bridge.max_members} 方，已有 {len(room.members)} 方", field="bridge"
            )
        self._require_link()
        rounds = rounds or self.policy.rounds
        bridge_session = await self._open_session(number, actor, incident_id)
        rows = await self._write_roll(
            bridge_session,
            [
                {
                    "how": "convened",
                    "name": i.name,
                    "org": i.org,
                    "contact_id": i.contact_id,
                    "numbers": i.numbers,
                    "max_rounds": rounds,
                    "state": Presence.queued if i.numbers else Presence.failed,
                    "reason": "" if i.numbers else "no_number",
                }
                for i in invitees
            ],
        )
        summary = f"召集 {len(rows)} 人参加{bridge.name or '会议'}（{number}）：" + "、".join(
            r["name"] or r["numbers"][0] for r in rows
        )
        await self._publish("bridge.convened", bridge_session, actor, {"summary": summary, "count": len(rows)})
        for row in rows:
            if row["state"] == Presence.queued:
                self._start_dialing(row["id"], ring_seconds or self.policy.ring_seconds)
        return bridge_session, rows

    async def _write_roll(self, bridge_session: BridgeSession, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert roll-call rows (what differs from the model's defaults in each of `rows`) in one executemany and
        keep their live copies; returns them as written. Through the ORM's unit of work a hundred rows took 15 ms
        more, and nobody is dialled before they are written."""
        fresh = {"session_id": bridge_session.id, "tries": []}
        written = [with_defaults(Participant, fresh | row) for row in rows]
        async with self.ctx.db.session() as session:
            await session.execute(insert(Participant.__table__), written)
        self._rows.update((row["id"], live_row(Participant, row)) for row in written)
        return written

    def _start_dialing(self, participant_id: str, ring_seconds: int) -> None:
        if participant_id in self._dialers:
            return
        task = asyncio.create_task(self._dial_rounds(participant_id, ring_seconds))
        self._dialers[participant_id] = task
        task.add_done_callback(lambda _: self._dialers.pop(participant_id, None))

    async def _dial_rounds(self, participant_id: str, ring_seconds: int) -> None:
        """Dial one invitee, round after round, until they join or the rounds are used up."""
        try:
            while True:
                row = self._next_round(participant_id)
                if row is None:
                    return
                round_ = row.rounds
                reason = await self._originate(row, round_, ring_seconds)
                if reason is None:
                    return  # answered: the ConfbridgeJoin event records the join
                if round_ >= row.max_rounds or reason == "locked":  # locked on purpose: do not ring again
                    await self._give_up(participant_id, reason)
                    return
                retry_at = utcnow() + timedelta(seconds=self.policy.retry_seconds)
                self._set(participant_id, state=Presence.waiting, reason=reason, next_try_at=retry_at)
                await asyncio.sleep(self.policy.retry_seconds)
        except Exception:
            log.exception("convening %s failed", participant_id)
            await self._give_up(participant_id, "engine_down")

    async def _originate(self, row: Participant, round_: int, ring_seconds: int) -> str | None:
        """One round over every number of the invitee; None when somebody answered, else why not."""
        bridge_session = self._session_of(row)
        bridge = self.bridges[bridge_session.bridge]
        targets = "&".join(self.dial_string(n) for n in row.numbers)
        progress = self._progress[row.id] = asyncio.Event()
        try:
            response = await self.ami.action(
                {
                    "Action": "Originate",
                    "Channel": f"Local/s@{DISPATCH_CONTEXT}/n",
                    "Context": BRIDGE_CONTEXT,
                    "Exten": bridge.number,
                    "Priority": "1",
                    "Timeout": str((ring_seconds * len(row.numbers) + 10) * 1000),
                    "CallerID": f'"{bridge.number}" <{bridge.number}>',
                    "Variable": [
                        inherited(INCIDENT_ID, bridge_session.incident_id or ""),
                        inherited(CALL_ID, row.id),
                        inherited(TARGETS, targets),
                        inherited(RING_TIMEOUT, ring_seconds),
                        "SB_ROLE=participant",
                    ],
                    "Async": "true",
                    "ChannelId": convene_leg(row.id, round_),  # its uniqueid names it to Hangup as well as its name
                    "OtherChannelId": convene_far_leg(row.id, round_),
                },
                timeout=ring_seconds * len(row.numbers) + 30,
            )
            responses = response if isinstance(response, list) else [response]
            final = next((m for m in responses if m.get("Event") == "OriginateResponse"), None)
            if final is not None and final.get("Response") == "Success":
                return await self._joined_or_turned_away(row.id, round_, bridge.number, progress)
            # Asterisk writes OriginateResponse straight to AMI, but the dialplan's UserEvents pass through its
            # message bus, so the response can overtake them: the tries are read once the dialling half of the
            # Local channel has hung up, which it does after its last UserEvent.
            far_leg = convene_far_leg(row.id, round_)

            async def far_leg_gone() -> bool | None:
                return True if far_leg in self._gone else None

            await self._until(progress, far_leg_gone, LEG_END_SECONDS)
        except Unavailable:
            return "engine_down"
        finally:
            self._progress.pop(row.id, None)
            self._gone.difference_update({convene_leg(row.id, round_), convene_far_leg(row.id, round_)})
        row = self._rows.get(row.id, row)
        last = [t for t in row.tries if t.get("round") == round_]
        return (last[-1].get("result") if last else None) or "no_answer"

    async def _joined_or_turned_away(
        self, participant_id: str, round_: int, number: str, progress: asyncio.Event
    ) -> str | None:
        """Answered: None once the invitee is in the bridge. An answered leg can still miss it (the bridge was
        locked meanwhile, or they hung up during the greeting): its Local channel then hangs up with no join
        before it (ConfBridge turns a locked-out caller away by hanging up, so the dialplan reports nothing)."""

        async def settled() -> str | None:
            row = self._rows.get(participant_id)
            if row is None or row.state != Presence.dialing:
                return "joined"  # joined (and maybe left again), or no longer ours to follow
            if {convene_leg(participant_id, round_), convene_far_leg(participant_id, round_)} & self._gone:
                room = self.rooms.get(number)
                return "locked" if room is not None and room.locked else "not_joined"
            return None

        outcome = await self._until(progress, settled, JOIN_WAIT_SECONDS) or "not_joined"
        return None if outcome == "joined" else outcome

    @staticmethod
    async def _until(progress: asyncio.Event, check: Callable[[], Awaitable[T | None]], timeout: float) -> T | None:
        """`check()`'s first answer other than None, asked again each time the invitee's progress is signalled;
        None at the timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            progress.clear()
            if (answer := await check()) is not None:
                return answer
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progress.wait(), remaining)

    async def _give_up(self, participant_id: str, reason: str) -> None:
        row = self._set(participant_id, state=Presence.unanswered, reason=reason, next_try_at=None)
        if row is None:
            return
        bridge_session = self._session_of(row)
        tried = "、".join(row.numbers) or "无号码"
        summary = f"{row.name or tried} 未入会：{REASON_NAMES.get(reason, reason)}（呼叫 {row.rounds} 轮：{tried}）"
        await self._publish("bridge.unanswered", bridge_session, None, {"summary": summary} | _row(row))

    # Moderator controls ----------------------------------------------------------------------------------------

    def _member(self, number: str, participant_id: str) -> Member:
        member = self.room(number).by_participant(participant_id)
        if member is None:
            raise NotFound(f"参会者 {participant_id} 不在会议 {number} 中", field="participant_id")
        return member

    def _require_link(self) -> None:
        if self.ami.state != "up":
            raise Unavailable(f"交换机连接中断：{self.ami.last_error or '正在重连'}")

    async def mute(self, actor: str, number: str, participant_id: str | None, muted: bool) -> None:
        """Mute or unmute one participant, or (participant_id None) every participant but the moderators."""
        self.bridge(number)
        self._require_link()
        channel = self._member(number, participant_id).channel if participant_id else "participants"
        action = "ConfbridgeMute" if muted else "ConfbridgeUnmute"
        await self.ami.action({"Action": action, "Conference": number, "Channel": channel})
        if participant_id is None:
            for member in self.room(number).members.values():
                if member.role != "moderator":
                    member.muted = muted
            await self._publish_live(number, "bridge.muted" if muted else "bridge.unmuted", actor, {"all": True})

    async def kick(self, actor: str, number: str, participant_id: str) -> None:
        member = self._member(number, participant_id)
        self._require_link()
        self._kicked.add(member.channel)
        await self.ami.action({"Action": "ConfbridgeKick", "Conference": number, "Channel": member.channel})

    async def end(self, actor: str, number: str) -> None:
        """End the conference: stop convening (nobody still queued or waiting is rung again, not even after a
        restart), then take everyone out; the session closes when the last one has left."""
        self.bridge(number)
        self._require_link()
        bridge_session = self._sessions.get(number)
        if bridge_session is not None:
            for row in self._roll_of(bridge_session):
                if row.state in OPEN:
                    await self._give_up(row.id, "ended")
                    if (dialer := self._dialers.get(row.id)) is not None:
                        dialer.cancel()
                    with contextlib.suppress(AmiActionFailed):  # a leg still ringing stops ringing
                        leg = convene_leg(row.id, row.rounds)
                        await self.ami.action({"Action": "Hangup", "Channel": leg, "Cause": "16"})
        room = self.rooms.get(number)
        if room is not None and room.members:
            await self.ami.action({"Action": "ConfbridgeKick", "Conference": number, "Channel": "all"})
        elif bridge_session is not None:
            await self._ended(number)  # nobody in the room: close the session now

    async def lock(self, actor: str, number: str, locked: bool) -> None:
        self.bridge(number)
        self._require_link()
        if number not in self.rooms:
            raise Conflict(f"会议 {number} 当前没有人，无法{'锁定' if locked else '解锁'}", field="bridge")
        await self.ami.action({"Action": "ConfbridgeLock" if locked else "ConfbridgeUnlock", "Conference": number})
        self.rooms[number].locked = locked
        await self._publish_live(number, "bridge.locked" if locked else "bridge.unlocked", actor, {"locked": locked})

    async def record(self, actor: str, number: str, on: bool) -> None:
        self.bridge(number)
        self._require_link()
        if number not in self.rooms:
            raise Conflict(f"会议 {number} 当前没有人，无法录音", field="bridge")
        if self.rooms[number].recording == on:
            raise Conflict("会议已在录音" if on else "会议没有在录音", field="recording")
        action = "ConfbridgeStartRecord" if on else "ConfbridgeStopRecord"
        await self.ami.action({"Action": action, "Conference": number})

    async def pull(
        self, actor: str, number: str, legs: list[tuple[str, str, str]], *, incident_id: str | None
    ) -> list[dict[str, Any]]:
        """Take a live call's legs — (channel, name, number) each — out of their call and into the bridge."""
        bridge = self.bridge(number)
        self._require_link()
        if not legs:
            raise Conflict("该呼叫没有可转入的通话", field="call_id")
        if len(self.room(number).members) + len(legs) > bridge.max_members:
            raise Conflict(f"会议桥 {number} 已满（最多 {bridge.max_members} 方）", field="bridge")
        bridge_session = await self._open_session(number, actor, incident_id)
        rows = await self._write_roll(
            bridge_session,
            [
                {
                    "how": "pulled",
                    "name": name,
                    "numbers": [leg_number] if leg_number else [],
                    "state": Presence.dialing,
                    "channel": channel,
                }
                for channel, name, leg_number in legs
            ],
        )
        fields = {"Action": "Redirect", "Channel": legs[0][0], "Context": BRIDGE_CONTEXT, "Exten": number}
        fields["Priority"] = "1"
        if len(legs) > 1:
            fields |= {"ExtraChannel": legs[1][0], "ExtraContext": BRIDGE_CONTEXT, "ExtraExten": number}
            fields["ExtraPriority"] = "1"
        await self.ami.action(fields)
        names = "、".join(r["name"] or r["numbers"][0] for r in rows if r["name"] or r["numbers"])
        summary = f"通话转入{bridge.name or '会议'}（{number}）：{names}"
        await self._publish("bridge.pulled", bridge_session, actor, {"summary": summary})
        return rows

    # Asterisk events -------------------------------------------------------------------------------------------

    async def _on_event(self, message: Mapping[str, Any]) -> None:
        name = message.get("Event", "")
        if name == "UserEvent":
            await self._attempt(message)
            return
        if name == "Hangup":
            unique = message.get("Uniqueid", "")
            participant_id = unique.rpartition("-r")[0]
            if participant_id in self._progress:
                self._gone.add(unique)
                self._wake(participant_id)
            return
        number = message.get("Conference", "")
        if not name.startswith("Confbridge") or number not in self.bridges:
            return
        if name == "ConfbridgeTalking":  # lights a member, nothing more: never waits for a join's writes
            await self._talking(number, message)
            return
        async with self._state_lock:
            await self._room_event(name, number, message)

    async def _talking(self, number: str, message: Mapping[str, Any]) -> None:
        """Told at once, even when it overtook its member's join (the live lane): the channel is in the bridge, and
        its SB_CALL_ID names a convened invitee; the join, when handled, takes the state on."""
        channel = message.get("Channel", "")
        talking = message.get("TalkingStatus") == "on"
        member = self.room(number).members.get(channel)
        if member is None:
            self._early_talk[channel] = talking
            row = self._open_row(number, channel, channel_variables(message).get(CALL_ID))
            member = member_of(message, row.id if row else None)
        member.talking = talking
        await self._publish_live(number, "bridge.talking", None, member.out())

    async def _room_event(self, name: str, number: str, message: Mapping[str, Any]) -> None:
        if name == "ConfbridgeStart":
            self.rooms.setdefault(number, Room(number))
        elif name == "ConfbridgeJoin":
            await self._joined(number, message)
        elif name == "ConfbridgeLeave":
            await self._left(number, message.get("Channel", ""))
        elif name == "ConfbridgeEnd":
            self.rooms.pop(number, None)
            await self._ended(number)
        elif name in ("ConfbridgeMute", "ConfbridgeUnmute"):
            member = self.room(number).members.get(message.get("Channel", ""))
            if member is not None:
                member.muted = name == "ConfbridgeMute"
                await self._publish_live(
                    number, "bridge.muted" if member.muted else "bridge.unmuted", None, member.out()
                )
        elif name in ("ConfbridgeRecord", "ConfbridgeStopRecord"):
            room = self.rooms.setdefault(number, Room(number))
            room.recording = name == "ConfbridgeRecord"
            await self._recording_changed(number, room.recording)

    async def _attempt(self, message: Mapping[str, Any]) -> None:
        """The dispatch loop's per-number events, for convened invitees (CallId is then a participant id)."""
        kind = message.get("UserEvent")
        if kind not in ("SwitchboardAttempt", "SwitchboardAttemptEnd"):
            return
        row = self._rows.get(message.get("CallId", ""))
        if row is None:
            return
        attempt = int(message.get("Attempt") or 0)
        if not 0 < attempt <= len(row.numbers):
            return
        tries = list(row.tries)
        if kind == "SwitchboardAttempt":
            tries.append({"round": row.rounds, "attempt": attempt, "number": row.numbers[attempt - 1]})
            tries[-1] |= {"at": utcnow().isoformat(), "result": None}
        elif tries:
            status = message.get("DialStatus", "")
            tries[-1] = tries[-1] | {"result": dial_result(status)}
        self._set(row.id, tries=tries)
        self._wake(row.id)

    def _wake(self, participant_id: str) -> None:
        if (progress := self._progress.get(participant_id)) is not None:
            progress.set()

    async def _joined(self, number: str, message: Mapping[str, Any]) -> None:
        room = self.rooms.setdefault(number, Room(number))
        channel = message.get("Channel", "")
        variables = channel_variables(message)
        member = member_of(message, None)
        bridge_session = await self._open_session(number, "dial-in", None)
        row = self._open_row(number, channel, variables.get(CALL_ID))
        dialled_in = row is None
        if row is None:
            numbers = [member.number] if member.number else []
            row = Participant(session_id=bridge_session.id, how="dialled_in", name=member.name, numbers=numbers)
            row.tries = []
        row.state, row.channel, row.role, row.reason = Presence.joined, channel, member.role, ""
        if row.tries and row.tries[-1].get("result") is None:  # the dialplan reports it when the call ends
            row.tries = [*row.tries[:-1], row.tries[-1] | {"result": "answered"}]
        row.joined_at, row.next_try_at = utcnow(), None
        row.name = row.name or member.name
        if dialled_in:
            async with self.ctx.db.session() as session:
                session.add(row)
            self._rows[row.id] = row
        else:
            self.writes.changed(row)
        member.participant_id = row.id
        member.talking = self._early_talk.pop(channel, member.talking)
        self._wake(row.id)
        member.name, member.number = row.name or member.name, (row.numbers[0] if row.numbers else member.number)
        room.members[channel] = member
        who = member.name or member.number or "未知号码"
        summary = f"{who} 加入{self.bridges[number].name or '会议'}（{number}，{len(room.members)} 方）"
        await self._publish("bridge.joined", bridge_session, None, {"summary": summary} | _row(row) | member.out())

    def _open_row(self, number: str, channel: str, call_id: str | None) -> Participant | None:
        """The running session's open roll-call row a channel in the bridge is: a convened invitee by the SB_CALL_ID
        its leg carries (its row's id), a pulled call's leg by its channel; None for a caller who dialled in. Asked
        on every join and talking event: a lookup, then a scan without sorting (sorting the roll call each time was
        a twentieth of a 100-leg convene's CPU)."""
        bridge_session = self._sessions.get(number)
        if bridge_session is None:
            return None

        def open_here(row: Participant | None) -> bool:
            return row is not None and row.session_id == bridge_session.id and row.state in OPEN

        invitee = self._rows.get(call_id) if call_id else None
        if open_here(invitee):
            return invitee
        return next((r for r in self._rows.values() if r.channel == channel and open_here(r)), None)

    async def _left(self, number: str, channel: str) -> None:
        room = self.rooms.get(number)
        member = room.members.pop(channel, None) if room else None
        self._early_talk.pop(channel, None)
        kicked = channel in self._kicked
        self._kicked.discard(channel)
        if member is None or member.participant_id is None:
            return
        state = Presence.kicked if kicked else Presence.left
        row = self._set(member.participant_id, state=state, left_at=utcnow())
        if row is None:
            return
        bridge_session = self._session_of(row)
        who = member.name or member.number or "未知号码"
        verb = "被主持人移出" if kicked else "离开"
        summary = f"{who} {verb}{self.bridges[number].name or '会议'}（{number}）"
        await self._publish(f"bridge.{state}", bridge_session, None, {"summary": summary} | _row(row) | member.out())

    async def _ended(self, number: str) -> None:
        """The last participant left. The session ends unless invitees are still being dialled."""
        found = self._sessions.get(number)
        if found is None:
            return
        rows = self._roll_of(found)
        if any(r.state in OPEN for r in rows):
            return
        found.ended_at = utcnow()
        self.writes.changed(found)
        self._sessions.pop(number, None)
        for row in rows:
            self._rows.pop(row.id, None)
        joined = [r for r in rows if r.joined_at]
        missing = [r for r in rows if r.state in (Presence.unanswered, Presence.failed)]
        summary = f"{self.bridges[number].name or '会议'}（{number}）结束：{len(joined)} 方参加"
        summary += f"，{len(missing)} 人未入会" if missing else ""
        data = {"summary": summary, "parties": _parties(joined)}
        await self._publish("bridge.ended", found, None, data)

    async def _recording_changed(self, number: str, recording: bool) -> None:
        bridge_session = self._sessions.get(number)
        data: dict[str, Any] = {"recording": recording}
        if bridge_session is not None:
            data["parties"] = _parties([r for r in self._roll_of(bridge_session) if r.joined_at])
        await self._publish_live(number, "bridge.recording", None, data, bridge_session)

    async def _resync(self, _channels: list[Any]) -> None:
        """After a (re)connect: rebuild the rooms from Asterisk, close what vanished, resume unfinished dialling."""
        async with self._state_lock:
            resume = await self._rebuild_rooms()
        for participant_id in resume:
            self._start_dialing(participant_id, self.policy.ring_seconds)

    async def _rebuild_rooms(self) -> list[str]:
        """The rooms as Asterisk lists them, and the open sessions' roll calls matched to them (the rows kept in
        memory where they are, the others read): who vanished meanwhile has left, a session with nobody in its
        room and nobody left to dial has ended. Returns the invitees still to dial."""
        rooms: dict[str, Room] = {}
        convened: dict[str, str] = {}  # participant id -> channel, from the convene leg's uniqueid (`convene_leg`)
        for message in await self._list({"Action": "ConfbridgeListRooms"}):
            number = message.get("Conference", "")
            if message.get("Event") != "ConfbridgeListRooms" or number not in self.bridges:
                continue
            room = rooms[number] = Room(number, locked=yes(message.get("Locked", "No")))
            for item in await self._list({"Action": "ConfbridgeList", "Conference": number}):
                if item.get("Event") == "ConfbridgeList":
                    room.members[item.get("Channel", "")] = member_of(item, None)
                    convened[str(item.get("Uniqueid", "")).rpartition("-r")[0]] = item.get("Channel", "")
        await self.writes.settle()  # what memory holds is in the rows before they are read
        async with self.ctx.db.reader() as session:
            found = (await session.scalars(select(BridgeSession).where(BridgeSession.ended_at.is_(None)))).all()
            query = select(Participant).where(Participant.session_id.in_([s.id for s in found]))
            roll = (await session.scalars(query)).all()
        known = {s.id: s for s in self._sessions.values()}
        open_sessions = [known.get(s.id, s) for s in sorted(found, key=lambda s: s.id)]
        self._rows = {r.id: self._rows.get(r.id, r) for r in roll}
        self._sessions = {}
        for bridge_session in open_sessions:
            rows = self._roll_of(bridge_session)
            room = rooms.get(bridge_session.bridge)
            for row in rows:
                channel = row.channel if row.state == Presence.joined else convened.get(row.id, row.channel)
                member = room.members.get(channel or "") if room else None
                if member is not None:
                    member.participant_id, member.name = row.id, row.name or member.name
                    if row.state != Presence.joined:  # joined in the tick a crash lost: in the bridge, not to dial
                        row.state, row.channel, row.joined_at = Presence.joined, channel, utcnow()
                        self.writes.changed(row)
                elif row.state == Presence.joined:
                    row.state, row.left_at = Presence.left, utcnow()
                    self.writes.changed(row)
            if room is None and not any(r.state in OPEN for r in rows):
                bridge_session.ended_at = utcnow()
                self.writes.changed(bridge_session)
                for row in rows:
                    self._rows.pop(row.id, None)
            else:
                self._sessions[bridge_session.bridge] = bridge_session
        self.rooms = rooms
        return [r.id for r in self._rows.values() if r.state in OPEN]

    async def _list(self, fields: dict[str, Any]) -> list[Any]:
        """A Confbridge list action's events; none when Asterisk says there is nothing to list (an error reply).
        A lost link raises: the resync is then retried on the next connect rather than clearing the rooms."""
        try:
            listed = await self.ami.action(fields, timeout=15)
        except Unavailable as exc:
            if getattr(exc, "action", None) is None:  # not an error reply (those name their action): link trouble
                raise
            return []  # "No active conferences." / "No Conference by that name found."
        return listed if isinstance(listed, list) else []

    # Persistence -----------------------------------------------------------------------------------------------

    async def _open_session(self, number: str, actor: str, incident_id: str | None) -> BridgeSession:
        """The bridge's running session (taking the incident if it has none yet), or a new one. Remembered while
        it runs: every join asks, and a write transaction per join was a fifth of a convene's cost."""
        known = self._sessions.get(number)
        if known is not None and (incident_id is None or known.incident_id):
            return known
        await self.writes.settle()  # a session that ended in memory has ended in its row too
        async with self.ctx.db.session() as session:
            query = select(BridgeSession).where(BridgeSession.bridge == number, BridgeSession.ended_at.is_(None))
            found = (await session.scalars(query.order_by(BridgeSession.id.desc()).limit(1))).first()
            if found is None:
                found = BridgeSession(bridge=number, incident_id=incident_id, created_by=actor)
                session.add(found)
                created = True
            else:
                created = False
                if incident_id and not found.incident_id:
                    found.incident_id = incident_id
        self._sessions[number] = found
        if created:
            summary = f"{self.bridges[number].name or '会议'}（{number}）开始"
            await self._publish("bridge.started", found, actor, {"summary": summary})
        return found

    def _next_round(self, participant_id: str) -> Participant | None:
        """Mark an invitee as dialled for its next round if it is still open (joined, kicked or given up
        meanwhile: None)."""
        row = self._rows.get(participant_id)
        if row is None or row.state not in OPEN:
            return None
        return self._set(participant_id, state=Presence.dialing, rounds=row.rounds + 1, next_try_at=None)

    def _set(self, participant_id: str, **values: Any) -> Participant | None:
        """Change a live roll-call row; it is written with the next tick."""
        row = self._rows.get(participant_id)
        if row is None:
            return None
        for key, value in values.items():
            setattr(row, key, value)
        self.writes.changed(row)
        return row

    async def _publish(
        self, type_: str, bridge_session: BridgeSession, actor: str | None, data: dict[str, Any]
    ) -> None:
        base = {"bridge": bridge_session.bridge, "session_id": bridge_session.id}
        event = Event(type_, incident_id=bridge_session.incident_id, actor=actor or "system", data=base | data)
        await self.ctx.bus.publish(event)

    async def _publish_live(
        self,
        number: str,
        type_: str,
        actor: str | None,
        data: dict[str, Any],
        bridge_session: BridgeSession | None = None,
    ) -> None:
        """A state change for live views (no summary: it stays off the timeline)."""
        bridge_session = bridge_session or self._sessions.get(number)
        incident_id = bridge_session.incident_id if bridge_session else None
        base = {"bridge": number, "session_id": bridge_session.id if bridge_session else None}
        await self.ctx.bus.publish(Event(type_, incident_id=incident_id, actor=actor or "system", data=base | data))


def _row(row: Participant) -> dict[str, Any]:
    return {
        "participant_id": row.id,
        "name": row.name,
        "numbers": list(row.numbers),
        "state": row.state,
        "state_name": PRESENCE_NAMES[Presence(row.state)],
        "reason": row.reason,
        "reason_name": REASON_NAMES.get(row.reason, row.reason),
    }


def _parties(rows: list[Participant]) -> list[dict[str, Any]]:
    return [
        {
            k: v
            for k, v in {
                "name": r.name,
                "number": r.numbers[0] if r.numbers else "",
                "contact_id": r.contact_id,
            }.items()
            if v
        }
        for r in rows
    ]
