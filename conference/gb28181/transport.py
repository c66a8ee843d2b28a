"""SIP transports and transactions over asyncio: one UDP socket and one TCP listener on the same port.

Client transactions (RFC 3261 17.1) are matched by the top Via's branch and method; over UDP a request is sent again
at T1, 2*T1, ... up to T2 until a final answer or the deadline. Server transactions are matched the same way: a
retransmitted request gets the answer already given, the handler runs once. Requests a device sends on a TCP
connection are answered on it, and requests to a device that registered over TCP go out on that connection."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from conference.gb28181.message import Framer, Message, ParseError, new_branch, parse, response, token

log = logging.getLogger(__name__)

T1, T2 = 0.5, 4.0
ANSWERED_KEPT_SECONDS = 32.0  # Timer J: how long an answer is kept for retransmitted requests


@dataclass(frozen=True)
class Peer:
    """Where a message came from or goes to: the transport and the address."""

    transport: str  # "UDP" or "TCP"
    host: str
    port: int


Handler = Callable[[Message, Peer], Awaitable[Message | None]]


class Timeout(Exception):
    """No final answer within the deadline."""


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, endpoint: "Endpoint") -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.strip(b"\r\n"):
            self.endpoint.received(data, Peer("UDP", addr[0], addr[1]))


class Endpoint:
    """One SIP address (host, port) on UDP and TCP; `handler` answers requests that are not retransmissions."""

    def __init__(self, host: str, port: int, handler: Handler) -> None:
        self.host, self.port, self.handler = host, port, handler
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._streams: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[Message]] = {}
        self._answered: dict[tuple[str, str], tuple[float, Message | None]] = {}
        self._trying: set[tuple[str, str]] = set()  # INVITEs with a provisional answer: no more retransmissions
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, self.port))
        self.port = self._udp.get_extra_info("sockname")[1]  # port 0: the one the system chose (tests)
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tcp:
            self._tcp.close()
        for writer in list(self._streams.values()):
            writer.close()
        if self._udp:
            self._udp.close()

    def via(self, transport: str) -> str:
        return f"SIP/2.0/{transport} {self.host}:{self.port};rport;branch={new_branch()}"

    def contact(self, user: str) -> str:
        return f"<sip:{user}@{self.host}:{self.port}>"

    async def request(self, message: Message, peer: Peer, *, deadline: float = 8.0) -> Message:
        """Send a request and return its final answer (provisional ones are waited through)."""
        key = (message.branch, message.method)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            await self.send(message, peer)
            interval, give_up = T1, time.monotonic() + deadline
            while True:
                left = give_up - time.monotonic()
                wait = min(interval, left) if peer.transport == "UDP" else left
                if wait <= 0:
                    raise Timeout(f"{message.method} to {peer.host}:{peer.port}: no answer in {deadline:.0f} s")
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(future), wait)
                if key not in self._trying:
                    await self.send(message, peer)  # retransmission over UDP (17.1.1.2, 17.1.2.2)
                interval = min(interval * 2, T2)
        finally:
            self._pending.pop(key, None)
            self._trying.discard(key)

    async def send(self, message: Message, peer: Peer) -> None:
        data = message.encode()
        if peer.transport == "UDP":
            assert self._udp is not None
            self._udp.sendto(data, (peer.host, peer.port))
            return
        writer = self._streams.get((peer.host, peer.port))
        if writer is None or writer.is_closing():
            reader, writer = await asyncio.open_connection(peer.host, peer.port)
            self._streams[(peer.host, peer.port)] = writer
            self._spawn(self._read_stream(reader, writer, Peer("TCP", peer.host, peer.port)))
        writer.write(data)
        await writer.drain()

    def received(self, data: bytes, peer: Peer) -> None:
        try:
            message = parse(data)
        except (ParseError, ValueError) as exc:
            log.info("dropped a message from %s:%s: %s", peer.host, peer.port, exc)
            return
        if message.is_request:
            self._spawn(self._serve(message, peer))
            return
        key = (message.branch, message.method)
        if message.status < 200:
            self._trying.add(key)
        elif (future := self._pending.get(key)) and not future.done():
            future.set_result(message)

    async def _serve(self, request: Message, peer: Peer) -> None:
        key = (request.branch, request.method)
        now = time.monotonic()
        self._answered = {k: v for k, v in self._answered.items() if now - v[0] < ANSWERED_KEPT_SECONDS}
        if key in self._answered:
            if (answer := self._answered[key][1]) is not None:
                await self.send(answer, peer)  # where it came from (RFC 3581), on its TCP connection if any
            return
        self._answered[key] = (now, None)
        try:
            answer = await self.handler(request, peer)
        except Exception:
            log.exception("handling %s from %s failed", request.method, peer)
            answer = response(request, 500, "Server Internal Error")
        if answer is not None:
            self._answered[key] = (now, answer)
            await self.send(answer, peer)  # where it came from (RFC 3581), on its TCP connection if any

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        self._streams[(host, port)] = writer
        await self._read_stream(reader, writer, Peer("TCP", host, port))

    async def _read_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> None:
        framer = Framer()
        try:
            while data := await reader.read(65536):
                for raw in framer.feed(data):
                    self.received(raw, peer)
        except (ParseError, ConnectionError) as exc:
            log.info("TCP connection from %s:%s closed: %s", peer.host, peer.port, exc)
        finally:
            self._streams.pop((peer.host, peer.port), None)
            writer.close()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def new_request(endpoint: Endpoint, method: str, uri: str, *, from_user: str, to_uri: str, peer: Peer,
                call_id: str | None = None, from_tag: str | None = None, cseq: int = 1,
                headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                content_type: str | None = None) -> Message:  # fmt: skip
    """A request from our SIP id, with a fresh branch (and Call-ID and tag unless continuing a dialog)."""
    listed = [
        ("Via", endpoint.via(peer.transport)),
        ("From", f"<sip:{from_user}@{from_user[:10]}>;tag={from_tag or token(6)}"),
        ("To", to_uri),
        ("Call-ID", call_id or token(12)),
        ("CSeq", f"{cseq} {method}"),
        ("Max-Forwards", "70"),
        ("Contact", endpoint.contact(from_user)),
        ("User-Agent", "Switchboard GB28181"),
        *(headers or []),
    ]
    if content_type:
        listed.append(("Content-Type", content_type))
    return Message(f"{method} {uri} SIP/2.0", listed, body)
