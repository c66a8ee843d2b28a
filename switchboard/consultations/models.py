"""API schemas of consultations."""

from datetime import datetime
from typing import Any, Literal

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
    dial_in: str = Field(description="the number phones dial to join (Asterisk); empty: this consultation takes none")
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
    kind: Literal["site", "phone"] = "site"
    participant_id: int | None = None  # a site's
    site: str = Field(description="a site's name; a phone's name from the directory, else its number")
    invite_id: str | None = None
    talking: bool
    publisher: bool = False
    phone_id: str | None = None  # a phone's: what mute and remove name
    number: str = ""
    name: str = ""
    org: str = ""
    muted: bool = False


class PhoneDial(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: Ref  # type: ignore[valid-type]
    ring_seconds: int = Field(30, ge=5, le=120, description="how long each of the contact's numbers rings")


class PhoneDialOut(BaseModel):
    call_id: str
    name: str
    numbers: list[str]


class Switch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool


class FeedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^rtsps?://[^\s]{1,480}$", description="the camera's RTSP URL")
    site: Site = "现场摄像头"  # type: ignore[valid-type]


class CameraCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(max_length=26, description="a camera of the registry")
    channel_id: str = Field("", max_length=20, description="the GB/T 28181 channel; empty for an RTSP camera")


# What a join page's janus.js may send over its signalling socket (/consult/{id}/signal): the Janus WebSocket API's
# frames, and in a `message` the four VideoRoom requests and the two AudioBridge requests the page makes. The relay
# writes every other field itself.

MAX_SDP = 64 * 1024  # a browser's offer or answer with audio, video and all its candidates is 5-15 KB


class Jsep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["offer", "answer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP)


class Candidate(BaseModel):
    """An ICE candidate the browser trickles, or the end of them (completed)."""

    model_config = ConfigDict(extra="forbid")

    candidate: str = Field("", max_length=1024)
    sdpMid: str | None = Field(None, max_length=32)  # noqa: N815 (the WebRTC names)
    sdpMLineIndex: int | None = Field(None, ge=0, lt=64)  # noqa: N815
    completed: Literal[True] | None = None


class Frame(BaseModel):
    """One request of the Janus API, as janus.js frames it (the join token rides in every one)."""

    model_config = ConfigDict(extra="forbid")

    janus: Literal["create", "attach", "message", "trickle", "keepalive", "detach", "destroy"]
    transaction: str = Field(min_length=1, max_length=64)
    token: str = Field("", max_length=2000)
    session_id: int | None = Field(None, ge=0, lt=2**64)
    handle_id: int | None = Field(None, ge=1, lt=2**64)
    plugin: Literal["janus.plugin.videoroom", "janus.plugin.audiobridge"] | None = None
    opaque_id: str | None = Field(None, max_length=100)
    body: dict[str, Any] | None = None
    jsep: Jsep | None = None
    candidate: Candidate | None = None


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request: str


class JoinAsPublisher(Body):
    ptype: Literal["publisher"]
    pin: str = Field("", max_length=12)


class Configure(Body):
    audio: Literal[True] = True
    video: Literal[True] = True


class Stream(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feed: int = Field(ge=1, lt=2**53, description="the participant id of a site in the room")


class JoinAsSubscriber(Body):
    ptype: Literal["subscriber"]
    streams: list[Stream] = Field(min_length=1, max_length=1)


class Start(Body):
    pass


class JoinAudio(Body):
    """Into the room's AudioBridge: the relay writes the room, the site's id and name, and its group."""


class Speak(Body):
    """The page's microphone into the AudioBridge (with its offer)."""


# The body models by (request, ptype): what each message may say, on a VideoRoom handle and on the AudioBridge one.
BODIES: dict[tuple[str, str | None], type[Body]] = {
    ("join", "publisher"): JoinAsPublisher,
    ("configure", None): Configure,
    ("join", "subscriber"): JoinAsSubscriber,
    ("start", None): Start,
}
AUDIO_BODIES: dict[tuple[str, str | None], type[Body]] = {("join", None): JoinAudio, ("configure", None): Speak}
