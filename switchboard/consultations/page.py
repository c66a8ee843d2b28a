"""The join page (/consult/{id}?token=...): a static page; no install, no CDN. A wrong, expired or revoked link gets
a plain page saying so, never the room. The page's signalling goes through this server (/consult/{id}/signal, see
switchboard.consultations.relay): browsers never reach Janus's API."""

import asyncio
import contextlib
import html
import json
import logging
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from switchboard.api import errors
from switchboard.api.deps import VideoRooms, get_ctx, get_live_rooms, services
from switchboard.consultations import flows
from switchboard.consultations.models import (
    MAX_SDP,
    PAGE_REQUESTS,
    Hello,
    Join,
    PageRequest,
    Publish,
    Start,
    Subscribe,
    Unsubscribe,
)
from switchboard.consultations.relay import Relay
from switchboard.core.errors import Conflict, InvalidInput, SwitchboardError, Unauthorized, quoted

log = logging.getLogger(__name__)

router = APIRouter(prefix="/consult", include_in_schema=False)
HELLO_SECONDS = 10.0  # a socket that does not say who it is by then is closed
MAX_MESSAGE = MAX_SDP + 4096
ENGINE_GONE = "视频会商引擎连接已断开，请刷新页面重新加入"
_bearer = HTTPBearer(auto_error=False)
_STATIC = resources.files(__package__).joinpath("static")
_REFUSED = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>无法加入会商</title>
<style>body{{font-family:"Noto Sans CJK SC",sans-serif;background:#1b2330;color:#eee;display:flex;height:100vh;
align-items:center;justify-content:center;margin:0}}div{{background:#2a3445;padding:2em 3em;border-radius:8px}}
</style></head><body><div id="refused"><h1>无法加入会商</h1><p id="reason">{reason}</p>
<p>请联系值班室（应急指挥中心）重新获取会商链接。</p></div></body></html>"""


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in ("consult.js", "consult.css"):
        return Response(status_code=404)
    media = "text/javascript" if name.endswith(".js") else "text/css"
    return Response(_STATIC.joinpath(name).read_text("utf-8"), media_type=media + "; charset=utf-8")


@router.get("/{consultation_id}")
async def page(request: Request, consultation_id: str, token: Annotated[str, Query(max_length=2000)] = "") -> Response:
    try:
        if not token:
            raise Unauthorized("链接缺少会商令牌")
        await flows.invite_of(get_ctx(request), consultation_id, token)
    except SwitchboardError as exc:
        return HTMLResponse(_REFUSED.format(reason=html.escape(exc.message)), status_code=exc.status)
    return HTMLResponse(
        _STATIC.joinpath("consult.html").read_text("utf-8"),
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


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
    return await flows.join_details(get_ctx(request), live, consultation_id, credentials.credentials)


@router.websocket("/{consultation_id}/signal")
async def signal(websocket: WebSocket, consultation_id: str) -> None:
    """The page's signalling. First a hello with its join token (in the message, never in a logged URL), then join,
    publish, subscribe, start and unsubscribe, each answered {"id", "ok", ...}; room events are pushed as
    {"event": ...}. Closed with code 4000 + status and the reason in Chinese when refused or cut off."""
    await websocket.accept()  # then close with a reason: a browser cannot read a refused handshake's status
    try:
        live = get_live_rooms(websocket)
        hello = await asyncio.wait_for(_request(websocket), HELLO_SECONDS)
        if not isinstance(hello, Hello):
            raise Unauthorized("链接缺少会商令牌")
        ctx = services(websocket).ctx
        consultation, invite = await flows.invite_of(ctx, consultation_id, hello.token)
        relay = Relay(ctx, live, consultation, invite, hello.token)
        await relay.open()
    except SwitchboardError as exc:
        await _close(websocket, 4000 + exc.status, exc.message)
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
        await send({"id": hello.id, "ok": True})
        while True:
            raw = await websocket.receive_text()
            try:
                request = _parse(raw)
            except _Refused as refused:
                await send(_refusal(refused.request_id, refused.error))
                continue
            try:
                await send({"id": request.id, "ok": True} | await _answer(relay, request))
            except SwitchboardError as exc:
                await send(_refusal(request.id, exc))

    async def push_events() -> None:
        async for event in relay.events():
            await send(event)

    tasks = [asyncio.create_task(serve_requests()), asyncio.create_task(push_events())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done() and not task.cancelled() and (error := task.exception()):
                if not isinstance(error, WebSocketDisconnect):
                    log.warning("signalling of %s ended: %r", invite.site, error)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        live.connected.get(invite.id, set()).discard(relay)
        await relay.close()
        await _close(websocket, 4403 if relay.end_reason else 4503, relay.end_reason or ENGINE_GONE)


class _Refused(Exception):
    def __init__(self, request_id: int | None, error: SwitchboardError) -> None:
        super().__init__(error.message)
        self.request_id, self.error = request_id, error


def _refusal(request_id: int | None, error: SwitchboardError) -> dict[str, Any]:
    """The API's error body (code, Chinese message, field), answering request `request_id`."""
    return {"id": request_id, "ok": False} | errors.body(error.code, error.message, error.field)


async def _request(websocket: WebSocket) -> PageRequest:
    try:
        return _parse(await websocket.receive_text())
    except _Refused as refused:
        raise refused.error from None


def _parse(raw: str) -> PageRequest:
    """A page's request, checked: a clear error naming the field (with the request's id when it has one)."""
    if len(raw) > MAX_MESSAGE:
        raise _Refused(None, InvalidInput(f"消息过长（最多 {MAX_MESSAGE} 字符）"))
    try:
        data = json.loads(raw)
    except ValueError:
        raise _Refused(None, InvalidInput("消息不是有效的 JSON")) from None
    if not isinstance(data, dict):
        raise _Refused(None, InvalidInput("消息应为 JSON 对象"))
    request_id = data["id"] if isinstance(data.get("id"), int) else None
    model = PAGE_REQUESTS.get(str(data.get("op")))
    if model is None:
        raise _Refused(request_id, InvalidInput(f"op：不支持的操作 {quoted(str(data.get('op')))}", field="op"))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, field = errors.explain(exc.errors())
        raise _Refused(request_id, InvalidInput(message, field=field)) from None


async def _answer(relay: Relay, request: PageRequest) -> dict[str, Any]:
    match request:
        case Join():
            return await relay.join(request.pin)
        case Publish():
            return {"answer": await relay.publish(request.offer)}
        case Subscribe():
            return {"offer": await relay.subscribe(request.feed)}
        case Start():
            await relay.start(request.feed, request.answer)
            return {}
        case Unsubscribe():
            await relay.unsubscribe(request.feed)
            return {}
    raise Conflict("已连接，无需重复问候", field="op")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with `reason`, cut to the 123 bytes a close frame carries."""
    cut = reason.encode()[:123].decode(errors="ignore")
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code, cut)
