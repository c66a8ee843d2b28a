"""What the SMS channels share above the wire: SMPP (`sms`), CMPP for China Mobile, SMGP for China Telecom, SGIP
for China Unicom.

Sending: the text is split by `broadcast.segments` (GSM-7 160/153 or UCS-2 70/67; the Chinese carriers' gateways
are sent UCS-2 only, `encoding`). One part goes as is; several go with the protocol's UDHI flag and a 3GPP
concatenation header (8-bit reference, total, index) at the start of the content, each part one submit with a
report requested. Parts of one message go in order, one at a time; different messages share the session's
window. The `remote_id` of a long message is its LAST part's id; the receipt is reported once, under that id,
when every part has a final report (delivered only if all were), or as soon as one part fails.

Flow limit: at most `rate_per_second` submits go out in any one second, as the carriers count them (a two-part
message is two; `broadcast.pace.FlowLimit`), so the outbox's own pace per message is only an upper bound for SMS.

Back-off: a "busy" answer (ESME_RTHROTTLED, CMPP Result 8, SMGP Status 1, SGIP Result 11) on a message's first part
answers `retry_after` and holds the whole channel for that long (doubling while the gateway keeps refusing, reset by
the next success), so the outbox does not hammer it. On a later part the channel waits and resubmits that part
itself, since re-sending the whole message would duplicate the parts already accepted; likewise across a reconnect,
within `part_deadline`.

A protocol's channel builds its `sessions` (`broadcast.gateway_session`, from `link_options`), which start, stop
and report health here, supplies `_submit` (one part onto its session), and calls `_report_part` for each final
delivery report and `_mobile_originated` for each MO message.
"""

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypedDict

from broadcast.channel import NOT_STARTED, Message, ReceiptHandler, SendResult
from broadcast.gateway_session import GatewaySession, LinkOptions
from broadcast.pace import FlowLimit
from broadcast.segments import Encoding, segment
from broadcast.smpp.pdu import concatenation_udh, gsm_encode

log = logging.getLogger(__name__)

_MSISDN = re.compile(r"\+?[0-9]{3,20}")
_MAX_TRACKED_PARTS = 200_000  # reports that never come must not grow memory without bound

MobileOriginatedHandler = Callable[[str, str], Awaitable[None]]  # (source number, text)


class GatewayOptions(TypedDict, total=False):
    """What every gateway channel takes besides its protocol's own settings, passed through to `GatewayChannel`."""

    rate_per_second: float
    concurrency: int
    window: int  # submits in flight at once on the link
    bind_wait: float  # how long a send waits for a (re)login before answering retry
    part_deadline: float  # how long the rest of a started long message may take
    throttle_backoff: float
    throttle_backoff_max: float
    response_timeout: float
    reconnect_max: float  # the back-off cap between login attempts
    on_mobile_originated: MobileOriginatedHandler | None


@dataclass(frozen=True)
class Part:
    recipient: str  # as the message gives it: "+8613...", "8613...", "12379"
    encoding: Encoding
    content: bytes  # unpacked GSM-7 or UCS-2, after the UDH when udhi
    udhi: bool
    total: int
    index: int  # 1-based

    @property
    def number(self) -> str:
        """Digits only, as the gateways take them (+86 becomes 86)."""
        return self.recipient.removeprefix("+")


@dataclass(frozen=True)
class Answer:
    """The gateway's answer to one part: an id when accepted; otherwise why not."""

    remote_id: str | None
    busy: bool = False
    permanent: bool = False
    detail: str = ""


@dataclass(frozen=True)
class PartReport:
    delivered: bool
    detail: str


@dataclass
class _Concatenated:
    total: int
    ids: list[str] = field(default_factory=list)
    reports: dict[str, PartReport] = field(default_factory=dict)
    reported: bool = False


class GatewayChannel:
    receipts = True
    encoding: Encoding | None = "UCS-2"  # None: GSM-7 where the text allows (SMPP)
    rate_per_second = 50.0  # defaults a protocol may change
    concurrency = 16
    window = 16
    sessions: list[GatewaySession]  # the protocol's links, the one carrying the submits first

    def __init__(
        self,
        *,
        name: str,
        rate_per_second: float | None = None,
        concurrency: int | None = None,
        window: int | None = None,
        bind_wait: float = 5.0,
        part_deadline: float = 60.0,
        throttle_backoff: float = 1.0,
        throttle_backoff_max: float = 30.0,
        response_timeout: float = 10.0,
        reconnect_max: float = 5.0,
        on_mobile_originated: MobileOriginatedHandler | None = None,
    ) -> None:
        self.name = name
        self.rate_per_second = self.rate_per_second if rate_per_second is None else rate_per_second
        self.concurrency = self.concurrency if concurrency is None else concurrency
        # what the protocol's sessions are built with
        self.link_options: LinkOptions = {
            "window": self.window if window is None else window,
            "response_timeout": response_timeout,
            "backoff": (0.2, reconnect_max),
        }
        self._bind_wait = bind_wait
        self._part_deadline = part_deadline
        self._throttle = (throttle_backoff, throttle_backoff_max)
        self._throttled_times = 0
        self._hold_until = 0.0  # monotonic time before which the gateway asked us not to submit
        self._references = itertools.cycle(range(1, 256))
        self._parts: OrderedDict[str, _Concatenated] = OrderedDict()  # part id -> its message
        self._on_receipt: ReceiptHandler | None = None
        self._on_mobile_originated = on_mobile_originated
        self._tasks: set[asyncio.Task[None]] = set()
        self._flow = FlowLimit()  # every part: a carrier's flow limit counts submits, not messages

    async def _submit(self, part: Part, *, wait: float, accepted: Callable[[str], None]) -> Answer:
        """Submit one part; `accepted(id)` must run before the link reads the next PDU (a report may follow).
        Raise ConnectionError (the sessions' LinkDown) or TimeoutError when no session could carry it."""
        raise NotImplementedError

    async def start(self, on_receipt: ReceiptHandler) -> None:
        self._on_receipt = on_receipt
        for session in self.sessions:
            session.start()

    async def _stop_session(self) -> None:
        for session in self.sessions:
            await session.stop()

    def health(self) -> dict[str, str]:
        """The links': ok while every one is logged in, else the first that is not (a refused login names the
        gateway's code in Chinese)."""
        healths = [session.health() for session in self.sessions]
        return next((h for h in healths if h["status"] != "ok"), healths[0])

    async def stop(self) -> None:
        await self._stop_session()
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._on_receipt = None

    async def send(self, message: Message) -> SendResult:
        try:
            return await self._send(message)
        except Exception as exc:  # never raise out of send()
            log.exception("%s send to %s failed unexpectedly", self.name, message.recipient)
            return SendResult(accepted=False, detail=f"意外错误：{exc!r}")

    async def _send(self, message: Message) -> SendResult:
        if self._on_receipt is None:
            return SendResult(accepted=False, detail=NOT_STARTED)
        if not _MSISDN.fullmatch(message.recipient):
            return SendResult(accepted=False, permanent=True, detail=f"不是手机号码：{message.recipient!r}")
        held = self._hold_until - time.monotonic()
        if held > 0:
            return SendResult(accepted=False, retry_after=held, detail="短信网关限流，暂缓发送")
        segments = segment(message.text, self.encoding)
        if not segments.parts:
            return SendResult(accepted=False, permanent=True, detail="短信内容为空")
        total, reference = segments.count, next(self._references)
        concatenated = _Concatenated(total)
        deadline = time.monotonic() + self._part_deadline
        for index, text in enumerate(segments.parts, start=1):
            payload = text.encode("utf-16-be") if segments.encoding == "UCS-2" else gsm_encode(text)
            if total > 1:
                payload = concatenation_udh(reference, total, index) + payload
            part = Part(message.recipient, segments.encoding, payload, total > 1, total, index)
            result = await self._submit_part(concatenated, part, deadline)
            if result is not None:  # the message stops here
                self._forget(concatenated)
                if index > 1:
                    detail = f"{result.detail}（共 {total} 段，已接受 {index - 1} 段）"
                    result = SendResult(False, None, result.retry_after, result.permanent, detail)
                return result
        self._report_if_complete(concatenated)
        ids = concatenated.ids
        return SendResult(accepted=True, remote_id=ids[-1], detail=f"共 {total} 段：{' '.join(ids)}")

    async def _submit_part(self, concatenated: _Concatenated, part: Part, deadline: float) -> SendResult | None:
        """None once the part is accepted; else what send() answers. Parts after the first are retried here."""
        first = part.index == 1

        def accepted(remote_id: str) -> None:
            concatenated.ids.append(remote_id)
            self._parts[remote_id] = concatenated
            while len(self._parts) > _MAX_TRACKED_PARTS:
                self._parts.popitem(last=False)

        while True:
            wait = self._bind_wait if first else max(0.0, deadline - time.monotonic())
            await self._flow.wait(self.rate_per_second)
            try:
                answer = await self._submit(part, wait=wait, accepted=accepted)
            except (ConnectionError, TimeoutError) as exc:
                if first or time.monotonic() >= deadline:
                    detail = f"短信网关连接中断：{exc or type(exc).__name__}"
                    return SendResult(accepted=False, retry_after=self._bind_wait, detail=detail)
                continue
            if answer.remote_id is not None:
                self._throttled_times = 0
                return None
            if answer.busy:
                backoff = self._backoff()
                if first or time.monotonic() + backoff > deadline:
                    return SendResult(accepted=False, retry_after=backoff, detail=f"短信网关繁忙：{answer.detail}")
                await asyncio.sleep(backoff)
                continue
            return SendResult(accepted=False, permanent=answer.permanent, detail=f"短信网关拒绝：{answer.detail}")

    def _backoff(self) -> float:
        initial, ceiling = self._throttle
        backoff = min(initial * 2**self._throttled_times, ceiling)
        self._throttled_times += 1
        self._hold_until = max(self._hold_until, time.monotonic() + backoff)
        return backoff

    # what comes back

    def _report_part(self, remote_id: str, report: PartReport) -> None:
        """A final status report for one part."""
        concatenated = self._parts.get(remote_id)
        if concatenated is None:  # not sent by this process (e.g. before a restart): report it as it is
            self._report(remote_id, report)
            return
        concatenated.reports[remote_id] = report
        self._report_if_complete(concatenated)

    def _report_if_complete(self, concatenated: _Concatenated) -> None:
        if concatenated.reported or len(concatenated.ids) < concatenated.total:
            return
        failed = [r for r in concatenated.reports.values() if not r.delivered]
        if failed:
            report = failed[0]
        elif len(concatenated.reports) == concatenated.total:
            report = concatenated.reports[concatenated.ids[-1]]
        else:
            return
        concatenated.reported = True
        self._forget(concatenated)
        self._report(concatenated.ids[-1], report)

    def _report(self, remote_id: str, report: PartReport) -> None:
        if self._on_receipt is not None:
            self._spawn(self._on_receipt(self.name, remote_id, report.delivered, report.detail))

    def _mobile_originated(self, source: str, text: str) -> None:
        if self._on_mobile_originated is None:
            log.info("%s: mobile-originated message from %s ignored", self.name, source)
            return
        self._spawn(self._on_mobile_originated(source, text))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: handler failed", self.name, exc_info=task.exception())

    def _forget(self, concatenated: _Concatenated) -> None:
        for remote_id in concatenated.ids:
            self._parts.pop(remote_id, None)


def report_detail(delivered: bool, stat: str, err: str = "") -> str:
    """ "回执：未送达（状态 UNDELIV，错误码 001）", as the delivery row shows it; CMPP's reports have no error code."""
    verdict = "已送达" if delivered else "未送达"
    code = f"，错误码 {err}" if err else ""
    return f"回执：{verdict}（状态 {stat}{code}）"
