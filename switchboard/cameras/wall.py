"""The camera wall's live side. A console tile watches one camera stream (a GB/T 28181 channel or an RTSP camera)
through a Janus subscriber of its own: the control plane opens the stream (the first watcher INVITEs the channel,
conference.video.cameras), subscribes, hands the browser Janus's offer and passes its answer back. No WebSocket
relay is needed: the answer carries the browser's ICE candidates, Janus's offer carries its own. A watch ends when
the console says so, when Janus hangs up its PeerConnection (tab closed, network gone) or when no answer came in
ANSWER_SECONDS; the stream ends with its last watcher (BYE to the device)."""

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field

from conference.video.cameras import CameraSource, CameraStreams, LiveStream, Viewer
from switchboard.core.errors import Forbidden, NotFound, Unavailable

log = logging.getLogger(__name__)

ANSWER_SECONDS = 30.0


@dataclass
class Watch:
    id: str
    username: str
    camera_id: str
    channel_id: str
    viewer: Viewer
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Wall:
    def __init__(self) -> None:
        self.streams: CameraStreams | None = None  # set by the wiring when Janus is on
        self.watches: dict[str, Watch] = {}

    def running(self) -> CameraStreams:
        if self.streams is None:
            raise Unavailable("实时视频需要视频会商引擎（[janus] mode 不能为 off）")
        return self.streams

    async def watch(
        self, source: CameraSource, username: str, camera_id: str, channel_id: str
    ) -> tuple[Watch, LiveStream]:
        """Open the stream (or join it) and subscribe a new tile to it."""
        streams = self.running()
        stream = await streams.open(source)
        try:
            viewer = await streams.view(source.key)
        except BaseException:
            await streams.close(source.key)
            raise
        watch = Watch(secrets.token_urlsafe(16), username, camera_id, channel_id, viewer)
        self.watches[watch.id] = watch
        watch.task = asyncio.create_task(self._until_over(watch), name="camera-watch")
        return watch, stream

    async def answer(self, watch_id: str, username: str, sdp: str) -> None:
        watch = self._own(watch_id, username)
        await watch.viewer.answer(sdp)
        watch.answered.set()

    async def end(self, watch_id: str, username: str) -> Watch:
        watch = self._own(watch_id, username)
        if watch.task is not None:
            watch.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch.task
        return watch

    async def ended(self, key: str) -> None:
        """The stream ended at its source: every tile watching it is let go (Janus ends its subscription), and the
        stream with its ingest and its forwards into consultations."""
        for watch in [w for w in self.watches.values() if w.viewer.key == key]:
            await self.end(watch.id, watch.username)
        if self.streams is not None:
            await self.streams.ended(key)

    async def stop(self) -> None:
        for watch in list(self.watches.values()):
            await self.end(watch.id, watch.username)
        if self.streams is not None:
            await self.streams.stop()

    def _own(self, watch_id: str, username: str) -> Watch:
        watch = self.watches.get(watch_id)
        if watch is None:
            raise NotFound("该实时画面已结束", field="watch_id")
        if watch.username != username:
            raise Forbidden("只能操作自己打开的实时画面", field="watch_id")
        return watch

    async def _until_over(self, watch: Watch) -> None:
        """Runs as long as the watch: unanswered for ANSWER_SECONDS or hung up by Janus, it ends (and so does the
        stream with its last watcher)."""
        try:
            await asyncio.wait_for(watch.answered.wait(), ANSWER_SECONDS)
            await watch.viewer.hung_up()
        except TimeoutError:
            log.info("camera watch %s never answered", watch.id)
        finally:
            self.watches.pop(watch.id, None)
            await watch.viewer.close()
            if self.streams is not None:
                await asyncio.shield(self.streams.close(watch.viewer.key))
