"""POST /api/v1/auth/token: username and password in, bearer token out; POST /api/v1/auth/logout revokes it."""

from fastapi import APIRouter, Request

from switchboard.api.deps import BearerToken, Ctx, SignIn
from switchboard.api.errors import ErrorBody
from switchboard.auth import service
from switchboard.auth.models import LoginRequest, TokenResponse

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_THROTTLED = {429: {"model": ErrorBody, "description": "Too many failed logins; Retry-After says when to try again"}}


@router.post("/token", response_model=TokenResponse, responses=_THROTTLED)
async def token(ctx: Ctx, sessions: SignIn, body: LoginRequest, request: Request) -> TokenResponse:
    address = request.client.host if request.client else "unknown"
    access_token, user = await service.login(ctx, sessions.addresses, body.username, body.password, address)
    return TokenResponse(
        access_token=access_token, expires_in=ctx.settings.auth.token_ttl_minutes * 60, roles=user.roles
    )


@router.post("/logout", status_code=204)
async def logout(sessions: SignIn, token: BearerToken) -> None:
    """The presented token stops working at once here, and within `[auth] session_check_seconds` everywhere."""
    await sessions.logout(token)
