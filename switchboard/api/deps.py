"""Request dependencies: the running context and the caller, authenticated and authorised by role."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from switchboard.auth.models import Principal, Role
from switchboard.auth.service import principal_from_token
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.core.errors import Forbidden, Unauthorized, Unavailable

_bearer = HTTPBearer(auto_error=False, description="POST /api/v1/auth/token for a token")


def get_ctx(request: Request) -> Context:
    return request.app.state.ctx


Ctx = Annotated[Context, Depends(get_ctx)]

ROLE_NAMES = {
    Role.duty_officer: "值班员",
    Role.leader: "领导",
    Role.alert_officer: "预警发布员",
    Role.approver: "审核人",
    Role.admin: "管理员",
}


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting callers holding any of `roles` (admin always)."""
    allowed = set(roles)

    def check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("需要登录：请在 Authorization 头中提供 Bearer 令牌")
        principal = principal_from_token(get_ctx(request).settings, credentials.credentials)
        if not principal.has_any(allowed):
            names = "、".join(ROLE_NAMES[r] for r in sorted(allowed))
            raise Forbidden(f"需要以下角色之一：{names}")
        return principal

    return check


EVERYONE = tuple(Role)
Reader = Annotated[Principal, Depends(require(*EVERYONE))]
DutyOfficer = Annotated[Principal, Depends(require(Role.duty_officer))]
Admin = Annotated[Principal, Depends(require(Role.admin))]


async def audited(ctx: Context, who: Principal, action: str, kind: str, ref: str, detail: dict[str, Any]) -> None:
    """Audit an action the engine carries out on its own schedule (a call, a bridge control): the entry follows
    the request rather than sharing a transaction with rows the engine's events write later."""
    async with ctx.db.session() as session:
        await audit.record(session, who.username, action, kind, ref, detail)


def telephony_part(attribute: str, unavailable: str) -> Callable[[Request], Any]:
    """A dependency handing a route the part of telephony it drives (calls, bridges, faxes); 503 while it is off."""

    def get(request: Request) -> Any:
        part = getattr(request.app.state.telephony, attribute)
        if part is None:
            raise Unavailable(f"电话功能未启用（[asterisk] mode = off）{unavailable}")
        return part

    return get
