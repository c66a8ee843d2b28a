"""The platform's SIP server (GB/T 28181-2016 sections 9.1-9.6): devices and lower platforms register with digest
authentication, report keepalives, answer Catalog, DeviceInfo and DeviceStatus queries, take DeviceControl (PTZ) and
stream live video on INVITE. The registry behind it (which ids may register, with which HA1, and what happens when
one comes and goes) is a `Directory` the domain provides; this layer keeps only what is live: where each device is,
when it last spoke, the queries and the live streams under way."""

import asyncio
import contextlib
import itertools
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from conference.gb28181 import digest, manscdp, sdp
from conference.gb28181.manscdp import CatalogItem
from conference.gb28181.message import Message, params, response, user_of
from conference.gb28181.transport import Endpoint, Peer, Timeout, new_request

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.5


class Directory(Protocol):
    """What the registry answers and is told (switchboard.cameras implements it)."""

    async def credentials(self, device_id: str) -> str | None:
        """The device's HA1 under our realm, or None when the id is not in the registry."""

    async def online(self, device: "Device") -> None: ...

    async def offline(self, device_id: str, reason: str) -> None:
        """`reason`: unregistered, keepalive_lost, registration_expired."""

    async def catalog(self, device_id: str, items: list[CatalogItem]) -> None: ...


class CommandFailed(Exception):
    """A device did not take a command or answer a query; the message says why (in Chinese, for the API)."""


@dataclass
class Device:
    device_id: str
    peer: Peer
    registered_at: float
    expires_at: float
    last_seen: float
    address: str = ""  # host:port as seen, for the registry


@dataclass
class Stream:
    """A live INVITE dialog: who watches it, and what BYE needs."""

    device_id: str
    channel_id: str
    ssrc: str
    answer: sdp.Answer
    call_id: str
    from_tag: str
    to: str
    peer: Peer
    watchers: int = 1
    cseq: int = 1


@dataclass(frozen=True)
class PlatformSettings:
    sip_id: str  # our 20-digit id; its first ten digits are the SIP domain and the digest realm
    host: str
    port: int
    keepalive_seconds: float = 60.0
    keepalive_misses: int = 3
    query_seconds: float = 8.0

    @property
    def realm(self) -> str:
        return self.sip_id[:10]


QueryHandler = Callable[[ET.Element, str, Peer], Awaitable[None]]


@dataclass
class _Catalog:
    total: int = 0
    items: list[CatalogItem] = field(default_factory=list)


class Platform:
    def __init__(self, settings: PlatformSettings, directory: Directory) -> None:
        self.settings = settings
        self.directory = directory
        self.endpoint = Endpoint(settings.host, settings.port, self._handle)
        self.devices: dict[str, Device] = {}
        self.streams: dict[str, Stream] = {}  # by channel id
        self.upper_queries: dict[str, QueryHandler] = {}  # an upper platform's id -> who answers its queries
        self.on_stream_ended: Callable[[str], Awaitable[None]] | None = None  # a device's BYE, by channel id
        self._challenger = digest.Challenger(settings.realm)
        self._answers: dict[tuple[str, str], asyncio.Future[ET.Element]] = {}
        self._catalogs: dict[str, _Catalog] = {}
        self._sn = itertools.count(int(time.time()) % 100000)
        self._ssrc = itertools.count(1)
        self._watch: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return self.endpoint.port

    async def start(self) -> None:
        await self.endpoint.start()
        self._watch = asyncio.create_task(self._watch_keepalives(), name="gb28181-keepalives")

    async def stop(self) -> None:
        for stream in list(self.streams.values()):
            with contextlib.suppress(Exception):
                await self._bye(stream)
        if self._watch:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.endpoint.stop()

    # --- requests we receive -------------------------------------------------------------------------------------

    async def _handle(self, request: Message, peer: Peer) -> Message | None:
        method = request.method
        if method == "REGISTER":
            return await self._register(request, peer)
        if method == "MESSAGE":
            return await self._message(request, peer)
        if method == "ACK":
            return None
        if method in ("BYE", "OPTIONS"):
            if method == "BYE":
                self._ended_by_device(request.call_id)
            return response(request, 200, "OK")
        return response(request, 405, "Method Not Allowed", headers=[("Allow", "REGISTER, MESSAGE, BYE, ACK, OPTIONS")])

    async def _register(self, request: Message, peer: Peer) -> Message:
        device_id = user_of(request.header("To"))
        expires = int(request.get("Expires") or params(request.get("Contact") or "").get("expires") or 3600)
        ha1 = await self.directory.credentials(device_id)
        if ha1 is None:
            log.info("REGISTER from unknown id %s at %s", device_id, peer)
            return response(request, 403, "Forbidden")
        authorization = request.get("Authorization")
        if authorization is None:
            return response(request, 401, "Unauthorized", headers=[("WWW-Authenticate", self._challenger.challenge())])
        fields = digest.parse(authorization)
        if fields.get("username") != device_id or not self._challenger.check(fields, "REGISTER", ha1):
            log.info("REGISTER from %s at %s: wrong credentials", device_id, peer)
            return response(request, 403, "Forbidden")
        now = time.monotonic()
        date = datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]  # section 9.10: devices set their clock from it
        answer = response(request, 200, "OK", headers=[("Date", date), ("Expires", str(expires))])
        if expires == 0:
            if self.devices.pop(device_id, None) is not None:
                self._spawn(self.directory.offline(device_id, "unregistered"))
            return answer
        known = self.devices.get(device_id)
        self.devices[device_id] = Device(device_id, peer, now, now + expires, now, f"{peer.host}:{peer.port}")
        if known is None:
            self._spawn(self._arrived(self.devices[device_id]))
        return answer

    async def _arrived(self, device: Device) -> None:
        """A device registered: the registry hears of it, then we ask what it has (its catalog)."""
        await self.directory.online(device)
        with contextlib.suppress(CommandFailed):
            await self.catalog(device.device_id)

    async def _message(self, request: Message, peer: Peer) -> Message:
        try:
            root = manscdp.decode(request.body)
        except manscdp.BodyError as exc:
            log.info("MESSAGE from %s: %s", peer, exc)
            return response(request, 400, "Bad Request")
        sender = user_of(request.header("From"))
        command = manscdp.text(root, "CmdType")
        sn = manscdp.text(root, "SN")
        if root.tag == "Query" and (answer_upper := self.upper_queries.get(sender)):
            self._spawn(answer_upper(root, sn, peer))
            return response(request, 200, "OK")
        device = self.devices.get(sender)
        if device is None:
            return response(request, 403, "Forbidden")  # not registered: the device registers again (9.6)
        device.last_seen = time.monotonic()
        if root.tag == "Response" and command == "Catalog":
            self._collect_catalog(sender, sn, root)
        elif root.tag == "Response" and (waiting := self._answers.get((sender, sn))) and not waiting.done():
            waiting.set_result(root)
        return response(request, 200, "OK")

    def _collect_catalog(self, device_id: str, sn: str, root: ET.Element) -> None:
        """A catalog comes in as many MESSAGEs as the device likes; it is complete when SumNum items arrived."""
        total, items = manscdp.catalog_items(root)
        collected = self._catalogs.setdefault(device_id, _Catalog())
        collected.total = total
        collected.items.extend(items)
        if len(collected.items) >= total:
            del self._catalogs[device_id]
            self._spawn(self.directory.catalog(device_id, collected.items))
            if (waiting := self._answers.get((device_id, sn))) and not waiting.done():
                waiting.set_result(root)

    def _ended_by_device(self, call_id: str) -> None:
        """The device sent BYE: its stream is gone for every watcher, and whoever carries it hears so."""
        for channel, stream in list(self.streams.items()):
            if stream.call_id == call_id:
                del self.streams[channel]
                if self.on_stream_ended is not None:
                    self._spawn(self.on_stream_ended(channel))

    # --- requests we send -----------------------------------------------------------------------------------------

    def forget(self, device_id: str) -> None:
        """The registry no longer has this device: it must register (and be let in) again."""
        self.devices.pop(device_id, None)

    def device(self, device_id: str) -> Device:
        found = self.devices.get(device_id)
        if found is None:
            raise CommandFailed(f"设备 {device_id} 不在线")
        return found

    async def query(self, device_id: str, command: str, extra: dict[str, str] | None = None) -> ET.Element:
        """Send a Query and wait for the device's Response with the same SN (Catalog: all of its parts)."""
        device = self.device(device_id)
        sn = str(next(self._sn))
        root = manscdp.build("Query", {"CmdType": command, "SN": sn, "DeviceID": device_id, **(extra or {})})
        waiting: asyncio.Future[ET.Element] = asyncio.get_running_loop().create_future()
        self._answers[(device_id, sn)] = waiting
        try:
            await self._send_message(device, root)
            return await asyncio.wait_for(waiting, self.settings.query_seconds)
        except TimeoutError:
            raise CommandFailed(
                f"设备 {device_id} 未在 {self.settings.query_seconds:.0f} 秒内应答 {command} 查询"
            ) from None
        finally:
            self._answers.pop((device_id, sn), None)

    async def catalog(self, device_id: str) -> ET.Element:
        return await self.query(device_id, "Catalog")

    async def control(self, device_id: str, channel_id: str, ptz_cmd: str) -> None:
        """DeviceControl with a PTZCmd to one channel; done when the device says 200 to the MESSAGE."""
        device = self.device(device_id)
        sn = str(next(self._sn))
        root = manscdp.build(
            "Control", {"CmdType": "DeviceControl", "SN": sn, "DeviceID": channel_id, "PTZCmd": ptz_cmd}
        )
        root.append(manscdp.build("Info", {"ControlPriority": "5"}))
        await self._send_message(device, root)

    async def _send_message(self, device: Device, root: ET.Element) -> None:
        peer = device.peer
        request = new_request(
            self.endpoint, "MESSAGE", f"sip:{device.device_id}@{peer.host}:{peer.port}",
            from_user=self.settings.sip_id, to_uri=f"<sip:{device.device_id}@{device.device_id[:10]}>", peer=peer,
            body=manscdp.encode(root), content_type=manscdp.CONTENT_TYPE,
        )  # fmt: skip
        try:
            answer = await self.endpoint.request(request, peer, deadline=self.settings.query_seconds)
        except Timeout:
            raise CommandFailed(f"设备 {device.device_id} 未应答") from None
        except OSError as exc:
            raise CommandFailed(f"无法连接设备 {device.device_id}：{exc}") from None
        if answer.status != 200:
            raise CommandFailed(f"设备 {device.device_id} 拒绝了命令（SIP {answer.status}）")

    async def play(self, device_id: str, channel_id: str, host: str, port: int, transport: str = "udp") -> Stream:
        """Live view of one channel into host:port; a second watcher of the same channel shares the stream."""
        if (stream := self.streams.get(channel_id)) is not None:
            stream.watchers += 1
            return stream
        device = self.device(device_id)
        ssrc = sdp.ssrc(self.settings.realm, next(self._ssrc))
        peer = device.peer
        request = new_request(
            self.endpoint, "INVITE", f"sip:{channel_id}@{peer.host}:{peer.port}", from_user=self.settings.sip_id,
            to_uri=f"<sip:{channel_id}@{channel_id[:10]}>", peer=peer,
            headers=[("Subject", f"{channel_id}:{ssrc},{self.settings.sip_id}:0")],
            body=sdp.offer(channel_id, host, port, ssrc, transport).encode(), content_type="APPLICATION/SDP",
        )  # fmt: skip
        try:
            answer = await self.endpoint.request(request, peer, deadline=self.settings.query_seconds)
        except Timeout:
            raise CommandFailed(f"通道 {channel_id} 未应答点播请求") from None
        if answer.status != 200:
            raise CommandFailed(f"通道 {channel_id} 拒绝了点播（SIP {answer.status}）")
        stream = Stream(
            device_id, channel_id, ssrc, sdp.answer(answer.body.decode("utf-8", "replace")), request.call_id,
            params(request.header("From"))["tag"], answer.header("To"), peer,
        )  # fmt: skip
        await self.endpoint.send(self._in_dialog(stream, "ACK", 1), peer)
        self.streams[channel_id] = stream
        return stream

    async def release(self, channel_id: str) -> bool:
        """One watcher fewer; the last one gone ends the stream with BYE. True when the stream ended."""
        stream = self.streams.get(channel_id)
        if stream is None:
            return False
        stream.watchers -= 1
        if stream.watchers > 0:
            return False
        del self.streams[channel_id]
        await self._bye(stream)
        return True

    async def _bye(self, stream: Stream) -> None:
        stream.cseq += 1
        with contextlib.suppress(Timeout, OSError):
            await self.endpoint.request(self._in_dialog(stream, "BYE", stream.cseq), stream.peer, deadline=4.0)

    def _in_dialog(self, stream: Stream, method: str, cseq: int) -> Message:
        return new_request(
            self.endpoint, method, f"sip:{stream.channel_id}@{stream.peer.host}:{stream.peer.port}",
            from_user=self.settings.sip_id, to_uri=stream.to, peer=stream.peer, call_id=stream.call_id,
            from_tag=stream.from_tag, cseq=cseq,
        )  # fmt: skip

    # --- liveness -------------------------------------------------------------------------------------------------

    async def _watch_keepalives(self) -> None:
        """Offline after `keepalive_misses` keepalive intervals of silence, or when the registration runs out."""
        limit = self.settings.keepalive_seconds * self.settings.keepalive_misses
        while True:
            await asyncio.sleep(min(WATCH_SECONDS, self.settings.keepalive_seconds / 4))
            now = time.monotonic()
            for device_id, device in list(self.devices.items()):
                reason = "keepalive_lost" if now - device.last_seen > limit else ""
                reason = reason or ("registration_expired" if now > device.expires_at else "")
                if reason:
                    del self.devices[device_id]
                    log.info("device %s offline: %s", device_id, reason)
                    self._spawn(self.directory.offline(device_id, reason))  # a failure there must not stop the watch

    def _spawn(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("GB/T 28181 background work failed")

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
