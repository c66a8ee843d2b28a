"""Consultations (one VideoRoom each) and their invites (one per person, with a fixed participant id)."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.core.db import Base, UTCDateTime, utcnow
from switchboard.core.ids import new_id


class Consultation(Base):
    __tablename__ = "consultations"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    incident_id: Mapped[str | None] = mapped_column(String(26), index=True)
    max_sites: Mapped[int]
    pin: Mapped[str] = mapped_column(String(16), default="")
    dial_in: Mapped[str] = mapped_column(String(16), default="")  # phones dial it (Asterisk); "": it takes none
    room: Mapped[int] = mapped_column(unique=True)  # the VideoRoom's numeric id
    secret: Mapped[str] = mapped_column(String(64))  # the room's secret: moderation only through the control plane
    locked: Mapped[bool] = mapped_column(default=False)
    recording: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open, closed
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Invite(Base):
    __tablename__ = "consultation_invites"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    consultation_id: Mapped[str] = mapped_column(ForeignKey("consultations.id"), index=True)
    site: Mapped[str] = mapped_column(String(100))  # shown under the tile, e.g. 太原市应急管理局
    person: Mapped[str] = mapped_column(String(100), default="")
    moderator: Mapped[bool] = mapped_column(default=False)
    kind: Mapped[str] = mapped_column(String(8), default="person")  # person, feed (a camera)
    feed_url: Mapped[str] = mapped_column(String(500), default="")  # a feed's RTSP URL
    participant_id: Mapped[int]  # the VideoRoom participant id this invite joins as
    room_token: Mapped[str] = mapped_column(String(64))  # in the room's ACL while the invite may join
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
