"""Wiring of video consultation: the local Janus (when it is ours, restarted should it exit), the API session to
it, and the consultations' live rooms (switchboard.consultations.live) on top."""

import asyncio
import contextlib
import logging

from conference.video.cameras import CameraStreams
from conference.video.engine import Engine, Layout, admin_key
from conference.video.phones import Phones
from conference.video.rooms import Rooms
from conference.video.session import JanusSession, LinkState
from recording.store import RecordingStore
from switchboard.consultations.live import LiveRooms
from switchboard.consultations.phones import PhoneSide
from switchboard.core.context import Context
from switchboard.core.events import Event
from switchboard.telephony import Telephony

log = logging.getLogger(__name__)

WATCH_SECONDS = 1.0


class Video:
    def __init__(
        self, ctx: Context, recordings: RecordingStore | None = None, telephony: Telephony | None = None
    ) -> None:
        self.ctx = ctx
        self.telephony = telephony  # phones join consultations through its Asterisk
        self.engine: Engine | None = None
        self.session: JanusSession | None = None
        self.live = LiveRooms(ctx, Layout.for_settings(ctx.settings), recordings or RecordingStore(ctx))
        self.cameras: CameraStreams | None = None  # live camera streams (the camera wall, cameras in consultations)
        self._watcher: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.ctx.settings.janus.mode != "off"

    async def start(self) -> None:
        j = self.ctx.settings.janus
        if j.mode == "off":
            return
        if j.mode == "local":
            self.engine = Engine(self.ctx.settings)
            await self.engine.start()
        self.session = JanusSession(self.live.layout.api_socket, keepalive=j.keepalive_seconds)
        self.live.rooms = Rooms(self.session, admin_key(self.ctx.settings))
        self.session.on_resync(self.live.resync)
        gb = self.ctx.settings.gb28181
        self.cameras = CameraStreams(
            self.session, admin_key(self.ctx.settings), self.live.layout.api_socket, j.phone_address or "127.0.0.1",
            gb.media_host or gb.host, self.live.layout.recordings_dir / "cameras",
        )  # fmt: skip
        self.session.on_resync(self.cameras.resync)
        self.session.on_state(self._link_changed)
        self.session.start()
        self._take_phones()
        self._watcher = asyncio.create_task(self._watch(), name="consultation-watch")

    def _take_phones(self) -> None:
        """Phones join consultations when Asterisk is ours to drive, its dialplan has dial-in numbers and Janus's
        AudioBridge has an address Asterisk reaches."""
        t = self.telephony
        if not self.ctx.settings.janus.phone_address or t is None or t.ami is None or t.calls is None:
            return
        if t.definition.consultations is None:
            return
        phones = Phones(t.ami, self.live.layout.api_socket, admin_key(self.ctx.settings))
        self.live.phones = PhoneSide(self.ctx, phones, t.definition.consultations.numbers(), t.calls.dial_string)

    async def stop(self) -> None:
        if self._watcher:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self.live.phones is not None:
            await self.live.phones.phones.stop()
        await self.live.stop()
        if self.session:
            await self.session.stop()
        if self.engine:
            await self.engine.stop()

    def health(self) -> dict[str, str] | None:
        if self.session is None:
            return None
        engine = {"engine": "running" if self.engine.running else "stopped"} if self.engine else {}
        return self.session.health() | engine

    async def _watch(self) -> None:
        """Our own Janus, restarted should it exit; and who is in each room, polled while the link is up."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                if self.engine is not None and not self.engine.running:
                    log.warning("our Janus exited; starting it again")
                    await self.engine.start()  # the session reconnects and resyncs the rooms by itself
                if self.session is not None and self.session.state == LinkState.up:
                    await self.live.poll()
                    if self.live.phones is not None and self.live.phones.phones.ami.state == LinkState.up:
                        await self.live.phones.link_all()
            except Exception:
                log.exception("consultation watch failed; trying again")

    async def _link_changed(self, state: LinkState) -> None:
        error = self.session.last_error if self.session else ""
        await self.ctx.bus.publish(Event("engine.link", data={"engine": "janus", "state": state, "error": error}))
