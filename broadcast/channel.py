"""The one interface every warning channel speaks (SMS, e-mail, Telegram, weather push, voice, fax).

Routing, rate limits, retries and idempotency live in the outbox, outside the channels (as Jasmin keeps its
connectors apart from routing): a channel only turns one rendered message for one recipient into one send,
reports what the peer said, and says how its peer is (`health`).
"""

from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

NOT_STARTED = "渠道未启动"


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
    colour: str = ""  # a warning's level (blue, yellow, orange, red): the fax page's header band is drawn in it
    incident_id: str | None = None  # the warning's incident: what a channel files under it (a voice call) goes there


@dataclass(frozen=True)
class SendResult:
    accepted: bool
    remote_id: str | None = None  # SMSC message id, SMTP queue id, Telegram message id: receipts refer to it
    retry_after: float | None = None  # the peer asked us to slow down (ESME_RTHROTTLED, HTTP 429)
    permanent: bool = False  # retrying cannot help (bad address, rejected content)
    detail: str = ""
    via: str = ""  # the gateway that carried it, where a channel routes over several (SMS by carrier)


class ReceiptHandler(Protocol):
    """A delivery receipt arriving later: (channel name, remote id, delivered?, detail). delivered None: the
    recipient was reached and did not confirm (a voice call answered, no key pressed). The detail is kept on the
    row; `via` is the address that reached the recipient where there were several (the number that answered a
    voice call) and `at` when they were reached (the key pressed), both kept on the row too."""

    def __call__(
        self,
        channel: str,
        remote_id: str,
        delivered: bool | None,
        detail: str,
        *,
        via: str = "",
        at: datetime | None = None,
    ) -> Awaitable[None]: ...


class Channel(Protocol):
    name: str
    rate_per_second: float  # the outbox never sends faster than this on the channel
    concurrency: int  # nor more sends in flight at once
    receipts: bool  # the peer reports delivery later (SMS): rows without a report in time become unconfirmed

    async def start(self, on_receipt: ReceiptHandler) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, message: Message) -> SendResult: ...

    def health(self) -> dict[str, str]:
        """For /healthz, without I/O: {"status": "ok" | "down", "link": state (channels that hold one),
        "error": why not ok, "checked_at": last contact (channels that hold no link)}."""
        ...


class LastContact:
    """The health of a peer a channel holds no link to (SMTP, the Bot API, the weather service): what the last
    contact with it said. Health is not probed: /healthz is polled often, and opening an SMTP session (TCP,
    EHLO, STARTTLS, AUTH) per poll would load the relay, trip its connection limits and make the poll as slow
    as the relay's timeout. Sends report here, so a relay found dead stays "down" until a send reaches it."""

    def __init__(self) -> None:
        self.error = ""
        self.at: datetime | None = None

    def reached(self) -> None:
        """The peer answered, whatever it said about the one message."""
        self.error, self.at = "", datetime.now(UTC)

    def failed(self, error: str) -> None:
        """The peer could not be reached, or refused us as a whole (bad credentials, a revoked token)."""
        self.error, self.at = error, datetime.now(UTC)

    def health(self, started: bool) -> dict[str, str]:
        if not started:
            return {"status": "down", "error": NOT_STARTED}
        report = {"status": "down" if self.error else "ok"}
        if self.at is not None:
            report["checked_at"] = self.at.isoformat(timespec="seconds")
        if self.error:
            report["error"] = self.error
        return report
