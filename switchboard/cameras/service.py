"""The camera registry over a session: rows in, rows out, the catalog a device reported stored as its channels."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conference.gb28181.manscdp import CatalogItem
from switchboard.cameras.models import Camera, CameraChannel, CameraKind
from switchboard.core.db import utcnow
from switchboard.directory.models import Organisation


async def listing(session: AsyncSession, organisation_code: str | None = None) -> Sequence[Camera]:
    query = select(Camera).join(Camera.organisation).order_by(Organisation.code, Camera.name)
    if organisation_code:
        query = query.where(Organisation.code == organisation_code)
    return (await session.scalars(query)).unique().all()


async def by_device(session: AsyncSession, device_id: str) -> Camera | None:
    return await session.scalar(select(Camera).where(Camera.device_id == device_id))


async def mark(session: AsyncSession, device_id: str, *, online: bool, reason: str = "", address: str = "",
               at: datetime | None = None) -> Camera | None:  # fmt: skip
    camera = await by_device(session, device_id)
    if camera is None:
        return None
    camera.online = online
    camera.offline_reason = "" if online else reason
    camera.address = address or camera.address
    camera.last_seen_at = at or utcnow()
    return camera


async def store_catalog(session: AsyncSession, device_id: str, items: list[CatalogItem]) -> Camera | None:
    """The channels become what the device just reported: new ones added, changed ones updated, gone ones removed."""
    camera = await by_device(session, device_id)
    if camera is None:
        return None
    reported = {item.device_id: item for item in items if item.device_id}
    kept = {channel.channel_id: channel for channel in camera.channels}
    for gone in kept.keys() - reported.keys():
        camera.channels.remove(kept[gone])
    for channel_id, item in reported.items():
        channel = kept.get(channel_id) or CameraChannel(channel_id=channel_id)
        channel.name = item.name[:200] or channel_id
        channel.manufacturer, channel.model = item.manufacturer[:100], item.model[:100]
        channel.civil_code, channel.address = item.civil_code[:20], item.address[:200]
        channel.parent_id, channel.ptz_type, channel.status = item.parent_id[:20], item.ptz_type, item.status[:8]
        if channel_id not in kept:
            camera.channels.append(channel)
    return camera


async def shared_catalog(session: AsyncSession) -> list[CatalogItem]:
    """Every GB/T 28181 channel in the registry, as an upper platform's Catalog query wants it."""
    cameras = await session.scalars(select(Camera).where(Camera.kind == CameraKind.gb28181))
    return [
        CatalogItem(
            device_id=channel.channel_id,
            name=channel.name,
            manufacturer=channel.manufacturer,
            model=channel.model,
            civil_code=channel.civil_code,
            address=channel.address,
            parent_id=camera.device_id or "",
            status="ON" if camera.online and channel.status == "ON" else "OFF",
            ptz_type=channel.ptz_type,
        )  # fmt: skip
        for camera in cameras
        for channel in camera.channels
    ]
