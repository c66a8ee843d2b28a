"""Calls: one row per dispatch call, written before Asterisk is asked to place it."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.core.db import Base, UTCDateTime, utcnow
from switchboard.core.ids import new_id


class CallState(StrEnum):
    queued = "queued"  # written, not yet handed to Asterisk
    ringing_desk = "ringing_desk"  # the officer's desk phone is ringing
    dialing = "dialing"  # desk answered; a target number is ringing
    answered = "answered"
    held = "held"
    ended = "ended"  # with `cause`
    failed = "failed"  # never connected; `cause` says why


ACTIVE = (CallState.queued, CallState.ringing_desk, CallState.dialing, CallState.answered, CallState.held)

STATE_NAMES = {
    CallState.queued: "排队中",
    CallState.ringing_desk: "调度台振铃",
    CallState.dialing: "呼叫中",
    CallState.answered: "通话中",
    CallState.held: "保持",
    CallState.ended: "已结束",
    CallState.failed: "未接通",
}


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    incident_id: Mapped[str | None] = mapped_column(String(26), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # outbound (dispatch), inbound (hotline), desk (dialled on one)
    desk: Mapped[str | None] = mapped_column(String(32))
    party_name: Mapped[str] = mapped_column(String(200), default="")
    party_org: Mapped[str] = mapped_column(String(200), default="")
    contact_id: Mapped[str | None] = mapped_column(String(26), index=True)
    # [{"number", "kind", "dial"}] in the order tried
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # [{"attempt", "number", "started_at", "ended_at", "result"}]
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    ring_seconds: Mapped[int] = mapped_column(default=30)
    state: Mapped[str] = mapped_column(String(16), index=True)
    cause: Mapped[str] = mapped_column(String(64), default="")
    desk_channel: Mapped[str | None] = mapped_column(String(100), index=True)
    party_channel: Mapped[str | None] = mapped_column(String(100), index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The MixMonitor file the dialplan named (hotline and desk calls: <UNIQUEID>.wav); dispatch calls: <id>.wav.
    recording: Mapped[str | None] = mapped_column(String(64))

    @property
    def monitor_file(self) -> str:
        """The file name this call's recording has in Asterisk's monitor spool."""
        return self.recording or f"{self.id}.wav"

    @property
    def number_used(self) -> str:
        """The party's number this call reached (or is trying): the last attempt's, else the first target's."""
        return self.attempts[-1]["number"] if self.attempts else self.targets[0]["number"]

    def snapshot(self) -> dict[str, Any]:
        """What an event about this call carries."""
        return {
            "call_id": self.id,
            "direction": self.direction,
            "state": self.state,
            "state_name": STATE_NAMES[CallState(self.state)],
            "desk": self.desk,
            "party_name": self.party_name,
            "party_org": self.party_org,
            "number": (self.attempts[-1]["number"] if self.attempts else None),
            "cause": self.cause,
        }
