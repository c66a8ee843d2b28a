"""WS /api/v1/events: domain events the caller's roles may see, as JSON, as they happen.

Browsers cannot set headers on a WebSocket: a program gives its token as the `token` query parameter (`switchboard
serve` keeps it out of the access log); the console's handshake carries its session cookie, taken only when the
handshake's Origin is this host (a page elsewhere could otherwise open the socket with the user's cookie).
The token is checked again every `[auth] session_check_seconds`: a user disabled,
given other roles or signed out, or a token expired, closes the socket with the reason in Chinese.
"""

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from switchboard.api.deps import services
from switchboard.auth import cookies
from switchboard.auth import service as auth
from switchboard.auth.models import Principal
from switchboard.auth.sessions import Sessions
from switchboard.core.context import Context
from switchboard.core.errors import Unauthorized
from switchboard.core.events import Event, Listener

router = APIRouter(tags=["events"])

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


@router.websocket("/api/v1/events")
async def events(websocket: WebSocket, token: str = "", since: int | None = None) -> None:
    """With `since` (the last `seq` the client saw), the events it missed come first; if they are no longer all
    kept, a `catch_up.incomplete` event says so and the client reloads what it shows."""
    ctx, sessions = services(websocket).ctx, services(websocket).sessions
    await websocket.accept()  # then close with a reason: a browser cannot read a refused handshake's status
    if not token and cookies.same_origin(websocket):
        token = websocket.cookies.get(cookies.COOKIE, "")
    try:
        principal = await sessions.principal(token)
    except Unauthorized as exc:
        await websocket.close(POLICY_VIOLATION, exc.message)
        return
    listener = ctx.bus.listen()
    replayed = ctx.bus.last_seq  # events after this come through the listener
    missed = ctx.bus.since(since) if since is not None else []
    if missed is None:
        await websocket.send_json({"seq": replayed, "type": "catch_up.incomplete", "data": {}})
    feed = _Feed(websocket, ctx, principal)
    for event in missed or []:
        if event.seq <= replayed:
            await feed.send(event)
    closed = asyncio.create_task(_until_closed(websocket))
    refused = asyncio.create_task(_until_refused(sessions, token))
    overflow = asyncio.create_task(listener.overflowed.wait())
    pump = asyncio.create_task(_pump(listener, feed, replayed))
    watched = (pump, closed, refused, overflow)
    try:
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        await _stop(pump)  # nothing more goes out once the client is refused or too far behind
        if refused in done:
            await websocket.close(POLICY_VIOLATION, refused.result())
        elif overflow in done:
            await websocket.close(TRY_AGAIN_LATER, "事件推送积压，请重新连接")
        elif pump in done:
            pump.result()  # the client went (WebSocketDisconnect); anything else is a fault to see
    except WebSocketDisconnect:
        pass
    finally:
        listener.close()
        for task in watched:
            await _stop(task)


async def _pump(listener: Listener, feed: "_Feed", replayed: int) -> None:
    """Send each event as it comes: one task for the connection, not a task and a wait per event (a convene's
    joins come one at a time, and that was most of what each cost this socket)."""
    while True:
        event = await listener.queue.get()
        if event.seq > replayed:
            await feed.send(event)


async def _stop(task: asyncio.Task[object]) -> None:
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _Feed:
    """One console's stream: the events its roles may see, each naming its actor as people know them."""

    def __init__(self, websocket: WebSocket, ctx: Context, principal: Principal) -> None:
        self.websocket, self.ctx, self.principal = websocket, ctx, principal
        self.names: dict[str, str] = {}  # username -> Chinese name, asked once per connection

    async def send(self, event: Event) -> None:
        if event.audience and not self.principal.has_any(set(event.audience)):
            return
        message = event.as_json()
        if event.actor:
            if event.actor not in self.names:
                self.names |= await auth.display_names(self.ctx, {event.actor})
            message["actor_name"] = self.names[event.actor]
        await self.websocket.send_json(message)


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
