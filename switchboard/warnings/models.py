"""Warning API schemas (the tables live in broadcast/models.py)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from broadcast.models import DeliveryState, WarningContent, WarningState
from switchboard.core.fields import text


class WarningCreate(WarningContent):
    incident_id: text(26, min_length=1)  # type: ignore[valid-type]


class WarningOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    incident_id: str
    state: WarningState
    msg_type: str
    colour: str
    content: dict[str, Any]
    identifier: str | None
    sender: str
    sent_at: datetime | None
    references: list[str]
    replaces_id: str | None
    superseded_by_id: str | None
    created_by: str
    submitted_by: str | None
    approved_by: str | None
    issued_by: str | None
    cancelled_by: str | None
    created_at: datetime
    submitted_at: datetime | None
    approved_at: datetime | None
    issued_at: datetime | None
    cancelled_at: datetime | None
    completed_at: datetime | None
    names: dict[str, str] = {}  # username -> the person's name, for the people above (in lists and single reads)


class IssueOut(WarningOut):
    deliveries: int  # rows written to the outbox with the issue


class CancelOut(BaseModel):
    warning: WarningOut
    notice: WarningOut | None  # the CAP Cancel message, when the warning had been issued
    retired: int
    notices: int


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    channel: str
    channel_name: str
    recipient: str
    name: str  # the recipient's name in the directory, "" for an address it does not hold
    state: DeliveryState
    state_name: str
    attempts: int
    remote_id: str | None
    via: str  # the gateway that carried it, "" where the channel has one peer
    last_error: str
    sent_at: datetime | None
    delivered_at: datetime | None
    updated_at: datetime


class Stuck(BaseModel):
    channel: str
    name: str
    rows: int  # deliveries of the channel not settled
    reason: str  # why they wait, in Chinese


class DeliveryReport(BaseModel):
    counts: dict[str, dict[str, int]]  # channel -> state -> rows
    items: list[DeliveryOut]
    next_cursor: str | None
    stuck: list[Stuck]  # what holds back the rows not settled, per channel
    completed_at: datetime | None  # every delivery settled


class Progress(BaseModel):
    # channel -> [(time, pending, sent, delivered, failed, unconfirmed)], from the issue until completion (or now)
    series: dict[str, list[tuple[datetime, int, int, int, int, int]]]
    completed_at: datetime | None


class Rendering(BaseModel):
    channel: str
    language: str
    subject: str = ""
    text: str
    html: str | None = None
    segments: int | None = None  # SMS parts
    encoding: str | None = None  # SMS: GSM-7 or UCS-2
    length: int | None = None
    attachments: list[str] = []


class ChannelState(BaseModel):
    channel: str
    name: str  # in Chinese
    configured: bool
    ready: bool  # configured and its link up: a warning may be issued onto it
    trouble: str  # why not, in Chinese


class Preview(BaseModel):
    renderings: list[Rendering]
