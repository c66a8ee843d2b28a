"""The SP's SGIP 1.2 connection to the gateway (SMG): Bind with LoginType 1, Submits in a window, Unbind on stop.

SGIP has no keepalive PDU. The spec lets either side Unbind an idle connection, and gateways do close idle SP
connections; we keep one bind open and keep it alive by reconnecting: when the gateway unbinds or drops it, the
shared reconnecting link binds again with capped back-off, and a send waits `bind_wait` for it. Reports and MO
messages do not come on this connection but on one the gateway opens to us (`broadcast.sgip.receiver`).
"""

import itertools

from broadcast.framing import Frame, FramedLink
from broadcast.gateway_session import GatewaySession
from broadcast.sgip import pdu


class SgipSession(GatewaySession):
    def __init__(
        self,
        host: str,
        port: int,
        login_name: str,
        password: str,
        *,
        node_id: int,
        window: int = 16,
        response_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        super().__init__(
            f"SGIP {host}:{port}",
            host,
            port,
            window=window,
            response_timeout=response_timeout,
            connect_timeout=connect_timeout,
            backoff=backoff,
            keepalive=None,
        )
        self._credentials = (login_name, password)
        self._node_id = node_id
        self._counter = itertools.cycle(range(1, 0xFFFFFFFF))

    def _sequence(self) -> bytes:
        return pdu.sequence_number(self._node_id, next(self._counter))

    async def _login(self, link: FramedLink) -> None:
        answer = await link.request(pdu.BIND, pdu.bind(pdu.LOGIN_SP_TO_SMG, *self._credentials))
        result = pdu.result_of(answer.body)
        if result != pdu.OK:
            raise ConnectionError(f"短信网关拒绝登录：{pdu.result_text(result)}")

    def _on_request(self, request: Frame) -> bytes | None:
        if request.command == pdu.UNBIND:
            return b""  # the gateway closes next; the policy binds again
        return pdu.resp(pdu.NOT_PROVIDED)

    async def _farewell(self) -> None:
        if self._link is not None:
            await self._link.request(pdu.UNBIND)
