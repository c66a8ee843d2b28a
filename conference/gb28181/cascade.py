"""Cascade (GB/T 28181-2016 section 9.1.2 and 5.2): we register to an upper platform as its lower platform, keep
the registration alive with keepalives, and answer its Catalog query with our catalog (the channels of every camera
in the registry). It shares the platform's SIP endpoint, so the upper platform reaches us at the address we
registered from."""

import asyncio
import contextlib
import enum
import itertools
import logging
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from conference.gb28181 import digest, manscdp
from conference.gb28181.manscdp import CatalogItem
from conference.gb28181.message import Message, token
from conference.gb28181.platform import Platform
from conference.gb28181.transport import Peer, Timeout, new_request

log = logging.getLogger(__name__)

RETRY_SECONDS = (1.0, 30.0)
ITEMS_PER_MESSAGE = 20  # a long catalog goes up in parts, as devices send theirs


class UpperState(enum.StrEnum):
    connecting = "connecting"
    registered = "registered"
    refused = "refused"  # wrong password or unknown to the upper platform: worth an operator's look
    unreachable = "unreachable"


@dataclass(frozen=True)
class UpperSettings:
    upper_id: str
    host: str
    port: int
    password: str
    transport: str = "UDP"
    expires: int = 3600
    keepalive_seconds: float = 60.0


Catalog = Callable[[], Awaitable[list[CatalogItem]]]
StateChanged = Callable[[UpperState, str], Awaitable[None]]


class UpperLink:
    def __init__(self, platform: Platform, settings: UpperSettings, catalog: Catalog, changed: StateChanged) -> None:
        self.platform, self.settings, self.catalog, self.changed = platform, settings, catalog, changed
        self.state = UpperState.connecting
        self.error = ""
        self.peer = Peer(settings.transport, settings.host, settings.port)
        self._call_id = token(12)
        self._tag = token(6)
        self._cseq = itertools.count(1)
        self._sn = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.platform.upper_queries[self.settings.upper_id] = self._answer
        self._task = asyncio.create_task(self._run(), name="gb28181-cascade")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.state == UpperState.registered:
            with contextlib.suppress(Timeout, OSError):
                await self._register(expires=0)

    def health(self) -> dict[str, str]:
        status = "ok" if self.state == UpperState.registered else "down"
        return {"status": status, "state": self.state.value, "error": self.error}

    async def _run(self) -> None:
        delay = RETRY_SECONDS[0]
        while True:
            try:
                answer = await self._register(expires=self.settings.expires)
                if answer.status == 200:
                    await self._become(UpperState.registered, "")
                    delay = RETRY_SECONDS[0]
                    await self._keep_alive()
                    continue
                await self._become(UpperState.refused, f"上级平台拒绝注册（SIP {answer.status}）")
            except (Timeout, OSError) as exc:
                await self._become(UpperState.unreachable, f"上级平台无应答：{exc}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_SECONDS[1])

    async def _keep_alive(self) -> None:
        """Keepalive every interval, the registration refreshed at half its life; returns when either fails."""
        refresh_every = max(1, int(self.settings.expires / 2 / self.settings.keepalive_seconds))
        for beat in itertools.count(1):
            await asyncio.sleep(self.settings.keepalive_seconds)
            ours = self.platform.settings.sip_id
            notify = manscdp.build(
                "Notify", {"CmdType": "Keepalive", "SN": next(self._sn), "DeviceID": ours, "Status": "OK"}
            )
            if (await self._send(notify)).status != 200:
                return
            if beat % refresh_every == 0 and (await self._register(expires=self.settings.expires)).status != 200:
                return

    async def _register(self, expires: int) -> Message:
        """REGISTER, answering a 401 challenge once with our digest."""
        ours = self.platform.settings.sip_id
        uri = f"sip:{self.settings.upper_id}@{self.settings.upper_id[:10]}"
        authorization: list[tuple[str, str]] = []
        for _ in range(2):
            request = new_request(
                self.platform.endpoint, "REGISTER", uri, from_user=ours, to_uri=f"<sip:{ours}@{ours[:10]}>",
                peer=self.peer, call_id=self._call_id, from_tag=self._tag, cseq=next(self._cseq),
                headers=[("Expires", str(expires)), *authorization],
            )  # fmt: skip
            answer = await self.platform.endpoint.request(request, self.peer)
            if answer.status != 401 or authorization:
                return answer
            challenge = answer.header("WWW-Authenticate")
            authorization = [
                ("Authorization", digest.authorization(challenge, ours, self.settings.password, "REGISTER", uri))
            ]
        return answer

    async def _answer(self, query: ET.Element, sn: str, peer: Peer) -> None:
        """The upper platform's Catalog query: our catalog in parts of ITEMS_PER_MESSAGE."""
        if manscdp.text(query, "CmdType") != "Catalog":
            return
        items = await self.catalog()
        ours = self.platform.settings.sip_id
        parts = [items[i : i + ITEMS_PER_MESSAGE] for i in range(0, len(items), ITEMS_PER_MESSAGE)] or [[]]
        for part in parts:
            await self._send(manscdp.catalog_response(sn, ours, part, len(items)))

    async def _send(self, root: ET.Element) -> Message:
        upper = self.settings.upper_id
        request = new_request(
            self.platform.endpoint, "MESSAGE", f"sip:{upper}@{upper[:10]}", from_user=self.platform.settings.sip_id,
            to_uri=f"<sip:{upper}@{upper[:10]}>", peer=self.peer, body=manscdp.encode(root),
            content_type=manscdp.CONTENT_TYPE,
        )  # fmt: skip
        return await self.platform.endpoint.request(request, self.peer)

    async def _become(self, state: UpperState, error: str) -> None:
        changed = state != self.state or error != self.error
        self.state, self.error = state, error
        if changed:
            await self.changed(state, error)
