"""Recordings: one row per closed file, its SHA-256 also written to the hash-chained audit ledger."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.core.db import Base, UTCDateTime, utcnow
from switchboard.core.ids import new_id

KINDS = {"call": "通话", "bridge": "会议", "fax": "传真", "consultation": "会商", "snapshot": "摄像机截图"}
VIDEO_FORMATS = frozenset({"webm", "mp4"})  # a consultation site's camera (its voice is filed apart, as Opus)
STILL_FORMATS = frozenset({"jpg"})  # a camera wall tile's picture


class Recording(Base):
    __tablename__ = "recordings"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    incident_id: Mapped[str | None] = mapped_column(String(26), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # a key of KINDS
    source_id: Mapped[str | None] = mapped_column(String(64), index=True)  # the call, bridge... it records
    parties: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"name", "number", "contact_id"}]
    party_index: Mapped[str] = mapped_column(String(1000), default="")  # "|name|number|contact id|..." for search
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[float]
    format: Mapped[str] = mapped_column(String(8))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(300), unique=True)  # relative to the store's root
    held: Mapped[bool] = mapped_column(default=False)  # retention never deletes a held recording
    hold_reason: Mapped[str] = mapped_column(String(500), default="")  # why (an inquiry, a complaint ...)
    held_by: Mapped[str | None] = mapped_column(String(100))
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def video(self) -> bool:
        return self.format in VIDEO_FORMATS

    @property
    def label(self) -> str:
        """What the record calls it: 会商录像 for a site's video, 会商录音 for its voice, 通话录音 ..."""
        if self.format in STILL_FORMATS:
            return KINDS[self.kind]
        return KINDS[self.kind] + ("录像" if self.video else "录音")
