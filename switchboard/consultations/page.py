"""The join page (/consult/{id}?token=...): a page of the console's build (web/consult.html, with janus.js from npm);
no install, no CDN. A wrong, expired or revoked link gets a plain page saying so, never the room. The page's
signalling goes through this server (/consult/{id}/signal, see switchboard.consultations.janus_api and .relay):
browsers never reach Janus's API."""

import asyncio
import contextlib
import html
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from switchboard import console
from switchboard.api.deps import VideoRooms, get_live_rooms, services
from switchboard.consultations import flows, janus_api
from switchboard.consultations.models import Frame
from switchboard.consultations.relay import Relay
from switchboard.core.errors import SwitchboardError, Unauthorized

log = logging.getLogger(__name__)

router = APIRouter(prefix="/consult", include_in_schema=False)
HELLO_SECONDS = 10.0  # a socket that does not say who it is by then is closed
ENGINE_GONE = "视频会商引擎连接已断开，请刷新页面重新加入"
_bearer = HTTPBearer(auto_error=False)
_REFUSED = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>无法加入会商</title>
<style>body{{font-family:"Noto Sans CJK SC",sans-serif;background:#1b2330;color:#eee;display:flex;height:100vh;
align-items:center;justify-content:center;margin:0}}div{{background:#2a3445;padding:2em 3em;border-radius:8px}}
</style></head><body><div id="refused"><h1>无法加入会商</h1><p id="reason">{reason}</p>
<p>请联系值班室（应急指挥中心）重新获取会商链接。</p></div></body></html>"""


@router.get("/{consultation_id}")
async def page(request: Request, consultation_id: str, token: Annotated[str, Query(max_length=2000)] = "") -> Response:
    try:
        if not token:
            raise Unauthorized("链接缺少会商令牌")
        await flows.invite_of(services(request).ctx, consultation_id, token)
    except SwitchboardError as exc:
        return HTMLResponse(_REFUSED.format(reason=html.escape(exc.message)), status_code=exc.status)
    return console.page("consult.html", {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


@router.post("/{consultation_id}/session")
async def session(
    request: Request,
    live: VideoRooms,
    consultation_id: str,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> dict[str, Any]:
    """What the page shows before joining: the consultation, the invite's site and person, the sites' names."""
    if credentials is None:
        raise Unauthorized("链接缺少会商令牌")
    return await flows.join_details(services(request).ctx, live, consultation_id, credentials.credentials)


@router.websocket("/{consultation_id}/signal")
async def signal(websocket: WebSocket, consultation_id: str) -> None:
    """The page's janus.js speaks the Janus WebSocket API here (switchboard.consultations.janus_api). Its first
    frame creates the session and carries the join token (in the message, never in a logged URL); the relay answers
    the rest and pushes Janus's events about the page's handles. Closed with code 4000 + status and the reason in
    Chinese when refused or cut off."""
    offered = websocket.scope.get("subprotocols", [])
    # Accept, then close with a reason: a browser cannot read a refused handshake's status.
    await websocket.accept(janus_api.SUBPROTOCOL if janus_api.SUBPROTOCOL in offered else None)
    create: Frame | None = None
    try:
        live = await get_live_rooms(websocket)
        create = await asyncio.wait_for(_first(websocket), HELLO_SECONDS)
        if create.janus != "create" or not create.token:
            raise Unauthorized("链接缺少会商令牌")
        ctx = services(websocket).ctx
        consultation, invite = await flows.invite_of(ctx, consultation_id, create.token)
        relay = Relay(ctx, live, consultation, invite, create.token)
        session_id = await relay.open()
    except janus_api.Refused as refused:
        await _refuse(websocket, refused.transaction, refused.error)
        return
    except SwitchboardError as exc:
        await _refuse(websocket, create.transaction if create else None, exc)
        return
    except TimeoutError:
        await _close(websocket, 4401, "链接缺少会商令牌")
        return
    except WebSocketDisconnect:
        return
    live.connected.setdefault(invite.id, set()).add(relay)
    sending = asyncio.Lock()

    async def send(message: dict[str, Any]) -> None:
        async with sending:
            await websocket.send_json(message)

    async def serve_requests() -> None:
        await send({"janus": "success", "transaction": create.transaction, "data": {"id": session_id}})
        while True:
            try:
                frame = janus_api.parse(await websocket.receive_text())
                if not await janus_api.answer(relay, frame, session_id, send):
                    return
            except janus_api.Refused as refused:
                await send(janus_api.error(refused.transaction, refused.error))

    async def push_events() -> None:
        async for event in relay.events():
            await send(event | {"session_id": session_id})

    async def push_notices() -> None:
        while True:
            data = await relay.notices.get()
            await send(janus_api.event(relay.publisher, {"videoroom": "event"} | data) | {"session_id": session_id})

    tasks = [asyncio.create_task(job()) for job in (serve_requests, push_events, push_notices)]
    destroyed = False  # the page ended its session itself
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done() and not task.cancelled() and (error := task.exception()):
                if not isinstance(error, WebSocketDisconnect):
                    log.warning("signalling of %s ended: %r", invite.site, error)
        destroyed = tasks[0].done() and not tasks[0].cancelled() and tasks[0].exception() is None
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        live.connected.get(invite.id, set()).discard(relay)
        await relay.close()
        if destroyed:
            await _close(websocket, 1000, "")
        else:
            await _close(websocket, 4403 if relay.end_reason else 4503, relay.end_reason or ENGINE_GONE)


async def _first(websocket: WebSocket) -> Frame:
    return janus_api.parse(await websocket.receive_text())


async def _refuse(websocket: WebSocket, transaction: str | None, exc: SwitchboardError) -> None:
    """Tell janus.js why (an error for its transaction), then close with the status and reason."""
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.send_json(janus_api.error(transaction, exc))
    await _close(websocket, 4000 + exc.status, exc.message)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with `reason`, cut to the 123 bytes a close frame carries."""
    cut = reason.encode()[:123].decode(errors="ignore")
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code, cut)
