"""SMS channel over SMPP 3.4.

Client: our own asyncio transceiver (`broadcast.smpp.session`) on smpplib's PDU codec (`broadcast.smpp.pdu`).
Why not the alternatives: smpplib's own client is blocking (one socket read in a thread, a thread-unsafe
sequence counter), so windowing means sharing one socket between threads and marshalling every answer back to
the loop; Twisted's `smpp.twisted3` works but needs the asyncio reactor installed process-wide before anything
imports `twisted.internet.reactor`, pins an old Twisted and pulls pyOpenSSL, which is a lot of global state for
a control plane that also runs FastAPI, SQLAlchemy and test loops of its own. The session itself is small
(bind, window matched by sequence_number, enquire_link, reconnect) and keeps framing apart from policy; the PDU
bytes come from smpplib's long-used codec, and the test SMSC is a different implementation (smpp34, Rust).

Sending: the text is split by `broadcast.segments` (GSM-7 160/153, UCS-2 70/67). One part goes as is; several
go as `esm_class` UDHI with a 3GPP concatenation header (8-bit reference, total, index), each part a submit_sm
with `registered_delivery=1`. Parts of one message are submitted in order, one at a time; different messages
share the window. The `remote_id` of a concatenated message is the message id of its LAST part; the receipt is
reported once, under that id, when every part has a final receipt (delivered only if all parts were), or as
soon as one part fails.

Back-off: ESME_RTHROTTLED (or RMSGQFUL) on a message's first part answers `retry_after` and holds the whole
channel for that long (doubling while the SMSC keeps refusing, reset by the next success), so the outbox does
not hammer it. On a later part the channel waits and resubmits that part itself, since re-sending the whole
message would duplicate the parts already accepted; likewise across a reconnect, within `part_deadline`.
"""

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from broadcast.channel import NOT_STARTED, Message, ReceiptHandler, SendResult
from broadcast.segments import segment
from broadcast.smpp import pdu
from broadcast.smpp.session import LinkDown, Response, Transceiver

log = logging.getLogger(__name__)

_MSISDN = re.compile(r"\+?[0-9]{3,20}")
_MAX_TRACKED_PARTS = 200_000  # receipts that never come must not grow memory without bound


@dataclass
class _Concatenated:
    """The parts of one message accepted so far, and their receipts."""

    total: int
    ids: list[str] = field(default_factory=list)
    receipts: dict[str, pdu.DeliveryReceipt] = field(default_factory=dict)
    reported: bool = False


class SmsChannel:
    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        source_addr: str,
        system_type: str = "",
        source_addr_ton: int | None = None,  # None: what source_addr looks like (see source_numbering)
        source_addr_npi: int | None = None,
        window: int = 10,
        enquire_link_interval: float = 30.0,
        response_timeout: float = 10.0,
        rate_per_second: float = 100.0,
        concurrency: int = 10,
        bind_wait: float = 5.0,  # how long a send waits for a (re)bind before answering retry
        part_deadline: float = 60.0,  # how long the rest of a started concatenated message may take
        throttle_backoff: float = 1.0,
        throttle_backoff_max: float = 30.0,
        reconnect_max: float = 5.0,  # the back-off cap between bind attempts
        name: str = "sms",
    ) -> None:
        self.name = name
        self.rate_per_second = rate_per_second
        self.concurrency = concurrency
        self.receipts = True
        ton, npi = source_numbering(source_addr)
        self._source = {
            "source_addr": source_addr.removeprefix("+"),
            "source_addr_ton": ton if source_addr_ton is None else source_addr_ton,
            "source_addr_npi": npi if source_addr_npi is None else source_addr_npi,
        }
        self._bind_wait = bind_wait
        self._part_deadline = part_deadline
        self._throttle = (throttle_backoff, throttle_backoff_max)
        self._throttled_times = 0
        self._hold_until = 0.0  # monotonic time before which the SMSC asked us not to submit
        self._references = itertools.cycle(range(1, 256))
        self._parts: OrderedDict[str, _Concatenated] = OrderedDict()  # part message id -> its message
        self._on_receipt: ReceiptHandler | None = None
        self._receipt_tasks: set[asyncio.Task[None]] = set()
        self.transceiver = Transceiver(
            host,
            port,
            system_id,
            password,
            system_type=system_type,
            window=window,
            enquire_link_interval=enquire_link_interval,
            response_timeout=response_timeout,
            backoff=(0.2, reconnect_max),
            on_deliver_sm=self._deliver_sm,
        )

    async def start(self, on_receipt: ReceiptHandler) -> None:
        self._on_receipt = on_receipt
        self.transceiver.start()

    async def stop(self) -> None:
        await self.transceiver.stop()
        tasks, self._receipt_tasks = self._receipt_tasks, set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._on_receipt = None

    def health(self) -> dict[str, str]:
        """The SMPP link's: ok while bound."""
        return self.transceiver.health()

    async def send(self, message: Message) -> SendResult:
        try:
            return await self._send(message)
        except Exception as exc:  # never raise out of send()
            log.exception("SMS send to %s failed unexpectedly", message.recipient)
            return SendResult(accepted=False, detail=f"意外错误：{exc!r}")

    async def _send(self, message: Message) -> SendResult:
        if self._on_receipt is None:
            return SendResult(accepted=False, detail=NOT_STARTED)
        if not _MSISDN.fullmatch(message.recipient):
            return SendResult(accepted=False, permanent=True, detail=f"不是手机号码：{message.recipient!r}")
        held = self._hold_until - time.monotonic()
        if held > 0:
            return SendResult(accepted=False, retry_after=held, detail="短信网关限流，暂缓发送")
        segments = segment(message.text)
        if not segments.parts:
            return SendResult(accepted=False, permanent=True, detail="短信内容为空")
        if segments.encoding == "UCS-2":
            data_coding, payloads = pdu.DATA_CODING_UCS2, [p.encode("utf-16-be") for p in segments.parts]
        else:
            data_coding, payloads = pdu.DATA_CODING_DEFAULT, [pdu.gsm_encode(p) for p in segments.parts]
        total = len(payloads)
        reference = next(self._references)
        destination = message.recipient.removeprefix("+")
        fields: dict[str, Any] = {
            **self._source,
            "destination_addr": destination,
            "dest_addr_ton": 1 if message.recipient.startswith("+") else 0,
            "dest_addr_npi": 1,
            "data_coding": data_coding,
            "registered_delivery": 1,
        }
        concatenated = _Concatenated(total)
        deadline = time.monotonic() + self._part_deadline
        for index, payload in enumerate(payloads, start=1):
            if total > 1:
                short_message = pdu.concatenation_udh(reference, total, index) + payload
                esm_class = pdu.ESM_CLASS_UDHI
            else:
                short_message, esm_class = payload, 0
            part = {**fields, "esm_class": esm_class, "short_message": short_message}
            result = await self._submit_part(concatenated, part, first=index == 1, deadline=deadline)
            if result is not None:  # the message stops here
                self._forget(concatenated)
                if index > 1:
                    result = SendResult(
                        accepted=False,
                        retry_after=result.retry_after,
                        permanent=result.permanent,
                        detail=f"{result.detail}（共 {total} 段，已接受 {index - 1} 段）",
                    )
                return result
        self._report_if_complete(concatenated)
        ids = concatenated.ids
        return SendResult(accepted=True, remote_id=ids[-1], detail=f"共 {total} 段：{' '.join(ids)}")

    async def _submit_part(
        self, concatenated: _Concatenated, part: dict[str, Any], *, first: bool, deadline: float
    ) -> SendResult | None:
        """None once the part is accepted; else what send() answers. Parts after the first are retried here."""

        def accepted(response: Response) -> None:  # runs before the link reads the receipt for this id
            if response.status == pdu.ESME_ROK and response.body is not None:
                message_id = _text(response.body.message_id)
                concatenated.ids.append(message_id)
                self._track(message_id, concatenated)

        while True:
            wait = self._bind_wait if first else max(0.0, deadline - time.monotonic())
            try:
                response = await self.transceiver.submit_sm(wait=wait, on_response=accepted, **part)
            except (LinkDown, TimeoutError) as exc:
                if first or time.monotonic() >= deadline:
                    return SendResult(accepted=False, retry_after=self._bind_wait, detail=f"短信网关连接中断：{exc}")
                continue
            status = response.status
            if status == pdu.ESME_ROK:
                self._throttled_times = 0
                if response.body is None:
                    return SendResult(accepted=False, detail="短信网关应答缺少消息编号")
                return None
            if status in (pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL):
                backoff = self._backoff()
                if first or time.monotonic() + backoff > deadline:
                    return SendResult(
                        accepted=False, retry_after=backoff, detail=f"短信网关繁忙：{pdu.status_text(status)}"
                    )
                await asyncio.sleep(backoff)
                continue
            return SendResult(
                accepted=False,
                permanent=status in pdu.PERMANENT_STATUSES,
                detail=f"短信网关拒绝：{pdu.status_text(status)}",
            )

    def _backoff(self) -> float:
        initial, ceiling = self._throttle
        backoff = min(initial * 2**self._throttled_times, ceiling)
        self._throttled_times += 1
        self._hold_until = max(self._hold_until, time.monotonic() + backoff)
        return backoff

    # receipts

    def _deliver_sm(self, body: Any) -> None:
        if (body.esm_class or 0) & pdu.ESM_CLASS_TYPE_MASK != pdu.ESM_CLASS_DELIVERY_RECEIPT:
            log.info("SMS mobile-originated message from %s ignored", _text(body.source_addr))
            return
        receipt = pdu.parse_receipt(body.short_message or b"")
        receipted = getattr(body, "receipted_message_id", None)
        if receipt is None:
            log.warning("unparsable delivery receipt: %r", body.short_message)
            return
        if receipted:  # the TLV, where the SMSC sends one, is authoritative
            receipt = pdu.DeliveryReceipt(_text(receipted), receipt.stat, receipt.err, receipt.text)
        if not receipt.final:
            return
        concatenated = self._parts.get(receipt.message_id)
        if concatenated is None:  # not sent by this process (e.g. before a restart): report it as it is
            self._report(receipt.message_id, receipt.delivered, _detail(receipt))
            return
        concatenated.receipts[receipt.message_id] = receipt
        self._report_if_complete(concatenated)

    def _report_if_complete(self, concatenated: _Concatenated) -> None:
        if concatenated.reported or len(concatenated.ids) < concatenated.total:
            return
        failed = [r for r in concatenated.receipts.values() if not r.delivered]
        if failed:
            delivered, detail = False, _detail(failed[0])
        elif len(concatenated.receipts) == concatenated.total:
            delivered, detail = True, _detail(concatenated.receipts[concatenated.ids[-1]])
        else:
            return
        concatenated.reported = True
        self._forget(concatenated)
        self._report(concatenated.ids[-1], delivered, detail)

    def _report(self, remote_id: str, delivered: bool, detail: str) -> None:
        if self._on_receipt is None:
            return
        task = asyncio.get_running_loop().create_task(self._on_receipt(self.name, remote_id, delivered, detail))
        self._receipt_tasks.add(task)
        task.add_done_callback(self._receipt_done)

    def _receipt_done(self, task: asyncio.Task[None]) -> None:
        self._receipt_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("receipt handler failed", exc_info=task.exception())

    def _track(self, message_id: str, concatenated: _Concatenated) -> None:
        self._parts[message_id] = concatenated
        while len(self._parts) > _MAX_TRACKED_PARTS:
            self._parts.popitem(last=False)

    def _forget(self, concatenated: _Concatenated) -> None:
        for message_id in concatenated.ids:
            self._parts.pop(message_id, None)


def source_numbering(source_addr: str) -> tuple[int, int]:
    """SMPP 3.4 5.2.5/5.2.6 (TON, NPI) for a sender as written: "+8613..." international E.164 (1, 1); digits, such
    as the warning short code 12379, national (2, 1) as Chinese gateways expect it; anything else alphanumeric
    (5, 0). Handsets show an alphanumeric sender as text, and a short code sent so cannot be replied to."""
    if source_addr.startswith("+") and source_addr[1:].isdigit():
        return 1, 1
    if source_addr.isdigit():
        return 2, 1
    return 5, 0


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value or ""


def _detail(receipt: pdu.DeliveryReceipt) -> str:
    verdict = "已送达" if receipt.delivered else "未送达"
    return f"回执：{verdict}（状态 {receipt.stat}，错误码 {receipt.err}）"
