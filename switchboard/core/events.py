"""Domain events: subsystems publish, the incident timeline persists, the WebSocket fans out.

Publishing awaits every handler in turn, so an event that must land on a timeline has landed (or raised)
before the publisher goes on. Live listeners get a bounded queue each: a listener too slow to keep up is cut
off rather than let memory grow without bound. The bus numbers what it publishes and keeps the latest events, so a
console that reconnects asks for what it missed (`since`) instead of losing it.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from switchboard.core.db import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    type: str  # "<subject>.<what happened>", e.g. call.answered, incident.report_overdue
    data: dict[str, Any] = field(default_factory=dict)
    incident_id: str | None = None
    actor: str | None = None
    at: datetime = field(default_factory=utcnow)
    audience: frozenset[str] = frozenset()  # roles that may see it live; empty: every signed-in user
    seq: int = 0  # numbered by the bus on publishing (this process's order)

    @property
    def subject(self) -> str:
        return self.type.split(".", 1)[0]

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "type": self.type,
            "incident_id": self.incident_id,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "data": self.data,
        }


Handler = Callable[[Event], Awaitable[None]]


class Listener:
    """A live subscription: iterate it to receive events; `overflowed` is set when it fell behind."""

    def __init__(self, bus: "EventBus", size: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[Event] = asyncio.Queue(size)
        self.overflowed = asyncio.Event()

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed.set()

    def close(self) -> None:
        self._bus.listeners.discard(self)


class EventBus:
    def __init__(self, keep: int = 2000) -> None:
        self.handlers: list[Handler] = []
        self.listeners: set[Listener] = set()
        self.recent: deque[Event] = deque(maxlen=keep)
        # Numbers start from the clock (µs): a restarted process numbers above anything its predecessor sent, so a
        # client's `since` from before the restart is seen as a gap, never mistaken for a place in this run.
        self.last_seq = time.time_ns() // 1000

    def since(self, seq: int) -> list[Event] | None:
        """The events published after `seq`, or None when some of them are no longer kept (or `seq` is from
        before this process started): the caller must reload rather than replay."""
        if seq > self.last_seq or (seq < self.last_seq and (not self.recent or self.recent[0].seq > seq + 1)):
            return None
        return [e for e in self.recent if e.seq > seq]

    def subscribe(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def listen(self, size: int = 1000) -> Listener:
        listener = Listener(self, size)
        self.listeners.add(listener)
        return listener

    async def publish(self, event: Event) -> None:
        event = self._numbered(event)
        for handler in self.handlers:
            await handler(event)
        self._offer(event)

    def announce(self, event: Event) -> None:
        """Tell live listeners only (progress of long work): no handler runs, nothing is persisted."""
        self._offer(self._numbered(event))

    def _numbered(self, event: Event) -> Event:
        self.last_seq += 1
        event = replace(event, seq=self.last_seq)
        self.recent.append(event)
        return event

    def _offer(self, event: Event) -> None:
        for listener in list(self.listeners):
            listener.offer(event)
