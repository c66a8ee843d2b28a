"""The public feed (no token: weather services, media and the public poll it; it shows only what was issued):
GET /feeds/cap.atom with ETag, each alert's CAP XML, and its Mandarin audio bulletin."""

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import select

from broadcast import feed
from broadcast.capxml import to_xml
from broadcast.models import PublicWarning
from broadcast.workflow import alert_of
from switchboard.api.deps import Ctx
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.errors import NotFound
from switchboard.core.speech import synthesize

router = APIRouter(prefix="/feeds", tags=["feeds"])
CAP_XML = "application/cap+xml"


@router.get("/cap.atom", response_class=Response, responses={200: {"content": {"application/atom+xml": {}}}, 304: {}})
async def cap_feed(ctx: Ctx, request: Request) -> Response:
    now = utcnow()
    body = feed.atom(await feed.in_force(ctx, now), ctx.settings.server.link_base, now)
    tag = feed.etag(body)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if tag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/atom+xml; charset=utf-8", headers=headers)


@router.get("/cap/{identifier}.xml", response_class=Response, responses={200: {"content": {CAP_XML: {}}}})
async def cap_document(ctx: Ctx, identifier: str) -> Response:
    return Response(to_xml(alert_of(await _issued(ctx, identifier))), media_type=CAP_XML)


@router.get("/cap/{identifier}.wav", response_class=FileResponse, responses={200: {"content": {"audio/wav": {}}}})
async def bulletin(ctx: Ctx, identifier: str) -> FileResponse:
    """The broadcast script spoken in Mandarin (espeak-ng, 8 kHz), synthesised once per text."""
    script = feed.bulletin_script(await _issued(ctx, identifier))
    return FileResponse(await synthesize(ctx.settings.var_path, script), media_type="audio/wav")


async def _issued(ctx: Context, identifier: str) -> PublicWarning:
    # Once issued, a document stays retrievable, also after it was superseded or cancelled.
    query = select(PublicWarning).where(PublicWarning.identifier == identifier, PublicWarning.issued_at.is_not(None))
    async with ctx.db.reader() as session:
        warning = await session.scalar(query)
    if warning is None:
        raise NotFound(f"预警 {identifier} 不存在或尚未发布", field="identifier")
    return warning
