"""A bridge session (one run of a conference bridge, from its first participant to its last) and its roll call:
one row per participant, convened, dialled in or pulled in from a live call, written before anyone is dialled."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from sip.dialing import RESULT_NAMES
from switchboard.core.db import Base, UTCDateTime, utcnow
from switchboard.core.ids import new_id


class Presence(StrEnum):
    queued = "queued"  # written, not yet dialled
    dialing = "dialing"
    waiting = "waiting"  # unanswered; dialled again after the retry delay
    joined = "joined"
    left = "left"
    kicked = "kicked"
    unanswered = "unanswered"  # never answered after every retry; `reason` says what the last try met
    failed = "failed"  # could not be dialled at all (engine down, no number)


PRESENCE_NAMES = {
    Presence.queued: "待呼叫",
    Presence.dialing: "呼叫中",
    Presence.waiting: "等待重呼",
    Presence.joined: "已入会",
    Presence.left: "已离会",
    Presence.kicked: "已被移出",
    Presence.unanswered: "未应答",
    Presence.failed: "呼叫失败",
}
REASON_NAMES = RESULT_NAMES | {
    "no_number": "没有可拨打的号码",
    "locked": "会议已锁定，接听后未能入会",
    "not_joined": "接听后未入会（对方在入会前挂断）",
    "ended": "会议已结束，停止召集",
}

OPEN = (Presence.queued, Presence.dialing, Presence.waiting)


class BridgeSession(Base):
    __tablename__ = "bridge_sessions"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    bridge: Mapped[str] = mapped_column(String(20), index=True)  # the conference number
    incident_id: Mapped[str | None] = mapped_column(String(26), index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class Participant(Base):
    __tablename__ = "bridge_participants"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("bridge_sessions.id"), index=True)
    how: Mapped[str] = mapped_column(String(12))  # convened, dialled_in, pulled
    name: Mapped[str] = mapped_column(String(200), default="")
    org: Mapped[str] = mapped_column(String(200), default="")
    contact_id: Mapped[str | None] = mapped_column(String(26))
    numbers: Mapped[list[str]] = mapped_column(JSON)  # in the order dialled
    # [{"round", "attempt", "number", "result", "at"}]: every number tried in every round
    tries: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    rounds: Mapped[int] = mapped_column(default=0)
    max_rounds: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(String(12), index=True)
    reason: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str | None] = mapped_column(String(100), index=True)
    role: Mapped[str] = mapped_column(String(12), default="participant")
    next_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
