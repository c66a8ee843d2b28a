"""Camera routes: the registry (administrators change it, officers read it), PTZ, catalog refresh and the device's
own account of itself. Live state arrives as camera.* events over WS /api/v1/events."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from switchboard.api.deps import Admin, CameraRegistry, Ctx, Officer
from switchboard.cameras import flows, service
from switchboard.cameras.models import Camera, CameraIn, CameraOut, CameraPatch, DeviceStateOut, PtzIn
from switchboard.core.db import get_or_404

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])


@router.get("", response_model=list[CameraOut])
async def listing(
    ctx: Ctx, _: Officer, org: Annotated[str | None, Query(description="only this organisation's (its code)")] = None
) -> list[CameraOut]:
    """Every camera (of one organisation when `org` is given), ordered by organisation code and name."""
    async with ctx.db.reader() as session:
        return [CameraOut.model_validate(camera) for camera in await service.listing(session, org)]


@router.post("", status_code=201, response_model=CameraOut)
async def register(ctx: Ctx, live: CameraRegistry, data: CameraIn, who: Admin) -> CameraOut:
    return await flows.register(ctx, live, data, who.username)


@router.get("/{camera_id}", response_model=CameraOut)
async def one(ctx: Ctx, camera_id: str, _: Officer) -> CameraOut:
    async with ctx.db.reader() as session:
        return CameraOut.model_validate(await get_or_404(session, Camera, camera_id, what="摄像机", field="camera_id"))


@router.patch("/{camera_id}", response_model=CameraOut)
async def change(ctx: Ctx, live: CameraRegistry, camera_id: str, data: CameraPatch, who: Admin) -> CameraOut:
    return await flows.change(ctx, live, camera_id, data, who.username)


@router.delete("/{camera_id}", status_code=204)
async def remove(ctx: Ctx, live: CameraRegistry, camera_id: str, who: Admin) -> Response:
    await flows.remove(ctx, live, camera_id, who.username)
    return Response(status_code=204)


@router.post("/{camera_id}/channels/{channel_id}/ptz")
async def ptz(
    ctx: Ctx, live: CameraRegistry, camera_id: str, channel_id: str, data: PtzIn, who: Officer
) -> dict[str, str]:
    """One PTZ step (`stop` ends a move); answers the PTZCmd sent once the device took it."""
    return {"ptz_cmd": await flows.move(ctx, live, camera_id, channel_id, data, who.username)}


@router.post("/{camera_id}/catalog", status_code=202)
async def refresh_catalog(ctx: Ctx, live: CameraRegistry, camera_id: str, who: Officer) -> Response:
    """Ask the device for its catalog again; the channels follow (camera.catalog event)."""
    await flows.refresh_catalog(ctx, live, camera_id, who.username)
    return Response(status_code=202)


@router.get("/{camera_id}/state", response_model=DeviceStateOut)
async def state(ctx: Ctx, live: CameraRegistry, camera_id: str, _: Officer) -> DeviceStateOut:
    """The device's DeviceInfo and DeviceStatus, asked now."""
    return await flows.device_state(ctx, live, camera_id)
