"""Camera registry tables and API schemas. A GB/T 28181 device (camera, NVR, lower platform) registers with its
20-digit id and keeps its channels here as its Catalog reported them; an RTSP camera is its URL."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, computed_field
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from conference.gb28181.ptz import MOVES
from switchboard.core.db import Base, UTCDateTime, utcnow
from switchboard.core.fields import Name, text
from switchboard.core.ids import new_id
from switchboard.directory.models import Organisation


class CameraKind(StrEnum):
    gb28181 = "gb28181"
    rtsp = "rtsp"


KIND_NAMES = {CameraKind.gb28181: "国标设备", CameraKind.rtsp: "RTSP 摄像机"}
OFFLINE_REASONS = {
    "never": "从未注册",
    "unregistered": "设备已注销",
    "keepalive_lost": "心跳超时",
    "registration_expired": "注册已过期",
    "server_stopped": "平台信令服务已停止",
}
PTZ_TYPES = {0: "未知", 1: "球机", 2: "半球", 3: "固定枪机", 4: "遥控枪机"}
GbId = Annotated[str, Field(pattern=r"^\d{20}$", description="20-digit GB/T 28181 id")]


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(8))  # a CameraKind
    name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(String(20), unique=True)  # GB/T 28181 only
    password_ha1: Mapped[str] = mapped_column(String(32), default="")  # MD5(id:realm:password), GB/T 28181 only
    rtsp_url: Mapped[str] = mapped_column(String(500), default="")  # RTSP only
    online: Mapped[bool] = mapped_column(default=False)
    offline_reason: Mapped[str] = mapped_column(String(32), default="never")  # a key of OFFLINE_REASONS
    address: Mapped[str] = mapped_column(String(64), default="")  # where it registered from
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channels: Mapped[list["CameraChannel"]] = relationship(
        cascade="all, delete-orphan", order_by="CameraChannel.channel_id", lazy="selectin"
    )
    organisation: Mapped[Organisation] = relationship(lazy="joined")

    @property
    def organisation_code(self) -> str:
        return self.organisation.code

    @property
    def organisation_name(self) -> str:
        return self.organisation.name


class CameraChannel(Base):
    """One `<Item>` of the device's Catalog: a video channel (or a node of a lower platform's tree)."""

    __tablename__ = "camera_channels"
    __table_args__ = (UniqueConstraint("camera_id", "channel_id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    manufacturer: Mapped[str] = mapped_column(String(100), default="")
    model: Mapped[str] = mapped_column(String(100), default="")
    civil_code: Mapped[str] = mapped_column(String(20), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    parent_id: Mapped[str] = mapped_column(String(20), default="")
    ptz_type: Mapped[int] = mapped_column(default=0)  # a key of PTZ_TYPES
    status: Mapped[str] = mapped_column(String(8), default="ON")  # ON / OFF as the device reports it
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CameraIn(BaseModel):
    """A GB/T 28181 device needs `device_id` and `password`; an RTSP camera needs `rtsp_url`."""

    kind: CameraKind
    name: Name
    organisation_code: str = Field(description="The directory organisation it belongs to (its code)")
    device_id: GbId | None = None
    password: text(64) | None = Field(None, description="The device's SIP password (kept only as its digest HA1)")  # type: ignore[valid-type]
    rtsp_url: text(500) | None = None  # type: ignore[valid-type]


class CameraPatch(BaseModel):
    name: Name | None = None
    organisation_code: str | None = None
    password: text(64) | None = None  # type: ignore[valid-type]
    rtsp_url: text(500) | None = None  # type: ignore[valid-type]


class ChannelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel_id: str
    name: str
    manufacturer: str
    model: str
    civil_code: str
    address: str
    ptz_type: int
    status: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ptz(self) -> bool:
        """PTZ buttons make sense: a dome (1) or a remote-controlled fixed camera (4)."""
        return self.ptz_type in (1, 4)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")))


class CameraOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: CameraKind
    name: str
    organisation_code: str
    organisation_name: str
    device_id: str | None
    online: bool
    offline_reason: str
    address: str
    last_seen_at: datetime | None
    created_at: datetime
    channels: list[ChannelOut]
    rtsp_url: str

    def model_post_init(self, _: object) -> None:
        self.rtsp_url = _without_password(self.rtsp_url)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state_name(self) -> str:
        if self.kind == CameraKind.rtsp:
            return "按需拉流"
        return "在线" if self.online else f"离线（{OFFLINE_REASONS.get(self.offline_reason, self.offline_reason)}）"


PtzMove = StrEnum("PtzMove", {move: move for move in MOVES})  # type: ignore[misc]


class PtzIn(BaseModel):
    move: PtzMove  # type: ignore[valid-type]
    speed: int = Field(128, ge=0, le=255)


class DeviceStateOut(BaseModel):
    """What the device says of itself right now (DeviceInfo and DeviceStatus)."""

    device_name: str
    manufacturer: str
    model: str
    firmware: str
    channels: int | None
    online: str
    status: str
    recording: str
    device_time: str


class WatchIn(BaseModel):
    channel_id: str = Field("", max_length=20, description="The GB/T 28181 channel; empty for an RTSP camera")


class WatchOut(BaseModel):
    """A console tile's subscription: answer Janus's `offer` (SDP) at `.../watches/{id}/answer`."""

    id: str
    offer: str
    display: str
    first_frame_ms: int = Field(description="From the first watcher's request to the stream's first frame in Janus")


class AnswerIn(BaseModel):
    sdp: str = Field(min_length=10, max_length=20_000, description="The browser's SDP answer, ICE candidates included")
