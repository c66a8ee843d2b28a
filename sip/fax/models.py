"""Faxes: one row per recipient of a sent fax (the sender's job, written before the API answers) and one per
received fax."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.core.db import Base, UTCDateTime, utcnow
from switchboard.core.ids import new_id


class FaxState(StrEnum):
    pending = "pending"  # waiting for a line (or for its next attempt after busy / no answer / failed pages)
    sending = "sending"  # claimed by the sender, lease running
    sent = "sent"  # the far end confirmed every page
    received = "received"  # an inbound fax, filed as a PDF
    failed = "failed"  # attempts exhausted, or an inbound fax that did not complete


STATE_NAMES = {
    FaxState.pending: "等待发送",
    FaxState.sending: "发送中",
    FaxState.sent: "已发送",
    FaxState.received: "已接收",
    FaxState.failed: "失败",
}
UNSETTLED = (FaxState.pending, FaxState.sending)


class Fax(Base):
    __tablename__ = "faxes"
    __table_args__ = (Index("ix_faxes_claim", "direction", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    batch_id: Mapped[str | None] = mapped_column(String(26), index=True)  # one submission to many recipients
    direction: Mapped[str] = mapped_column(String(3))  # out, in
    state: Mapped[str] = mapped_column(String(16), index=True)
    incident_id: Mapped[str | None] = mapped_column(String(26), index=True)
    number: Mapped[str] = mapped_column(String(32), index=True)  # out: the recipient; in: the caller
    local_number: Mapped[str] = mapped_column(String(32), default="")  # in: the fax number called
    party_name: Mapped[str] = mapped_column(String(200), default="")
    contact_id: Mapped[str | None] = mapped_column(String(26))
    remote_station: Mapped[str] = mapped_column(String(100), default="")  # the far end's station id (TSI/CSI)
    document: Mapped[str] = mapped_column(String(300), default="")  # out: TIFF-F relative to the fax dir
    document_name: Mapped[str] = mapped_column(String(200), default="")
    pages_total: Mapped[int] = mapped_column(default=0)  # out: pages in the document
    pages: Mapped[int] = mapped_column(default=0)  # pages transferred
    rate: Mapped[int | None]  # bit/s negotiated
    ecm: Mapped[bool | None]
    mode: Mapped[str] = mapped_column(String(8), default="")  # T38 or audio
    result: Mapped[str] = mapped_column(String(32), default="")  # sent, busy, no_answer, unreachable, failed...
    error: Mapped[str] = mapped_column(String(500), default="")
    # [{"attempt", "at", "result", "pages", "rate", "mode", "error"}]
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recording_id: Mapped[str | None] = mapped_column(String(26))  # in: the PDF in the recording store
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str] = mapped_column(String(100), default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def snapshot(self) -> dict[str, Any]:
        """What an event about this fax carries."""
        return {
            "fax_id": self.id,
            "batch_id": self.batch_id,
            "direction": self.direction,
            "state": self.state,
            "state_name": STATE_NAMES[FaxState(self.state)],
            "number": self.number,
            "party_name": self.party_name,
            "pages": self.pages,
            "pages_total": self.pages_total,
            "rate": self.rate,
            "ecm": self.ecm,
            "mode": self.mode,
            "result": self.result,
            "attempts": self.attempts,
            "recording_id": self.recording_id,
        }
