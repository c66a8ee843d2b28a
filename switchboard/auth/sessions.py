"""Each token checked against the database's word (user active, token version, signed out) through a small cache.

A token alone would stay good for its whole life however its user changes. Asking the database on every request
would cost a query each; this process remembers each token's standing for `[auth] session_check_seconds` (5 s by
default), so disabling a user, changing their roles or password, or signing out takes effect within that time in
every worker, and a busy console costs one small query per token per period. The token's signature is checked
once per period as well (it was 15 % of the CPU of a request placing a call); its expiry on every request.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, exists, select

from switchboard.auth.models import Principal, RevokedToken, User
from switchboard.auth.service import decode, principal_of
from switchboard.auth.throttle import AddressThrottle
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.errors import Unauthorized

_MAX_CACHED = 4096


@dataclass(frozen=True)
class _Standing:
    claims: dict[str, Any]
    refusal: str | None
    checked_at: float


class Sessions:
    """This process's side of signing in: the token standing cache and the per-address login back-off."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.ttl = ctx.settings.auth.session_check_seconds
        self.addresses = AddressThrottle(ctx.settings)
        self._standing: dict[str, _Standing] = {}

    async def principal(self, token: str) -> Principal:
        """Who presents `token`, or 401 saying why not (expired, signed out, user disabled, roles changed)."""
        return principal_of(await self._claims(token))

    async def logout(self, token: str) -> None:
        """Revoke `token` for good (its row outlives it only until it would have expired)."""
        claims = await self._claims(token)
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        async with self.ctx.db.session() as session:
            await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))
            session.add(RevokedToken(jti=claims["jti"], user_id=claims["sub"], expires_at=expires_at))
            await audit.record(session, claims["name"], "auth.logout", "user", claims["sub"], {})
        self._standing.pop(token, None)

    async def _claims(self, token: str) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._standing.get(token)
        if cached is None or now - cached.checked_at >= self.ttl or cached.claims["exp"] <= time.time():
            claims = decode(self.ctx.settings, token)  # an expired token is refused here, saying so
            cached = _Standing(claims, await self._ask_database(claims), now)
            if len(self._standing) >= _MAX_CACHED:
                self._standing = {k: v for k, v in self._standing.items() if now - v.checked_at < self.ttl}
            self._standing[token] = cached
        if cached.refusal:
            raise Unauthorized(cached.refusal)
        return cached.claims

    async def _ask_database(self, claims: dict[str, Any]) -> str | None:
        revoked = exists().where(RevokedToken.jti == claims["jti"])
        async with self.ctx.db.reader() as session:
            query = select(User.active, User.token_version, revoked).where(User.id == claims["sub"])
            row = (await session.execute(query)).one_or_none()
        if row is None or not row.active:
            return "账号已停用，请联系管理员"
        if row[2]:
            return "已退出登录，请重新登录"
        if row.token_version != claims["ver"]:
            return "账号的角色或密码已变更，请重新登录"
        return None
