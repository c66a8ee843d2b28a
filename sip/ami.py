"""The AMI session: panoramisk's framing inside the shared reconnecting link.

panoramisk parses and frames AMI messages (`AMIProtocol`, `Action`, `Message`); `switchboard.core.link` holds
the policy (reconnect with back-off, pings, state). This module supplies the AMI steps: connect and log in, ping,
and after every login hand the live channel list (`CoreShowChannels`) to whoever must resynchronise. Events are
handled one at a time in Asterisk's order, on two lanes: live-only events a subscriber names (a bridge's talking
indications) on one of their own, so that they never queue behind a burst of the others (a convene's joins).
Actions sent while the link is down fail at once with `AmiLinkDown` rather than being replayed later behind the
caller's back: an Originate replayed after a reconnect would ring someone twice.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from switchboard.core.errors import InvalidInput, Unavailable
from switchboard.core.link import LinkState, ReconnectingLink

log = logging.getLogger(__name__)

EventHandler = Callable[[Message], Awaitable[None] | None]
ResyncHandler = Callable[[list[Message]], Awaitable[None]]


class AmiLinkDown(Unavailable):
    def __init__(self, detail: str = "") -> None:
        super().__init__("电话引擎（Asterisk）连接中断，请稍后重试" + (f"：{detail}" if detail else ""))


class AmiActionFailed(Unavailable):
    """Asterisk answered `Response: Error` to an action."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"Asterisk 拒绝了 {action}：{message}")
        self.action = action
        self.asterisk_message = message


class _Connection:
    """The factory panoramisk's protocol reports to: one per TCP connection, so a late callback from an old
    connection can never disturb a newer one."""

    forgetable_actions = ("ping", "login")

    def __init__(self, session: "AmiSession") -> None:
        self.session = session
        self.awaiting_actions: deque[Action] = deque()  # panoramisk parks unanswered actions here; we fail them
        self.lost = asyncio.Event()
        self.protocol: AMIProtocol | None = None

    def dispatch(self, message: Message) -> None:
        self.session._dispatch(message)

    def connection_lost(self, exc: object) -> None:
        self.lost.set()


class AmiSession(ReconnectingLink):
    link_down = AmiLinkDown

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        ping_interval: float = 5.0,
        ping_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.5, 5.0),
    ) -> None:
        super().__init__(f"AMI {host}:{port}", backoff=backoff, keepalive=ping_interval)
        self.host, self.port, self.username, self._secret = host, port, username, secret
        self.ping_timeout = ping_timeout
        self._connection: _Connection | None = None
        self._handlers: list[EventHandler] = []
        self._resync_handlers: list[ResyncHandler] = []
        self._live_names: set[str] = set()
        self._live_handlers: list[EventHandler] = []
        self._consumers: list[asyncio.Task[None]] = []
        self._events: asyncio.Queue[Message] = asyncio.Queue()
        self._live: asyncio.Queue[Message] = asyncio.Queue()

    # Subscriptions --------------------------------------------------------------------------------------------

    def on_event(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def on_live_event(self, names: set[str], handler: EventHandler) -> None:
        """Hand the events `names` to `handler` on the live lane (and to no `on_event` handler): in order among
        themselves, but not after the other events received before them."""
        self._live_names |= names
        self._live_handlers.append(handler)

    def on_resync(self, handler: ResyncHandler) -> None:
        self._resync_handlers.append(handler)

    # Lifecycle: the link, and the consumer that hands its events on ------------------------------------------

    def start(self) -> None:
        super().start()
        if not self._consumers:
            self._consumers = [
                asyncio.create_task(self._consume(self._events, self._handlers), name="ami-events"),
                asyncio.create_task(self._consume(self._live, self._live_handlers), name="ami-live-events"),
            ]

    async def stop(self) -> None:
        await super().stop()
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            consumer.cancel()
        if consumers:
            await asyncio.wait(consumers)

    # Actions --------------------------------------------------------------------------------------------------

    async def action(self, fields: dict[str, Any], *, as_list: bool | None = None, timeout: float = 10.0) -> Any:
        """Send one action and await its response (a Message, or the list of them for list actions)."""
        for key, value in fields.items():
            for item in value if isinstance(value, list | tuple) else [value]:
                if any(ch in str(item) for ch in "\r\n"):
                    # A line break would start a new AMI header: the one way to inject into the protocol.
                    raise InvalidInput(f"AMI 字段 {key} 含换行符", field=key)
        connection = self._connection
        if self.state is not LinkState.up or connection is None or connection.protocol is None:
            raise AmiLinkDown(self.last_error)
        future = connection.protocol.send(Action(dict(fields), as_list=as_list), as_list=as_list)
        lost = asyncio.ensure_future(connection.lost.wait())
        try:
            done, _ = await asyncio.wait({future, lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if future in done:
            response = future.result()
            first = response[0] if isinstance(response, list) else response
            if first.get("Response") == "Error":
                raise AmiActionFailed(str(fields.get("Action")), first.get("Message", ""))
            return response
        future.cancel()
        raise AmiLinkDown("连接中断" if connection.lost.is_set() else f"{fields.get('Action')} 无应答")

    # The AMI steps of the link --------------------------------------------------------------------------------

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        connection = _Connection(self)
        _, protocol = await asyncio.wait_for(
            loop.create_connection(AMIProtocol, self.host, self.port), self.ping_timeout
        )
        protocol.factory = connection
        protocol.encoding = "utf-8"
        protocol.log = log
        connection.protocol = protocol
        self._connection = connection
        login = Action({"Action": "Login", "Username": self.username, "Secret": self._secret, "Events": "on"})
        response = await asyncio.wait_for(protocol.send(login), self.ping_timeout)
        if response.get("Response") != "Success":
            raise ConnectionRefusedError(f"AMI 登录失败：{response.get('Message', '')}")

    async def _resync(self) -> None:
        if not self._resync_handlers:
            return
        channels = await self.action({"Action": "CoreShowChannels"}, as_list=True, timeout=30)
        events = [m for m in channels if m.get("Event") == "CoreShowChannel"]
        for handler in self._resync_handlers:
            await handler(events)

    async def _until_lost(self) -> None:
        assert self._connection is not None
        await self._connection.lost.wait()

    async def _ping(self) -> None:
        await self.action({"Action": "Ping"}, timeout=self.ping_timeout)

    def _disconnect(self, reason: str) -> None:
        connection, self._connection = self._connection, None
        if connection and connection.protocol:
            connection.protocol.close()
            for action in list(connection.awaiting_actions):
                if not action.future.done():
                    action.future.set_exception(AmiLinkDown("连接中断"))

    def _dispatch(self, message: Message) -> None:
        (self._live if message.get("Event") in self._live_names else self._events).put_nowait(message)

    @staticmethod
    async def _consume(queue: asyncio.Queue[Message], handlers: list[EventHandler]) -> None:
        """Handle a lane's events one at a time, in Asterisk's order: a call's Hangup must not overtake its DialEnd.
        Between two events the loop runs whatever else is ready (the other lane, the WebSocket sends), which a
        backlog handled without a pause would hold up until it was all done."""
        while True:
            message = await queue.get()
            for handler in handlers:
                try:
                    result = handler(message)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("AMI event handler failed on %s", message.get("Event"))
            await asyncio.sleep(0)
