"""The Janus API session: the Unix-socket framing inside the shared reconnecting link.

`Transport` frames: one JSON message per SOCK_SEQPACKET packet on Janus's pfunix transport. `switchboard.core.link`
holds the policy (reconnect with back-off, keepalives, state). `JanusSession` supplies the Janus steps: connect,
create a Janus session and attach one VideoRoom and one AudioBridge handle, send keepalives (well inside Janus's 60 s
session timeout, and a refused one means Janus restarted under us), and after every (re)connect call the resync
handlers so rooms are re-created. Requests sent while the link is down fail at once with `JanusLinkDown`: nothing is
replayed behind the caller's back.
"""

import asyncio
import json
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from switchboard.core.errors import Unavailable
from switchboard.core.link import LinkState, ReconnectingLink

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
AUDIOBRIDGE = "janus.plugin.audiobridge"
MAX_MESSAGE = 1 << 20


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


class JanusSession(ReconnectingLink):
    link_down = JanusLinkDown

    def __init__(
        self,
        api_socket: Path,
        *,
        keepalive: float = 20.0,
        request_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        super().__init__(f"Janus {api_socket}", backoff=backoff, keepalive=keepalive)
        self.api_socket = api_socket
        self.request_timeout = request_timeout
        self.session_id: int | None = None
        self.handles: dict[str, int] = {}  # plugin -> the session's handle on it
        self._transport: Transport | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._resync_handlers: list[ResyncHandler] = []

    def on_resync(self, handler: ResyncHandler) -> None:
        self._resync_handlers.append(handler)

    # Requests -------------------------------------------------------------------------------------------------

    async def request(self, body: dict[str, Any], plugin: str = VIDEOROOM) -> dict[str, Any]:
        """A synchronous request of the VideoRoom (create, kick, moderate, listparticipants...) or AudioBridge
        plugin: its plugin data."""
        if self.state != LinkState.up:
            raise JanusLinkDown(self.last_error)
        reply = await self._call(self._frame("message", handle_id=self.handles.get(plugin), body=body))
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

    # The Janus steps of the link ------------------------------------------------------------------------------

    async def _connect(self) -> None:
        self._transport = await Transport.connect(self.api_socket)
        self._reader = asyncio.create_task(self._read(self._transport), name="janus-reader")
        created = await self._call(self._frame("create"))
        self.session_id = created["data"]["id"]
        for plugin in (VIDEOROOM, AUDIOBRIDGE):
            attached = await self._call(self._frame("attach", plugin=plugin))
            self.handles[plugin] = attached["data"]["id"]

    async def _resync(self) -> None:
        for handler in self._resync_handlers:
            try:
                await handler()
            except Exception:
                log.exception("Janus resync handler failed")

    async def _until_lost(self) -> None:
        reader = self._reader
        assert reader is not None
        await asyncio.wait([reader])  # not `await reader`: cancelling this wait must leave the reader running
        reader.result()

    async def _ping(self) -> None:
        reply = await self._call(self._frame("keepalive"))
        if reply.get("janus") != "ack":  # e.g. "No such session": Janus restarted under us
            raise ConnectionError(f"keepalive refused: {reply.get('error', reply)}")

    async def _farewell(self) -> None:
        if self._transport is not None:
            await self._transport.send(self._frame("destroy"))

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

    def _disconnect(self, reason: str) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.session_id = None
        self.handles = {}
        for future in self._pending.values():
            if not future.done():
                future.set_exception(JanusLinkDown(reason))
        self._pending.clear()
