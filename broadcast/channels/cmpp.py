"""SMS channel over CMPP 2.0/3.0, China Mobile's ISMG protocol.

Client: our own asyncio session (`broadcast.cmpp.session`) on our own PDU tables (`broadcast.cmpp.pdu`); the
public Python CMPP clients are blocking, 2.0 only and drop status reports. The test ISMG is a separate
implementation that checks every field it receives, and one test drives it with an independent client (pycmpp).

Each part is one SUBMIT, UCS-2 (Msg_Fmt 8) with Registered_Delivery=1, and Pk_total/Pk_number and TP_udhi=1
when the message is long; the remote id is the SUBMIT_RESP's Msg_Id as 16 hex digits, which the status report
(a DELIVER with Registered_Delivery=1) names. Result 8 (流量控制错) is "busy". Splitting, back-off and receipts of
long messages: `broadcast.channels.gateway`. MO messages (Registered_Delivery=0) go to `on_mobile_originated`.
"""

import re
from collections.abc import Callable
from typing import Unpack

from broadcast.channels.gateway import Answer, GatewayChannel, GatewayOptions, Part, PartReport, report_detail
from broadcast.cmpp import pdu
from broadcast.cmpp.session import CmppSession

_NATIONAL_MOBILE = re.compile(r"86(1[0-9]{10})")


class CmppChannel(GatewayChannel):
    def __init__(
        self,
        host: str,
        port: int,
        source_addr: str,  # the SP id (企业代码) the ISMG knows us by: CONNECT's Source_Addr and every Msg_src
        shared_secret: str,
        *,
        src_id: str,  # the SP's access number and extension the handset shows (Src_Id)
        service_id: str,
        version: pdu.Version = "3.0",
        active_test_interval: float = 30.0,
        name: str = "cmpp",
        **options: Unpack[GatewayOptions],
    ) -> None:
        super().__init__(name=name, **options)
        self._addressing = {"source_addr": source_addr, "service_id": service_id, "src_id": src_id}
        self.session = CmppSession(
            host,
            port,
            source_addr,
            shared_secret,
            version=version,
            keepalive=active_test_interval,
            on_deliver=self._deliver,
            **self.link_options,
        )
        self.sessions = [self.session]

    async def _submit(self, part: Part, *, wait: float, accepted: Callable[[str], None]) -> Answer:
        submit = pdu.Submit(
            **self._addressing,
            destination=terminal_id(part.number),
            content=part.content,
            pk_total=part.total,
            pk_number=part.index,
            udhi=part.udhi,
        )

        def on_response(msg_id: int, result: int) -> None:  # before the link reads a report on this Msg_Id
            if result == pdu.RESULT_OK:
                accepted(pdu.msg_id_text(msg_id))

        msg_id, result = await self.session.submit(submit, wait=wait, on_response=on_response)
        if result == pdu.RESULT_OK:
            return Answer(pdu.msg_id_text(msg_id))
        return Answer(
            None,
            busy=result == pdu.RESULT_FLOW_CONTROL,
            permanent=result in pdu.PERMANENT_RESULTS,
            detail=pdu.result_text(result),
        )

    def _deliver(self, carried: pdu.StatusReport | pdu.MobileOriginated) -> None:
        if isinstance(carried, pdu.MobileOriginated):
            self._mobile_originated(carried.source, carried.text)
            return
        detail = report_detail(carried.delivered, carried.stat)
        self._report_part(pdu.msg_id_text(carried.msg_id), PartReport(carried.delivered, detail))


def terminal_id(number: str) -> str:
    """The Dest_terminal_Id for a number in digits: "86" before an 11-digit mobile number dropped, the national
    form ISMGs expect."""
    match = _NATIONAL_MOBILE.fullmatch(number)
    return match.group(1) if match else number
