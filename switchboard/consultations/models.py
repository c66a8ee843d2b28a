"""API schemas of consultations."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from switchboard.core.fields import text

Ref = text(26, min_length=1)
Site = text(100, min_length=1)


class ConsultationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: text(200, min_length=1)  # type: ignore[valid-type]
    incident_id: Ref | None = None  # type: ignore[valid-type]
    max_sites: int = Field(6, ge=2, le=16, description="most sites (browsers and camera feeds) at once")
    pin: str = Field("", pattern=r"^\d{0,12}$", description="digits every site enters to join; empty: none")


class ConsultationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    incident_id: str | None
    max_sites: int
    room: int
    locked: bool
    recording: bool
    state: str
    created_by: str
    created_at: datetime


class Invitee(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: Site  # type: ignore[valid-type]
    person: text(100) = ""  # type: ignore[valid-type]
    moderator: bool = False


class InviteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invitees: list[Invitee] = Field(min_length=1, max_length=16)
    hours: float | None = Field(None, gt=0, le=168, description="link lifetime; default [janus] invite_hours")


class InviteOut(BaseModel):
    invite_id: str
    site: str
    person: str
    moderator: bool
    participant_id: int
    url: str
    token: str
    expires_at: datetime


class ParticipantOut(BaseModel):
    participant_id: int
    site: str
    invite_id: str | None
    talking: bool
    publisher: bool


class Switch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool


class FeedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^rtsps?://[^\s]{1,480}$", description="the camera's RTSP URL")
    site: Site = "现场摄像头"  # type: ignore[valid-type]


# What a join page may send over its signalling socket (/consult/{id}/signal), one model per `op` -----------------

MAX_SDP = 64 * 1024  # a browser's offer or answer with audio, video and all its candidates is 5-15 KB
Sdp = Field(min_length=1, max_length=MAX_SDP)
Feed = Field(ge=1, lt=2**53, description="the participant id of a site in the room")


class PageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=0, lt=2**53, description="echoed in the reply")
    op: str


class Hello(PageRequest):
    token: str = Field(min_length=1, max_length=2000)


class Join(PageRequest):
    pin: str = Field("", max_length=12)


class Publish(PageRequest):
    offer: str = Sdp


class Subscribe(PageRequest):
    feed: int = Feed


class Start(PageRequest):
    feed: int = Feed
    answer: str = Sdp


class Unsubscribe(PageRequest):
    feed: int = Feed


PAGE_REQUESTS: dict[str, type[PageRequest]] = {
    "hello": Hello,
    "join": Join,
    "publish": Publish,
    "subscribe": Subscribe,
    "start": Start,
    "unsubscribe": Unsubscribe,
}
