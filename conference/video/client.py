"""A Janus session of its own, on its own connection to the Unix-socket API: one per browser in a room (the control
plane relays the join page's signalling through it) and one per camera feed.

Janus ties a session to the transport connection that created it: when the connection closes, Janus ends the
session and every handle in it (publisher and subscribers alike). Closing a client is therefore how the control
plane cuts a site off, whatever its browser does. Plugin requests such as join, configure and start are
asynchronous in Janus (an `ack`, then an `event` with the same transaction); `message` waits for that event.
Events nobody waits for (room notifications, hangups) go to `events`.
"""

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conference.video.session import VIDEOROOM, JanusLinkDown, Transport

KEEPALIVE_SECONDS = 25.0  # Janus ends a session after 60 s without a message


@dataclass(frozen=True)
class Reply:
    """A plugin's answer to a message: its data and, for offers and answers, the SDP."""

    data: dict[str, Any]
    jsep: dict[str, Any] | None

    @property
    def error(self) -> tuple[int, str] | None:
        if "error_code" in self.data or "error" in self.data:
            return int(self.data.get("error_code", 0)), str(self.data.get("error", ""))
        return None


class JanusClient:
    def __init__(self, transport: Transport, timeout: float) -> None:
        self.transport = transport
        self.timeout = timeout
        self.session_id = 0
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self.closed = asyncio.Event()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ack_answers: set[str] = set()  # transactions an `ack` answers (keepalives, trickles)
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, api_socket: Path, timeout: float = 10.0) -> "JanusClient":
        try:
            transport = await Transport.connect(api_socket)
        except OSError as exc:
            raise JanusLinkDown(str(exc)) from None
        client = cls(transport, timeout)
        client._tasks.append(asyncio.create_task(client._read(), name="janus-client-reader"))
        try:
            client.session_id = (await client._call({"janus": "create"}))["data"]["id"]
        except BaseException:
            await client.close()
            raise
        client._tasks.append(asyncio.create_task(client._keepalive(), name="janus-client-keepalive"))
        return client

    async def attach(self, plugin: str = VIDEOROOM) -> int:
        return int((await self._call({"janus": "attach", "plugin": plugin}))["data"]["id"])

    async def detach(self, handle: int) -> None:
        with contextlib.suppress(JanusLinkDown):
            await self._call({"janus": "detach", "handle_id": handle})

    async def trickle(self, handle: int, candidate: dict[str, Any]) -> None:
        """One ICE candidate of the browser's for `handle` (or {"completed": true}); Janus acknowledges it."""
        await self._call({"janus": "trickle", "handle_id": handle, "candidate": candidate})

    async def message(self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> Reply:
        frame: dict[str, Any] = {"janus": "message", "handle_id": handle, "body": body}
        if jsep is not None:
            frame["jsep"] = jsep
        reply = await self._call(frame)
        return Reply(reply.get("plugindata", {}).get("data", {}), reply.get("jsep"))

    async def next_event(self) -> dict[str, Any] | None:
        """The next event nobody waited for; None once the session has ended and every event was taken."""
        while self.events.empty():
            if self.closed.is_set():
                return None
            get = asyncio.create_task(self.events.get())
            closed = asyncio.create_task(self.closed.wait())
            await asyncio.wait([get, closed], return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            if get.done():
                return get.result()
            get.cancel()
        return self.events.get_nowait()

    async def close(self) -> None:
        """End the session (Janus would on the closed connection alone; saying so is quicker)."""
        if not self.closed.is_set() and self.session_id:
            with contextlib.suppress(OSError):
                await self.transport.send(self._frame({"janus": "destroy"}))
        self._shut()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _frame(self, fields: dict[str, Any]) -> dict[str, Any]:
        frame = {"transaction": secrets.token_hex(8), **fields}
        if self.session_id:
            frame["session_id"] = self.session_id
        return frame

    async def _call(self, fields: dict[str, Any]) -> dict[str, Any]:
        if self.closed.is_set():
            raise JanusLinkDown("会话已结束")
        frame = self._frame(fields)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[frame["transaction"]] = future
        if fields["janus"] in ("keepalive", "trickle"):
            self._ack_answers.add(frame["transaction"])
        try:
            await self.transport.send(frame)
            reply = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise JanusLinkDown(f"{fields['janus']} 超时") from None
        except OSError as exc:
            raise JanusLinkDown(str(exc)) from None
        finally:
            self._pending.pop(frame["transaction"], None)
            self._ack_answers.discard(frame["transaction"])
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            raise JanusLinkDown(f"{error.get('reason', '')}（{error.get('code', 0)}）")
        return reply

    async def _read(self) -> None:
        try:
            while True:
                message = await self.transport.receive()
                transaction = message.get("transaction", "")
                future = self._pending.get(transaction)
                if future is not None and not future.done():
                    if message.get("janus") == "ack" and transaction not in self._ack_answers:
                        continue  # an asynchronous request: its event follows
                    future.set_result(message)
                elif message.get("janus") in ("event", "hangup", "webrtcup", "media", "slowlink", "detached"):
                    if self.events.full():
                        raise ConnectionError("client too slow to take Janus events")
                    self.events.put_nowait(message)
                elif message.get("janus") == "timeout":
                    raise ConnectionError("Janus session timed out")
        except (ConnectionError, OSError, ValueError):
            pass
        finally:
            self._shut()

    async def _keepalive(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(KEEPALIVE_SECONDS)
            try:
                await self._call({"janus": "keepalive"})
            except JanusLinkDown:
                self._shut()

    def _shut(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.transport.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(JanusLinkDown("会话已结束"))
