"""Voice: a warning read out over the phone and confirmed with a key.

One call per recipient through the dispatch fallback loop (the recipient's numbers in priority order, tried by
Asterisk's dialplan); whoever answers hears the message, an uploaded recording attached to it (audio/*) or else
espeak-ng's Mandarin of the channel's text (either made telephone audio once, cached by content hash, in a
subprocess), then "收到请按1，重听请按2". The channel places calls and reads their outcome through `Dial`, which the
wiring builds on sip's call service: broadcast imports no telephony.

Why the outcome comes as a receipt: a call lasts minutes (rings over several numbers, plays, rounds), and the outbox
gives a send half a lease. send() takes a line and starts the call; the receipt says how it ended: 1 pressed ->
delivered (which number, when), answered without 1 -> unconfirmed, nobody answering in any round -> failed, saying
why. At most `[voice] lines` calls are up at once, counted from the send to the last round's end; with every line
busy, send() asks the outbox to come back later (retry_after), which costs the row no attempt. A call still going
when the channel stops is not followed further: its row stays sent and the receipt sweep makes it unconfirmed. A
row withdrawn (its notice's recipient confirmed on another channel) gets no further round and no receipt, and the
round under way is hung up: a person who answered the SMS is not left with a phone ringing for half a minute.
Withdrawn by another process (the row cancelled in the database, this process not told), a row gets no further
round either: before each round after the first the channel reads the row again (`wanted`, the outbox's).
"""

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from switchboard.core import speech
from switchboard.core.background import Background
from switchboard.core.config import VoiceSettings
from switchboard.core.errors import InvalidInput, SwitchboardError

from ..channel import NOT_STARTED, Message, ReceiptHandler, SendResult
from ..values import BEIJING

NAME = "voice"
SEPARATOR = ","  # a recipient is the person's numbers in the order to call them: "8002,13912345678"
LINE_WAIT_SECONDS = 2.0  # every line busy: the outbox offers the row again this much later
_NUMBER = re.compile(r"\+?[0-9]{1,20}")


@dataclass(frozen=True)
class Answer:
    """How one round over a recipient's numbers ended."""

    number: str | None  # the number that answered; None: nobody did
    confirmed_at: datetime | None  # when 1 was pressed
    plays: int  # how often the message was played
    failure: str = ""  # nobody answered: each number's result, in Chinese ("8002 无法接通；8004 占线")


# (numbers in priority order, the message's audio, the incident to file the call under) -> the round's outcome.
Dial = Callable[[list[str], Path, str | None], Awaitable[Answer]]
# delivery id -> whether its row still wants a call (not withdrawn): read from the database by the outbox
Wanted = Callable[[str], Awaitable[bool]]


def recipient(numbers: list[str]) -> str:
    """A person's delivery address on this channel: their numbers, in the order to call them."""
    return SEPARATOR.join(numbers)


class VoiceChannel:
    name = NAME
    rate_per_second = 5.0  # originating is cheap for Asterisk: the lines are the limit
    receipts = True

    def __init__(
        self, settings: VoiceSettings, var_dir: Path, dial: Dial, health: Callable[[], dict[str, str]]
    ) -> None:
        self.settings, self.var_dir, self._dial, self._health = settings, var_dir, dial, health
        self.concurrency = settings.lines
        self._lines = asyncio.Semaphore(settings.lines)
        self._calls = Background()
        self._on_receipt: ReceiptHandler | None = None
        self._withdrawn: set[str] = set()
        self._rounds_under_way: dict[str, asyncio.Task[Answer]] = {}  # by delivery id: what withdraw hangs up
        self.wanted: Wanted | None = None  # set by the outbox that drives the channel

    async def start(self, on_receipt: ReceiptHandler) -> None:
        self._on_receipt = on_receipt

    async def stop(self) -> None:
        self._on_receipt = None
        await self._calls.cancel()

    def withdraw(self, delivery_id: str) -> None:
        """No more rounds for this delivery (the recipient confirmed elsewhere), the one under way hung up, and no
        receipt."""
        self._withdrawn.add(delivery_id)
        if (round_ := self._rounds_under_way.get(delivery_id)) is not None:
            round_.cancel()

    def health(self) -> dict[str, str]:
        return self._health() if self._on_receipt is not None else {"status": "down", "error": NOT_STARTED}

    async def send(self, message: Message) -> SendResult:
        if self._on_receipt is None:
            return SendResult(False, detail=NOT_STARTED)
        numbers = message.recipient.split(SEPARATOR)
        if not all(_NUMBER.fullmatch(n) for n in numbers):
            return SendResult(False, permanent=True, detail=f"不是电话号码：{message.recipient[:40]!r}")
        if self._lines.locked():
            return SendResult(False, retry_after=LINE_WAIT_SECONDS, detail="语音线路全忙，稍后拨打")
        try:
            audio = await self._audio(message)
        except SwitchboardError as exc:
            return SendResult(False, permanent=isinstance(exc, InvalidInput), detail=f"无法生成语音：{exc}")
        if self._lines.locked():  # taken while the speech was made
            return SendResult(False, retry_after=LINE_WAIT_SECONDS, detail="语音线路全忙，稍后拨打")
        await self._lines.acquire()  # free: returns at once, so the line cannot be taken between check and take
        self._calls.spawn(self._rounds(message, numbers, audio), name=f"voice-{message.delivery_id}")
        return SendResult(True, remote_id=message.delivery_id)

    async def _audio(self, message: Message) -> Path:
        """What is played: the recording attached to the message, else the speech of its text."""
        recording = next((a for a in message.attachments if a.content_type.startswith("audio/")), None)
        if recording is not None:
            return await speech.recorded(self.var_dir, recording.content)
        return await speech.synthesize(self.var_dir, message.text)

    async def _rounds(self, message: Message, numbers: list[str], audio: Path) -> None:
        """Round after round over the numbers until somebody answers or the rounds are used up, each round on a
        line (the first one taken by send), none held during the pause between rounds; then the receipt."""
        rounds, held = self.settings.rounds, True
        try:
            for round_ in range(1, rounds + 1):
                if not held:
                    await self._lines.acquire()
                    held = True
                dialled = self._rounds_under_way[message.delivery_id] = asyncio.ensure_future(
                    self._dial(numbers, audio, message.incident_id)
                )
                try:
                    answer = await dialled
                except asyncio.CancelledError:
                    if not dialled.cancelled() or message.delivery_id not in self._withdrawn:
                        raise  # the channel stops, not a withdrawal
                    answer = Answer(None, None, 0, "withdrawn")
                except Exception as exc:  # noqa: BLE001 - a round not placed (the engine down, say) reached nobody
                    answer = Answer(None, None, 0, str(exc) or type(exc).__name__)
                finally:
                    self._rounds_under_way.pop(message.delivery_id, None)
                self._lines.release()
                held = False
                if answer.number is not None or round_ == rounds or message.delivery_id in self._withdrawn:
                    break
                await asyncio.sleep(self.settings.retry_seconds)
                if message.delivery_id in self._withdrawn or not await self._wanted(message.delivery_id):
                    break
        finally:
            if held:
                self._lines.release()
        if message.delivery_id in self._withdrawn:
            self._withdrawn.discard(message.delivery_id)
            return
        await self._report(message.delivery_id, answer, rounds)

    async def _wanted(self, delivery_id: str) -> bool:
        """Whether the row still wants the next round; withdrawn elsewhere, it is treated as withdrawn here."""
        try:
            if self.wanted is None or await self.wanted(delivery_id):
                return True
        except Exception:  # noqa: BLE001 - the database unreachable: the round is placed, as without the check
            return True
        self._withdrawn.add(delivery_id)
        return False

    async def _report(self, delivery_id: str, answer: Answer, rounds: int) -> None:
        if self._on_receipt is None:
            return
        if answer.confirmed_at is not None:
            when = answer.confirmed_at.astimezone(BEIJING)
            detail = f"已确认：按1（号码 {answer.number}，{when:%H:%M:%S}，播放 {answer.plays} 遍）"
            await self._on_receipt(NAME, delivery_id, True, detail, via=answer.number or "", at=answer.confirmed_at)
        elif answer.number is not None:  # no plays counted: the outcome was lost (the AMI link down at the hang-up)
            heard = f"播放 {answer.plays} 遍未按1" if answer.plays else "未得知按键结果"
            await self._on_receipt(
                NAME, delivery_id, None, f"未确认：号码 {answer.number} 已接听，{heard}", via=answer.number
            )
        else:
            await self._on_receipt(NAME, delivery_id, False, f"呼叫 {rounds} 轮均未接通：{answer.failure}")
