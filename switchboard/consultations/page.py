"""The join page (/consult/{id}?token=...): a static page with its own small Janus client; no install, no CDN.
A wrong, expired or revoked link gets a plain page saying so, never the room."""

import html
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from switchboard.api.deps import VideoRooms, get_ctx
from switchboard.consultations import flows
from switchboard.core.errors import SwitchboardError, Unauthorized

router = APIRouter(prefix="/consult", include_in_schema=False)
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
    """The page's ticket into the room: Janus URL, room, participant id, ACL token, site names."""
    if credentials is None:
        raise Unauthorized("链接缺少会商令牌")
    return await flows.join_details(get_ctx(request), live, consultation_id, credentials.credentials)
