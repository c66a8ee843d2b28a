"""Camera routes: the registry (administrators change it, officers read it), PTZ, catalog refresh and the device's
own account of itself. Live state arrives as camera.* events over WS /api/v1/events."""

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from switchboard.api.deps import Admin, CameraRegistry, Ctx, Officer, Recordings
from switchboard.cameras import flows, service
from switchboard.cameras.models import (
    AnswerIn,
    Camera,
    CameraIn,
    CameraOut,
    CameraPatch,
    DeviceStateOut,
    PtzIn,
    WatchIn,
    WatchOut,
)
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


@router.post("/{camera_id}/watches", status_code=201, response_model=WatchOut)
async def watch(ctx: Ctx, live: CameraRegistry, camera_id: str, data: WatchIn, who: Officer) -> WatchOut:
    """Live video for one console tile: the stream is started (INVITE) for its first watcher and shared; answers
    Janus's offer once the first frame reached Janus. H.265 channels are refused (422)."""
    return await flows.watch(ctx, live, camera_id, data.channel_id, who.username)


@router.post("/watches/{watch_id}/answer", status_code=204)
async def answer(live: CameraRegistry, watch_id: str, data: AnswerIn, who: Officer) -> Response:
    await live.wall.answer(watch_id, who.username, data.sdp)
    return Response(status_code=204)


@router.delete("/watches/{watch_id}", status_code=204)
async def unwatch(ctx: Ctx, live: CameraRegistry, watch_id: str, who: Officer) -> Response:
    """The tile closed; the last watcher gone, the device gets BYE."""
    await flows.unwatch(ctx, live, watch_id, who.username)
    return Response(status_code=204)


@router.post("/{camera_id}/snapshots", status_code=201)
async def snapshot(
    ctx: Ctx,
    store: Recordings,
    camera_id: str,
    who: Officer,
    file: Annotated[UploadFile, File(description="The tile's picture, JPEG (at most [server] max_body_kb)")],
    incident_id: Annotated[str, Form(max_length=26)] = "",
    channel_id: Annotated[str, Form(max_length=20)] = "",
) -> dict[str, str]:
    """File a camera wall tile's picture under an incident (recording store, kind snapshot; on its timeline)."""
    jpeg = await file.read()
    return {"recording_id": await flows.snapshot(ctx, store, camera_id, channel_id, incident_id, jpeg, who.username)}
