"""The session policy the SMS gateway protocols (SMPP, CMPP, SMGP, SGIP) share, on the shared reconnecting link.

`GatewaySession` keeps one `FramedLink` open at a time (its read loop notices a loss before the policy does):
connect, log in (the protocol's `_login`), send requests once logged in (waiting a little for that), keep the
link alive with the protocol's keepalive request where it has one (an unanswered one drops the link), answer
the peer's keepalive and goodbye, and say goodbye on stop. A protocol supplies only its PDUs: the class
attributes below, `_login`, and `_handle` for what else the gateway sends (deliveries, reports, MO messages).
A gateway's goodbye is answered and the link closed at once: the policy logs in again with capped back-off.
"""

import asyncio
import contextlib
import itertools
import struct
import time
from collections.abc import Callable
from typing import TypedDict

from broadcast.framing import Frame, FramedLink, Goodbye, LinkDown
from switchboard.core.link import LinkState, ReconnectingLink


def timestamp(now: float | None = None) -> int:
    """The login time stamp of CMPP and SMGP: MMDDHHMMSS of local (Beijing) time, as an integer."""
    return int(time.strftime("%m%d%H%M%S", time.localtime(now)))


class LinkOptions(TypedDict, total=False):
    """What every protocol's session takes about its link, passed through to `GatewaySession`."""

    window: int  # requests in flight at once
    response_timeout: float
    connect_timeout: float
    backoff: tuple[float, float]  # the first delay between connect attempts and its cap
    keepalive: float  # seconds between keepalive requests (protocols that have one)


class GatewaySession(ReconnectingLink):
    link_down = LinkDown
    protocol: str  # names the gateway in logs and health, with its address
    farewell_command: int  # unbind, TERMINATE, Exit, Unbind: sent on stop, answered when the gateway sends it
    keepalive_command: int | None = None  # enquire_link, ACTIVE_TEST, Active_Test; None: the protocol has none
    keepalive_answer = b""  # the body of our answer to the gateway's keepalive
    status_field = False  # SMPP's header carries command_status

    def __init__(
        self,
        host: str,
        port: int,
        *,
        window: int = 16,
        response_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.2, 5.0),
        keepalive: float = 30.0,
    ) -> None:
        super().__init__(
            f"{self.protocol} {host}:{port}", backoff=backoff, keepalive=keepalive if self.keepalive_command else None
        )
        self._address = (host, port)
        self._window = window
        self._response_timeout = response_timeout
        self._connect_timeout = connect_timeout
        self._link: FramedLink | None = None
        self._counter = itertools.cycle(range(1, 0x7FFFFFFF))

    @property
    def bound(self) -> bool:
        """Up, and the link has not died since (its read loop ends before the policy notices)."""
        return self.state is LinkState.up and self._link is not None and self._link.alive

    @property
    def max_in_flight(self) -> int:
        return self._link.max_in_flight if self._link else 0

    async def wait_bound(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self.bound:
                    await self._up.wait()
                    if not self.bound:
                        await asyncio.sleep(0.01)  # the link died before the policy noticed: let it clear
        return self.bound

    async def request(
        self, command: int, body: bytes, *, wait: float, on_response: Callable[[Frame], None] | None = None
    ) -> Frame:
        if not await self.wait_bound(wait) or self._link is None:
            raise LinkDown("未登录到短信网关")
        return await self._link.request(command, body, on_response=on_response)

    # What a protocol supplies ---------------------------------------------------------------------------------

    def _sequence(self) -> bytes:
        """The next sequence as the header carries it: 4 bytes, SMPP's at most 0x7FFFFFFF (SGIP overrides)."""
        return struct.pack(">L", next(self._counter))

    async def _login(self, link: FramedLink) -> None:
        """Log in on the fresh link; raise ConnectionError naming the refusal in Chinese."""
        raise NotImplementedError

    def _handle(self, request: Frame) -> Frame | None:
        """A request of the gateway's other than keepalive and goodbye; the answer, if one is owed."""
        raise NotImplementedError

    # ReconnectingLink -----------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*self._address), self._connect_timeout)
        self._link = link = FramedLink(
            reader,
            writer,
            sequences=self._sequence,
            window=self._window,
            response_timeout=self._response_timeout,
            on_request=self._on_request,
            label=self.label,
            status=self.status_field,
        )
        await self._login(link)

    def _on_request(self, request: Frame) -> Frame | None:
        if request.command == self.farewell_command:
            raise Goodbye(request.answer(), f"短信网关结束了会话（命令 0x{request.command:08X}）")
        if request.command == self.keepalive_command:
            return request.answer(self.keepalive_answer)
        return self._handle(request)

    async def _until_lost(self) -> None:
        link = self._link
        assert link is not None
        await link.closed()
        raise ConnectionError(link.closed_reason)

    def _disconnect(self, reason: str) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()  # its read loop fails what still waits for an answer

    async def _ping(self) -> None:
        assert self._link is not None and self.keepalive_command is not None
        try:
            await self._link.request(self.keepalive_command)
        except TimeoutError:  # the link is dead even if TCP has not noticed
            raise ConnectionError(f"保活请求（命令 0x{self.keepalive_command:08X}）无应答") from None

    async def _farewell(self) -> None:
        if self._link is not None:
            await self._link.request(self.farewell_command)
