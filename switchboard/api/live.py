"""WS /api/v1/events: domain events the caller's roles may see, as JSON, as they happen.

Browsers cannot set headers on a WebSocket, so the token comes as the `token` query parameter (`switchboard serve`
keeps it out of the access log). The token is checked again every `[auth] session_check_seconds`: a user disabled,
given other roles or signed out, or a token expired, closes the socket with the reason in Chinese.
"""

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from switchboard.api.deps import services
from switchboard.auth.sessions import Sessions
from switchboard.core.errors import Unauthorized

router = APIRouter(tags=["events"])

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


@router.websocket("/api/v1/events")
async def events(websocket: WebSocket, token: str = "") -> None:
    ctx, sessions = services(websocket).ctx, services(websocket).sessions
    await websocket.accept()  # then close with a reason: a browser cannot read a refused handshake's status
    try:
        principal = await sessions.principal(token)
    except Unauthorized as exc:
        await websocket.close(POLICY_VIOLATION, exc.message)
        return
    listener = ctx.bus.listen()
    closed = asyncio.create_task(_until_closed(websocket))
    refused = asyncio.create_task(_until_refused(sessions, token))
    try:
        while not closed.done():
            next_event = asyncio.create_task(listener.queue.get())
            overflow = asyncio.create_task(listener.overflowed.wait())
            done, _ = await asyncio.wait({next_event, overflow, closed, refused}, return_when=asyncio.FIRST_COMPLETED)
            for task in (next_event, overflow):
                if task not in done:
                    task.cancel()
            if refused in done:
                await websocket.close(POLICY_VIOLATION, refused.result())
                break
            if overflow in done:
                await websocket.close(TRY_AGAIN_LATER, "事件推送积压，请重新连接")
                break
            if next_event in done:
                event = next_event.result()
                if not event.audience or principal.has_any(set(event.audience)):
                    await websocket.send_json(event.as_json())
    except WebSocketDisconnect:
        pass
    finally:
        listener.close()
        for task in (closed, refused):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()


async def _until_refused(sessions: Sessions, token: str) -> str:
    """Check the token every cache period; the reason once it no longer holds."""
    while True:
        await asyncio.sleep(sessions.ttl)
        try:
            await sessions.principal(token)
        except Unauthorized as exc:
            return exc.message
