"""API schemas of bridges."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from conference.bridges.models import PRESENCE_NAMES, REASON_NAMES, Presence
from switchboard.core.fields import text

Ref = text(26, min_length=1)
Number = text(40, min_length=2)


class ConveneRequest(BaseModel):
    """Who to convene: a directory group, contacts and/or raw numbers (any mix, at least one)."""

    model_config = ConfigDict(extra="forbid")

    group_id: Ref | None = None  # type: ignore[valid-type]
    contact_ids: list[Ref] = Field([], max_length=200)  # type: ignore[valid-type]
    numbers: list[Number] = Field([], max_length=200)  # type: ignore[valid-type]
    incident_id: Ref | None = None  # type: ignore[valid-type]
    rounds: int | None = Field(None, ge=1, le=10, description="rounds over each invitee's numbers; default from config")
    ring_seconds: int | None = Field(None, ge=5, le=120, description="how long each number rings; default from config")

    @model_validator(mode="after")
    def someone(self) -> "ConveneRequest":
        if not (self.group_id or self.contact_ids or self.numbers):
            raise ValueError("请给出 group_id、contact_ids 或 numbers 中至少一项")
        return self


class MuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    muted: bool = True


class LockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locked: bool = True


class RecordingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recording: bool = True


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: Ref  # type: ignore[valid-type]


class ParticipantOut(BaseModel):
    """A roll-call row."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    how: str
    name: str
    org: str
    contact_id: str | None
    numbers: list[str]
    tries: list[dict[str, Any]]
    rounds: int
    max_rounds: int
    state: str
    reason: str
    role: str
    next_try_at: datetime | None
    joined_at: datetime | None
    left_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state_name(self) -> str:
        """The state in Chinese, as the roll call shows it."""
        return PRESENCE_NAMES[Presence(self.state)]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reason_name(self) -> str:
        """Why not (yet) in, in Chinese; empty once joined."""
        return REASON_NAMES.get(self.reason, self.reason)


class MemberOut(BaseModel):
    """Who is in the bridge now, as Asterisk reports it."""

    participant_id: str | None
    name: str
    number: str
    role: str
    muted: bool
    talking: bool


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    bridge: str
    incident_id: str | None
    created_by: str
    started_at: datetime
    ended_at: datetime | None


class BridgeOut(BaseModel):
    number: str
    name: str
    max_members: int
    record: bool
    pin: str
    moderator_pin: str
    active: bool
    locked: bool
    recording: bool
    members: list[MemberOut]
    session: SessionOut | None


class RollCallOut(BaseModel):
    session: SessionOut
    participants: list[ParticipantOut]
