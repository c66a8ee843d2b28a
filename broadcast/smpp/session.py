"""An SMPP 3.4 ESME session on the shared gateway session (`broadcast.gateway_session`): bind as a transceiver,
a transmitter or a receiver, enquire_link every `keepalive` seconds (an unanswered one drops the link),
reconnect with capped back-off, unbind on stop, deliver_sm answered and handed on, anything else the SMSC sends
answered generic_nack. Framing, window and sequence matching are `broadcast.framing`'s (with command_status)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Unpack

from broadcast.framing import Frame, FramedLink
from broadcast.gateway_session import GatewaySession, LinkOptions
from broadcast.smpp import pdu

Bind = Literal["transceiver", "transmitter", "receiver"]


@dataclass(frozen=True)
class Response:
    status: int
    body: Any  # the decoded smpplib PDU, or None when it had no body or did not parse


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
        on_deliver_sm: Callable[[Any], None] = lambda body: None,
        **link: Unpack[LinkOptions],
    ) -> None:
        super().__init__(host, port, **link)
        self.label = f"SMPP {bind} {host}:{port}"
        self.bind = bind
        self._credentials = (system_id, password, system_type)
        self._on_deliver_sm = on_deliver_sm

    async def submit_sm(
        self, *, wait: float, on_response: Callable[[Response], None] | None = None, **fields: Any
    ) -> Response:
        command, body = pdu.request("submit_sm", **fields)
        hook = None if on_response is None else lambda answer: on_response(_response(answer))
        return _response(await self.request(command, body, wait=wait, on_response=hook))

    async def _login(self, link: FramedLink) -> None:
        system_id, password, system_type = self._credentials
        command, body = pdu.request(
            f"bind_{self.bind}",
            system_id=system_id,
            password=password,
            system_type=system_type,
            interface_version=0x34,
            addr_ton=0,
            addr_npi=0,
            address_range="",
        )
        answer = await link.request(command, body)
        if answer.status != pdu.ESME_ROK:
            raise ConnectionError(f"短信中心拒绝绑定（bind_{self.bind}）：{pdu.status_text(answer.status or 0)}")

    def _handle(self, request: Frame) -> Frame | None:
        if request.command != pdu.DELIVER_SM:
            return request.answer(command=pdu.GENERIC_NACK, status=pdu.ESME_RINVCMDID)
        body = pdu.decode(request)
        if body is not None:
            self._on_deliver_sm(body)
        return request.answer(pdu.request("deliver_sm_resp", message_id="")[1])


def _response(answer: Frame) -> Response:
    return Response(answer.status or 0, pdu.decode(answer))
