"""The page a signed confirmation link opens (no sign-in: the signature is the credential). GET shows the notice
and a button; only the button's POST confirms, so a mail scanner fetching the link confirms nothing. A link whose
signature does not hold, or which has expired, gets a page saying so."""

import html
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from broadcast.models import Delivery
from switchboard.api.deps import Ctx, Outboxes
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.errors import SwitchboardError
from switchboard.notices import flows, links
from switchboard.notices.models import Notice, NoticeRecipient, RecipientState

router = APIRouter(prefix=links.PATH.rstrip("/"), include_in_schema=False)
Token = Annotated[str, Path(max_length=200)]
_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>通知确认</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 2em auto; padding: 0 1em">
{body}
</body></html>"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(body=body), status_code=status)


def _refused(exc: SwitchboardError) -> HTMLResponse:
    return _page(f"<h1>无法确认</h1><p>{html.escape(exc.message)}</p>", exc.status)


async def _found(ctx: Context, token: str) -> tuple[Delivery, NoticeRecipient, Notice]:
    signed = links.verified(ctx.settings, token)
    async with ctx.db.reader() as session:
        delivery = await session.get(Delivery, signed.delivery_id)
        row = await session.get(NoticeRecipient, delivery.notice_recipient_id or "") if delivery else None
        notice = await session.get(Notice, row.notice_id) if row else None
    if delivery is None or row is None or notice is None:
        raise SwitchboardError("该通知已不存在")
    return delivery, row, notice


@router.get("/{token}", response_class=HTMLResponse)
async def show(ctx: Ctx, token: Token) -> HTMLResponse:
    try:
        _, row, notice = await _found(ctx, token)
    except SwitchboardError as exc:
        return _refused(exc)
    done = (
        "<p>您已确认收到此通知，无需再次确认。</p>"
        if row.state == RecipientState.confirmed
        else (
            f'<form method="post" action="{links.PATH}{html.escape(token)}">'
            '<button type="submit" style="font-size: 1.3em; padding: .5em 2em">确认收到</button></form>'
        )
    )
    text = "".join(f"<p>{html.escape(line)}</p>" for line in notice.text.splitlines())
    return _page(f"<h1>{html.escape(notice.subject)}</h1><p>致：{html.escape(row.name)}</p>{text}{done}")


@router.post("/{token}", response_class=HTMLResponse)
async def confirm(ctx: Ctx, outbox: Outboxes, token: Token) -> HTMLResponse:
    try:
        delivery, row, notice = await _found(ctx, token)
    except SwitchboardError as exc:
        return _refused(exc)
    await flows.confirm(
        ctx,
        outbox,
        row.id,
        channel=delivery.channel,
        address=delivery.recipient,
        at=utcnow(),
        delivery_id=delivery.id,
        how="确认链接",
    )
    return _page(f"<h1>已确认</h1><p>{html.escape(row.name)}：已确认收到{html.escape(flows.title(notice))}，谢谢。</p>")
