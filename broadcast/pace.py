"""Spacing sends at a peer's rate: one send at a time takes its turn, and the next may start 1/rate after this one
really starts, so a late wake-up (a busy event loop) never shortens a gap the peer sees; a pause the peer asked for
(retry_after) holds every turn until it ends."""

import asyncio
import time
from dataclasses import dataclass, field


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
