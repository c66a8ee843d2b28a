"""One TCP connection to an SMS gateway (SMPP 3.4, CMPP 2.0/3.0, SMGP 3.0, SGIP 1.2): framing and the window.

All four frame a PDU as `total length (4) | command id (4) | [status (4)] | sequence | body`: only SMPP has the
status field (command_status), the sequence is 4 bytes except SGIP's 12, and every protocol sets bit 31 of the
command id on an answer, which carries its request's sequence. `FramedLink` sends requests, keeps up to `window`
of them in flight and matches each answer to its request by sequence; requests from the peer (deliver_sm,
DELIVER, Deliver, enquire_link, ACTIVE_TEST, unbind, TERMINATE, Exit) go to `on_request`, whose answer, if any,
is written back before the next PDU is read. Frames written in one turn of the event loop leave in one `send`
(`_write` buffers, `_flush` runs once at the end of the turn): at hundreds of PDUs a second, a system call per PDU
woke the gateway for each and cost the outbox four times the bare client loop's time in socket writes (py-spy,
BENCHMARKS.md). It knows nothing of logins or reconnecting: the session around it
(`broadcast.gateway_session`) holds that policy, and each protocol's session only its login and PDUs.
"""

import asyncio
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

RESPONSE_BIT = 0x80000000
MAX_PDU_LENGTH = 64 * 1024
_HEAD = struct.Struct(">LL")
_STATUS = struct.Struct(">L")


class LinkDown(ConnectionError):
    """No link logged in, or it went down before the answer came."""


class Goodbye(ConnectionError):
    """Raised by `on_request` when the peer ends the session (unbind, TERMINATE, Exit): `answer` is written, then
    the link closes, so that the session reconnects rather than wait on a peer that may never close it."""

    def __init__(self, answer: "Frame", reason: str) -> None:
        super().__init__(reason)
        self.answer = answer


@dataclass(frozen=True)
class Frame:
    command: int
    sequence: bytes  # as it came on the wire: 4 bytes, or 12 (SGIP)
    body: bytes
    status: int | None = None  # SMPP's command_status; the other protocols answer in the body

    def answer(self, body: bytes = b"", *, command: int | None = None, status: int | None = None) -> "Frame":
        """The answer to this request: its command with bit 31 set (unless `command`), its sequence."""
        return Frame(self.command | RESPONSE_BIT if command is None else command, self.sequence, body, status)


def frame(command: int, sequence: bytes, body: bytes = b"", status: int | None = None) -> bytes:
    """The wire bytes; `status` None leaves the status field out (all but SMPP)."""
    head = b"" if status is None else _STATUS.pack(status)
    return _HEAD.pack(_HEAD.size + len(head) + len(sequence) + len(body), command) + head + sequence + body


async def read_frame(reader: asyncio.StreamReader, sequence_size: int, *, status: bool = False) -> Frame:
    """One PDU; ConnectionError on a length no gateway would send."""
    length, command = _HEAD.unpack(await reader.readexactly(_HEAD.size))
    head = _STATUS.size if status else 0
    if not _HEAD.size + head + sequence_size <= length <= MAX_PDU_LENGTH:
        raise ConnectionError(f"bad PDU length {length}")
    rest = await reader.readexactly(length - _HEAD.size)
    code = _STATUS.unpack_from(rest)[0] if status else None
    return Frame(command, rest[head : head + sequence_size], rest[head + sequence_size :], code)


class FramedLink:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        sequences: Callable[[], bytes],
        window: int,
        response_timeout: float,
        on_request: Callable[[Frame], Frame | None],
        label: str,
        status: bool = False,
    ) -> None:
        """`status`: the protocol's header has SMPP's command_status field."""
        self._reader, self._writer = reader, writer
        self._sequences = sequences
        self._sequence_size = len(sequences())
        self._status = status
        self._window = asyncio.Semaphore(window)
        self._response_timeout = response_timeout
        self._on_request = on_request
        self._label = label
        self._pending: dict[bytes, tuple[asyncio.Future[Frame], Callable[[Frame], None] | None]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed_reason = "link closed"
        self._unsent: list[bytes] = []
        self._reading = asyncio.get_running_loop().create_task(self._read_loop(), name=f"{label} link")

    @property
    def alive(self) -> bool:
        return not self._reading.done()

    async def closed(self) -> None:
        await asyncio.wait([self._reading])  # never raises, whether the read loop ended or was cancelled

    async def request(
        self, command: int, body: bytes = b"", *, on_response: Callable[[Frame], None] | None = None
    ) -> Frame:
        """Send one request and wait for its answer. `on_response` runs in the read loop before any later PDU is
        read, so a submit's message id is known before the gateway can send a status report for it."""
        async with self._window:
            if not self.alive:
                raise LinkDown("link closed")
            sequence = self._sequences()
            future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
            self._pending[sequence] = (future, on_response)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                self._write(Frame(command, sequence, body, 0 if self._status else None))
                await self._writer.drain()
                async with asyncio.timeout(self._response_timeout):  # not wait_for: it can swallow a cancel (3.11)
                    return await future
            except (OSError, RuntimeError) as exc:
                raise LinkDown(str(exc)) from exc
            finally:
                self.in_flight -= 1
                self._pending.pop(sequence, None)

    def close(self) -> None:
        self._reading.cancel()
        self._flush()
        self._writer.close()

    def _write(self, pdu: Frame) -> None:
        status = (pdu.status or 0) if self._status else None
        if not self._unsent:
            asyncio.get_running_loop().call_soon(self._flush)
        self._unsent.append(frame(pdu.command, pdu.sequence, pdu.body, status))

    def _flush(self) -> None:
        if self._unsent and not self._writer.is_closing():
            self._writer.write(b"".join(self._unsent))
        self._unsent.clear()

    async def _read_loop(self) -> None:
        try:
            while True:
                pdu = await read_frame(self._reader, self._sequence_size, status=self._status)
                if pdu.command & RESPONSE_BIT:
                    self._answer(pdu)
                    continue
                try:
                    answer = self._on_request(pdu)
                except Goodbye as goodbye:
                    self._write(goodbye.answer)
                    raise
                except Exception:
                    log.exception("%s: handling command 0x%08X failed", self._label, pdu.command)
                    continue
                if answer is not None:
                    self._write(answer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            self.closed_reason = str(exc) or type(exc).__name__
            log.info("%s link closed: %s", self._label, self.closed_reason)
        finally:
            self._flush()
            self._writer.close()
            for future, _ in self._pending.values():
                if not future.done():
                    future.set_exception(LinkDown("link closed before the answer"))

    def _answer(self, pdu: Frame) -> None:
        entry = self._pending.get(pdu.sequence)
        if entry is None:
            log.warning("%s: answer to unknown sequence %s", self._label, pdu.sequence.hex())
            return
        future, on_response = entry
        if future.done():  # timed out meanwhile
            return
        if on_response is not None:
            try:
                on_response(pdu)
            except Exception:
                log.exception("%s: on_response hook failed", self._label)
        future.set_result(pdu)
