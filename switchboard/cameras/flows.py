"""Camera actions: register, change and remove cameras (administrators), and drive them (PTZ, catalog, state).
Every change is audited; the device's own answers come back through the live side (switchboard.cameras.live)."""

import asyncio
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conference.gb28181 import ptz
from conference.gb28181.digest import ha1
from conference.gb28181.manscdp import text
from conference.gb28181.platform import CommandFailed
from recording.store import RecordingStore
from switchboard.cameras import service
from switchboard.cameras.live import LiveCameras
from switchboard.cameras.models import (
    Camera,
    CameraIn,
    CameraKind,
    CameraOut,
    CameraPatch,
    DeviceStateOut,
    PtzIn,
    WatchOut,
)
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.core.db import get_or_404, utcnow
from switchboard.core.errors import Conflict, InvalidInput, NotFound, Unavailable, quoted
from switchboard.core.outbound import CAMERA_SCHEMES, OutboundPolicy
from switchboard.directory.models import Organisation
from switchboard.incidents.service import filed_under

JPEG_START, JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"


async def register(ctx: Context, live: LiveCameras, data: CameraIn, actor: str) -> CameraOut:
    if data.kind == CameraKind.gb28181:
        if not data.device_id:
            raise InvalidInput("国标设备须填写 20 位设备编码", field="device_id")
        if not data.password:
            raise InvalidInput("国标设备须设置注册密码", field="password")
    elif not data.rtsp_url:
        raise InvalidInput("RTSP 摄像机须填写 RTSP 地址", field="rtsp_url")
    else:
        await OutboundPolicy.from_settings(ctx.settings).check(data.rtsp_url, schemes=CAMERA_SCHEMES, field="rtsp_url")
    async with ctx.db.session() as session:
        organisation_id = await _organisation(session, data.organisation_code)
        if data.device_id and await service.by_device(session, data.device_id):
            raise Conflict(f"设备编码 {data.device_id} 已登记", field="device_id")
        camera = Camera(
            kind=data.kind, name=data.name, organisation_id=organisation_id,
            device_id=data.device_id if data.kind == CameraKind.gb28181 else None,
            password_ha1=ha1(data.device_id, live.realm, data.password) if data.device_id and data.password else "",
            rtsp_url=data.rtsp_url or "" if data.kind == CameraKind.rtsp else "", channels=[],
        )  # fmt: skip
        session.add(camera)
        await session.flush()
        detail = {"kind": data.kind.value, "name": data.name, "organisation_code": data.organisation_code,
                  "device_id": camera.device_id}  # fmt: skip
        await audit.record(session, actor, "camera.create", "camera", camera.id, detail)
        return await _out(session, camera)


async def change(ctx: Context, live: LiveCameras, camera_id: str, data: CameraPatch, actor: str) -> CameraOut:
    async with ctx.db.session() as session:
        camera = await get_or_404(session, Camera, camera_id, what="摄像机", field="camera_id")
        detail: dict[str, str] = {}
        if data.name is not None:
            camera.name = detail["name"] = data.name
        if data.organisation_code is not None:
            camera.organisation_id = await _organisation(session, data.organisation_code)
            detail["organisation_code"] = data.organisation_code
        if data.password is not None:
            if camera.kind != CameraKind.gb28181 or not camera.device_id:
                raise InvalidInput("只有国标设备有注册密码", field="password")
            camera.password_ha1 = ha1(camera.device_id, live.realm, data.password)
            detail["password"] = "changed"
        if data.rtsp_url is not None:
            if camera.kind != CameraKind.rtsp:
                raise InvalidInput("只有 RTSP 摄像机有 RTSP 地址", field="rtsp_url")
            await OutboundPolicy.from_settings(ctx.settings).check(
                data.rtsp_url, schemes=CAMERA_SCHEMES, field="rtsp_url"
            )
            camera.rtsp_url = data.rtsp_url
            detail["rtsp_url"] = data.rtsp_url.split("@")[-1]
        await audit.record(session, actor, "camera.change", "camera", camera.id, detail)
        return await _out(session, camera)


async def remove(ctx: Context, live: LiveCameras, camera_id: str, actor: str) -> None:
    async with ctx.db.session() as session:
        camera = await get_or_404(session, Camera, camera_id, what="摄像机", field="camera_id")
        device_id = camera.device_id
        await session.delete(camera)
        await audit.record(
            session, actor, "camera.delete", "camera", camera_id, {"name": camera.name, "device_id": device_id}
        )
    if live.platform is not None and device_id:
        live.platform.forget(device_id)


async def move(ctx: Context, live: LiveCameras, camera_id: str, channel_id: str, data: PtzIn, actor: str) -> str:
    """One PTZ step to one channel (DeviceControl PTZCmd); the command sent is returned and audited."""
    platform = live.running()
    device_id = await _device_of(ctx, camera_id, channel_id)
    command = ptz.command(data.move.value, data.speed)
    try:
        await platform.control(device_id, channel_id, command)
    except CommandFailed as exc:
        raise Unavailable(str(exc)) from None
    detail = {"channel_id": channel_id, "move": data.move.value, "speed": data.speed, "ptz_cmd": command}
    await audit.record_alone(ctx, actor, "camera.ptz", "camera", camera_id, detail)
    return command


async def refresh_catalog(ctx: Context, live: LiveCameras, camera_id: str, actor: str) -> None:
    """Ask the device for its catalog again; its channels are stored when the answer is complete."""
    platform = live.running()
    device_id = await _device_of(ctx, camera_id)
    try:
        await platform.catalog(device_id)
    except CommandFailed as exc:
        raise Unavailable(str(exc)) from None
    await audit.record_alone(ctx, actor, "camera.catalog", "camera", camera_id, {})


async def device_state(ctx: Context, live: LiveCameras, camera_id: str) -> DeviceStateOut:
    platform = live.running()
    device_id = await _device_of(ctx, camera_id)
    try:
        info = await platform.query(device_id, "DeviceInfo")
        status = await platform.query(device_id, "DeviceStatus")
    except CommandFailed as exc:
        raise Unavailable(str(exc)) from None
    channels = text(info, "Channel")
    return DeviceStateOut(
        device_name=text(info, "DeviceName"), manufacturer=text(info, "Manufacturer"), model=text(info, "Model"),
        firmware=text(info, "Firmware"), channels=int(channels) if channels.isdigit() else None,
        online=text(status, "Online"), status=text(status, "Status"), recording=text(status, "Record"),
        device_time=text(status, "DeviceTime"),
    )  # fmt: skip


async def watch(ctx: Context, live: LiveCameras, camera_id: str, channel_id: str, actor: str) -> WatchOut:
    """Live video of one camera (a GB/T 28181 channel, INVITEd when nobody watched it yet) for one console tile:
    Janus's offer, to be answered (`answer`)."""
    camera = await watchable(ctx, camera_id, channel_id)
    source = live.source(camera, channel_id)
    try:
        opened, stream = await live.wall.watch(source, actor, camera.id, channel_id)
    except CommandFailed as exc:
        raise Unavailable(str(exc)) from None
    detail = {"channel_id": channel_id, "watch_id": opened.id}
    await audit.record_alone(ctx, actor, "camera.watch", "camera", camera.id, detail)
    return WatchOut(
        id=opened.id, offer=opened.viewer.offer, display=source.display, first_frame_ms=stream.first_frame_ms
    )


async def unwatch(ctx: Context, live: LiveCameras, watch_id: str, actor: str) -> None:
    """The tile closed: its subscription ends, and the stream with its last watcher (BYE to the device)."""
    ended = await live.wall.end(watch_id, actor)
    detail = {"channel_id": ended.channel_id, "watch_id": watch_id}
    await audit.record_alone(ctx, actor, "camera.unwatch", "camera", ended.camera_id, detail)


async def snapshot(
    ctx: Context, store: RecordingStore, camera_id: str, channel_id: str, incident_id: str, jpeg: bytes, actor: str
) -> str:
    """A camera wall tile's picture (a JPEG the console took of it) filed under the incident: in the recording store
    (SHA-256 in the audit ledger, like every recording) and so on the incident's timeline. Its recording id."""
    camera = await watchable(ctx, camera_id, channel_id)
    if not incident_id:
        raise InvalidInput("请选择截图归档的事件", field="incident_id")
    await filed_under(ctx, incident_id)
    if not (jpeg.startswith(JPEG_START) and jpeg.rstrip(b"\0").endswith(JPEG_END)):
        raise InvalidInput("截图不是 JPEG 图片", field="file")
    name = next((c.name for c in camera.channels if c.channel_id == channel_id), "")
    parties = [{"name": f"{camera.name} · {name}" if name else camera.name, "camera_id": camera.id}]
    with tempfile.TemporaryDirectory(dir=ctx.settings.var_path) as folder:
        path = Path(folder) / "snapshot.jpg"
        await asyncio.to_thread(path.write_bytes, jpeg)
        now = utcnow()
        saved = await store.file(
            path, kind="snapshot", started_at=now, ended_at=now, incident_id=incident_id, source_id=camera.id,
            parties=parties, actor=actor,
        )  # fmt: skip
    return saved.id


async def watchable(ctx: Context, camera_id: str, channel_id: str) -> Camera:
    """A camera whose live video can be asked for: an RTSP camera, or a GB/T 28181 device with this channel."""
    async with ctx.db.reader() as session:
        camera = await get_or_404(session, Camera, camera_id, what="摄像机", field="camera_id")
    if camera.kind == CameraKind.gb28181:
        if not channel_id:
            raise InvalidInput("国标设备须指定通道", field="channel_id")
        await _device_of(ctx, camera_id, channel_id)
    return camera


async def _device_of(ctx: Context, camera_id: str, channel_id: str | None = None) -> str:
    """The device id of a GB/T 28181 camera (and, when `channel_id` is given, one of its channels)."""
    async with ctx.db.reader() as session:
        camera = await get_or_404(session, Camera, camera_id, what="摄像机", field="camera_id")
        if camera.kind != CameraKind.gb28181 or not camera.device_id:
            raise InvalidInput("RTSP 摄像机不支持国标控制", field="camera_id")
        if channel_id is not None and all(channel.channel_id != channel_id for channel in camera.channels):
            raise NotFound(f"摄像机 {camera.name} 没有通道 {channel_id}", field="channel_id")
        return camera.device_id


async def _out(session: AsyncSession, camera: Camera) -> CameraOut:
    await session.flush()
    await session.refresh(camera, ["organisation", "channels"])
    return CameraOut.model_validate(camera)


async def _organisation(session: AsyncSession, code: str) -> str:
    """The id of the directory organisation with this code."""
    found = await session.scalar(select(Organisation.id).where(Organisation.code == code))
    if found is None:
        raise InvalidInput(f"组织机构 {quoted(code)} 不存在", field="organisation_code")
    return found
