"""A link that reconnects: the connection policy the AMI, Janus and SMS gateway sessions share.

As in Twisted, a protocol (panoramisk's AMI framing, the Janus pfunix transport, the SMS gateways' `FramedLink`)
parses bytes and emits events; the service around it holds the policy. `ReconnectingLink` is that service: it
connects, resynchronises whoever depends on the peer after every connect, proves the connection alive every
`keepalive` seconds, notices it lost, reconnects with capped exponential back-off (with jitter, never blocking the
loop), and reports its state (`state`, `last_error`, `on_state` listeners, `health()`). A session subclasses it and
supplies only what differs from peer to peer: `_connect`, `_until_lost`, `_disconnect`, and where it has them
`_resync`, `_ping` and `_farewell`.
"""

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from enum import StrEnum

log = logging.getLogger(__name__)


class LinkState(StrEnum):
    down = "down"
    connecting = "connecting"
    up = "up"


StateListener = Callable[[LinkState], Awaitable[None] | None]


class ReconnectingLink:
    link_down: type[Exception] = ConnectionError  # what `wait_up` raises; a session names its own

    def __init__(
        self, label: str, *, backoff: tuple[float, float] = (0.2, 5.0), keepalive: float | None = None
    ) -> None:
        """`backoff` is (first delay, cap) in seconds; `keepalive` the seconds between pings (None: no pings)."""
        self.label = label  # names the peer in logs
        self.backoff = backoff
        self.keepalive = keepalive
        self.state = LinkState.down
        self.last_error = ""  # why the link is not up; cleared when it comes up
        self.connects = 0  # times the link came up and was resynchronised: a peer restart adds one
        self._listeners: list[StateListener] = []
        self._runner: asyncio.Task[None] | None = None
        self._up = asyncio.Event()

    def on_state(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name=f"link {self.label}")

    async def stop(self) -> None:
        """Stop reconnecting, say goodbye if up, drop the connection. Never raises; `start` may follow."""
        runner, self._runner = self._runner, None
        while runner is not None and not runner.done():
            # Again until it ends: Python 3.11's wait_for can swallow a cancel that meets an answer arriving (a
            # keepalive every 0.1 s under load hung a test's stop for good). The connection survives the runner:
            # the farewell still goes out on it.
            runner.cancel()
            await asyncio.wait([runner], timeout=1.0)
        if self.state is LinkState.up:
            try:
                await asyncio.wait_for(self._farewell(), 1.0)
            except Exception as exc:  # noqa: BLE001 - a peer that does not answer goodbye is dropped anyway
                log.info("%s: farewell failed: %s", self.label, exc or type(exc).__name__)
        self._disconnect("stopped")
        await self._set_state(LinkState.down)

    async def wait_up(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            raise self.link_down(self.last_error or "等待连接超时") from None

    def health(self) -> dict[str, str]:
        """For /healthz: "ok" only while up; while not, the last error if there is one."""
        report = {"status": "ok" if self.state is LinkState.up else "down", "link": self.state.value}
        if self.state is not LinkState.up and self.last_error:
            report["error"] = self.last_error
        return report

    # What a session supplies ----------------------------------------------------------------------------------

    async def _connect(self) -> None:
        """Open the connection and complete the handshake (login, session, bind); raise if that fails."""
        raise NotImplementedError

    async def _until_lost(self) -> None:
        """Return or raise once the open connection is gone."""
        raise NotImplementedError

    def _disconnect(self, reason: str) -> None:
        """Drop the connection, if any, and fail whatever still waits for an answer on it with `reason`."""
        raise NotImplementedError

    async def _resync(self) -> None:
        """Runs after every connect, once up: bring dependants back in step with a peer that may have restarted."""

    async def _ping(self) -> None:
        """One keepalive round trip; raise if the peer does not answer."""

    async def _farewell(self) -> None:
        """The goodbye `stop` sends on a link that is up (logoff, unbind, destroy)."""

    # The policy -----------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.backoff[0]
        while True:
            await self._set_state(LinkState.connecting)
            try:
                await self._connect()
                await self._set_state(LinkState.up)
                delay = self.backoff[0]
                await self._resync()
                self.connects += 1
                await self._serve()
            except asyncio.CancelledError:
                raise  # stopped: `stop` says goodbye and disconnects
            except Exception as exc:  # noqa: BLE001 - refused, timed out, rejected, lost: all go round again
                detail = str(exc)
                self.last_error = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
            log.warning("%s: %s; reconnecting in about %.1f s", self.label, self.last_error, delay)
            self._disconnect(self.last_error)
            await self._set_state(LinkState.down)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff[1])

    async def _serve(self) -> None:
        """Until the connection is lost, pinging every `keepalive` seconds meanwhile. Always raises."""
        lost = asyncio.ensure_future(self._until_lost())
        try:
            while not lost.done():
                if not (await asyncio.wait([lost], timeout=self.keepalive))[0]:
                    await self._ping()
            lost.result()
        finally:
            lost.cancel()
            await asyncio.wait([lost])
        raise ConnectionError("connection lost")

    async def _set_state(self, state: LinkState) -> None:
        if state is self.state:
            return
        self.state = state
        if state is LinkState.up:
            self.last_error = ""
            self._up.set()
        else:
            self._up.clear()
        for listener in self._listeners:
            try:
                result = listener(state)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("%s: state listener failed", self.label)
