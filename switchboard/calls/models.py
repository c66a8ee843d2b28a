"""API schemas of calls."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from sip.models import STATE_NAMES, CallState
from switchboard.core.fields import text

Number = text(40, min_length=2)
Ref = text(26, min_length=1)


class CallCreate(BaseModel):
    """Call a contact (their numbers in priority order) or a raw number, from a desk, for an incident."""

    model_config = ConfigDict(extra="forbid")

    contact_id: Ref | None = None  # type: ignore[valid-type]
    number: Number | None = None  # type: ignore[valid-type]
    desk: text(32) | None = Field(None, description="calling desk extension; default from the dialplan")  # type: ignore[valid-type]
    incident_id: Ref | None = None  # type: ignore[valid-type]
    ring_seconds: int = Field(30, ge=5, le=120, description="how long each number rings before the next is tried")

    @model_validator(mode="after")
    def one_target(self) -> "CallCreate":
        if (self.contact_id is None) == (self.number is None):
            raise ValueError("contact_id 与 number 须且只须给出一个")
        return self


class AttachRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    incident_id: Ref  # type: ignore[valid-type]


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    held: bool = Field(True, description="true: put on hold; false: resume")


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: Number  # type: ignore[valid-type]


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    incident_id: str | None
    direction: str
    desk: str | None
    party_name: str
    party_org: str
    contact_id: str | None
    targets: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    state: str
    cause: str
    created_by: str
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state_name(self) -> str:
        """The state in Chinese, as the call board shows it."""
        return STATE_NAMES[CallState(self.state)]
