"""Users, password hashing (argon2, off the event loop), signing in with back-off, and signed access tokens."""

import asyncio
import secrets
from datetime import timedelta
from functools import cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.auth import passwords, throttle
from switchboard.auth.models import Principal, Role, User
from switchboard.auth.throttle import AddressThrottle
from switchboard.core.audit import service as audit
from switchboard.core.config import ConfigError, Settings
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from switchboard.core.keys import kept_secret

_hasher = PasswordHasher()
_ALGORITHM = "HS256"


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong password."""
    return _hasher.hash(secrets.token_hex(16))


def token_secret(settings: Settings) -> str:
    """From config or environment; else generated once into var/ (mode 0600) and kept."""
    return settings.auth.token_secret or kept_secret(settings.var_path / "token_secret")


async def add_user(
    ctx: Context,
    actor: str,
    username: str,
    password: str,
    roles: list[Role],
    display_name: str = "",
    desk: str | None = None,
) -> User:
    if not roles:
        raise InvalidInput("至少需要一个角色", field="roles")
    passwords.check(password)
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    async with ctx.db.session() as session:
        if await session.scalar(select(User.id).where(User.username == username)):
            raise Conflict(f"用户 {username} 已存在", field="username")
        user = User(
            username=username, display_name=display_name, password_hash=password_hash, roles=sorted(roles), desk=desk
        )
        session.add(user)
        await session.flush()
        await audit.record(session, actor, "user.add", "user", user.id, {"username": username, "roles": sorted(roles)})
    return user


async def ensure_admin(ctx: Context) -> str | None:
    """Create the first administrator when there is no user; returns a generated password to print once.

    A configured password that fails the policy stops the start, naming the setting, even once users exist.
    """
    password = ctx.settings.auth.admin_password
    if password and (reason := passwords.weakness(password)):
        raise ConfigError("SWITCHBOARD_AUTH_ADMIN_PASSWORD（[auth] admin_password）", reason)
    async with ctx.db.reader() as session:
        if await session.scalar(select(func.count(User.id))):
            return None
    generated = None if password else passwords.generate()
    await add_user(ctx, "system", ctx.settings.auth.admin_username, password or generated or "", [Role.admin], "管理员")
    return generated


async def login(
    ctx: Context, addresses: AddressThrottle, username: str, password: str, address: str
) -> tuple[str, User]:
    """Check the password unless the account or address must wait; audit the outcome, never the password."""
    settings = ctx.settings
    addresses.check(address, utcnow())
    async with ctx.db.reader() as session:
        throttle.refuse_while_blocked(await throttle.account_blocked_until(session, username), utcnow(), settings)
        user = await session.scalar(select(User).where(User.username == username))
    try:
        await asyncio.to_thread(_hasher.verify, user.password_hash if user else _dummy_hash(), password)
        reason = None if user is None or user.active else "disabled"
    except (VerificationError, InvalidHashError):
        reason = "wrong_password"
    reason = "unknown_user" if user is None else reason
    now = utcnow()
    addresses.check(address, now)  # a concurrent attempt may have blocked it meanwhile: reveal nothing then
    async with ctx.db.session() as session:
        throttle.refuse_while_blocked(await throttle.account_blocked_until(session, username, lock=True), now, settings)
        detail: dict[str, Any] = {"address": address}
        if reason:
            strikes = await throttle.fail_account(session, username, now, settings)
            detail |= {"reason": reason, "failures": strikes.failures}
            await audit.record(session, username, "auth.login_failed", "user", user.id if user else "", detail)
        else:
            await throttle.clear_account(session, username)
            await audit.record(session, username, "auth.login", "user", user.id if user else "", detail)
    if reason or user is None:
        addresses.fail(address, now)
        raise Unauthorized("用户名或密码错误")
    return issue_token(settings, user), user


def issue_token(settings: Settings, user: User) -> str:
    ttl = timedelta(minutes=settings.auth.token_ttl_minutes)
    claims = {
        "sub": user.id,
        "name": user.username,
        "roles": user.roles,
        "ver": user.token_version,
        "jti": secrets.token_hex(16),
        "exp": utcnow() + ttl,
    }
    return jwt.encode(claims, token_secret(settings), algorithm=_ALGORITHM)


def decode(settings: Settings, token: str) -> dict[str, Any]:
    """The claims of a token we signed that has not expired; the database's word is `Sessions.principal`'s."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            token_secret(settings),
            algorithms=[_ALGORITHM],
            options={"require": ["exp", "sub", "name", "roles", "jti", "ver"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("登录已过期，请重新登录") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("无效的访问令牌") from None
    return claims


def principal_of(claims: dict[str, Any]) -> Principal:
    try:
        return Principal(user_id=claims["sub"], username=claims["name"], roles=frozenset(claims["roles"]))
    except (KeyError, ValueError):
        raise Unauthorized("无效的访问令牌") from None


def principal_from_token(settings: Settings, token: str) -> Principal:
    """Signature and expiry only: a cheap early check (uploads); routes use `Sessions.principal`."""
    return principal_of(decode(settings, token))


# Actors that are no user: the switchboard itself and the lines calls come in on.
_NOT_USERS = {"system": "系统", "inbound": "来电", "dial-in": "拨入"}


async def display_names(ctx: Context, usernames: set[str]) -> dict[str, str]:
    """Each actor's name as people see it: a user's Chinese name, 系统 for the switchboard, 分机 8001 for a call
    dialled on a desk phone; a username without a name set stays as it is."""
    if not usernames:
        return {}
    async with ctx.db.reader() as session:
        rows = await session.execute(select(User.username, User.display_name).where(User.username.in_(usernames)))
        found = {username: name for username, name in rows.all() if name}
    return {username: found.get(username) or _not_a_user(username) for username in usernames}


def _not_a_user(actor: str) -> str:
    desk, colon, number = actor.partition(":")
    return f"分机 {number}" if colon and desk == "desk" else _NOT_USERS.get(actor, actor)


async def desk_of(ctx: Context, username: str) -> str | None:
    """The desk extension `username` dispatches from, if an administrator set one."""
    async with ctx.db.reader() as session:
        desk: str | None = await session.scalar(select(User.desk).where(User.username == username))
    return desk


async def set_profile(ctx: Context, actor: str, username: str, changes: dict[str, str | None]) -> User:
    """Display name and desk: what people see and where calls ring; neither voids the user's tokens."""
    async with ctx.db.session() as session:
        user = await _user(session, username)
        before = {key: getattr(user, key) for key in changes}
        for key, value in changes.items():
            setattr(user, key, value)
        await audit.record(session, actor, "user.profile", "user", user.id, {"before": before, "after": changes})
    return user


async def list_users(ctx: Context, actor: str) -> list[User]:
    """Every user; audited, since who holds which role is itself sensitive."""
    async with ctx.db.session() as session:
        users = list(await session.scalars(select(User).order_by(User.username)))
        await audit.record(session, actor, "user.list", "user", "", {"count": len(users)})
    return users


async def set_active(ctx: Context, actor: str, username: str, active: bool) -> User:
    """Disabling voids the user's tokens (open consoles close within `[auth] session_check_seconds`)."""
    async with ctx.db.session() as session:
        user = await _user(session, username)
        if not active:
            await _keep_an_admin(session, user)
            user.token_version += 1
        user.active = active
        await audit.record(
            session, actor, "user.enable" if active else "user.disable", "user", user.id, {"username": username}
        )
    return user


async def set_roles(ctx: Context, actor: str, username: str, roles: list[Role]) -> User:
    """New roles void the user's tokens: they sign in again and get the new roles in their token."""
    if not roles:
        raise InvalidInput("至少需要一个角色", field="roles")
    async with ctx.db.session() as session:
        user = await _user(session, username)
        if Role.admin not in roles:
            await _keep_an_admin(session, user)
        before, user.roles = user.roles, sorted(set(roles))
        user.token_version += 1
        detail = {"username": username, "before": before, "after": user.roles}
        await audit.record(session, actor, "user.roles", "user", user.id, detail)
    return user


async def set_password(ctx: Context, actor: str, username: str, password: str) -> User:
    """A new password voids the user's tokens, so a leaked one is shut out too."""
    passwords.check(password)
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    async with ctx.db.session() as session:
        user = await _user(session, username)
        user.password_hash = password_hash
        user.token_version += 1
        await audit.record(session, actor, "user.passwd", "user", user.id, {"username": username})
    return user


async def get_user(ctx: Context, username: str) -> User:
    async with ctx.db.reader() as session:
        user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"用户 {username} 不存在", field="username")
    return user


async def _user(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username).with_for_update())
    if user is None:
        raise NotFound(f"用户 {username} 不存在", field="username")
    return user


async def _keep_an_admin(session: AsyncSession, user: User) -> None:
    """Refuse to leave the switchboard without an active administrator."""
    if not user.active or Role.admin not in user.roles:
        return
    others = await session.scalars(select(User.roles).where(User.active, User.id != user.id))
    if not any(Role.admin in roles for roles in others):
        raise Conflict(f"{user.username} 是最后一个启用的管理员，不能停用或取消其管理员角色", field="username")
