"""Users, password hashing (argon2, off the event loop) and signed access tokens."""

import asyncio
import secrets
from datetime import timedelta
from functools import cache
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from switchboard.auth.models import Principal, Role, User
from switchboard.core.audit import service as audit
from switchboard.core.config import Settings
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.errors import Conflict, InvalidInput, Unauthorized

_hasher = PasswordHasher()
_ALGORITHM = "HS256"


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong password."""
    return _hasher.hash(secrets.token_hex(16))


def token_secret(settings: Settings) -> str:
    """From config or environment; else generated once into var/ (mode 0600) and kept."""
    if settings.auth.token_secret:
        return settings.auth.token_secret
    path: Path = settings.var_path / "token_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


async def add_user(
    ctx: Context, actor: str, username: str, password: str, roles: list[Role], display_name: str = ""
) -> User:
    if not roles:
        raise InvalidInput("至少需要一个角色", field="roles")
    if len(password) < 8:
        raise InvalidInput("密码至少 8 个字符", field="password")
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    async with ctx.db.session() as session:
        if await session.scalar(select(User.id).where(User.username == username)):
            raise Conflict(f"用户 {username} 已存在", field="username")
        user = User(username=username, display_name=display_name, password_hash=password_hash, roles=sorted(roles))
        session.add(user)
        await session.flush()
        await audit.record(session, actor, "user.add", "user", user.id, {"username": username, "roles": sorted(roles)})
    return user


async def ensure_admin(ctx: Context) -> str | None:
    """Create the first administrator when there is no user; returns a generated password to print once."""
    async with ctx.db.reader() as session:
        if await session.scalar(select(func.count(User.id))):
            return None
    password = ctx.settings.auth.admin_password
    generated = None if password else secrets.token_urlsafe(12)
    await add_user(ctx, "system", ctx.settings.auth.admin_username, password or generated or "", [Role.admin], "管理员")
    return generated


async def login(ctx: Context, username: str, password: str) -> tuple[str, User]:
    async with ctx.db.reader() as session:
        user = await session.scalar(select(User).where(User.username == username))
    try:
        await asyncio.to_thread(_hasher.verify, user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or not user.active:
        raise Unauthorized("用户名或密码错误")
    return issue_token(ctx.settings, user), user


def issue_token(settings: Settings, user: User) -> str:
    ttl = timedelta(minutes=settings.auth.token_ttl_minutes)
    claims = {"sub": user.id, "name": user.username, "roles": user.roles, "exp": utcnow() + ttl}
    return jwt.encode(claims, token_secret(settings), algorithm=_ALGORITHM)


def principal_from_token(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(token, token_secret(settings), algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]})
        return Principal(user_id=claims["sub"], username=claims["name"], roles=frozenset(claims["roles"]))
    except jwt.ExpiredSignatureError:
        raise Unauthorized("登录已过期，请重新登录") from None
    except (jwt.InvalidTokenError, KeyError, ValueError):
        raise Unauthorized("无效的访问令牌") from None
