"""An SMPP 3.4 transceiver session on asyncio.

`Link` is one TCP connection: framing, sequence numbers, the window (several requests in flight, each answer
matched to its request by sequence_number), and the answers the ESME owes the SMSC (deliver_sm_resp,
enquire_link_resp, unbind_resp, generic_nack). It knows nothing of reconnecting.

`Transceiver` is the policy around links, on the shared reconnecting link (`switchboard.core.link`, as Twisted
keeps it in a service around the protocol): connect and bind_transceiver, enquire_link every
`enquire_link_interval` (an unanswered one drops the link), reconnect with capped exponential back-off, unbind
on stop, and `submit_sm` that waits a little for a bound link rather than failing at once.
"""

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from broadcast.gateway_session import OneLinkSession
from broadcast.smpp import pdu

log = logging.getLogger(__name__)


class LinkDown(ConnectionError):
    """No bound link, or it went down before the answer came."""


@dataclass(frozen=True)
class Response:
    command_id: int
    status: int
    sequence: int
    body: Any  # the decoded smpplib PDU, or None when it had no body or did not parse


class Link:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        window: int,
        on_deliver_sm: Callable[[Any], None],
        response_timeout: float,
    ) -> None:
        self._reader, self._writer = reader, writer
        self._window = asyncio.Semaphore(window)
        self._on_deliver_sm = on_deliver_sm
        self._response_timeout = response_timeout
        self._sequences = itertools.cycle(range(1, 0x7FFFFFFF))
        self._pending: dict[int, tuple[asyncio.Future[Response], Callable[[Response], None] | None]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed_reason = "link closed"
        self._reading = asyncio.get_running_loop().create_task(self._read_loop(), name="smpp-link")

    @property
    def alive(self) -> bool:
        return not self._reading.done()

    async def closed(self) -> None:
        await asyncio.wait([self._reading])  # never raises, whether the read loop ended or was cancelled

    async def request(
        self, command: str, *, on_response: Callable[[Response], None] | None = None, **fields: Any
    ) -> Response:
        """Send one request and wait for its answer. `on_response` runs in the read loop, before any later PDU
        is read: a submit_sm's message id is known before the SMSC can send a receipt for it."""
        async with self._window:
            if not self.alive:
                raise LinkDown("link closed")
            sequence = next(self._sequences)
            future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
            self._pending[sequence] = (future, on_response)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                self._writer.write(pdu.encode(command, sequence, **fields))
                await self._writer.drain()
                return await asyncio.wait_for(future, self._response_timeout)
            except (OSError, RuntimeError) as exc:
                raise LinkDown(str(exc)) from exc
            finally:
                self.in_flight -= 1
                self._pending.pop(sequence, None)

    def close(self) -> None:
        self._reading.cancel()
        self._writer.close()

    async def _read_loop(self) -> None:
        try:
            while True:
                head = await self._reader.readexactly(pdu.HEADER.size)
                length, command_id, status, sequence = pdu.header(head)
                if not pdu.HEADER.size <= length <= pdu.MAX_PDU_LENGTH:
                    raise ConnectionError(f"bad command_length {length}")
                data = head + await self._reader.readexactly(length - pdu.HEADER.size)
                if command_id & pdu.RESPONSE_BIT:
                    self._answer(Response(command_id, status, sequence, _decode(data)))
                else:
                    self._serve(command_id, sequence, data)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            self.closed_reason = str(exc) or type(exc).__name__
            log.info("SMPP link closed: %s", self.closed_reason)
        finally:
            self._writer.close()
            for future, _ in self._pending.values():
                if not future.done():
                    future.set_exception(LinkDown("link closed before the answer"))

    def _answer(self, response: Response) -> None:
        entry = self._pending.get(response.sequence)
        if entry is None:
            log.warning("SMPP answer to unknown sequence %d", response.sequence)
            return
        future, on_response = entry
        if future.done():  # timed out meanwhile
            return
        if on_response is not None:
            try:
                on_response(response)
            except Exception:
                log.exception("SMPP on_response hook failed")
        future.set_result(response)

    def _serve(self, command_id: int, sequence: int, data: bytes) -> None:
        if command_id == pdu.DELIVER_SM:
            body = _decode(data)
            self._writer.write(pdu.encode("deliver_sm_resp", sequence, message_id=""))
            if body is not None:
                try:
                    self._on_deliver_sm(body)
                except Exception:
                    log.exception("SMPP deliver_sm handler failed")
        elif command_id == pdu.ENQUIRE_LINK:
            self._writer.write(pdu.encode("enquire_link_resp", sequence))
        elif command_id == pdu.UNBIND:
            self._writer.write(pdu.encode("unbind_resp", sequence))
            raise ConnectionError("SMSC unbound")
        else:
            self._writer.write(pdu.encode("generic_nack", sequence, status=pdu.ESME_RINVCMDID))


def _decode(data: bytes) -> Any:
    if len(data) <= pdu.HEADER.size:
        return None
    try:
        return pdu.decode(data)
    except Exception:
        log.warning("SMPP PDU did not parse: %s", data[:64].hex())
        return None


class Transceiver(OneLinkSession):
    link_down = LinkDown

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        system_type: str = "",
        window: int = 10,
        enquire_link_interval: float = 30.0,
        response_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.2, 5.0),
        on_deliver_sm: Callable[[Any], None] = lambda body: None,
    ) -> None:
        super().__init__(f"SMPP {host}:{port}", backoff=backoff, keepalive=enquire_link_interval)
        self._address = (host, port)
        self._credentials = (system_id, password, system_type)
        self._window = window
        self._response_timeout = response_timeout
        self._connect_timeout = connect_timeout
        self._on_deliver_sm = on_deliver_sm
        self._link: Link | None = None

    async def submit_sm(
        self, *, wait: float, on_response: Callable[[Response], None] | None = None, **fields: Any
    ) -> Response:
        if not await self.wait_bound(wait) or self._link is None:
            raise LinkDown("not bound to the SMSC")
        return await self._link.request("submit_sm", on_response=on_response, **fields)

    # The SMPP steps of the link -------------------------------------------------------------------------------

    async def _connect(self) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*self._address), self._connect_timeout)
        self._link = link = Link(
            reader,
            writer,
            window=self._window,
            on_deliver_sm=self._on_deliver_sm,
            response_timeout=self._response_timeout,
        )
        system_id, password, system_type = self._credentials
        answer = await link.request(
            "bind_transceiver",
            system_id=system_id,
            password=password,
            system_type=system_type,
            interface_version=0x34,
            addr_ton=0,
            addr_npi=0,
            address_range="",
        )
        if answer.status != pdu.ESME_ROK:
            raise ConnectionError(f"bind_transceiver refused: status 0x{answer.status:08X}")

    async def _ping(self) -> None:
        assert self._link is not None
        try:
            await self._link.request("enquire_link")
        except TimeoutError:  # the link is dead even if TCP has not noticed
            raise ConnectionError("enquire_link unanswered") from None

    async def _farewell(self) -> None:
        if self._link is not None:
            await self._link.request("unbind")
