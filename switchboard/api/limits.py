"""Request bodies are bounded before anything parses them, and an upload is read only from a caller whose token holds.

Starlette reads a JSON body whole, and spools a multipart upload to a temporary file, before FastAPI resolves the
route's dependencies: a route's own size check and its 401 come after the work. This ASGI middleware runs first. It
answers 413 at once when Content-Length is over the route's limit, stops a streamed body at the limit, and on the
upload routes checks the bearer token before the first byte of the body is read.
"""

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.api.errors import body
from switchboard.auth import cookies
from switchboard.auth.service import principal_from_token
from switchboard.core.context import Context
from switchboard.core.errors import Unauthorized
from switchboard.directory.importer import MAX_BYTES as DIRECTORY_FILE_BYTES

MIB = 1024 * 1024
_FORM_ALLOWANCE = MIB  # multipart framing and the form's text fields around the file


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes its limit; FastAPI re-raises HTTP errors from a body read,
    so it reaches the JSON error handler as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"请求体过大：超过 {_size(limit)}")


class RequestLimits:
    def __init__(self, app: ASGIApp, ctx: Context) -> None:
        self.app, self.ctx = app, ctx
        settings = ctx.settings
        self.default = settings.server.max_body_kb * 1024
        self.uploads = {  # POST path -> most bytes its multipart body may have
            "/api/v1/faxes": settings.fax.max_upload_mb * MIB + _FORM_ALLOWANCE,
            "/api/v1/directory/import": DIRECTORY_FILE_BYTES + _FORM_ALLOWANCE,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = self.uploads.get(scope["path"].rstrip("/")) if scope["method"] == "POST" else None
        limit = upload or self.default
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(scope, receive, send, 413, "too_large", f"请求体过大：超过 {_size(limit)}")
            return
        if upload is not None and (reason := self._unauthenticated(headers)):
            await _refuse(scope, receive, send, 401, "unauthorized", reason)
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, bounded, send)

    def _unauthenticated(self, headers: Headers) -> str | None:
        """Why the caller may not upload (no or a bad token), or None. Roles and CSRF are the route's business."""
        token, _ = cookies.presented(headers)
        if not token:
            return cookies.NOT_SIGNED_IN
        try:
            principal_from_token(self.ctx.settings, token)
        except Unauthorized as exc:
            return exc.message
        return None


def _size(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit >= MIB else f"{limit // 1024} KiB"


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str) -> None:
    """Answer without reading the body; the connection closes, so the unread rest is never taken in."""
    headers = {"Connection": "close"} | ({"WWW-Authenticate": "Bearer"} if status == 401 else {})
    await JSONResponse(body(code, message), status, headers=headers)(scope, receive, send)
