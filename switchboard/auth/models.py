"""Users and their roles."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field
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


class Principal(BaseModel):
    """Who is acting: a signed-in user, or the CLI on the server itself."""

    user_id: str | None
    username: str
    roles: frozenset[Role]

    def has_any(self, roles: set[Role]) -> bool:
        return Role.admin in self.roles or bool(self.roles & roles)
