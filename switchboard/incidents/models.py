"""Incidents, timeline entries and reports: tables and API schemas."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.core.db import Base, BigIntKey, UTCDateTime, utcnow
from switchboard.core.fields import Instant, LongText, Name, ShortText, text
from switchboard.core.ids import new_id


class Category(StrEnum):
    """The four classes of GB/T 35561 突发事件分类."""

    natural_disaster = "natural_disaster"
    accident_disaster = "accident_disaster"
    public_health = "public_health"
    social_security = "social_security"


CATEGORY_NAMES = {
    Category.natural_disaster: "自然灾害",
    Category.accident_disaster: "事故灾难",
    Category.public_health: "公共卫生事件",
    Category.social_security: "社会安全事件",
}


class Level(StrEnum):
    I = "I"  # noqa: E741
    II = "II"
    III = "III"
    IV = "IV"


LEVEL_NAMES = {Level.I: "特别重大", Level.II: "重大", Level.III: "较大", Level.IV: "一般"}


class Status(StrEnum):
    reported = "reported"
    responding = "responding"
    closed = "closed"


STATUS_NAMES = {Status.reported: "已接报", Status.responding: "处置中", Status.closed: "已结束"}
NEXT_STATUS = {Status.reported: {Status.responding, Status.closed}, Status.responding: {Status.closed}}


class ReportKind(StrEnum):
    first = "first"
    followup = "followup"
    final = "final"


REPORT_NAMES = {ReportKind.first: "初报", ReportKind.followup: "续报", ReportKind.final: "终报"}


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    subtype: Mapped[str] = mapped_column(String(100), default="")
    level: Mapped[str] = mapped_column(String(3))
    location: Mapped[str] = mapped_column(String(200), default="")
    area_code: Mapped[str] = mapped_column(String(6), index=True)
    source: Mapped[str] = mapped_column(String(200), default="")
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16), default=Status.reported)
    first_report_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: no deadline at this level
    first_report_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_soon_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TimelineEntry(Base):
    __tablename__ = "timeline_entries"
    __table_args__ = (Index("ix_timeline_incident_id_seq", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]]
    refs: Mapped[list[str]]


class Report(Base):
    __tablename__ = "incident_reports"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int]
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    info_source: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    location: Mapped[str] = mapped_column(String(200))
    nature: Mapped[str] = mapped_column(Text)
    impact_scope: Mapped[str] = mapped_column(Text)
    casualties_losses: Mapped[str] = mapped_column(Text)
    trend: Mapped[str] = mapped_column(Text)
    measures_taken: Mapped[str] = mapped_column(Text)
    reporting_unit: Mapped[str] = mapped_column(String(200), default="")
    signed_by: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    submitted_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    late: Mapped[bool] = mapped_column(default=False)


AreaCode = text(6, min_length=6)


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Name
    category: Category
    subtype: ShortText = ""
    level: Level
    location: ShortText = ""
    area_code: AreaCode
    source: ShortText = ""
    occurred_at: Instant | None = None
    reported_at: Instant | None = Field(None, description="接报时间; defaults to now")


class IncidentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Name | None = None
    category: Category | None = None
    subtype: ShortText | None = None
    level: Level | None = None
    location: ShortText | None = None
    area_code: AreaCode | None = None
    source: ShortText | None = None
    occurred_at: Instant | None = None
    status: Status | None = None


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    category: Category
    subtype: str
    level: Level
    location: str
    area_code: str
    source: str
    occurred_at: datetime | None
    reported_at: datetime
    status: Status
    first_report_due_at: datetime | None
    first_report_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: text(4000, min_length=1)  # type: ignore[valid-type]


class TimelineEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    type: str
    at: datetime
    actor: str
    actor_name: str = Field("", description="the actor's name as people know it")
    summary: str
    data: dict[str, Any]
    refs: list[str]


class TimelinePage(BaseModel):
    items: list[TimelineEntryOut]
    next_cursor: int | None


class ReportCreate(BaseModel):
    """The fields of a report upward; for 初报 every one is required."""

    model_config = ConfigDict(extra="forbid")

    kind: ReportKind
    received_at: Instant | None = Field(None, description="接报时间; defaults to the incident's reported_at")
    info_source: Name = Field(description="信息来源")
    occurred_at: Instant | None = Field(None, description="事发时间; defaults to the incident's occurred_at")
    location: ShortText = Field("", description="事发地点; defaults to the incident's location")
    nature: LongText = Field(min_length=1, description="事件性质")
    impact_scope: LongText = Field(min_length=1, description="影响范围")
    casualties_losses: LongText = Field(min_length=1, description="伤亡和损失")
    trend: LongText = Field(min_length=1, description="发展趋势")
    measures_taken: LongText = Field(min_length=1, description="已采取措施")
    reporting_unit: Name = Field(description="报送单位")
    signed_by: text(100, min_length=1) = Field(description="签发人")  # type: ignore[valid-type]
    contact_phone: text(40, min_length=2) = Field(description="联系电话")  # type: ignore[valid-type]


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    incident_id: str
    kind: ReportKind
    seq: int
    received_at: datetime
    info_source: str
    occurred_at: datetime
    location: str
    nature: str
    impact_scope: str
    casualties_losses: str
    trend: str
    measures_taken: str
    reporting_unit: str
    signed_by: str
    contact_phone: str
    submitted_by: str
    submitted_at: datetime
    late: bool


class ReportDocument(ReportOut):
    """A report as exported: the report with the incident it reports on."""

    incident: IncidentOut
