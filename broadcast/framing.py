"""One TCP connection to a Chinese carrier's SMS gateway (SMGP 3.0, SGIP 1.2): framing and the window.

Both protocols frame a PDU as `total length (4) | command id (4) | sequence | body`, the sequence 4 bytes in
SMGP and 12 in SGIP, and set bit 31 of the command id on an answer, which carries its request's sequence.
`FramedLink` sends requests, keeps up to `window` of them in flight and matches each answer to its request by
sequence; requests from the peer (Deliver, Active_Test, Report, Exit/Unbind) go to `on_request`, whose bytes,
if any, are the answer written back before the next PDU is read. It knows nothing of logins or reconnecting:
the session around it (`broadcast.smgp.session`, `broadcast.sgip.session`) holds that policy.
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


class LinkDown(ConnectionError):
    """No link logged in, or it went down before the answer came."""


@dataclass(frozen=True)
class Frame:
    command: int
    sequence: bytes  # as it came on the wire: 4 bytes (SMGP) or 12 (SGIP)
    body: bytes


def frame(command: int, sequence: bytes, body: bytes = b"") -> bytes:
    return _HEAD.pack(_HEAD.size + len(sequence) + len(body), command) + sequence + body


async def read_frame(reader: asyncio.StreamReader, sequence_size: int) -> Frame:
    """One PDU; ConnectionError on a length no gateway would send."""
    length, command = _HEAD.unpack(await reader.readexactly(_HEAD.size))
    if not _HEAD.size + sequence_size <= length <= MAX_PDU_LENGTH:
        raise ConnectionError(f"bad PDU length {length}")
    rest = await reader.readexactly(length - _HEAD.size)
    return Frame(command, rest[:sequence_size], rest[sequence_size:])


class FramedLink:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        sequences: Callable[[], bytes],
        window: int,
        response_timeout: float,
        on_request: Callable[[Frame], bytes | None],
        label: str,
    ) -> None:
        self._reader, self._writer = reader, writer
        self._sequences = sequences
        self._sequence_size = len(sequences())
        self._window = asyncio.Semaphore(window)
        self._response_timeout = response_timeout
        self._on_request = on_request
        self._label = label
        self._pending: dict[bytes, tuple[asyncio.Future[Frame], Callable[[Frame], None] | None]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed_reason = "link closed"
        self._reading = asyncio.get_running_loop().create_task(self._read_loop(), name=f"{label} link")

    @property
    def alive(self) -> bool:
        return not self._reading.done()

    async def closed(self) -> None:
        await asyncio.wait([self._reading])

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
                self._writer.write(frame(command, sequence, body))
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
                pdu = await read_frame(self._reader, self._sequence_size)
                if pdu.command & RESPONSE_BIT:
                    self._answer(pdu)
                    continue
                try:
                    answer = self._on_request(pdu)
                except Exception:
                    log.exception("%s: handling command 0x%08X failed", self._label, pdu.command)
                    continue
                if answer is not None:
                    self._writer.write(frame(pdu.command | RESPONSE_BIT, pdu.sequence, answer))
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            self.closed_reason = str(exc) or type(exc).__name__
            log.info("%s link closed: %s", self._label, self.closed_reason)
        finally:
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
        if future.done():
            return
        if on_response is not None:
            try:
                on_response(pdu)
            except Exception:
                log.exception("%s: on_response hook failed", self._label)
        future.set_result(pdu)
