"""A CMPP 2.0/3.0 session with an ISMG, on the gateways' shared session policy (`broadcast.gateway_session`):
CONNECT with the MD5 authenticator, and the ISMG's authenticator checked in turn so that a man in the middle
cannot pose as the gateway; ACTIVE_TEST every `keepalive` seconds; TERMINATE on stop; DELIVER (status reports
and MO messages) answered and handed on. Framing, window and reconnecting are the shared base's."""

import hmac
from collections.abc import Callable
from typing import Unpack

from broadcast.cmpp import pdu
from broadcast.framing import Frame, FramedLink
from broadcast.gateway_session import GatewaySession, LinkOptions, timestamp

DeliverHandler = Callable[[pdu.StatusReport | pdu.MobileOriginated], None]


class CmppSession(GatewaySession):
    protocol = "CMPP"
    farewell_command = pdu.TERMINATE
    keepalive_command = pdu.ACTIVE_TEST
    keepalive_answer = b"\0"  # ACTIVE_TEST_RESP's Reserved octet

    def __init__(
        self,
        host: str,
        port: int,
        source_addr: str,
        shared_secret: str,
        *,
        version: pdu.Version = "3.0",
        on_deliver: DeliverHandler = lambda carried: None,
        **link: Unpack[LinkOptions],
    ) -> None:
        if version not in pdu.VERSIONS:
            raise ValueError(f"CMPP version {version!r}: 2.0 or 3.0")
        super().__init__(host, port, **link)
        self.version = version
        self._credentials = (source_addr, shared_secret)
        self._on_deliver = on_deliver

    async def submit(
        self, submit: pdu.Submit, *, wait: float, on_response: Callable[[int, int], None]
    ) -> tuple[int, int]:
        """(Msg_Id, Result) of the SUBMIT_RESP; `on_response` gets them before the link reads on."""

        def hook(answer: Frame) -> None:
            on_response(*pdu.decode_result(self.version, answer.body))

        answer = await self.request(pdu.SUBMIT, submit.encode(self.version), wait=wait, on_response=hook)
        return pdu.decode_result(self.version, answer.body)

    async def _login(self, link: FramedLink) -> None:
        source_addr, secret = self._credentials
        body, authenticator = pdu.connect(source_addr, secret, self.version, timestamp())
        answer = await link.request(pdu.CONNECT, body)
        resp, _ = pdu.unpack(pdu.connect_resp_layout(self.version), answer.body)
        if resp["Status"] != 0:
            raise ConnectionError(f"短信网关拒绝登录：{pdu.connect_text(resp['Status'])}")
        expected = pdu.authenticator_ismg(0, self.version, authenticator, secret)
        if not hmac.compare_digest(resp["AuthenticatorISMG"], expected):
            raise ConnectionError("短信网关的 AuthenticatorISMG 不符：对端不知道共享密钥")

    def _handle(self, request: Frame) -> Frame | None:
        if request.command != pdu.DELIVER:
            return None
        msg_id, carried = pdu.decode_deliver(self.version, request.body)
        self._on_deliver(carried)
        return request.answer(pdu.deliver_resp(self.version, msg_id))
