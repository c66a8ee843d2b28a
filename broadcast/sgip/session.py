"""The SP's SGIP 1.2 connection to the gateway (SMG): Bind with LoginType 1, Submits in a window, Unbind on stop.

SGIP has no keepalive PDU. The spec lets either side Unbind an idle connection, and gateways do close idle SP
connections; we keep one bind open and keep it alive by reconnecting: when the gateway unbinds or drops it, the
shared session policy (`broadcast.gateway_session`) binds again with capped back-off, and a send waits
`bind_wait` for it. Reports and MO messages do not come on this connection but on one the gateway opens to us
(`broadcast.sgip.receiver`).
"""

from typing import Unpack

from broadcast.framing import Frame, FramedLink
from broadcast.gateway_session import GatewaySession, LinkOptions
from broadcast.sgip import pdu


class SgipSession(GatewaySession):
    protocol = "SGIP"
    farewell_command = pdu.UNBIND

    def __init__(
        self,
        host: str,
        port: int,
        login_name: str,
        password: str,
        *,
        node_id: int,
        **link: Unpack[LinkOptions],
    ) -> None:
        super().__init__(host, port, **link)
        self._credentials = (login_name, password)
        self._node_id = node_id

    def _sequence(self) -> bytes:
        """12 bytes: the node id, MMDDhhmmss and a counter (the Report names a Submit by them)."""
        return pdu.sequence_number(self._node_id, next(self._counter))

    async def _login(self, link: FramedLink) -> None:
        answer = await link.request(pdu.BIND, pdu.bind(pdu.LOGIN_SP_TO_SMG, *self._credentials))
        result = pdu.result_of(answer.body)
        if result != pdu.OK:
            raise ConnectionError(f"短信网关拒绝登录：{pdu.result_text(result)}")

    def _handle(self, request: Frame) -> Frame | None:
        return request.answer(pdu.resp(pdu.NOT_PROVIDED))
