"""The reconnecting link (switchboard.core.link) against a real TCP server that the tests stop and restart.

The peer speaks a line protocol: it greets with "hello", answers "ping" with "pong" (unless told to hang) and
records what it hears. Waits are on state changes with deadlines; back-off is measured from each "down" to
the next "connecting", which is exactly the link's sleep.
"""

import asyncio
import logging
import time
from itertools import pairwise

import pytest

from switchboard.core.link import LinkState, ReconnectingLink


class Peer:
    """A line server on a fixed port; `stop` also drops the connections it holds, as a dying process would."""

    def __init__(self) -> None:
        self.port = 0
        self.hang = False  # accept and greet, but leave pings unanswered
        self.heard: list[str] = []
        self._heard = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def hears(self, line: str, count: int = 1, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while self.heard.count(line) < count:
                self._heard.clear()
                await self._heard.wait()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        writer.write(b"hello\n")
        try:
            while line := (await reader.readline()).decode().strip():
                self.heard.append(line)
                self._heard.set()
                if line == "ping" and not self.hang:
                    writer.write(b"pong\n")
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


class LineLink(ReconnectingLink):
    def __init__(self, port: int, **options: object) -> None:
        super().__init__(f"test peer {port}", **options)  # type: ignore[arg-type]
        self.port = port
        self.resyncs = 0
        self.changes: list[tuple[LinkState, float]] = []
        self.changed = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._pong: asyncio.Future[None] | None = None
        self.on_state(self._record)

    def _record(self, state: LinkState) -> None:
        self.changes.append((state, time.monotonic()))
        self.changed.set()

    async def until(self, condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(timeout):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        if await self._reader.readline() != b"hello\n":
            raise ConnectionError("no greeting")

    async def _resync(self) -> None:
        self.resyncs += 1

    async def _until_lost(self) -> None:
        assert self._reader is not None
        while line := await self._reader.readline():
            if line == b"pong\n" and self._pong is not None and not self._pong.done():
                self._pong.set_result(None)

    async def _ping(self) -> None:
        assert self._writer is not None
        self._pong = asyncio.get_running_loop().create_future()
        self._writer.write(b"ping\n")
        try:
            await asyncio.wait_for(self._pong, 0.3)
        except TimeoutError:
            raise ConnectionError("ping unanswered") from None

    async def _farewell(self) -> None:
        assert self._writer is not None
        self._writer.write(b"bye\n")
        await self._writer.drain()

    def _disconnect(self, reason: str) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = self._reader = None


def sleeps(changes: list[tuple[LinkState, float]]) -> list[float]:
    """Each back-off sleep: from a "down" to the "connecting" that follows it."""
    return [b[1] - a[1] for a, b in pairwise(changes) if (a[0], b[0]) == ("down", "connecting")]


async def test_backs_off_exponentially_up_to_the_cap_and_resets_once_up(caplog: pytest.LogCaptureFixture) -> None:
    peer = Peer()
    await peer.start()
    link = LineLink(peer.port, backoff=(0.1, 0.8))
    link.start()
    try:
        await link.wait_up(5)
        assert (link.connects, link.resyncs, link.health()) == (1, 1, {"status": "ok", "link": "up"})

        await peer.stop()
        await link.until(lambda: len(sleeps(link.changes)) >= 6)
        assert link.state is not LinkState.up and link.health()["status"] == "down"
        assert "ConnectionRefusedError" in link.health()["error"]
        gaps = sleeps(link.changes)
        for n, gap in enumerate(gaps):  # 0.1, 0.2, 0.4, 0.8, 0.8, 0.8, each with ±20 % jitter
            assert gap >= 0.8 * min(0.1 * 2**n, 0.8) - 0.01, gaps
        assert max(gaps) < 0.8 * 1.2 + 0.3, gaps  # capped: the 5th would be 1.6 s without the cap

        await peer.start()  # the same port
        await link.wait_up(5)
        assert (link.connects, link.resyncs, link.last_error) == (2, 2, "")

        link.changes.clear()
        await peer.stop()
        await link.until(lambda: len(sleeps(link.changes)) >= 1)
        assert sleeps(link.changes)[0] < 0.5  # back to the first delay after a good connection, not the cap
    finally:
        await link.stop()
        if peer.running:
            await peer.stop()
    assert link.state is LinkState.down
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_unanswered_ping_drops_the_link_and_it_comes_back() -> None:
    peer = Peer()
    await peer.start()
    link = LineLink(peer.port, backoff=(0.05, 0.2), keepalive=0.1)
    link.start()
    try:
        await link.wait_up(5)
        await peer.hears("ping", 2)
        assert link.state is LinkState.up and link.connects == 1  # answered pings keep the link

        peer.hang = True  # TCP stays up, nothing answers
        await link.until(lambda: link.state is not LinkState.up, timeout=5)
        assert link.last_error == "ConnectionError: ping unanswered"
        peer.hang = False
        await link.until(lambda: link.connects == 2, timeout=5)
        await link.stop()
        await peer.hears("bye")  # stopped while up: the farewell went out first
    finally:
        await link.stop()
        await peer.stop()


async def test_stop_while_reconnecting_leaves_no_task_and_wait_up_times_out() -> None:
    peer = Peer()
    await peer.start()
    await peer.stop()  # nothing listens on the port now
    link = LineLink(peer.port, backoff=(0.05, 0.2))
    before = asyncio.all_tasks()
    link.start()
    with pytest.raises(ConnectionError, match="ConnectionRefusedError"):
        await link.wait_up(0.5)
    await link.stop()
    await link.stop()
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert left == [] and link.state is LinkState.down
    assert [s for s, _ in link.changes][-1] == "down"
