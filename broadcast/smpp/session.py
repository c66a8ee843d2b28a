"""An SMPP 3.4 ESME session on the shared gateway session (`broadcast.gateway_session`): bind as a transceiver,
a transmitter or a receiver, enquire_link every `keepalive` seconds (an unanswered one drops the link),
reconnect with capped back-off, unbind on stop, deliver_sm answered and handed on, anything else the SMSC sends
answered generic_nack. Framing, window and sequence matching are `broadcast.framing`'s (with command_status)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Unpack

from broadcast.framing import Frame, FramedLink
from broadcast.gateway_session import GatewaySession, LinkOptions
from broadcast.smpp import pdu

Bind = Literal["transceiver", "transmitter", "receiver"]


@dataclass(frozen=True)
class Response:
    status: int
    message_id: str | None  # the SMSC's id of the accepted message; None when refused or missing


class SmppSession(GatewaySession):
    protocol = "SMPP"
    farewell_command = pdu.UNBIND
    keepalive_command = pdu.ENQUIRE_LINK
    status_field = True

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        bind: Bind = "transceiver",
        system_type: str = "",
        on_deliver_sm: Callable[[pdu.DeliverSm], None] = lambda body: None,
        **link: Unpack[LinkOptions],
    ) -> None:
        super().__init__(host, port, **link)
        self.label = f"SMPP {bind} {host}:{port}"
        self.bind = bind
        self._credentials = (system_id, password, system_type)
        self._on_deliver_sm = on_deliver_sm

    async def submit_sm(
        self, body: bytes, *, wait: float, on_response: Callable[[Response], None] | None = None
    ) -> Response:
        """`body`: `pdu.submit_sm_body(...)`."""
        hook = None if on_response is None else lambda answer: on_response(_response(answer))
        return _response(await self.request(pdu.SUBMIT_SM, body, wait=wait, on_response=hook))

    async def _login(self, link: FramedLink) -> None:
        system_id, password, system_type = self._credentials
        answer = await link.request(pdu.BINDS[self.bind], pdu.bind_body(system_id, password, system_type))
        if answer.status != pdu.ESME_ROK:
            raise ConnectionError(f"短信中心拒绝绑定（bind_{self.bind}）：{pdu.status_text(answer.status or 0)}")

    def _handle(self, request: Frame) -> Frame | None:
        if request.command != pdu.DELIVER_SM:
            return request.answer(command=pdu.GENERIC_NACK, status=pdu.ESME_RINVCMDID)
        body = pdu.deliver_sm(request)
        if body is not None:
            self._on_deliver_sm(body)
        return request.answer(pdu.DELIVER_SM_RESP_BODY)


def _response(answer: Frame) -> Response:
    status = answer.status or 0
    return Response(status, pdu.message_id(answer) if status == pdu.ESME_ROK else None)
