"""Users and their roles."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.core.db import Base, UTCDateTime, utcnow
from switchboard.core.ids import new_id


class Role(StrEnum):
    duty_officer = "duty_officer"
    leader = "leader"
    alert_officer = "alert_officer"
    approver = "approver"
    admin = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]]
    active: Mapped[bool] = mapped_column(default=True)
    desk: Mapped[str | None] = mapped_column(String(32))  # the extension this officer dispatches from
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Carried in every token; raised on disable, role or password change, which voids the tokens issued before.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")


class LoginFailure(Base):
    """Recent failed logins per username tried (existing or not, so that the answer reveals neither)."""

    __tablename__ = "login_failures"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int]
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RevokedToken(Base):
    """A token signed out before it expired; the row may go once `expires_at` has passed."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(26))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    roles: list[Role]


Username = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Desk = Annotated[str, Field(min_length=2, max_length=32, pattern=r"^[0-9]+$", description="desk extension")]
DisplayName = Annotated[str, Field(max_length=100)]
Password = Annotated[str, Field(min_length=1, max_length=256)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    display_name: DisplayName = ""
    password: Password
    roles: list[Role] = Field(min_length=1)
    desk: Desk | None = None


class UserChange(BaseModel):
    """Only the fields given change; roles or disabling void the user's tokens."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    roles: list[Role] | None = Field(None, min_length=1)
    active: bool | None = None
    desk: Desk | None = None
    clear_desk: bool = Field(False, description="take the user off their desk")


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Password


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    display_name: str
    roles: list[Role]
    active: bool
    desk: str | None
    created_at: datetime


class Me(BaseModel):
    """Who is signed in, as the console shows them, and which parts of the switchboard are switched on."""

    username: str
    display_name: str
    roles: list[Role]
    desk: str | None
    parts: dict[str, bool] = Field(description="telephony, video: whether switched on")


class SessionResponse(Me):
    """A browser's session: the token itself stays in the HttpOnly cookie."""

    csrf_token: str
    expires_in: int


class Principal(BaseModel):
    """Who is acting: a signed-in user, or the CLI on the server itself."""

    user_id: str | None
    username: str
    roles: frozenset[Role]

    def has_any(self, roles: set[Role]) -> bool:
        return Role.admin in self.roles or bool(self.roles & roles)
