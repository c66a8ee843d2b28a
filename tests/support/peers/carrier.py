"""What the test gateways of the Chinese carriers (smgp_gateway, sgip_gateway; ismg its flow limit) share: the
knobs a test turns (throttle, a flow limit, drop, delay, undeliverable numbers, an MO message), the JSON record of
submits, the concatenation UDH a peer checks the content against, and running as a process that prints READY.
The protocols themselves stay in each peer, written from its own spec."""

import argparse
import asyncio
import contextlib
import json
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any


class Refused(Exception):
    """A PDU the peer refuses, with the spec's status/result code."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code = code


def udh_concatenation(content: bytes) -> dict | None:
    """3GPP TS 23.040 IEI 0 (8-bit reference) in the content's user data header, with the header's length."""
    if len(content) < 6 or content[0] + 1 > len(content):
        return None
    header, position = content[1 : 1 + content[0]], 0
    while position + 2 <= len(header):
        iei, size = header[position], header[position + 1]
        if iei == 0x00 and size == 3:
            data = header[position + 2 : position + 5]
            return {"ref": data[0], "total": data[1], "part": data[2], "header_length": 1 + content[0]}
        position += 2 + size
    return None


def arguments(description: str, extra: Callable[[argparse.ArgumentParser], None]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--receipt-delay", type=float, default=0.2)
    parser.add_argument("--throttle-first", type=int, default=0)
    parser.add_argument("--throttle-after", type=int, default=0, help="submits answered before throttling starts")
    parser.add_argument("--undeliverable-prefix", default="")
    parser.add_argument("--drop-after", type=int, default=0)
    parser.add_argument("--response-delay", type=float, default=0.0)
    parser.add_argument("--max-rate", type=float, default=0.0, help="submits accepted per second; 0: no limit")
    parser.add_argument("--mo", default="", help="SOURCE=TEXT sent once after the first login")
    extra(parser)
    return parser.parse_args()


class FlowCap:
    """A gateway's flow limit: at most `per_second` submits accepted in any one second (the carriers grant an SP a
    rate per account); what comes faster is refused with the protocol's flow-control code. 0: no limit."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self.refused = 0
        self._accepted: deque[float] = deque()

    def over(self) -> bool:
        if not self.per_second:
            return False
        now = time.monotonic()
        while self._accepted and now - self._accepted[0] >= 1.0:
            self._accepted.popleft()
        if len(self._accepted) >= self.per_second:
            self.refused += 1
            return True
        self._accepted.append(now)
        return False


class Knobs:
    """The test's knobs over one peer process's submits."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._record = open(args.record, "a", buffering=1)  # noqa: SIM115  (one line per submit, flushed)
        self._throttle_left, self._skip_left = args.throttle_first, args.throttle_after
        self._accepted = 0
        self._dropped = self._mo_sent = False
        self.cap = FlowCap(args.max_rate)
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def throttle(self, busy: int) -> None:
        """Raise Refused(busy) while the test asked for throttling, or past the flow limit."""
        if self.cap.over():
            raise Refused(busy, "flow limit")
        if self._skip_left > 0:
            self._skip_left -= 1
        elif self._throttle_left > 0:
            self._throttle_left -= 1
            raise Refused(busy, "throttled")

    def undeliverable(self, number: str) -> bool:
        return bool(self.args.undeliverable_prefix) and number.startswith(self.args.undeliverable_prefix)

    async def answer(self, line: dict, accepted: bool, send_answer: Callable[[], None]) -> bool:
        """Record the submit, answer it after any delay; True when the connection is to be dropped now."""
        self._record.write(json.dumps(line, ensure_ascii=False) + "\n")
        if self.args.response_delay:
            await asyncio.sleep(self.args.response_delay)
        send_answer()
        if not accepted:
            return False
        self._accepted += 1
        if self.args.drop_after and self._accepted == self.args.drop_after and not self._dropped:
            self._dropped = True
            return True
        return False

    def after_login(self, send_mo: Callable[[str, str], Awaitable[None]]) -> None:
        """The MO message the test asked for, once, shortly after the first login."""
        if self.args.mo and not self._mo_sent:
            self._mo_sent = True
            source, _, text = self.args.mo.partition("=")
            self.spawn(self._later(send_mo(source, text)))

    async def _later(self, work: Awaitable[None]) -> None:
        await asyncio.sleep(0.2)
        await work


def run(serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], port: int) -> None:
    """Listen on 127.0.0.1:`port`, print READY, serve until SIGTERM."""

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", port)
        print("READY", flush=True)
        async with server:
            await server.serve_forever()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        asyncio.run(main())
