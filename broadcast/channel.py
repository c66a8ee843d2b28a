"""The one interface every warning channel speaks (SMS, e-mail, Telegram, weather push, voice, fax).

Routing, rate limits, retries and idempotency live in the outbox, outside the channels (as Jasmin keeps its
connectors apart from routing): a channel only turns one rendered message for one recipient into one send,
and reports what the peer said.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Message:
    """What one recipient gets on one channel."""

    delivery_id: str  # idempotency key of the (warning, channel, recipient) row; peers that dedupe may use it
    recipient: str  # phone number, e-mail address, chat id, URL
    text: str  # the channel's rendering: SMS text, e-mail plain text, Telegram HTML, broadcast script
    subject: str = ""
    html: str | None = None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SendResult:
    accepted: bool
    remote_id: str | None = None  # SMSC message id, SMTP queue id, Telegram message id: receipts refer to it
    retry_after: float | None = None  # the peer asked us to slow down (ESME_RTHROTTLED, HTTP 429)
    permanent: bool = False  # retrying cannot help (bad address, rejected content)
    detail: str = ""


# A delivery receipt arriving later: (channel name, remote id, delivered?, detail).
ReceiptHandler = Callable[[str, str, bool, str], Awaitable[None]]


class Channel(Protocol):
    name: str
    rate_per_second: float  # the outbox never sends faster than this on the channel
    concurrency: int  # nor more sends in flight at once

    async def start(self, on_receipt: ReceiptHandler) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, message: Message) -> SendResult: ...
