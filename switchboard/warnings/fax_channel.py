"""Warnings by fax: the `fax` channel hands each recipient's page to the fax service (sip/fax), which dials, sends
over G.711 or T.38 and retries on its own; the page's fate comes back as the delivery's receipt.

The page is the warning's fax rendering (title, level, areas, text, issuer) drawn under a band in the warning's
colour (switchboard.core.page), once per warning and off the event loop. A send is accepted once the fax job is
written (its id is the remote id); `fax.sent` and `fax.failed` of the jobs this channel made (actor `ACTOR`) report
delivered or failed with the fax service's own words, also after a restart (the outbox finds the row by remote id).
"""

import asyncio
import hashlib
from collections.abc import Callable

from broadcast.channel import NOT_STARTED, Message, ReceiptHandler, SendResult
from broadcast.models import COLOUR_NAMES
from broadcast.render import COLOUR_CSS
from sip.fax.service import FaxService, Recipient
from switchboard.core.context import Context
from switchboard.core.events import Event
from switchboard.core.page import text_page

ACTOR = "warnings"  # the fax jobs' creator: what the fax list shows, and how this channel knows its own jobs
NO_FAX_SERVICE = "传真服务未运行（电话引擎未启动）"
_PAGES = 16  # drawn pages kept (one per warning rendering)


class FaxChannel:
    name = "fax"
    receipts = True  # the fax service says how the call went, minutes later

    def __init__(self, ctx: Context, faxes: Callable[[], FaxService | None], *, rate_per_second: float = 2.0) -> None:
        self.ctx = ctx
        self._faxes = faxes  # the telephony's fax service, None while it is not running
        self.rate_per_second = rate_per_second
        self.concurrency = 4
        self._on_receipt: ReceiptHandler | None = None
        self._subscribed = False
        self._pages: dict[str, bytes] = {}

    async def start(self, on_receipt: ReceiptHandler) -> None:
        if not self._subscribed:  # the bus keeps its handlers: once, whatever stops and starts follow
            self.ctx.bus.subscribe(self._on_event)
            self._subscribed = True
        self._on_receipt = on_receipt

    async def stop(self) -> None:
        self._on_receipt = None

    def health(self) -> dict[str, str]:
        if self._on_receipt is None:
            return {"status": "down", "error": NOT_STARTED}
        if self._faxes() is None:
            return {"status": "down", "error": NO_FAX_SERVICE}
        return {"status": "ok"}

    async def send(self, message: Message) -> SendResult:
        faxes = self._faxes()
        if self._on_receipt is None or faxes is None:
            return SendResult(False, detail=NOT_STARTED if faxes else NO_FAX_SERVICE)
        page = await self._page(message)
        name = f"{message.subject or '预警'}.pdf".replace("/", "／")
        [fax] = await faxes.submit(ACTOR, page, [Recipient(message.recipient)], document_name=name)
        return SendResult(True, remote_id=fax.id, detail=f"传真任务 {fax.id}，{fax.pages_total} 页")

    async def _page(self, message: Message) -> bytes:
        key = hashlib.sha256(f"{message.colour}\n{message.subject}\n{message.text}".encode()).hexdigest()
        if key not in self._pages:
            title, *lines = message.text.splitlines() or [""]
            band = (COLOUR_CSS[message.colour], f"{COLOUR_NAMES[message.colour]}预警") if message.colour else None
            if len(self._pages) >= _PAGES:
                self._pages.clear()
            self._pages[key] = await asyncio.to_thread(text_page, title, lines, band=band)
        return self._pages[key]

    async def _on_event(self, event: Event) -> None:
        if event.type not in ("fax.sent", "fax.failed") or event.actor != ACTOR or self._on_receipt is None:
            return
        summary = str(event.data.get("summary") or "")
        await self._on_receipt(self.name, str(event.data["fax_id"]), event.type == "fax.sent", summary)
