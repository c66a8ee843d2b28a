"""The cameras' live side: runs the GB/T 28181 platform (and its cascade link upward) when `[gb28181] enabled`,
answers it from the registry (who may register, with which HA1), and turns what it sees into rows and events:
`camera.online`, `camera.offline` (with the reason), `camera.catalog`, `camera.upper` (the cascade link)."""

import logging

from conference.gb28181.cascade import UpperLink, UpperSettings, UpperState
from conference.gb28181.manscdp import CatalogItem
from conference.gb28181.platform import Device, Platform, PlatformSettings
from conference.video.cameras import CameraSource
from switchboard.cameras import service
from switchboard.cameras.models import OFFLINE_REASONS, Camera, CameraKind
from switchboard.cameras.wall import Wall
from switchboard.core.context import Context
from switchboard.core.errors import Unavailable
from switchboard.core.events import Event

log = logging.getLogger(__name__)


class LiveCameras:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.platform: Platform | None = None
        self.upper: UpperLink | None = None
        self.wall = Wall()

    @property
    def realm(self) -> str:
        return self.ctx.settings.gb28181.sip_id[:10]

    def running(self) -> Platform:
        if self.platform is None:
            raise Unavailable("国标（GB/T 28181）信令服务未启用（[gb28181] enabled = false）")
        return self.platform

    async def start(self) -> None:
        gb = self.ctx.settings.gb28181
        if not gb.enabled:
            return
        await self._all_offline("server_stopped")  # whatever was online before this start must register again
        settings = PlatformSettings(
            gb.sip_id, gb.host, gb.port, gb.keepalive_seconds, gb.keepalive_misses, gb.query_seconds
        )
        self.platform = Platform(settings, self)
        self.platform.on_stream_ended = self._stream_ended
        await self.platform.start()
        log.info("GB/T 28181 SIP server on %s:%s (UDP and TCP), realm %s", gb.host, self.platform.port, self.realm)
        if gb.upper_id:
            upper = UpperSettings(
                gb.upper_id, gb.upper_host, gb.upper_port, gb.upper_password, gb.upper_transport, gb.upper_expires,
                gb.upper_keepalive_seconds,
            )  # fmt: skip
            self.upper = UpperLink(self.platform, upper, self._shared_catalog, self._upper_changed)
            self.upper.start()

    async def stop(self) -> None:
        await self.wall.stop()
        if self.upper:
            await self.upper.stop()
        if self.platform:
            await self.platform.stop()
            self.platform = None
            await self._all_offline("server_stopped")

    def health(self) -> dict[str, dict[str, object]]:
        """`gb28181` (the SIP server, with how many devices are online and how many camera streams are live) and
        `gb28181:upper` (the cascade link)."""
        if self.platform is None:
            return {}
        streams = len(self.wall.streams.streams) if self.wall.streams else 0
        found: dict[str, dict[str, object]] = {
            "gb28181": {"status": "ok", "port": self.platform.port, "online": len(self.platform.devices),
                        "live_streams": streams}
        }  # fmt: skip
        if self.upper:
            found["gb28181:upper"] = self.upper.health()
        return found

    def source(self, camera: Camera, channel_id: str) -> CameraSource:
        """Where a camera's live video comes from: its RTSP URL, or one GB/T 28181 channel INVITEd on demand."""
        if camera.kind == CameraKind.rtsp:
            return CameraSource(f"rtsp:{camera.id}", camera.name, rtsp_url=camera.rtsp_url)
        platform, device_id = self.running(), camera.device_id or ""
        name = next((c.name for c in camera.channels if c.channel_id == channel_id), channel_id)

        transport = self.ctx.settings.gb28181.media_transport

        async def invite(host: str, port: int) -> tuple[str, int]:
            answer = (await platform.play(device_id, channel_id, host, port, transport)).answer
            return answer.host, answer.port

        async def bye() -> None:
            await platform.release(channel_id)

        display = f"{camera.name} · {name}"
        return CameraSource(f"gb28181:{channel_id}", display, transport=transport, invite=invite, bye=bye)

    async def _stream_ended(self, channel_id: str) -> None:
        """The device ended a live stream (BYE): its watchers are let go and the stream taken down."""
        await self.wall.ended(f"gb28181:{channel_id}")

    # --- the platform's Directory --------------------------------------------------------------------------------

    async def credentials(self, device_id: str) -> str | None:
        async with self.ctx.db.reader() as session:
            camera = await service.by_device(session, device_id)
        return camera.password_ha1 if camera is not None and camera.password_ha1 else None

    async def online(self, device: Device) -> None:
        async with self.ctx.db.session() as session:
            camera = await service.mark(session, device.device_id, online=True, address=device.address)
            event = _event("camera.online", camera, address=device.address)
        await self._publish(event)

    async def offline(self, device_id: str, reason: str) -> None:
        async with self.ctx.db.session() as session:
            camera = await service.mark(session, device_id, online=False, reason=reason)
            event = _event("camera.offline", camera, reason=reason, reason_name=OFFLINE_REASONS[reason])
        await self._publish(event)

    async def catalog(self, device_id: str, items: list[CatalogItem]) -> None:
        async with self.ctx.db.session() as session:
            camera = await service.store_catalog(session, device_id, items)
            event = _event("camera.catalog", camera, channels=len(camera.channels) if camera else 0)
        await self._publish(event)

    # --- helpers ----------------------------------------------------------------------------------------------------

    async def _publish(self, event: Event | None) -> None:
        """After the commit, so whoever hears of it reads the rows it tells of."""
        if event is not None:
            await self.ctx.bus.publish(event)

    async def _all_offline(self, reason: str) -> None:
        async with self.ctx.db.session() as session:
            for camera in await service.listing(session):
                if camera.online:
                    camera.online, camera.offline_reason = False, reason

    async def _shared_catalog(self) -> list[CatalogItem]:
        async with self.ctx.db.reader() as session:
            return await service.shared_catalog(session)

    async def _upper_changed(self, state: UpperState, error: str) -> None:
        await self.ctx.bus.publish(Event("camera.upper", data={"state": state.value, "error": error}))


def _event(kind: str, camera: Camera | None, **data: object) -> Event | None:
    if camera is None:
        return None  # removed from the registry meanwhile
    return Event(kind, data={"camera_id": camera.id, "device_id": camera.device_id, "name": camera.name} | data)
