"""The SP's listener for SGIP 1.2: the gateway (SMG) opens a connection of its own to the SP, binds with
LoginType 2 and the SP's receiving credentials, and sends Report (status of an earlier Submit) and Deliver (MO)
on it, each answered with Result 0; it unbinds when it has nothing more, or opens the next one when it does.
A bind with the wrong type or credentials is answered Result 4 or 1 and the connection closed."""

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable

from broadcast.framing import RESPONSE_BIT, Frame, frame, read_frame
from broadcast.sgip import pdu

log = logging.getLogger(__name__)

SEQUENCE_SIZE = 12


class Receiver:
    def __init__(
        self,
        host: str,
        port: int,
        login_name: str,
        password: str,
        *,
        on_report: Callable[[pdu.Report], None],
        on_deliver: Callable[[pdu.Deliver], None],
    ) -> None:
        self._address = (host, port)
        self._credentials = (login_name, password)
        self._on_report = on_report
        self._on_deliver = on_deliver
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.error = ""  # why the listener is not listening

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        try:
            self._server = await asyncio.start_server(self._serve, *self._address)
            self.error = ""
        except OSError as exc:
            self.error = f"无法在 {self._address[0]}:{self._address[1]} 接收网关连接：{exc.strerror or exc}"
            log.error("SGIP receiver: %s", self.error)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections)
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            bind = await read_frame(reader, SEQUENCE_SIZE)
            result = self._check_bind(bind)
            writer.write(frame(pdu.BIND_RESP, bind.sequence, pdu.resp(result)))
            await writer.drain()
            while result == pdu.OK:
                request = await read_frame(reader, SEQUENCE_SIZE)
                if request.command & RESPONSE_BIT:
                    continue
                writer.write(frame(request.command | RESPONSE_BIT, request.sequence, self._answer(request)))
                await writer.drain()
                if request.command == pdu.UNBIND:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            log.info("SGIP receiver: gateway connection closed: %s", exc or type(exc).__name__)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._connections.discard(task)

    def _check_bind(self, bind: Frame) -> int:
        if bind.command != pdu.BIND:
            return pdu.BAD_LOGIN
        login = pdu.parse_bind(bind.body)
        if login.login_type != pdu.LOGIN_SMG_TO_SP:
            return pdu.BAD_LOGIN_TYPE
        name, password = self._credentials
        if login.name != name or not hmac.compare_digest(login.password.encode(), password.encode()):
            log.warning("SGIP receiver: gateway bind refused for login name %r", login.name)
            return pdu.BAD_LOGIN
        return pdu.OK

    def _answer(self, request: Frame) -> bytes:
        if request.command == pdu.UNBIND:
            return b""
        try:
            if request.command == pdu.REPORT:
                self._on_report(pdu.parse_report(request.body))
            elif request.command == pdu.DELIVER:
                self._on_deliver(pdu.parse_deliver(request.body))
            else:
                return pdu.resp(pdu.NOT_PROVIDED)
        except Exception:
            log.exception("SGIP receiver: command 0x%08X failed", request.command)
            return pdu.resp(pdu.SYSTEM_FAILURE)
        return pdu.resp(pdu.OK)
