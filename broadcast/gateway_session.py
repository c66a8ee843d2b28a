"""The session policy the SMS gateway protocols share, on the shared reconnecting link.

`OneLinkSession` is what the SMPP, SMGP and SGIP sessions have in common: one open link at a time (its read loop
notices a loss before the policy does), the window's high-water mark, and waiting a little for a logged-in link.
`GatewaySession` adds what SMGP and SGIP share over a `FramedLink`: connect, log in (the protocol's `_login`) and
send requests. Keepalive and goodbye differ per protocol (SMGP's Active_Test and Exit, SGIP's Unbind) and stay
in the subclasses.
"""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from broadcast.framing import Frame, FramedLink, LinkDown
from switchboard.core.link import LinkState, ReconnectingLink


class _Link(Protocol):
    alive: bool
    max_in_flight: int
    closed_reason: str

    async def closed(self) -> None: ...

    def close(self) -> None: ...


class OneLinkSession(ReconnectingLink):
    _link: _Link | None = None

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

    async def _until_lost(self) -> None:
        link = self._link
        assert link is not None
        await link.closed()
        raise ConnectionError(link.closed_reason)

    def _disconnect(self, reason: str) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()  # its read loop fails what still waits for an answer


class GatewaySession(OneLinkSession):
    link_down = LinkDown
    _link: FramedLink | None

    def __init__(
        self,
        label: str,
        host: str,
        port: int,
        *,
        window: int,
        response_timeout: float,
        connect_timeout: float,
        backoff: tuple[float, float],
        keepalive: float | None,
    ) -> None:
        super().__init__(label, backoff=backoff, keepalive=keepalive)
        self._address = (host, port)
        self._window = window
        self._response_timeout = response_timeout
        self._connect_timeout = connect_timeout
        self._link: FramedLink | None = None

    async def request(
        self, command: int, body: bytes, *, wait: float, on_response: Callable[[Frame], None] | None = None
    ) -> Frame:
        if not await self.wait_bound(wait) or self._link is None:
            raise LinkDown("未登录到短信网关")
        return await self._link.request(command, body, on_response=on_response)

    # What a protocol supplies ---------------------------------------------------------------------------------

    def _sequence(self) -> bytes:
        raise NotImplementedError

    def _on_request(self, pdu: Frame) -> bytes | None:
        raise NotImplementedError

    async def _login(self, link: FramedLink) -> None:
        """Log in on the fresh link; raise ConnectionError naming the refusal in Chinese."""
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
        )
        await self._login(link)
