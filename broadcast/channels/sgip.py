"""SMS channel over SGIP 1.2, China Unicom's SMS gateway protocol.

Our own asyncio client (`broadcast.sgip`), as for SMGP: no maintained SGIP client exists for Python. Two
connections, as the spec has it: ours to the gateway carries Bind and the Submits (`SgipSession`; SGIP has no
keepalive PDU, so the bind is kept alive by reconnecting whenever the gateway closes it), and the gateway's to
our listener (`Receiver`) brings the Reports and MO messages. A message is identified by its Submit's 12-byte
Sequence Number (node id, MMDDhhmmss, counter), which the Report names. Splitting, back-off and receipts of long
messages: `broadcast.channels.gateway`.
"""

import re
from collections.abc import Callable
from typing import Unpack

from broadcast.channel import ReceiptHandler
from broadcast.channels.gateway import Answer, GatewayChannel, GatewayOptions, Part, PartReport, report_detail
from broadcast.framing import Frame
from broadcast.sgip import pdu
from broadcast.sgip.receiver import Receiver
from broadcast.sgip.session import SgipSession

_NATIONAL_MOBILE = re.compile(r"1[3-9][0-9]{9}")


class SgipChannel(GatewayChannel):
    def __init__(
        self,
        host: str,
        port: int,
        login_name: str,
        password: str,
        *,
        sp_number: str,  # the SP's access number the message comes from
        corp_id: str,  # the SP's 5-digit enterprise code
        node_id: int,  # the SP's node number (3 + area code + corp id), first field of every Sequence Number
        listen_host: str = "0.0.0.0",  # noqa: S104 - the gateway connects from its own address
        listen_port: int = 8801,
        listen_login_name: str = "",  # what the gateway binds to our listener with
        listen_password: str = "",
        service_type: str = "",
        name: str = "sgip",
        **options: Unpack[GatewayOptions],
    ) -> None:
        super().__init__(name=name, **options)
        self._submit_fields = {"sp_number": sp_number, "corp_id": corp_id, "service_type": service_type}
        self.session = SgipSession(host, port, login_name, password, node_id=node_id, **self.link_options)
        self.sessions = [self.session]
        self.receiver = Receiver(
            listen_host,
            listen_port,
            listen_login_name or login_name,
            listen_password or password,
            on_report=self._report_arrived,
            on_deliver=lambda deliver: self._mobile_originated(deliver.user_number, deliver.text),
        )

    async def start(self, on_receipt: ReceiptHandler) -> None:
        await super().start(on_receipt)
        await self.receiver.start()

    async def _stop_session(self) -> None:
        await super()._stop_session()
        await self.receiver.stop()

    def health(self) -> dict[str, str]:
        """The SGIP bind's: ok while bound; down too while the listener for Reports cannot listen, since every
        message would then go unconfirmed."""
        health = super().health()
        if self._on_receipt is not None and not self.receiver.listening:
            return {**health, "status": "down", "error": self.receiver.error}
        return health

    async def _submit(self, part: Part, *, wait: float, accepted: Callable[[str], None]) -> Answer:
        number = user_number(part.number)
        submit = pdu.Submit(user_number=number, content=part.content, tp_udhi=part.udhi, **self._submit_fields)

        def on_response(frame: Frame) -> None:
            if pdu.result_of(frame.body) == pdu.OK:
                accepted(frame.sequence.hex())

        answer = await self.session.request(pdu.SUBMIT, submit.encode(), wait=wait, on_response=on_response)
        result = pdu.result_of(answer.body)
        if result == pdu.OK:
            return Answer(answer.sequence.hex())
        return Answer(
            None, busy=result in pdu.THROTTLING, permanent=result in pdu.PERMANENT, detail=pdu.result_text(result)
        )

    def _report_arrived(self, report: pdu.Report) -> None:
        if report.report_type != 0 or not report.final:
            return
        meaning = pdu.RESULT_MEANINGS.get(report.error_code, "")
        detail = report_detail(report.delivered, str(report.state), f"{report.error_code} {meaning}".strip())
        self._report_part(report.submit_sequence, PartReport(report.delivered, detail))


def user_number(number: str) -> str:
    """SGIP's UserNumber: the mobile number with the country code 86 before it, as the spec requires; the directory
    keeps mainland mobiles in the national form (13012345678), which Unicom's gateway refuses (Result 6)."""
    return f"86{number}" if _NATIONAL_MOBILE.fullmatch(number) else number
