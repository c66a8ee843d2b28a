"""WS /api/v1/events: domain events the caller's roles may see, as JSON, as they happen.

Browsers cannot set headers on a WebSocket, so the token comes as the `token` query parameter.
"""

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from switchboard.api.deps import services
from switchboard.auth.service import principal_from_token
from switchboard.core.errors import Unauthorized

router = APIRouter(tags=["events"])

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


@router.websocket("/api/v1/events")
async def events(websocket: WebSocket, token: str = "") -> None:
    ctx = services(websocket).ctx
    await websocket.accept()  # then close with a reason: a browser cannot read a refused handshake's status
    try:
        principal = principal_from_token(ctx.settings, token)
    except Unauthorized as exc:
        await websocket.close(POLICY_VIOLATION, exc.message)
        return
    listener = ctx.bus.listen()
    closed = asyncio.create_task(_until_closed(websocket))
    try:
        while not closed.done():
            next_event = asyncio.create_task(listener.queue.get())
            overflow = asyncio.create_task(listener.overflowed.wait())
            done, _ = await asyncio.wait({next_event, overflow, closed}, return_when=asyncio.FIRST_COMPLETED)
            for task in (next_event, overflow):
                if task not in done:
                    task.cancel()
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
        closed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closed


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
