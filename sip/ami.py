"""The AMI session: panoramisk's framing inside the shared reconnecting link.

panoramisk parses and frames AMI messages (`AMIProtocol`, `Action`, `Message`); `switchboard.core.link` holds
the policy (reconnect with back-off, pings, state). This module supplies the AMI steps: connect and log in, ping,
and after every login hand the live channel list (`CoreShowChannels`) to whoever must resynchronise. Events are
handled one at a time in Asterisk's order. Actions sent while the link is down fail at once with `AmiLinkDown`
rather than being replayed later behind the caller's back: an Originate replayed after a reconnect would ring
someone twice.
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
        self._consumer: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[Message] = asyncio.Queue()

    # Subscriptions --------------------------------------------------------------------------------------------

    def on_event(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def on_resync(self, handler: ResyncHandler) -> None:
        self._resync_handlers.append(handler)

    # Lifecycle: the link, and the consumer that hands its events on ------------------------------------------

    def start(self) -> None:
        super().start()
        if self._consumer is None or self._consumer.done():
            self._consumer = asyncio.create_task(self._consume(), name="ami-events")

    async def stop(self) -> None:
        await super().stop()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.cancel()
            await asyncio.wait([consumer])

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
        self._events.put_nowait(message)

    async def _consume(self) -> None:
        """Handle events one at a time, in Asterisk's order: a call's Hangup must not overtake its DialEnd."""
        while True:
            message = await self._events.get()
            for handler in self._handlers:
                try:
                    result = handler(message)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("AMI event handler failed on %s", message.get("Event"))
