"""Domain events: subsystems publish, the incident timeline persists, the WebSocket fans out.

Publishing awaits every handler in turn, so an event that must land on a timeline has landed (or raised)
before the publisher goes on. Live listeners get a bounded queue each: a listener too slow to keep up is cut
off rather than let memory grow without bound.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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

    @property
    def subject(self) -> str:
        return self.type.split(".", 1)[0]

    def as_json(self) -> dict[str, Any]:
        return {
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
    def __init__(self) -> None:
        self.handlers: list[Handler] = []
        self.listeners: set[Listener] = set()

    def subscribe(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def listen(self, size: int = 1000) -> Listener:
        listener = Listener(self, size)
        self.listeners.add(listener)
        return listener

    async def publish(self, event: Event) -> None:
        for handler in self.handlers:
            await handler(event)
        for listener in list(self.listeners):
            listener.offer(event)
