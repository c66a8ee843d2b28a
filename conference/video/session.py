"""The Janus API session: connection policy around the Unix-socket framing.

`Transport` frames: one JSON message per SOCK_SEQPACKET packet on Janus's pfunix transport. `JanusSession`
decides the policy: it connects, creates a Janus session and attaches one VideoRoom handle, keeps them alive
(keepalive well inside Janus's 60 s session timeout), notices a lost link or a restarted Janus, reconnects with
backoff without blocking the loop, and after every (re)connect calls the resync handlers so rooms are re-created.
Requests sent while the link is down fail at once with `JanusLinkDown`: nothing is replayed behind the caller's
back.
"""

import asyncio
import contextlib
import json
import logging
import random
import secrets
import socket
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from switchboard.core.errors import Unavailable

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
MAX_MESSAGE = 1 << 20


class LinkState(StrEnum):
    down = "down"
    connecting = "connecting"
    up = "up"


class JanusLinkDown(Unavailable):
    def __init__(self, detail: str = "") -> None:
        super().__init__("视频会商引擎（Janus）连接中断，请稍后重试" + (f"：{detail}" if detail else ""))


class JanusRequestFailed(Unavailable):
    """Janus or its plugin answered a request with an error."""

    def __init__(self, request: str, code: int, reason: str) -> None:
        super().__init__(f"Janus 拒绝了 {request}：{reason}（{code}）")
        self.request, self.code, self.reason = request, code, reason


class Transport:
    """One connection to the pfunix API socket; `receive` yields whole JSON messages."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    async def connect(cls, path: Path) -> "Transport":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, str(path))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    async def send(self, message: dict[str, Any]) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, json.dumps(message).encode())

    async def receive(self) -> dict[str, Any]:
        data = await asyncio.get_running_loop().sock_recv(self.sock, MAX_MESSAGE)
        if not data:
            raise ConnectionError("Janus closed the API socket")
        return json.loads(data)

    def close(self) -> None:
        self.sock.close()


ResyncHandler = Callable[[], Awaitable[None]]


class JanusSession:
    def __init__(
        self,
        api_socket: Path,
        *,
        keepalive: float = 20.0,
        request_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.2, 10.0),
    ) -> None:
        self.api_socket = api_socket
        self.keepalive, self.request_timeout, self.backoff = keepalive, request_timeout, backoff
        self.state = LinkState.down
        self.last_error = ""
        self.session_id: int | None = None
        self.handle_id: int | None = None
        self.connects = 0  # how many times the link came up and was resynced (a Janus restart adds one)
        self._transport: Transport | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._resync: list[ResyncHandler] = []
        self._state_listeners: list[Callable[[LinkState], Awaitable[None]]] = []
        self._runner: asyncio.Task[None] | None = None
        self._up = asyncio.Event()

    def on_resync(self, handler: ResyncHandler) -> None:
        self._resync.append(handler)

    def on_state(self, listener: Callable[[LinkState], Awaitable[None]]) -> None:
        self._state_listeners.append(listener)

    def start(self) -> None:
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="janus-session")

    async def stop(self) -> None:
        if self._runner:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        with contextlib.suppress(Exception):
            if self.state == LinkState.up and self._transport:
                await asyncio.wait_for(self._transport.send(self._frame("destroy")), 1)
        self._close("stopped")
        await self._set_state(LinkState.down)

    async def wait_up(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            raise JanusLinkDown(self.last_error or "等待连接超时") from None

    # Requests -------------------------------------------------------------------------------------------------

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous VideoRoom request (create, kick, moderate, listparticipants...): its plugin data."""
        if self.state != LinkState.up:
            raise JanusLinkDown(self.last_error)
        reply = await self._call(self._frame("message", handle_id=self.handle_id, body=body))
        data = reply.get("plugindata", {}).get("data", {})
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            raise JanusRequestFailed(str(body.get("request")), error.get("code", 0), error.get("reason", ""))
        if "error_code" in data or data.get("videoroom") == "event" and "error" in data:
            raise JanusRequestFailed(str(body.get("request")), data.get("error_code", 0), data.get("error", ""))
        return data

    def _frame(self, kind: str, **fields: Any) -> dict[str, Any]:
        frame = {"janus": kind, "transaction": secrets.token_hex(8), **fields}
        if self.session_id is not None and kind != "create":
            frame["session_id"] = self.session_id
        return frame

    async def _call(self, frame: dict[str, Any]) -> dict[str, Any]:
        transport = self._transport
        if transport is None:
            raise JanusLinkDown(self.last_error)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[frame["transaction"]] = future
        try:
            await transport.send(frame)
            return await asyncio.wait_for(future, self.request_timeout)
        except TimeoutError:
            raise JanusLinkDown(f"{frame['janus']} 超时") from None
        except (ConnectionError, OSError) as exc:
            raise JanusLinkDown(str(exc)) from None
        finally:
            self._pending.pop(frame["transaction"], None)

    # Connection policy ----------------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.backoff[0]
        while True:
            await self._set_state(LinkState.connecting)
            reader: asyncio.Task[None] | None = None
            try:
                self._transport = await Transport.connect(self.api_socket)
                reader = asyncio.create_task(self._read(self._transport), name="janus-reader")
                created = await self._call(self._frame("create"))
                self.session_id = created["data"]["id"]
                attached = await self._call(self._frame("attach", plugin=VIDEOROOM))
                self.handle_id = attached["data"]["id"]
                await self._set_state(LinkState.up)
                delay = self.backoff[0]
                for handler in self._resync:
                    try:
                        await handler()
                    except Exception:
                        log.exception("Janus resync handler failed")
                self.connects += 1
                while not reader.done():
                    done, _ = await asyncio.wait({reader}, timeout=self.keepalive)
                    if not done:
                        reply = await self._call(self._frame("keepalive"))
                        if reply.get("janus") != "ack":  # e.g. "No such session": Janus restarted under us
                            raise ConnectionError(f"keepalive refused: {reply.get('error', reply)}")
                reader.result()
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionError, JanusLinkDown, KeyError, ValueError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                log.warning("Janus link lost: %s; reconnecting in %.1f s", self.last_error, delay)
            finally:
                if reader:
                    reader.cancel()
                self._close(self.last_error)
            await self._set_state(LinkState.down)
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, self.backoff[1])

    async def _read(self, transport: Transport) -> None:
        while True:
            message = await transport.receive()
            future = self._pending.get(message.get("transaction", ""))
            if future is not None:  # only synchronous requests and keepalives are sent: the first reply answers
                if not future.done():
                    future.set_result(message)
                continue
            if message.get("janus") in ("timeout", "detached") and message.get("session_id") == self.session_id:
                raise ConnectionError(f"Janus session {message['janus']}")

    def _close(self, reason: str) -> None:
        self._up.clear()
        if self._transport:
            self._transport.close()
            self._transport = None
        self.session_id = self.handle_id = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(JanusLinkDown(reason))
        self._pending.clear()

    async def _set_state(self, state: LinkState) -> None:
        if state == self.state:
            return
        self.state = state
        if state == LinkState.up:
            self._up.set()
            self.last_error = ""
        for listener in self._state_listeners:
            try:
                await listener(state)
            except Exception:
                log.exception("Janus state listener failed")
