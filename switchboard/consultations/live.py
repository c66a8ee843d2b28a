"""The live side of consultations: each open consultation's room in Janus (re-created after Janus restarts, with its
ACL and recording), who is in it (presence events for the timeline), its camera feeds and its recordings, filed
into the recording store when they stop."""

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select

from conference.video import recordings as room_recordings
from conference.video.engine import Layout
from conference.video.feeds import FeedProcess, arguments
from conference.video.models import Consultation, Invite
from conference.video.rooms import Participant, Rooms, RoomSpec
from recording.store import RecordingStore
from switchboard.consultations.phones import PhoneSide
from switchboard.core.background import Background
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.errors import Unavailable
from switchboard.core.events import Event

log = logging.getLogger(__name__)


class Connected(Protocol):
    """A page in a room, as the control plane relays it (switchboard.consultations.relay)."""

    async def end(self, reason: str) -> None: ...

    def tell(self, data: dict[str, Any]) -> None: ...


class Feed(Protocol):
    """A camera publishing into a room: an RTSP feed process, or a camera stream Janus forwards from the camera room
    (conference.video.cameras.RoomFeed)."""

    async def stop(self) -> None: ...


class LiveRooms:
    def __init__(self, ctx: Context, layout: Layout, recordings: RecordingStore) -> None:
        self.ctx, self.layout, self.recordings = ctx, layout, recordings
        self._rooms: Rooms | None = None  # set once the Janus session exists
        self.present: dict[str, dict[int, Participant]] = {}  # consultation id -> who is in its room
        self.feeds: dict[str, Feed] = {}  # invite id -> its camera feed publisher
        self.recording_started: dict[str, datetime] = {}  # consultation id -> when its recording began
        self.connected: dict[str, set[Connected]] = {}  # invite id -> its pages' relays
        self.filing = Background()
        self.phones: PhoneSide | None = None  # set when consultations take phones (Asterisk and phone_address)

    @property
    def rooms(self) -> Rooms:
        if self._rooms is None:
            raise Unavailable("视频会商未启用（[janus] mode = off）")
        return self._rooms

    @rooms.setter
    def rooms(self, rooms: Rooms) -> None:
        self._rooms = rooms

    async def stop(self) -> None:
        for feed in list(self.feeds.values()):
            await feed.stop()
        self.feeds.clear()
        await self.cut_off(list(self.connected), "会商服务正在重启，请稍后刷新页面重新加入")
        await self.filing.drain()

    async def cut_off(self, invite_ids: Iterable[str], reason: str) -> None:
        """End every page of these invites: their Janus sessions close, publisher and subscriptions with them."""
        for invite_id in invite_ids:
            for page in list(self.connected.pop(invite_id, ())):
                await page.end(reason)

    def tell(self, invite_ids: Iterable[str], data: dict[str, Any]) -> None:
        """A notice for every page of these invites (recording switched on or off)."""
        for invite_id in invite_ids:
            for page in self.connected.get(invite_id, ()):
                page.tell(data)

    def rec_dir(self, consultation: Consultation) -> Path:
        return self.layout.recordings_dir / consultation.id

    def spec(self, consultation: Consultation, tokens: list[str]) -> RoomSpec:
        return RoomSpec(
            room=consultation.room,
            description=consultation.title,
            secret=consultation.secret,
            pin=consultation.pin,
            publishers=consultation.max_sites,
            rec_dir=self.rec_dir(consultation),
            allowed=tokens,
        )

    async def resync(self) -> None:
        """After every (re)connect: the room of every open consultation exists, with its ACL and recording."""
        now = utcnow()
        async with self.ctx.db.reader() as session:
            open_ones = (await session.scalars(select(Consultation).where(Consultation.state == "open"))).all()
            invites = (
                await session.scalars(
                    select(Invite).where(
                        Invite.consultation_id.in_([c.id for c in open_ones]), Invite.revoked_at.is_(None)
                    )
                )
            ).all()
        for consultation in open_ones:
            present = self.present.get(consultation.id, {})
            tokens = [  # a locked room keeps admitting whoever was in it (a Janus restart drops everyone)
                i.room_token
                for i in invites
                if i.consultation_id == consultation.id
                and i.expires_at > now
                and (not consultation.locked or i.participant_id in present or i.kind == "feed")
            ]
            for feed in invites:
                if feed.consultation_id == consultation.id and feed.kind == "feed" and feed.feed_url:
                    self.start_feed(consultation, feed)  # after a control-plane restart the cameras come back
            existed = await self.rooms.exists(consultation.room)
            await self.rooms.create(self.spec(consultation, tokens))
            if not existed:
                log.info("room of consultation %s re-created", consultation.id)
                if consultation.recording:
                    await self.rooms.record(consultation.room, consultation.secret, True)

    def start_feed(self, consultation: Consultation, invite: Invite) -> None:
        """Run the camera feed of `invite` (unless it runs already)."""
        if invite.id in self.feeds:
            return
        argv, secrets_env = arguments(
            self.layout.api_socket, consultation.room, invite.participant_id, invite.site, invite.room_token,
            consultation.pin, invite.feed_url,
        )  # fmt: skip
        feed = FeedProcess(argv, secrets_env, self.ctx.settings.janus.netns)
        feed.start()
        self.feeds[invite.id] = feed

    async def stop_feed(self, invite_id: str) -> None:
        if feed := self.feeds.pop(invite_id, None):
            await feed.stop()

    # Presence ---------------------------------------------------------------------------------------------------

    async def poll(self) -> None:
        """Who joined and who left each open room, from the room's participant list (it is also the truth after
        a reconnect, whereas room events reach only the participants)."""
        async with self.ctx.db.reader() as session:
            open_ones = (await session.scalars(select(Consultation).where(Consultation.state == "open"))).all()
        for consultation in open_ones:
            try:
                now = {p.id: p for p in await self.rooms.participants(consultation.room)}
            except Unavailable:
                continue
            before = self.present.get(consultation.id, {})
            self.present[consultation.id] = now
            for pid in now.keys() - before.keys():
                await self._presence(consultation, now[pid], joined=True)
            for pid in before.keys() - now.keys():
                await self._presence(consultation, before[pid], joined=False)

    async def _presence(self, consultation: Consultation, who: Participant, *, joined: bool) -> None:
        verb = "加入" if joined else "离开"
        event = Event(
            "consultation.joined" if joined else "consultation.left",
            incident_id=consultation.incident_id,
            data={
                "summary": f"{who.display or who.id} {verb}视频会商《{consultation.title}》",
                "consultation_id": consultation.id,
                "participant_id": who.id,
                "site": who.display,
            },
        )
        await self.ctx.bus.publish(event)

    # Recording ------------------------------------------------------------------------------------------------

    def file_recordings(self, consultation: Consultation, sites: dict[int, str], started_at: datetime) -> None:
        """Post-process and file the room's recordings in the background (janus-pp-rec runs as a subprocess)."""
        self.filing.spawn(self._file(consultation, sites, started_at), name=f"file-consultation-{consultation.id}")

    async def _file(self, consultation: Consultation, sites: dict[int, str], started_at: datetime) -> None:
        pp_rec = self.ctx.settings.janus.pp_rec
        ended_at = utcnow()
        for stream in await asyncio.to_thread(room_recordings.streams, self.rec_dir(consultation)):
            if stream.participant_id not in sites:
                log.warning("%s: not a site of consultation %s, not filed", stream.path.name, consultation.id)
                continue
            try:
                playable = await room_recordings.convert(pp_rec, stream)
            except room_recordings.ConversionFailed as exc:
                log.warning("%s", exc)
                continue
            site = sites.get(stream.participant_id, str(stream.participant_id))
            await self.recordings.file(
                playable,
                kind="consultation",
                started_at=started_at,
                ended_at=ended_at,
                incident_id=consultation.incident_id,
                source_id=consultation.id,
                parties=[{"name": site}],
            )
            done = stream.path.with_suffix(".mjr.done")
            await asyncio.to_thread(stream.path.rename, done)
