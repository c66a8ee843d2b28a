"""Notice tables and API schemas.

A notice is a message to people (and bare numbers) that the duty room wants confirmed. Each person it reaches has
one `NoticeRecipient` row that owns the confirmation: who confirmed, on which channel and address, when; the tier
it has reached; why it never confirmed. The row's deliveries (broadcast's `Delivery`, `notice_recipient_id`) are
the outbox's work, one per channel and address, tier by tier. A recipient row with `about_id` is a parent
organisation's desk told that the recipient it names is unreachable: its own confirmation only acknowledges that.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.core.db import Base, UTCDateTime, utcnow
from switchboard.core.fields import Instant, LongText, ShortText, text
from switchboard.core.ids import new_id
from switchboard.directory.models import ID_PATTERN


class NoticeState(StrEnum):
    open = "open"  # deliveries going out, confirmations awaited
    completed = "completed"  # everyone confirmed, or every tier exhausted


class RecipientState(StrEnum):
    pending = "pending"  # written, nothing sent yet
    notified = "notified"  # reached on some channel, not confirmed yet
    confirmed = "confirmed"
    unconfirmed = "unconfirmed"  # reached, never confirmed, every tier exhausted
    failed = "failed"  # never reached on any channel, every tier exhausted
    reached = "reached"  # a notice that asks no confirmation: reached, nothing more to wait for


RECIPIENT_STATE_NAMES = {
    RecipientState.pending: "待发送",
    RecipientState.notified: "已通知未确认",
    RecipientState.confirmed: "已确认",
    RecipientState.unconfirmed: "未确认",
    RecipientState.failed: "未能送达",
    RecipientState.reached: "已送达（无需确认）",
}
FINAL = (RecipientState.confirmed, RecipientState.unconfirmed, RecipientState.failed, RecipientState.reached)
NEVER_CONFIRMED = (RecipientState.unconfirmed, RecipientState.failed)


class Notice(Base):
    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    incident_id: Mapped[str | None] = mapped_column(String(26), index=True)
    # the warning whose internal audience (directory groups) this notice is; its deliveries carry the warning's id too
    warning_id: Mapped[str | None] = mapped_column(String(26), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    channels: Mapped[list[str]]
    policy: Mapped[str] = mapped_column(String(64), default="")  # escalation policy name ([notices] policies)
    confirm: Mapped[bool] = mapped_column(default=True)  # confirmation asked for
    confirm_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    code: Mapped[str] = mapped_column(String(8), index=True)  # short code an SMS reply may carry
    state: Mapped[str] = mapped_column(String(16), index=True, default=NoticeState.open)
    summary: Mapped[str] = mapped_column(Text, default="")  # at completion: who never confirmed and why
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NoticeRecipient(Base):
    __tablename__ = "notice_recipients"
    __table_args__ = (Index("ix_notice_recipients_notice_state", "notice_id", "state"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    person_id: Mapped[str | None] = mapped_column(String(26))  # None: a bare number
    name: Mapped[str] = mapped_column(String(100), default="")
    org_code: Mapped[str] = mapped_column(String(40), default="")
    org_name: Mapped[str] = mapped_column(String(200), default="")
    about_id: Mapped[str | None] = mapped_column(String(26))  # a desk told this recipient row is unreachable
    state: Mapped[str] = mapped_column(String(16), default=RecipientState.pending)
    tier: Mapped[int] = mapped_column(default=1)
    attempts: Mapped[int] = mapped_column(default=0)  # sends tried, every channel and tier
    escalated: Mapped[dict[str, Any]]  # address -> whom a later tier reached there for this recipient ("带班领导 李华")
    confirmed_channel: Mapped[str | None] = mapped_column(String(32))
    confirmed_address: Mapped[str | None] = mapped_column(String(200))
    confirmed_by: Mapped[str | None] = mapped_column(String(100))  # the recipient's name, or the leader's
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")  # why not confirmed (each channel's last word)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- API ---------------------------------------------------------------------------------------------------------

Id = Annotated[str, Field(pattern=ID_PATTERN)]
Number = Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$")]


class NoticeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: text(200, min_length=1)  # type: ignore[valid-type]
    text: LongText = Field(min_length=1)
    incident_id: Id | None = None
    contact_ids: list[Id] = Field([], max_length=5000)
    group_ids: list[Id] = Field([], max_length=100)
    numbers: list[Number] = Field([], max_length=5000)
    channels: list[ShortText] = Field(["voice", "sms"], min_length=1, max_length=8)
    confirm: bool = True
    confirm_by: Instant | None = None
    policy: ShortText = ""


class NoticeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    incident_id: str | None
    warning_id: str | None
    subject: str
    text: str
    channels: list[str]
    policy: str
    confirm: bool
    confirm_by: datetime | None
    code: str
    state: NoticeState
    summary: str
    created_by: str
    created_at: datetime
    completed_at: datetime | None


class Issued(NoticeOut):
    recipients: int
    deliveries: int
    skipped: list[str] = Field(description="recipients with no address on any chosen channel, by name")


class DeliveryLine(BaseModel):
    channel: str
    recipient: str
    state: str
    attempts: int
    last_error: str
    updated_at: datetime


class Confirmation(BaseModel):
    """One person on the confirmation board."""

    id: str
    name: str
    org_name: str
    role: str = Field(description="recipient, or desk (a parent desk told about `about_id`)")
    about_id: str | None
    state: RecipientState
    state_name: str
    tier: int
    attempts: int
    confirmed_channel: str | None
    confirmed_address: str | None
    confirmed_by: str | None
    confirmed_at: datetime | None
    escalated_to: list[str]
    reason: str
    deliveries: list[DeliveryLine]


class Board(BaseModel):
    notice: NoticeOut
    counts: dict[str, int] = Field(description="recipients (desks told excluded) by state, and total")
    complete: bool
    never_confirmed: list[dict[str, str]] = Field(description="name and why, once the notice is complete")
    items: list[Confirmation]
