"""Holding sends to a peer's rate.

`Pace` spaces them: one send at a time takes its turn, and the next may start 1/rate after this one really starts,
so a late wake-up (a busy event loop) never shortens a gap the peer sees; a pause the peer asked for (retry_after)
holds every turn until it ends. Right for peers that mind gaps (SMTP relays, the Bot API).

`FlowLimit` counts them as a carrier's SMS gateway does, at most `rate` in any one second: a send made late by a
busy loop is made up by the next ones (with Pace it is lost for good: at 300/s a millisecond late is a quarter of
the rate), never beyond what the gateway's own count allows. The second is taken a little longer than the
gateway's (`MARGIN`), so that submits arriving closer together than they left are not counted twice."""

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

MARGIN = 0.05  # seconds added to the gateway's one-second count


@dataclass
class Pace:
    next_send: float = 0.0  # monotonic time the next send may start
    paused_until: float = 0.0
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def wait(self, rate_per_second: float) -> None:
        async with self.turn:
            wait = max(self.next_send, self.paused_until) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.next_send = time.monotonic() + 1.0 / max(rate_per_second, 1e-6)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)


@dataclass
class FlowLimit:
    sent: deque[float] = field(default_factory=deque)  # monotonic start times within the last second and a margin
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def wait(self, rate_per_second: float) -> None:
        span = max(1.0, 1.0 / max(rate_per_second, 1e-6)) + MARGIN  # a rate under 1/s: one send per 1/rate
        limit = max(int(rate_per_second * (span - MARGIN)), 1)
        async with self.turn:
            while True:
                now = time.monotonic()
                while self.sent and now - self.sent[0] >= span:
                    self.sent.popleft()
                if len(self.sent) < limit:
                    break
                await asyncio.sleep(span - (now - self.sent[0]))
            self.sent.append(time.monotonic())
