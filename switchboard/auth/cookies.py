"""Browser sessions: the access token in an HttpOnly SameSite=Strict cookie, with a CSRF token to match.

A link to a report, a recording or an export must open in a browser tab, which sends no Authorization header; the
cookie carries the same signed token instead, out of the page's script's reach. A cookie rides along on every
request to this host, so a state-changing request that presents one must also carry `X-CSRF-Token`: an HMAC of the
token that a page on another origin cannot read or compute. SameSite=Strict already keeps the cookie off other
sites' requests; the header holds even where a browser ignores SameSite.
"""

import hashlib
import hmac

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, cookie_parser
from starlette.responses import Response

from switchboard.auth.service import token_secret
from switchboard.core.config import Settings

COOKIE = "switchboard_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NOT_SIGNED_IN = "需要登录：请在 Authorization 头中提供 Bearer 令牌，或在浏览器中登录"


def presented(headers: Headers) -> tuple[str, bool]:
    """The token a request presents and whether it came by cookie: its bearer token, else its session cookie
    ("" when neither). The routes' dependency and the upload limiter both ask this, the same way."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), False
    return cookie_parser(headers.get("cookie", "")).get(COOKIE, ""), True


def csrf_token(settings: Settings, token: str) -> str:
    """Derived from the session token, so nothing more is stored and it dies with the session."""
    return hmac.new(token_secret(settings).encode(), b"csrf\0" + token.encode(), hashlib.sha256).hexdigest()


def csrf_holds(settings: Settings, token: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(presented, csrf_token(settings, token))


def same_origin(connection: HTTPConnection) -> bool:
    """Whether a WebSocket handshake comes from a page of this host (browsers always send Origin on one)."""
    origin, host = connection.headers.get("origin"), connection.headers.get("host")
    return origin is not None and host is not None and origin.split("://", 1)[-1] == host


def set_cookie(response: Response, settings: Settings, token: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.auth.token_ttl_minutes * 60,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def clear_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure)
