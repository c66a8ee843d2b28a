"""An SMGP 3.0 client session: Login (LoginMode 2, send and receive on one connection) with the spec's
authenticator, Active_Test every `active_test_interval` seconds (an unanswered one drops the link), Exit on stop,
and the answers the client owes the gateway (Deliver_Resp, Active_Test_Resp, Exit_Resp)."""

import hmac
import itertools
import struct
import time
from collections.abc import Callable

from broadcast.framing import Frame, FramedLink
from broadcast.gateway_session import GatewaySession
from broadcast.smgp import pdu


def timestamp(now: float | None = None) -> int:
    """The Login TimeStamp: MMDDHHMMSS of local (Beijing) time, as an integer."""
    return int(time.strftime("%m%d%H%M%S", time.localtime(now)))


class SmgpSession(GatewaySession):
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        secret: str,
        *,
        window: int = 16,
        active_test_interval: float = 30.0,
        response_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.2, 5.0),
        on_deliver: Callable[[pdu.Deliver], None] = lambda deliver: None,
    ) -> None:
        super().__init__(
            f"SMGP {host}:{port}",
            host,
            port,
            window=window,
            response_timeout=response_timeout,
            connect_timeout=connect_timeout,
            backoff=backoff,
            keepalive=active_test_interval,
        )
        self._credentials = (client_id, secret)
        self._on_deliver = on_deliver
        self._sequences = itertools.cycle(range(1, 0xFFFFFFFF))

    def _sequence(self) -> bytes:
        return struct.pack(">L", next(self._sequences))

    async def _login(self, link: FramedLink) -> None:
        client_id, secret = self._credentials
        stamp = timestamp()
        answer = await link.request(pdu.LOGIN, pdu.login(client_id, secret, stamp))
        resp = pdu.parse_login_resp(answer.body)
        if resp.status != pdu.OK:
            raise ConnectionError(f"短信网关拒绝登录：{pdu.status_text(resp.status)}")
        expected = pdu.authenticator_server(resp.status, pdu.authenticator_client(client_id, secret, stamp), secret)
        if not hmac.compare_digest(resp.authenticator_server, expected):
            raise ConnectionError("短信网关的 AuthenticatorServer 不符：对端不知道共享密钥")

    def _on_request(self, request: Frame) -> bytes | None:
        if request.command == pdu.DELIVER:
            deliver = pdu.parse_deliver(request.body)
            self._on_deliver(deliver)
            return pdu.deliver_resp(deliver.msg_id)
        if request.command == pdu.ACTIVE_TEST:
            return b""
        if request.command == pdu.EXIT:
            return b""  # the gateway closes the connection next; the policy reconnects
        return None

    async def _ping(self) -> None:
        assert self._link is not None
        try:
            await self._link.request(pdu.ACTIVE_TEST)
        except TimeoutError:
            raise ConnectionError("Active_Test 无应答") from None

    async def _farewell(self) -> None:
        if self._link is not None:
            await self._link.request(pdu.EXIT)
