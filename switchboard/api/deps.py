"""Request dependencies: the caller, authenticated and authorised by role, and each service a route drives, typed.

`create_app` composes the services once into `Services`; routes name what they use (`Calls`, `Bridges`, `Faxes`,
`LineCheckRuns`, `VideoRooms`, `Outboxes`, `Recordings`, `CameraRegistry`) and get it typed, or a 503 in Chinese
while that part is switched off. Every dependency is a coroutine: FastAPI runs a plain function in a worker thread,
and the thread hand-offs of a request's five or six dependencies were 2.5 % of a busy server's CPU (BENCHMARKS.md,
issue 16).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from broadcast.outbox import Outbox
from conference.bridges.service import BridgeService
from recording.store import RecordingStore
from sip.calls import CallService
from sip.fax.service import FaxService
from switchboard.auth import cookies
from switchboard.auth.models import Principal, Role
from switchboard.auth.sessions import Sessions
from switchboard.cameras.live import LiveCameras
from switchboard.consultations.live import LiveRooms
from switchboard.core.context import Context
from switchboard.core.errors import Forbidden, Unauthorized, Unavailable
from switchboard.linechecks.service import LineChecks
from switchboard.notices.live import Notices
from switchboard.telephony import Telephony
from switchboard.video import Video

_bearer = HTTPBearer(auto_error=False, description="POST /api/v1/auth/token for a token")
Part = TypeVar("Part")


@dataclass(frozen=True)
class Services:
    """Everything the routes drive, composed once per application."""

    ctx: Context
    telephony: Telephony
    video: Video
    outbox: Outbox
    recordings: RecordingStore
    sessions: Sessions
    cameras: LiveCameras
    notices: Notices


def services(connection: HTTPConnection) -> Services:
    found: Services = connection.app.state.services
    return found


def parts(connection: HTTPConnection) -> dict[str, bool]:
    """Which parts are switched on, for the console to offer only what works."""
    found = services(connection)
    return {"telephony": found.telephony.calls is not None, "video": found.video.enabled}


async def get_ctx(request: Request) -> Context:
    return services(request).ctx


def _switched_on(part: Part | None, off: str) -> Part:
    if part is None:
        raise Unavailable(off)
    return part


_TELEPHONY_OFF = "电话功能未启用（[asterisk] mode = off）"


async def get_calls(request: Request) -> CallService:
    return _switched_on(services(request).telephony.calls, _TELEPHONY_OFF)


async def get_bridges(request: Request) -> BridgeService:
    return _switched_on(services(request).telephony.bridges, _TELEPHONY_OFF)


async def get_faxes(request: Request) -> FaxService:
    return _switched_on(services(request).telephony.faxes, _TELEPHONY_OFF + "，无法收发传真")


async def get_linechecks(request: Request) -> LineChecks:
    return _switched_on(services(request).telephony.linechecks, _TELEPHONY_OFF + "，无法巡检线路")


async def get_live_rooms(connection: HTTPConnection) -> LiveRooms:
    video = services(connection).video
    return _switched_on(video.live if video.enabled else None, "视频会商未启用（[janus] mode = off）")


async def get_outbox(request: Request) -> Outbox:
    return services(request).outbox


async def get_recordings(request: Request) -> RecordingStore:
    return services(request).recordings


async def get_cameras(request: Request) -> LiveCameras:
    return services(request).cameras


async def get_sessions(request: Request) -> Sessions:
    return services(request).sessions


async def presented_token(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The bearer token, or the browser session's cookie; a state-changing request by cookie needs its CSRF token.
    (`_bearer` is declared so that the API documentation offers the bearer scheme; `cookies.presented` reads.)"""
    token, by_cookie = cookies.presented(request.headers)
    if not token:
        raise Unauthorized(cookies.NOT_SIGNED_IN)
    if by_cookie and request.method not in cookies.SAFE_METHODS:
        presented = request.headers.get(cookies.CSRF_HEADER)
        if not cookies.csrf_holds(services(request).ctx.settings, token, presented):
            raise Forbidden(f"浏览器会话的请求缺少有效的 {cookies.CSRF_HEADER}（防跨站请求伪造），请刷新页面后重试")
    return token


Ctx = Annotated[Context, Depends(get_ctx)]
Calls = Annotated[CallService, Depends(get_calls)]
Bridges = Annotated[BridgeService, Depends(get_bridges)]
Faxes = Annotated[FaxService, Depends(get_faxes)]
LineCheckRuns = Annotated[LineChecks, Depends(get_linechecks)]
VideoRooms = Annotated[LiveRooms, Depends(get_live_rooms)]
Outboxes = Annotated[Outbox, Depends(get_outbox)]
Recordings = Annotated[RecordingStore, Depends(get_recordings)]
SignIn = Annotated[Sessions, Depends(get_sessions)]
CameraRegistry = Annotated[LiveCameras, Depends(get_cameras)]
BearerToken = Annotated[str, Depends(presented_token)]

ROLE_NAMES = {
    Role.duty_officer: "值班员",
    Role.leader: "领导",
    Role.alert_officer: "预警发布员",
    Role.approver: "审核人",
    Role.admin: "管理员",
}


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers holding any of `roles` (admin always), with a token still in good standing."""
    allowed = set(roles)

    async def check(sessions: SignIn, token: BearerToken) -> Principal:
        principal = await sessions.principal(token)
        if not principal.has_any(allowed):
            names = "、".join(ROLE_NAMES[r] for r in sorted(allowed))
            raise Forbidden(f"需要以下角色之一：{names}")
        return principal

    return check


EVERYONE = tuple(Role)
Reader = Annotated[Principal, Depends(require(*EVERYONE))]
DutyOfficer = Annotated[Principal, Depends(require(Role.duty_officer))]
Officer = Annotated[Principal, Depends(require(Role.duty_officer, Role.leader))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
