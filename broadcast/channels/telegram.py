"""Telegram channel: one rendered warning (Telegram HTML) to one chat, with python-telegram-bot's `Bot`.

The text goes as sendMessage with parse_mode HTML; each attachment (the CAP XML) follows as sendDocument in the
same chat. `remote_id` is `chat_id:message_id` of the text message. The Bot API has no delivery receipts.

Rate limits: the outbox paces the channel at `rate_per_second` (the Bot API allows about 30 messages a second
per bot, one a second per chat). A 429 answers `retry_after` as the API says, and holds the whole channel for
that long: every send meanwhile answers `retry_after` at once without calling the API, since the flood limit
is per bot, not per chat. A bad or blocked chat (400, 403) is permanent; network failures are retryable.

Health: the Bot API holds no lasting link, so `health()` tells what the last call said
(`broadcast.channel.LastContact`): "down" while the API is unreachable or refuses the token, "ok" once it
answers (getMe at start, then every send).
"""

import datetime as dt
import logging
import time
import warnings

from telegram import Bot, InputFile
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError

from broadcast.channel import NOT_STARTED, LastContact, Message, ReceiptHandler, SendResult

log = logging.getLogger(__name__)


class TelegramChannel:
    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.telegram.org/bot",
        base_file_url: str = "https://api.telegram.org/file/bot",
        rate_per_second: float = 25.0,
        concurrency: int = 8,
        name: str = "telegram",
    ) -> None:
        self.name = name
        self.rate_per_second = rate_per_second
        self.concurrency = concurrency
        self.receipts = False
        self._bot_args = {"token": token, "base_url": base_url, "base_file_url": base_file_url}
        self._bot: Bot | None = None
        self._ready = False  # getMe answered
        self._hold_until = 0.0
        self.username: str | None = None  # from getMe, once the token has been checked
        self.contact = LastContact()

    async def start(self, on_receipt: ReceiptHandler) -> None:
        if self._bot is not None:
            return
        self._bot = Bot(**self._bot_args)
        try:
            await self._ready_bot(self._bot)
        except TelegramError as exc:  # an unreachable API must not stop the outbox: sends will answer retry
            log.warning("Telegram getMe failed: %s", _reason(exc))
            self.contact.failed(f"getMe: {_reason(exc)}")

    async def stop(self) -> None:
        bot, self._bot, self._ready = self._bot, None, False
        if bot is not None:
            try:
                await bot.shutdown()
            except Exception:
                log.exception("Telegram bot shutdown failed")

    def health(self) -> dict[str, str]:
        return self.contact.health(self._bot is not None)

    async def send(self, message: Message) -> SendResult:
        bot = self._bot
        if bot is None:
            return SendResult(accepted=False, detail=NOT_STARTED)
        held = self._hold_until - time.monotonic()
        if held > 0:
            return SendResult(accepted=False, retry_after=held, detail="Telegram 限流，暂缓发送")
        chat_id = message.recipient
        try:
            if not self._ready:  # getMe failed at start
                await self._ready_bot(bot)
            sent = await bot.send_message(chat_id=chat_id, text=message.text, parse_mode=ParseMode.HTML)
            for attachment in message.attachments:
                await bot.send_document(
                    chat_id=chat_id,
                    document=InputFile(attachment.content, filename=attachment.filename),
                    disable_content_type_detection=True,
                )
        except RetryAfter as exc:
            with warnings.catch_warnings():  # PTB 22 warns that retry_after becomes a timedelta
                warnings.simplefilter("ignore")
                seconds = _seconds(exc.retry_after)
            self._hold_until = max(self._hold_until, time.monotonic() + seconds)
            self.contact.reached()
            return SendResult(
                accepted=False, retry_after=seconds, detail=f"Telegram 要求稍后重试（429：{exc.message}）"
            )
        except InvalidToken as exc:  # every send will fail alike: the channel is down, not the one chat
            self.contact.failed(_reason(exc))
            return SendResult(accepted=False, permanent=True, detail=_reason(exc))
        except (BadRequest, Forbidden, ChatMigrated) as exc:
            self.contact.reached()
            return SendResult(accepted=False, permanent=True, detail=_reason(exc))
        except NetworkError as exc:  # includes TimedOut; BadRequest is caught above
            self.contact.failed(_reason(exc))
            return SendResult(accepted=False, detail=_reason(exc))
        except Exception as exc:  # never raise out of send()
            log.exception("Telegram send to %s failed unexpectedly", chat_id)
            return SendResult(accepted=False, detail=f"意外错误：{exc!r}")
        self.contact.reached()
        return SendResult(accepted=True, remote_id=f"{sent.chat.id}:{sent.message_id}")

    async def _ready_bot(self, bot: Bot) -> None:
        await bot.initialize()  # getMe: checks the token
        self.username = bot.username
        self._ready = True
        self.contact.reached()


def _reason(exc: TelegramError) -> str:
    """What the error says, fit for the delivery row and /healthz: PTB puts the token itself into InvalidToken."""
    if isinstance(exc, InvalidToken):
        return "机器人令牌无效（InvalidToken）：Bot API 拒绝了该令牌"
    return f"{type(exc).__name__}: {exc.message}"


def _seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
