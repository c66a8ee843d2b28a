"""Warnings and their deliveries: the tables, and the composed content a warning is written from.

A warning row is one CAP message (Alert, Update or Cancel) on its way from draft to issued; an Update or Cancel is
a row of its own that names the message it replaces. A delivery row is one recipient on one channel: the outbox's
unit of work and its idempotency key. It belongs to a warning, or to a notice's recipient (switchboard/notices, whose
rows the outbox hands to the composer the wiring gives it): one outbox, one set of channels, for both.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.core.db import Base, UTCDateTime, utcnow
from switchboard.core.fields import Instant, LongText, Name, ShortText, text
from switchboard.core.ids import new_id

from .info import Category, Certainty, Colour, ResponseType, Urgency
from .values import CapModel, Language, Token, WebLink


class WarningState(StrEnum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    issued = "issued"
    cancelled = "cancelled"


STATE_NAMES = {
    WarningState.draft: "草稿",
    WarningState.submitted: "待审核",
    WarningState.approved: "已审核",
    WarningState.issued: "已发布",
    WarningState.cancelled: "已撤销",
}
COLOUR_NAMES = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
# Every channel a warning can go out on, by the name deliveries carry, as the duty room says it.
CHANNEL_NAMES = {
    "sms": "短信",
    "email": "电子邮件",
    "telegram": "Telegram",
    "weather": "气象部门推送",
    "wecom_app": "企业微信",
    "wecom_robot": "企业微信群机器人",
    "dingtalk": "钉钉群机器人",
    "fax": "传真",
    "voice": "语音电话",
}


class DeliveryState(StrEnum):
    pending = "pending"  # waiting for a worker (or for its next attempt)
    sending = "sending"  # claimed by a worker, lease running
    sent = "sent"  # the peer accepted it
    delivered = "delivered"  # the peer's receipt says it reached the recipient
    unconfirmed = "unconfirmed"  # sent on a channel with receipts, and none came in time (a late one still counts),
    # or a voice call answered and never confirmed
    failed = "failed"  # permanent failure, or attempts exhausted
    cancelled = "cancelled"  # its warning was cancelled or superseded before it went out, or the notice's recipient
    # confirmed on another channel first (withdrawn)
    confirmed = "confirmed"  # the recipient confirmed on this row (a notice: key 1, an SMS reply, the signed link)


DELIVERY_STATE_NAMES = {
    DeliveryState.pending: "待发送",
    DeliveryState.sending: "发送中",
    DeliveryState.sent: "已发送",
    DeliveryState.delivered: "已送达",
    DeliveryState.unconfirmed: "未收到回执",
    DeliveryState.failed: "失败",
    DeliveryState.cancelled: "已取消",
    DeliveryState.confirmed: "已确认",
}


class PublicWarning(Base):
    __tablename__ = "warnings"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    incident_id: Mapped[str] = mapped_column(String(26), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    msg_type: Mapped[str] = mapped_column(String(8), default="Alert")  # CAP msgType: Alert, Update, Cancel
    colour: Mapped[str] = mapped_column(String(8))
    content: Mapped[dict[str, Any]]  # WarningContent as JSON
    identifier: Mapped[str | None] = mapped_column(String(64), unique=True)  # CAP identifier, given at issue
    sender: Mapped[str] = mapped_column(String(200), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # CAP sent
    references: Mapped[list[str]]  # CAP references, "sender,identifier,sent"
    replaces_id: Mapped[str | None] = mapped_column(ForeignKey("warnings.id"), index=True)
    superseded_by_id: Mapped[str | None] = mapped_column(String(26))
    created_by: Mapped[str] = mapped_column(String(100))
    submitted_by: Mapped[str | None] = mapped_column(String(100))
    approved_by: Mapped[str | None] = mapped_column(String(100))
    issued_by: Mapped[str | None] = mapped_column(String(100))
    cancelled_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # every delivery settled (outbox claims it)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("warning_id", "channel", "recipient", name="uq_deliveries_key"),
        UniqueConstraint("notice_recipient_id", "channel", "recipient", name="uq_deliveries_notice_key"),
        Index("ix_deliveries_claim", "channel", "state", "next_attempt_at"),
        Index("ix_deliveries_remote", "channel", "remote_id", "state"),  # state: see migration 0016
    )

    # The row id is the idempotency key handed to the channel (Message.delivery_id); the unique
    # (warning_id, channel, recipient) makes one row, and so one send, per recipient and channel.
    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    warning_id: Mapped[str | None] = mapped_column(ForeignKey("warnings.id", ondelete="CASCADE"))
    # or the notice recipient (switchboard/notices) it is for; no foreign key: the engine layer names no domain table
    notice_recipient_id: Mapped[str | None] = mapped_column(String(26), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    remote_id: Mapped[str | None] = mapped_column(String(200))
    via: Mapped[str] = mapped_column(String(64), default="")  # the gateway that carried it (SMS by carrier)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- composed content ---------------------------------------------------------------------------------------------

AREA_CODE = text(6, min_length=6)


class TargetArea(CapModel):
    """Where: a GB/T 2260 division code, or polygons / circles with a description."""

    code: AREA_CODE | None = None  # type: ignore[valid-type]
    desc: ShortText | None = None
    polygon: list[str] = []
    circle: list[str] = []


class PublicChannel(CapModel):
    """A public outlet the warning goes to besides the directory: a Telegram channel, a weather-service endpoint."""

    channel: Token
    recipient: ShortText


class Audiences(CapModel):
    """The internal audience (directory groups, reached on `channels` and, with `confirm`, asked to confirm: a notice
    linked to the warning, escalated by `policy`) and the public outlets (plain deliveries). A group nobody follows
    person by person (a mass SMS list) is sent with `confirm` false: plain deliveries, as to the public."""

    groups: list[text(26, min_length=1)] = []  # type: ignore[valid-type]  # directory group ids
    channels: list[Token] = ["sms", "email"]  # channels the groups' members get it on
    confirm: bool = True  # the groups' members asked to confirm (a notice linked to the warning)
    policy: ShortText = ""  # escalation policy of the groups' confirmation ([notices] policies); "": [warnings] policy
    public: list[PublicChannel] = []


class WarningContent(CapModel):
    """What the alert office composes; the CAP document is built from it at issue."""

    event: Name
    headline: ShortText
    description: LongText
    instruction: LongText = ""
    category: list[Category] = Field(["Safety"], min_length=1)
    urgency: Urgency = "Expected"
    certainty: Certainty = "Likely"
    response_type: list[ResponseType] = []
    colour: Colour
    areas: list[TargetArea] = Field(min_length=1)
    audiences: Audiences = Audiences()
    effective: Instant | None = None
    onset: Instant | None = None
    expires: Instant
    languages: list[Language] = ["zh-CN"]
    sender_name: ShortText = ""
    contact: ShortText | None = None
    web: WebLink | None = None
