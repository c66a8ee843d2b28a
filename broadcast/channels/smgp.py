"""SMS channel over SMGP 3.0, China Telecom's SMS gateway protocol.

Our own asyncio client (`broadcast.smgp`): no maintained SMGP client exists for Python, and the session is the
same small shape as the SMPP one (login, window matched by SequenceID, Active_Test, reconnect). One connection in
LoginMode 2 carries the Submits and brings back status reports and MO messages as Deliver. Splitting, back-off
and receipts of long messages: `broadcast.channels.gateway`.
"""

from collections.abc import Callable

from broadcast.channel import ReceiptHandler
from broadcast.channels.gateway import Answer, GatewayChannel, MobileOriginatedHandler, Part, PartReport, report_detail
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
        window: int = 16,
        active_test_interval: float = 30.0,
        response_timeout: float = 10.0,
        rate_per_second: float = 50.0,
        concurrency: int = 16,
        bind_wait: float = 5.0,
        part_deadline: float = 60.0,
        throttle_backoff: float = 1.0,
        throttle_backoff_max: float = 30.0,
        reconnect_max: float = 5.0,
        on_mobile_originated: MobileOriginatedHandler | None = None,
        name: str = "smgp",
    ) -> None:
        super().__init__(
            name=name,
            rate_per_second=rate_per_second,
            concurrency=concurrency,
            bind_wait=bind_wait,
            part_deadline=part_deadline,
            throttle_backoff=throttle_backoff,
            throttle_backoff_max=throttle_backoff_max,
            on_mobile_originated=on_mobile_originated,
        )
        self._src_term_id = src_term_id
        self._service_id = service_id
        self.session = SmgpSession(
            host,
            port,
            client_id,
            secret,
            window=window,
            keepalive=active_test_interval,
            response_timeout=response_timeout,
            backoff=(0.2, reconnect_max),
            on_deliver=self._deliver,
        )

    async def start(self, on_receipt: ReceiptHandler) -> None:
        self._on_receipt = on_receipt
        self.session.start()

    async def _stop_session(self) -> None:
        await self.session.stop()

    def health(self) -> dict[str, str]:
        """The SMGP link's: ok while logged in; a refused login names the gateway's Status in Chinese."""
        return self.session.health()

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
