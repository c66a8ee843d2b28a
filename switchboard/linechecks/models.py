"""One row per line per check run: the history the duty room reads, each row judged against [linecheck]."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, computed_field
from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.core.config import LINE_KINDS
from switchboard.core.db import Base, UTCDateTime, utcnow
from switchboard.core.ids import new_id

TRIGGERS = {"scheduled": "每日巡检", "on_demand": "立即巡检"}


class LineCheck(Base):
    __tablename__ = "line_checks"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    run_id: Mapped[str] = mapped_column(String(26), index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # a key of TRIGGERS
    requested_by: Mapped[str] = mapped_column(String(100))  # the user, or "system" for the daily run
    name: Mapped[str] = mapped_column(String(100))
    number: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # a key of LINE_KINDS
    ok: Mapped[bool]
    reason: Mapped[str] = mapped_column(String(400), default="")  # why it failed, in Chinese; empty if it passed
    sip_code: Mapped[int | None]
    answer_ms: Mapped[int | None]
    level_dbfs: Mapped[float | None] = mapped_column(Float)
    delay_ms: Mapped[float | None] = mapped_column(Float)
    loss: Mapped[float | None] = mapped_column(Float)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class LineCheckOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    run_id: str
    trigger: str
    requested_by: str
    ok: bool
    reason: str
    sip_code: int | None
    answer_ms: int | None
    level_dbfs: float | None
    delay_ms: float | None
    loss: float | None
    checked_at: datetime


class LineOut(BaseModel):
    name: str
    number: str
    kind: str
    latest: LineCheckOut | None  # None: never checked yet
    history: list[LineCheckOut]  # newest first, the latest included

    @computed_field  # type: ignore[prop-decorator]
    @property
    def kind_name(self) -> str:
        return LINE_KINDS[self.kind]


class LinesOut(BaseModel):
    running: bool  # a check is under way: its results arrive as linecheck.* events
    lines: list[LineOut]


class RunOut(BaseModel):
    run_id: str
    lines: int
