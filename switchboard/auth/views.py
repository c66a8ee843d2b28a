"""Signing in and out: a bearer token for programs (POST /auth/token), a cookie session for browsers (/auth/session).

Both carry the same signed token; POST /auth/logout revokes whichever was presented and clears the cookie.
"""

import time

from fastapi import APIRouter, Request, Response

from switchboard.api.deps import BearerToken, Ctx, Reader, SignIn, parts
from switchboard.api.errors import ErrorBody
from switchboard.auth import cookies, service
from switchboard.auth.models import LoginRequest, Me, SessionResponse, TokenResponse, User

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
people = APIRouter(tags=["auth"])

_THROTTLED = {429: {"model": ErrorBody, "description": "Too many failed logins; Retry-After says when to try again"}}


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/token", response_model=TokenResponse, responses=_THROTTLED)
async def token(ctx: Ctx, sessions: SignIn, body: LoginRequest, request: Request) -> TokenResponse:
    access_token, user = await service.login(ctx, sessions.addresses, body.username, body.password, _address(request))
    return TokenResponse(
        access_token=access_token, expires_in=ctx.settings.auth.token_ttl_minutes * 60, roles=user.roles
    )


@router.post("/session", response_model=SessionResponse, responses=_THROTTLED)
async def open_session(
    ctx: Ctx, sessions: SignIn, body: LoginRequest, request: Request, response: Response
) -> SessionResponse:
    """Sign a browser in: the token goes into an HttpOnly cookie, never to the page; the page gets the CSRF token."""
    access_token, user = await service.login(ctx, sessions.addresses, body.username, body.password, _address(request))
    cookies.set_cookie(response, ctx.settings, access_token, secure=request.url.scheme == "https")
    return SessionResponse(
        csrf_token=cookies.csrf_token(ctx.settings, access_token),
        expires_in=ctx.settings.auth.token_ttl_minutes * 60,
        **_me(user, user.roles, request).model_dump(),
    )


@router.get("/session", response_model=SessionResponse)
async def current_session(ctx: Ctx, who: Reader, access_token: BearerToken, request: Request) -> SessionResponse:
    """A reloaded or new tab asks again for its CSRF token (no other origin can read this answer)."""
    expires_in = max(0, int(service.decode(ctx.settings, access_token)["exp"] - time.time()))
    me = _me(await service.get_user(ctx, who.username), sorted(who.roles), request).model_dump()
    return SessionResponse(csrf_token=cookies.csrf_token(ctx.settings, access_token), expires_in=expires_in, **me)


@people.get("/api/v1/me", response_model=Me)
async def me(ctx: Ctx, who: Reader, request: Request) -> Me:
    """Who is signed in, with the Chinese name the console shows, their desk, and which parts are switched on."""
    return _me(await service.get_user(ctx, who.username), sorted(who.roles), request)


def _me(user: User, roles: list[str], request: Request) -> Me:
    """The token's roles (a changed role voids the token, so they agree with the user's)."""
    return Me(
        username=user.username,
        display_name=user.display_name or user.username,
        roles=roles,
        desk=user.desk,
        parts=parts(request),
    )


@router.post("/logout", status_code=204)
async def logout(sessions: SignIn, access_token: BearerToken, request: Request, response: Response) -> None:
    """The presented token stops working at once here, and within `[auth] session_check_seconds` everywhere."""
    await sessions.logout(access_token)
    cookies.clear_cookie(response, secure=request.url.scheme == "https")
