"""An SMGP 3.0 client session: Login (LoginMode 2, send and receive on one connection) with the spec's
authenticator, Active_Test every `keepalive` seconds, Exit on stop, and Deliver_Resp for the status
reports and MO messages the gateway delivers. The rest of the policy is `broadcast.gateway_session`'s."""

import hmac
from collections.abc import Callable
from typing import Unpack

from broadcast.framing import Frame, FramedLink
from broadcast.gateway_session import GatewaySession, LinkOptions, timestamp
from broadcast.smgp import pdu


class SmgpSession(GatewaySession):
    protocol = "SMGP"
    farewell_command = pdu.EXIT
    keepalive_command = pdu.ACTIVE_TEST

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        secret: str,
        *,
        on_deliver: Callable[[pdu.Deliver], None] = lambda deliver: None,
        **link: Unpack[LinkOptions],
    ) -> None:
        super().__init__(host, port, **link)
        self._credentials = (client_id, secret)
        self._on_deliver = on_deliver

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

    def _handle(self, request: Frame) -> Frame | None:
        if request.command != pdu.DELIVER:
            return None
        deliver = pdu.parse_deliver(request.body)
        self._on_deliver(deliver)
        return request.answer(pdu.deliver_resp(deliver.msg_id))
