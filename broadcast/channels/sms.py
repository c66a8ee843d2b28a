"""SMS channel over SMPP 3.4.

Client: our own asyncio session (`broadcast.smpp.session`) and PDU codec (`broadcast.smpp.pdu`), bound
as one transceiver (`bind="transceiver"`) or, for SMSCs that want it, as a transmitter for the submits and a
receiver for the deliver_sm receipts and MO messages (`bind="transmitter_receiver"`), each link kept by itself.
Why not the alternatives: smpplib's own client is blocking (one socket read in a thread, a thread-unsafe
sequence counter), so windowing means sharing one socket between threads and marshalling every answer back to
the loop; Twisted's `smpp.twisted3` works but needs the asyncio reactor installed process-wide before anything
imports `twisted.internet.reactor`, pins an old Twisted and pulls pyOpenSSL, which is a lot of global state for
a control plane that also runs FastAPI, SQLAlchemy and test loops of its own. The session itself is small
(bind, window matched by sequence_number, enquire_link, reconnect) and keeps framing apart from policy; the PDU
codec is the dozen fields an ESME uses, checked against a different implementation, the test SMSC (smpp34, Rust).

Sending, back-off and receipts of long messages: `broadcast.channels.gateway`, which SMGP and SGIP share. Here:
the submit_sm of each part (`esm_class` UDHI when concatenated, `data_coding` 0 or 8, `registered_delivery=1`),
ESME_RTHROTTLED and ESME_RMSGQFUL as "busy", and deliver_sm receipts (appendix B text, the receipted_message_id
TLV authoritative where the SMSC sends one); other deliver_sm are MO messages for `on_mobile_originated`.
"""

import logging
from collections.abc import Callable
from typing import Literal, Unpack

from broadcast.channels.gateway import Answer, GatewayChannel, GatewayOptions, Part, PartReport, report_detail
from broadcast.smpp import pdu
from broadcast.smpp.session import Bind, Response, SmppSession

log = logging.getLogger(__name__)


class SmsChannel(GatewayChannel):
    encoding = None  # GSM-7 where the text allows: 160 characters instead of 70
    rate_per_second = 100.0
    concurrency = 10
    window = 10

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        source_addr: str,
        system_type: str = "",
        bind: Literal["transceiver", "transmitter_receiver"] = "transceiver",
        source_addr_ton: int | None = None,  # None: what source_addr looks like (see source_numbering)
        source_addr_npi: int | None = None,
        enquire_link_interval: float = 30.0,
        name: str = "sms",
        **options: Unpack[GatewayOptions],
    ) -> None:
        super().__init__(name=name, **options)
        ton, npi = source_numbering(source_addr)
        self._source = {
            "source_addr": source_addr.removeprefix("+"),
            "source_addr_ton": ton if source_addr_ton is None else source_addr_ton,
            "source_addr_npi": npi if source_addr_npi is None else source_addr_npi,
        }
        if bind not in ("transceiver", "transmitter_receiver"):
            raise ValueError(f"SMPP bind {bind!r}: transceiver or transmitter_receiver")

        def session(kind: Bind) -> SmppSession:
            return SmppSession(
                host,
                port,
                system_id,
                password,
                bind=kind,
                system_type=system_type,
                keepalive=enquire_link_interval,
                on_deliver_sm=self._deliver_sm,
                **self.link_options,
            )

        # `session` carries the submits; `receiver`, where bound apart, the receipts and MO messages
        self.session = session("transceiver" if bind == "transceiver" else "transmitter")
        self.receiver = None if bind == "transceiver" else session("receiver")
        self.sessions = [self.session] if self.receiver is None else [self.session, self.receiver]

    async def _submit(self, part: Part, *, wait: float, accepted: Callable[[str], None]) -> Answer:
        def on_response(response: Response) -> None:  # runs before the link reads the receipt for this id
            if response.message_id is not None:
                accepted(response.message_id)

        body = pdu.submit_sm_body(
            **self._source,
            destination_addr=part.number,
            dest_addr_ton=1 if part.recipient.startswith("+") else 0,
            dest_addr_npi=1,
            data_coding=pdu.DATA_CODING_UCS2 if part.encoding == "UCS-2" else pdu.DATA_CODING_DEFAULT,
            esm_class=pdu.ESM_CLASS_UDHI if part.udhi else 0,
            short_message=part.content,
        )
        response = await self.session.submit_sm(body, wait=wait, on_response=on_response)
        status = response.status
        if status == pdu.ESME_ROK:
            if response.message_id is None:
                return Answer(None, detail="应答缺少消息编号")
            return Answer(response.message_id)
        return Answer(
            None,
            busy=status in (pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL),
            permanent=status in pdu.PERMANENT_STATUSES,
            detail=pdu.status_text(status),
        )

    def _deliver_sm(self, body: pdu.DeliverSm) -> None:
        if body.esm_class & pdu.ESM_CLASS_TYPE_MASK != pdu.ESM_CLASS_DELIVERY_RECEIPT:
            udhi = bool(body.esm_class & pdu.ESM_CLASS_UDHI)
            text = pdu.short_message_text(body.short_message, body.data_coding, udhi)
            self._mobile_originated(body.source_addr, text)
            return
        receipt = pdu.parse_receipt(body.short_message)
        if receipt is None:
            log.warning("unparsable delivery receipt: %r", body.short_message)
            return
        message_id = body.receipted_message_id or receipt.message_id  # the TLV, where sent, is authoritative
        if receipt.final:
            detail = report_detail(receipt.delivered, receipt.stat, receipt.err)
            self._report_part(message_id, PartReport(receipt.delivered, detail))


def source_numbering(source_addr: str) -> tuple[int, int]:
    """SMPP 3.4 5.2.5/5.2.6 (TON, NPI) for a sender as written: "+8613..." international E.164 (1, 1); digits, such
    as the warning short code 12379, national (2, 1) as Chinese gateways expect it; anything else alphanumeric
    (5, 0). Handsets show an alphanumeric sender as text, and a short code sent so cannot be replied to."""
    if source_addr.startswith("+") and source_addr[1:].isdigit():
        return 1, 1
    if source_addr.isdigit():
        return 2, 1
    return 5, 0
