"""E-mail channel: one rendered warning to one address over SMTP, with aiosmtplib.

The message is MIME built with `email.policy.default` (aiosmtplib writes it with CRLF line ends): the
Chinese subject goes as an RFC 2047 encoded word, the text and HTML bodies as UTF-8 `multipart/alternative`,
attachments (the CAP XML) base64 so they arrive byte-identical. The Message-ID is made from the delivery id, so
a copy re-sent after a crash (SMTP cannot make a send idempotent) carries the same Message-ID and mail stores
that dedupe on it keep one; the id also rides along as `X-Switchboard-Delivery`.

Connections: a small pool, at most `concurrency` open SMTP sessions reused across sends. A warning goes to
thousands of addresses at once; a fresh TCP + EHLO (+ STARTTLS + AUTH on a real relay) per mail costs several
round trips and relays rate-limit new connections harder than messages. A pooled session that the server has
since dropped is detected on use and replaced once, within the same send.

Errors never leave `send()`: SMTP 4xx and link failures answer `accepted=False` (retryable), 5xx answers
`permanent=True` (bad mailbox, rejected content).

Health: SMTP holds no lasting link, so `health()` tells what the last contact with the relay said
(`broadcast.channel.LastContact`): "down" after a connect, greeting, EHLO or AUTH failure or a dropped session,
"ok" again once the relay answers a send, whatever it answers about the one recipient.
"""

import asyncio
import hashlib
import logging
from email.message import EmailMessage
from email.policy import default as DEFAULT_POLICY
from email.utils import formatdate

import aiosmtplib

from broadcast.channel import NOT_STARTED, LastContact, Message, ReceiptHandler, SendResult

log = logging.getLogger(__name__)

# Link-level failures: the mail did not go, and another try may succeed.
_LINK_ERRORS = (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError)


def message_id(delivery_id: str, sender: str) -> str:
    """The same for every copy of one delivery; a hash keeps any id's characters out of the header."""
    digest = hashlib.sha256(delivery_id.encode()).hexdigest()[:32]
    return f"<{digest}@{sender.rpartition('@')[2] or 'switchboard.local'}>"


class EmailChannel:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool | None = None,  # None: upgrade if the server offers STARTTLS
        timeout: float = 30.0,
        rate_per_second: float = 20.0,
        concurrency: int = 4,
        name: str = "email",
    ) -> None:
        self.name = name
        self.rate_per_second = rate_per_second
        self.concurrency = concurrency
        self.receipts = False
        self._host, self._port, self._sender = host, port, sender
        self._username, self._password = username, password
        self._use_tls, self._start_tls, self._timeout = use_tls, start_tls, timeout
        self._idle: list[aiosmtplib.SMTP] = []  # open sessions waiting for the next send
        self._slots = asyncio.Semaphore(concurrency)
        self._started = False
        self.contact = LastContact()

    async def start(self, on_receipt: ReceiptHandler) -> None:
        self._started = True  # SMTP has no delivery receipts; sessions open lazily on the first send

    async def stop(self) -> None:
        self._started = False
        idle, self._idle = self._idle, []
        for client in idle:
            await _close(client)

    def health(self) -> dict[str, str]:
        return self.contact.health(self._started)

    async def send(self, message: Message) -> SendResult:
        if not self._started:
            return SendResult(accepted=False, detail=NOT_STARTED)
        try:
            mime = self.compose(message)
        except (ValueError, TypeError) as exc:  # e.g. a recipient with a line break in it
            return SendResult(accepted=False, permanent=True, detail=f"无法生成邮件：{exc}")
        async with self._slots:
            for attempt in (1, 2):
                try:
                    client = await self._checkout()
                except aiosmtplib.SMTPResponseException as exc:  # greeting, EHLO or AUTH refused
                    self.contact.failed(f"SMTP {exc.code} {exc.message}")
                    return _result_of(exc)
                except _LINK_ERRORS as exc:
                    self.contact.failed(detail := f"无法连接邮件服务器：{exc}")
                    return SendResult(accepted=False, detail=detail)
                try:
                    await client.send_message(mime, sender=self._sender, recipients=[message.recipient])
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    self.contact.reached()
                    self._checkin(client)
                    return _result_of(exc.recipients[0])
                except aiosmtplib.SMTPResponseException as exc:
                    self.contact.reached()
                    await _reset(client)
                    self._checkin(client)
                    return _result_of(exc)
                except _LINK_ERRORS as exc:
                    await _close(client)  # a pooled session the server dropped: one fresh try
                    if attempt == 2:
                        self.contact.failed(detail := f"邮件服务器连接中断：{exc}")
                        return SendResult(accepted=False, detail=detail)
                    continue
                except Exception as exc:  # never raise out of send()
                    log.exception("unexpected SMTP failure to %s", message.recipient)
                    await _close(client)
                    return SendResult(accepted=False, detail=f"意外错误：{exc!r}")
                self.contact.reached()
                self._checkin(client)
                return SendResult(accepted=True, remote_id=mime["Message-ID"])
        raise AssertionError("unreachable")

    def compose(self, message: Message) -> EmailMessage:
        mime = EmailMessage(policy=DEFAULT_POLICY)
        mime["From"] = self._sender
        mime["To"] = message.recipient
        mime["Subject"] = message.subject
        mime["Date"] = formatdate(localtime=True)
        mime["Message-ID"] = message_id(message.delivery_id, self._sender)
        mime["X-Switchboard-Delivery"] = message.delivery_id
        mime.set_content(message.text, subtype="plain", charset="utf-8")
        if message.html is not None:
            mime.add_alternative(message.html, subtype="html", charset="utf-8")
        for attachment in message.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            mime.add_attachment(
                attachment.content,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=attachment.filename,
            )
        return mime

    async def _checkout(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            use_tls=self._use_tls,
            start_tls=self._start_tls,
            timeout=self._timeout,
            username=self._username,
            password=self._password,
        )
        await client.connect()
        return client

    def _checkin(self, client: aiosmtplib.SMTP) -> None:
        if self._started and client.is_connected:
            self._idle.append(client)
        else:
            client.close()  # stopped meanwhile: drop the transport, no QUIT round trip


def _result_of(exc: aiosmtplib.SMTPResponseException) -> SendResult:
    detail = f"邮件服务器拒绝：SMTP {exc.code} {exc.message}"
    if 400 <= exc.code < 500:
        return SendResult(accepted=False, detail=detail)
    return SendResult(accepted=False, permanent=True, detail=detail)


async def _reset(client: aiosmtplib.SMTP) -> None:
    try:
        await client.rset()
    except Exception:  # the next checkout notices a dead session
        await _close(client)


async def _close(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except Exception:
        client.close()
