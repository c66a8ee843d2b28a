"""Live camera streams in Janus. Each camera stream (a GB/T 28181 channel, an RTSP camera) is one ingest process
(`conference.video.ingest`) feeding one remote publisher in the camera room; it is opened by its first watcher
(for a GB/T 28181 channel: the INVITE, through the `invite` the caller gives) and closed by its last (BYE, process
stopped, publisher removed). A console tile watches through a subscriber of its own (`Viewer`); a consultation
gets the stream as a remote publisher of its own room that Janus feeds by `rtp_forward` from the camera room. So a
stream is received and demultiplexed once, and Janus (C) copies it to everyone who watches."""

import asyncio
import contextlib
import hashlib
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conference.video.client import JanusClient
from conference.video.feeds import FeedProcess
from conference.video.ingest import H264_PT, REMOTE_SSRC
from conference.video.rooms import NO_SUCH_ROOM, Rooms, RoomSpec
from conference.video.session import JanusRequestFailed, JanusSession
from switchboard.core.errors import InvalidInput, Unavailable

log = logging.getLogger(__name__)

CAMERA_ROOM = 1000  # consultations' rooms are numbered from 1,000,000
CAMERA_ROOM_PUBLISHERS = 256
VIDEO_MID = "0"  # a remote publisher's one stream
ACTIVE_PORT = 9  # RFC 4145 section 4.1: the port an active-only TCP endpoint offers (it connects, never listens)


@dataclass(frozen=True)
class CameraSource:
    """Where a stream comes from: an RTSP URL, or a GB/T 28181 channel that `invite` asks to send PS over RTP to
    host:port and `bye` stops. `transport`: udp; tcp_passive, the device connects to our listener; tcp_active, we
    connect to the device's listener at the address `invite` returns (the media address of the device's answer)."""

    key: str
    display: str
    rtsp_url: str = ""
    transport: str = "udp"
    invite: Callable[[str, int], Awaitable[tuple[str, int]]] | None = None
    bye: Callable[[], Awaitable[None]] | None = None


@dataclass
class LiveStream:
    source: CameraSource
    publisher: int  # the remote publisher's id in the camera room
    process: FeedProcess | None = None
    sock: socket.socket | None = None
    watchers: int = 0
    first_frame_ms: int = 0  # from the request to the first frame sent into Janus
    packets: int = 0
    lost: int = 0
    word: asyncio.Future[dict[str, Any]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    forwards: dict[int, "Forward"] = field(default_factory=dict)  # by consultation room

    def heard(self, line: dict[str, Any]) -> None:
        """A line from the ingest process: its first word decides the opening; stats are kept."""
        if line.get("event") in ("streaming", "refused") and not self.word.done():
            self.word.set_result(line)
        if line.get("event") == "stats":
            self.packets, self.lost = int(line.get("packets", 0)), int(line.get("lost", 0))


@dataclass(frozen=True)
class Forward:
    """The stream as publisher `publisher` of a consultation room, fed by the camera room's forwarder `stream_id`."""

    secret: str
    publisher: int
    stream_id: int


class CameraStreams:
    def __init__(
        self, session: JanusSession, admin_key: str, api_socket: Path, janus_address: str, media_host: str,
        rec_dir: Path, start_seconds: float = 15.0,
    ) -> None:  # fmt: skip
        self.session = session
        self.rooms = Rooms(session, admin_key)
        self.secret = hashlib.sha256(f"camera-room:{admin_key}".encode()).hexdigest()[:32]
        self.api_socket = api_socket
        self.janus_address = janus_address  # where Janus takes plain RTP from this host
        self.media_host = media_host  # where devices send their PS streams
        self.rec_dir = rec_dir
        self.start_seconds = start_seconds
        self.streams: dict[str, LiveStream] = {}
        self._locks: dict[str, asyncio.Lock] = {}  # per stream: opening one never waits for another's first frame

    async def resync(self) -> None:
        """The camera room (again, after a Janus restart: the streams in the old one are gone, watchers reopen)."""
        spec = RoomSpec(CAMERA_ROOM, "摄像机", self.secret, "", CAMERA_ROOM_PUBLISHERS, self.rec_dir, [], audio=False)
        await self.rooms.create(spec)
        for stream in list(self.streams.values()):
            if not await self._publishing(stream.publisher):
                await self._end(self.streams.pop(stream.source.key))

    async def open(self, source: CameraSource) -> LiveStream:
        """One watcher more of `source`; the first one starts it and waits for its first frame in Janus."""
        async with self._locks.setdefault(source.key, asyncio.Lock()):
            stream = self.streams.get(source.key)
            if stream is None:
                stream = await self._start(source)
                self.streams[source.key] = stream
            stream.watchers += 1
            return stream

    async def close(self, key: str) -> None:
        """One watcher fewer; the last one ends the stream."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            stream = self.streams.get(key)
            if stream is None:
                return
            stream.watchers -= 1
            if stream.watchers <= 0:
                await self._end(self.streams.pop(key))

    async def ended(self, key: str) -> None:
        """The source ended the stream (a device's BYE): taken down whoever still watches it."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            if (stream := self.streams.pop(key, None)) is not None:
                await self._end(stream)

    async def stop(self) -> None:
        for key in list(self.streams):
            async with self._locks.setdefault(key, asyncio.Lock()):
                if (stream := self.streams.pop(key, None)) is not None:
                    await self._end(stream)

    async def _start(self, source: CameraSource) -> LiveStream:
        started = time.monotonic()
        added = await self._add_publisher(CAMERA_ROOM, self.secret, secrets.randbelow(1 << 31) + 1, source.display)
        stream = LiveStream(source, int(added["id"]))
        argv = ["--janus", f"{self.janus_address}:{added['port']}"]
        try:
            if source.rtsp_url:
                self._ingest(stream, ["--source", "rtsp", *argv], {"SB_INGEST_RTSP": source.rtsp_url})
            elif source.transport == "tcp_active":
                assert source.invite is not None
                host, port = await source.invite(self.media_host, ACTIVE_PORT)
                connect = ["--connect", f"{host}:{port}", "--bind", self.media_host]
                self._ingest(stream, ["--source", "ps-tcp", *connect, *argv])
            else:
                tcp = source.transport == "tcp_passive"
                stream.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
                stream.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                stream.sock.bind((self.media_host, 0))
                if tcp:
                    stream.sock.listen(1)
                fd = stream.sock.fileno()
                self._ingest(stream, ["--source", "ps-tcp" if tcp else "ps-udp", "--socket-fd", str(fd), *argv])
                assert source.invite is not None
                await source.invite(self.media_host, stream.sock.getsockname()[1])
            try:
                word = await asyncio.wait_for(asyncio.shield(stream.word), self.start_seconds)
            except TimeoutError:
                raise Unavailable(f"{source.display} 在 {self.start_seconds:.0f} 秒内没有送来视频") from None
            if word["event"] == "refused":
                raise InvalidInput(_refusal(source.display, str(word.get("codec", ""))), field="channel_id")
        except BaseException:
            await self._end(stream)
            raise
        stream.first_frame_ms = round((time.monotonic() - started) * 1000)
        log.info("camera stream %s live in %d ms", source.key, stream.first_frame_ms)
        return stream

    def _ingest(self, stream: LiveStream, argv: list[str], secrets_env: dict[str, str] | None = None) -> None:
        """The stream's ingest process started; it inherits the stream's socket, if it has one."""
        fds = () if stream.sock is None else (stream.sock.fileno(),)
        stream.process = FeedProcess(
            argv, secrets_env or {}, module="conference.video.ingest", pass_fds=fds, report=stream.heard
        )
        stream.process.start()

    async def _end(self, stream: LiveStream) -> None:
        for room in list(stream.forwards):
            with contextlib.suppress(JanusRequestFailed, Unavailable):
                await self._unforward(stream, room)
        if stream.source.bye is not None:
            with contextlib.suppress(Exception):
                await stream.source.bye()
        if stream.process is not None:
            await stream.process.stop()
        if stream.sock is not None:
            stream.sock.close()
        with contextlib.suppress(JanusRequestFailed, Unavailable):
            await self.session.request(
                {"request": "remove_remote_publisher", "room": CAMERA_ROOM, "secret": self.secret,
                 "id": stream.publisher}
            )  # fmt: skip

    async def _add_publisher(self, room: int, secret: str, publisher: int, display: str) -> dict[str, Any]:
        """A remote publisher with one H.264 stream: Janus's answer says the port it takes plain RTP on."""
        return await self.session.request({
            "request": "add_remote_publisher", "room": room, "secret": secret, "id": publisher, "display": display,
            "iface": self.janus_address, "streams": [{"type": "video", "mindex": 0, "mid": VIDEO_MID, "codec": "h264"}],
        })  # fmt: skip

    async def _publishing(self, publisher: int) -> bool:
        try:
            return any(p.id == publisher for p in await self.rooms.participants(CAMERA_ROOM))
        except JanusRequestFailed as exc:
            if exc.code == NO_SUCH_ROOM:
                return False
            raise

    # --- consultations: the stream as a site of another room -----------------------------------------------------

    async def into_room(self, source: CameraSource, room: int, secret: str, publisher: int) -> "RoomFeed":
        """The stream of `source` (opened for this, one watcher more) as publisher `publisher` of the consultation
        room `room`: a remote publisher there, fed by an RTP forwarder of the camera room's. Stop the feed to undo."""
        stream = await self.open(source)
        try:
            added = await self._add_publisher(room, secret, publisher, source.display)
            forwarded = await self.session.request({
                "request": "rtp_forward", "room": CAMERA_ROOM, "secret": self.secret, "publisher_id": stream.publisher,
                "host": self.janus_address, "streams": [
                    {"mid": VIDEO_MID, "port": added["port"], "ssrc": REMOTE_SSRC, "pt": H264_PT}],
            })  # fmt: skip
        except BaseException:
            await self.close(source.key)
            raise
        stream.forwards[room] = Forward(secret, publisher, int(forwarded["forwarders"][0]["stream_id"]))
        return RoomFeed(self, source.key, room)

    async def _unforward(self, stream: LiveStream, room: int) -> None:
        forward = stream.forwards.pop(room)
        with contextlib.suppress(JanusRequestFailed):
            await self.session.request({
                "request": "stop_rtp_forward", "room": CAMERA_ROOM, "secret": self.secret,
                "publisher_id": stream.publisher, "stream_id": forward.stream_id,
            })  # fmt: skip
        await self.session.request(
            {"request": "remove_remote_publisher", "room": room, "secret": forward.secret, "id": forward.publisher}
        )

    async def out_of_room(self, key: str, room: int) -> None:
        """Undo `into_room`: the consultation's publisher removed, one watcher fewer."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            stream = self.streams.get(key)
            if stream is not None and room in stream.forwards:
                with contextlib.suppress(JanusRequestFailed, Unavailable):
                    await self._unforward(stream, room)
        await self.close(key)

    # --- consoles: a subscriber of their own -----------------------------------------------------------------------

    async def view(self, key: str) -> "Viewer":
        stream = self.streams[key]
        client = await JanusClient.open(self.api_socket)
        try:
            handle = await client.attach()
            join = {
                "request": "join",
                "ptype": "subscriber",
                "room": CAMERA_ROOM,
                "streams": [{"feed": stream.publisher}],
            }
            reply = await client.message(handle, join)
            if reply.jsep is None:
                raise Unavailable(f"无法订阅 {stream.source.display}：{reply.error or reply.data}")
        except BaseException:
            await client.close()
            raise
        return Viewer(key, client, handle, str(reply.jsep["sdp"]))


@dataclass(frozen=True)
class RoomFeed:
    """A camera stream feeding a consultation room, as the consultation's live side keeps its feeds."""

    streams: CameraStreams
    key: str
    room: int

    async def stop(self) -> None:
        await self.streams.out_of_room(self.key, self.room)


@dataclass
class Viewer:
    """One console tile's subscription: a Janus session of its own, so closing it ends the subscription whatever
    the browser does; Janus's offer goes to the browser, its answer (with its ICE candidates) comes back."""

    key: str
    client: JanusClient
    handle: int
    offer: str

    async def answer(self, sdp: str) -> None:
        reply = await self.client.message(self.handle, {"request": "start"}, {"type": "answer", "sdp": sdp})
        if reply.error:
            raise Unavailable(f"视频订阅失败：{reply.error[1]}")

    async def hung_up(self) -> None:
        """Returns when Janus hangs up the subscription (the browser's PeerConnection ended) or the session ends."""
        while (event := await self.client.next_event()) is not None:
            if event.get("janus") == "hangup":
                return

    async def close(self) -> None:
        await self.client.close()


def _refusal(display: str, codec: str) -> str:
    if codec == "H.265":
        return f"{display} 为 H.265 编码，本机浏览器无法解码（没有硬件解码器）：请在设备上改为 H.264 主码流或子码流"
    return f"{display} 的视频编码 {codec or '未知'} 无法在浏览器中播放，请在设备上改为 H.264"
