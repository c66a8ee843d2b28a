"""POST /api/v1/auth/token: username and password in, bearer token out."""

from fastapi import APIRouter

from switchboard.api.deps import Ctx
from switchboard.auth import service
from switchboard.auth.models import LoginRequest, TokenResponse

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", response_model=TokenResponse)
async def token(ctx: Ctx, body: LoginRequest) -> TokenResponse:
    access_token, user = await service.login(ctx, body.username, body.password)
    return TokenResponse(
        access_token=access_token, expires_in=ctx.settings.auth.token_ttl_minutes * 60, roles=user.roles
    )
