"""SMS channel over SMGP 3.0, China Telecom's SMS gateway protocol.

Our own asyncio client (`broadcast.smgp`): no maintained SMGP client exists for Python, and the session is the
same small shape as the SMPP one (login, window matched by SequenceID, Active_Test, reconnect). One connection in
LoginMode 2 carries the Submits and brings back status reports and MO messages as Deliver. Splitting, back-off
and receipts of long messages: `broadcast.channels.gateway`.
"""

from collections.abc import Callable
from typing import Unpack

from broadcast.channels.gateway import Answer, GatewayChannel, GatewayOptions, Part, PartReport, report_detail
from broadcast.framing import Frame
from broadcast.segments import mobile_originated_text
from broadcast.smgp import pdu
from broadcast.smgp.session import SmgpSession


class SmgpChannel(GatewayChannel):
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        secret: str,
        *,
        src_term_id: str,  # the SP's access number (e.g. 10659...12379) the message comes from
        service_id: str = "",
        active_test_interval: float = 30.0,
        name: str = "smgp",
        **options: Unpack[GatewayOptions],
    ) -> None:
        super().__init__(name=name, **options)
        self._src_term_id = src_term_id
        self._service_id = service_id
        self.session = SmgpSession(
            host, port, client_id, secret, keepalive=active_test_interval, on_deliver=self._deliver, **self.link_options
        )
        self.sessions = [self.session]

    async def _submit(self, part: Part, *, wait: float, accepted: Callable[[str], None]) -> Answer:
        submit = pdu.Submit(
            src_term_id=self._src_term_id,
            dest_term_id=part.number,
            content=part.content,
            service_id=self._service_id,
            udhi=part.udhi,
            pk_total=part.total,
            pk_number=part.index,
        )

        def on_response(frame: Frame) -> None:
            resp = pdu.parse_submit_resp(frame.body)
            if resp.status == pdu.OK:
                accepted(resp.msg_id)

        answer = await self.session.request(pdu.SUBMIT, submit.encode(), wait=wait, on_response=on_response)
        resp = pdu.parse_submit_resp(answer.body)
        if resp.status == pdu.OK:
            return Answer(resp.msg_id)
        return Answer(
            None,
            busy=resp.status in pdu.THROTTLING,
            permanent=resp.status in pdu.PERMANENT,
            detail=pdu.status_text(resp.status),
        )

    def _deliver(self, deliver: pdu.Deliver) -> None:
        if not deliver.is_report:
            self._mobile_originated(deliver.src_term_id, mobile_originated_text(deliver.content, deliver.msg_format))
            return
        report = pdu.parse_report(deliver.content)
        if report is None or not report.final:
            return
        detail = report_detail(report.delivered, report.stat, report.err)
        self._report_part(report.message_id, PartReport(report.delivered, detail))
