"""Directory tables and API schemas."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from switchboard.core.db import Base, UTCDateTime, utcnow
from switchboard.core.fields import Instant, text
from switchboard.core.ids import new_id
from switchboard.directory.initials import COLUMN_LENGTH


class OrgLevel(StrEnum):
    province = "province"
    city = "city"
    county = "county"
    department = "department"


class ContactKind(StrEnum):
    office_phone = "office_phone"
    mobile = "mobile"
    home_phone = "home_phone"
    fax = "fax"
    email = "email"
    telegram = "telegram"
    wecom = "wecom"  # WeCom (企业微信) userid: application messages reach the person there
    sip_uri = "sip_uri"


CONTACT_KIND_NAMES = {
    ContactKind.office_phone: "办公电话",
    ContactKind.mobile: "手机",
    ContactKind.home_phone: "住宅电话",
    ContactKind.fax: "传真",
    ContactKind.email: "电子邮件",
    ContactKind.telegram: "Telegram",
    ContactKind.wecom: "企业微信",
    ContactKind.sip_uri: "SIP 地址",
}
# Kinds a voice call can be placed to, in the order tried when a row gives no priorities.
VOICE_KINDS = (ContactKind.office_phone, ContactKind.mobile, ContactKind.home_phone, ContactKind.sip_uri)


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    area_code: Mapped[str] = mapped_column(String(6), index=True)


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (Index("ix_people_org_id_name", "org_id", "name"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(100))
    initials: Mapped[str] = mapped_column(String(COLUMN_LENGTH), default="")  # pinyin, spelled by the importer
    title: Mapped[str] = mapped_column(String(100), default="")
    roles: Mapped[list[str]]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contacts: Mapped[list["ContactPoint"]] = relationship(
        cascade="all, delete-orphan", order_by="ContactPoint.priority", lazy="selectin"
    )
    org: Mapped[Organisation] = relationship(lazy="joined")


class ContactPoint(Base):
    __tablename__ = "contact_points"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(200), index=True)
    priority: Mapped[int] = mapped_column(default=1)


class Group(Base):
    __tablename__ = "contact_groups"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")


class GroupMember(Base):
    __tablename__ = "contact_group_members"

    group_id: Mapped[str] = mapped_column(ForeignKey("contact_groups.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True)


class DutyShift(Base):
    """Who is on duty for an organisation, and when (duty roster, 值班表)."""

    __tablename__ = "duty_shifts"
    __table_args__ = (Index("ix_duty_shifts_org_id_starts_at", "org_id", "starts_at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32), default="值班员")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContactPointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: ContactKind
    value: str
    priority: int


class ContactOut(BaseModel):
    """A person as the directory shows them, with their organisation and contact points by priority."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    title: str
    roles: list[str]
    org_code: str
    org_name: str
    contacts: list[ContactPointOut]


class RejectedRow(BaseModel):
    row: int = Field(description="the row number the spreadsheet shows (header = 1)")
    field: str | None
    column: str = Field("", description="the column as the file's header names it (姓名 or name ...)")
    reason: str


class ImportResult(BaseModel):
    created: int
    updated: int
    rejected: list[RejectedRow]


ID_PATTERN = r"^[0-9A-Z]{26}$"
OrgCode = text(40, min_length=1)


class OrgOut(BaseModel):
    """A node of the contact network's tree."""

    code: str
    name: str
    level: OrgLevel
    parent_code: str | None
    people: int = Field(description="people filed directly under this node")


class GroupOut(BaseModel):
    id: str
    name: str
    description: str
    member_count: int


class ShiftCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_code: OrgCode  # type: ignore[valid-type]
    person_id: Annotated[str, Field(pattern=ID_PATTERN)]
    role: text(32, min_length=1) = "值班员"  # type: ignore[valid-type]
    starts_at: Instant
    ends_at: Instant


class ShiftOut(BaseModel):
    id: str
    org_code: str
    role: str
    starts_at: datetime
    ends_at: datetime
    person: ContactOut
