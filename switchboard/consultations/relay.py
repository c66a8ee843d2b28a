"""The join page's signalling, relayed: each browser in a room talks to the control plane over one WebSocket, and the
control plane talks to Janus for it through a Janus session of that browser's own (conference.video.client).

A page can ask for nine things: a handle, to join as its invite's site, to publish its camera and microphone, to
subscribe to a site in the room, to answer (start) that subscription, to join the room's AudioBridge and speak into
it (what everyone hears: conference.video.rooms), to pass on its ICE candidates, and to drop a handle. Every Janus
request is built here from the invite, so a browser never names a room, a participant id, an ACL token, a recording
or a file name, and nobody without a live invite reaches Janus at all: its API listens on a Unix socket only.
Removing a site or closing the consultation closes its relays, and with them its Janus sessions: publisher and
subscriptions end in Janus, whatever the browser does.
"""

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

from conference.video.client import JanusClient
from conference.video.models import Consultation, Invite
from conference.video.rooms import WEB
from conference.video.session import AUDIOBRIDGE, VIDEOROOM
from switchboard.consultations import flows
from switchboard.consultations.live import LiveRooms
from switchboard.core.context import Context
from switchboard.core.errors import Conflict, Forbidden, NotFound, Unavailable

log = logging.getLogger(__name__)

# VideoRoom error codes a page may meet on joining, in the words of the page.
_JOIN_REFUSED = {
    432: "会商参会方已满",
    433: "无权加入本次会商",
    436: "您已在会商中（另一个窗口）",
}
# Janus events about a page's own handles that it is told (plugin events, PeerConnection state).
_PASSED = ("event", "hangup", "webrtcup", "media", "slowlink", "detached")
# What a page is never told: the room's number and the private id are Janus's business, not the browser's.
_WITHHELD = ("room", "private_id")


class Relay:
    """One browser's way into one room."""

    def __init__(self, ctx: Context, live: LiveRooms, consultation: Consultation, invite: Invite, token: str) -> None:
        self.ctx, self.live, self.token = ctx, live, token
        self.consultation, self.invite = consultation, invite
        self.end_reason = ""  # why the control plane cut this page off, once it has
        self.janus: JanusClient | None = None
        self.handles: dict[int, str] = {}  # every handle the page attached and has not detached: its plugin
        self.hearing = 0  # the AudioBridge handle that joined: the page's microphone in, the room's mix out
        self.publisher = 0  # the handle that joined as the invite's site, once joined
        self.private_id = 0
        self.subscriptions: dict[int, int] = {}  # subscriber handle -> the feed (participant id) it receives
        self.notices: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)

    async def open(self) -> int:
        """The page's session: its id."""
        self.janus = await JanusClient.open(self.live.layout.api_socket)
        return self.janus.session_id

    async def close(self) -> None:
        if self.janus is not None:
            await self.janus.close()

    async def end(self, reason: str) -> None:
        """Cut the page off (removed, consultation closed): its Janus session, and so its media, ends now."""
        self.end_reason = reason
        await self.close()

    def tell(self, data: dict[str, Any]) -> None:
        """A control-plane notice for the page (recording switched on or off), told once it has joined."""
        if self.publisher and not self.notices.full():
            self.notices.put_nowait(data)

    @property
    def _client(self) -> JanusClient:
        if self.janus is None or self.janus.closed.is_set():
            raise Unavailable("视频会商引擎连接已断开，请刷新页面重新加入")
        return self.janus

    # What the page may ask --------------------------------------------------------------------------------------

    async def attach(self, plugin: str = VIDEOROOM) -> int:
        """A VideoRoom handle (one to publish, one per site received) or the AudioBridge one (what is heard)."""
        if plugin == AUDIOBRIDGE and AUDIOBRIDGE in self.handles.values():
            raise Conflict("已有音频句柄")
        if plugin == VIDEOROOM and list(self.handles.values()).count(VIDEOROOM) > self.consultation.max_sites:
            raise Conflict("句柄数已达会商参会方上限")
        handle = await self._client.attach(plugin)
        self.handles[handle] = plugin
        return handle

    def plugin_of(self, handle: int) -> str:
        self._own(handle)
        return self.handles[handle]

    async def detach(self, handle: int) -> None:
        self._own(handle)
        await self._client.detach(handle)
        self.handles.pop(handle, None)
        self.subscriptions.pop(handle, None)
        if handle == self.publisher:
            self.publisher = self.private_id = 0
        if handle == self.hearing:
            self.hearing = 0

    async def join(self, handle: int, pin: str) -> dict[str, Any]:
        """Join as the invite's site; refused while the room is locked to sites outside it, or for a wrong PIN."""
        if self.plugin_of(handle) != VIDEOROOM:
            raise Conflict("该句柄不是视频句柄", field="handle_id")
        if self.publisher:
            raise Conflict("已加入会商")
        consultation, _ = await flows.admitted(self.ctx, self.live, self.consultation.id, self.token)
        if consultation.pin and not hmac.compare_digest(pin.encode(), consultation.pin.encode()):
            raise Forbidden("会商密码错误", field="pin")
        body = {
            "request": "join",
            "ptype": "publisher",
            "room": consultation.room,
            "id": self.invite.participant_id,
            "display": self.invite.site,
            "token": self.invite.room_token,
        } | ({"pin": consultation.pin} if consultation.pin else {})
        reply = await self._client.message(handle, body)
        if reply.error or reply.data.get("videoroom") != "joined":
            code, reason = reply.error or (0, str(reply.data))
            log.info("join of %s refused by Janus: %s (%s)", self.invite.site, reason, code)
            raise Forbidden(_JOIN_REFUSED.get(code, f"无法加入会商（{code}）"))
        self.publisher, self.private_id = handle, int(reply.data.get("private_id", 0))
        return withheld(reply.data) | {"recording": consultation.recording}

    async def publish(self, handle: int, offer: str) -> tuple[dict[str, Any], str]:
        """Our camera and microphone into the room: Janus's word and the answer to the page's offer."""
        if handle != self._joined():
            raise Conflict("只能在加入会商的句柄上发布", field="handle_id")
        reply = await self._client.message(
            handle, {"request": "configure", "audio": True, "video": True}, {"type": "offer", "sdp": offer}
        )
        if reply.error or not reply.jsep:
            raise Unavailable(f"发布音视频失败：{(reply.error or (0, '无应答'))[1]}")
        return withheld(reply.data), str(reply.jsep["sdp"])

    async def join_audio(self, handle: int) -> dict[str, Any]:
        """Into the room's AudioBridge as the invite's site, once the site joined the VideoRoom (which checked its
        ACL, the lock and the PIN)."""
        self._joined()
        if self.plugin_of(handle) != AUDIOBRIDGE:
            raise Conflict("该句柄不是音频句柄", field="handle_id")
        if self.hearing:
            raise Conflict("已加入会商音频")
        body = {
            "request": "join",
            "room": self.consultation.room,
            "id": self.invite.participant_id,
            "display": self.invite.site,
            "group": WEB,
        }
        reply = await self._client.message(handle, body)
        if reply.error or reply.data.get("audiobridge") != "joined":
            raise Unavailable(f"加入会商音频失败：{(reply.error or (0, str(reply.data)))[1]}")
        self.hearing = handle
        return withheld(reply.data)

    async def speak(self, handle: int, offer: str) -> tuple[dict[str, Any], str]:
        """The page's microphone into the AudioBridge and the room's mix back: Janus's word and its answer."""
        if not self.hearing or handle != self.hearing:
            raise Conflict("请先加入会商音频", field="handle_id")
        body, jsep = {"request": "configure", "muted": False}, {"type": "offer", "sdp": offer}
        reply = await self._client.message(handle, body, jsep)
        if reply.error or not reply.jsep:
            raise Unavailable(f"发布音频失败：{(reply.error or (0, '无应答'))[1]}")
        return withheld(reply.data), str(reply.jsep["sdp"])

    async def subscribe(self, handle: int, feed: int) -> tuple[dict[str, Any], str]:
        """A subscription to the site publishing as `feed`: Janus's word and its offer."""
        self._joined()
        if self.plugin_of(handle) != VIDEOROOM or handle == self.publisher or handle in self.subscriptions:
            raise Conflict("该句柄已在使用", field="handle_id")
        if feed == self.invite.participant_id or feed in self.subscriptions.values():
            raise Conflict("已订阅该参会方", field="feed")
        body = {
            "request": "join",
            "ptype": "subscriber",
            "room": self.consultation.room,
            "streams": [{"feed": feed}],
            "private_id": self.private_id,
        } | ({"pin": self.consultation.pin} if self.consultation.pin else {})
        reply = await self._client.message(handle, body)
        if reply.error or not reply.jsep:
            raise NotFound("该参会方已不在会商中", field="feed")
        self.subscriptions[handle] = feed
        return withheld(reply.data), str(reply.jsep["sdp"])

    async def start(self, handle: int, answer: str) -> dict[str, Any]:
        if handle not in self.subscriptions:
            raise NotFound("该句柄没有订阅参会方", field="handle_id")
        reply = await self._client.message(
            handle, {"request": "start", "room": self.consultation.room}, {"type": "answer", "sdp": answer}
        )
        if reply.error:
            raise Unavailable(f"接收该参会方音视频失败：{reply.error[1]}")
        return withheld(reply.data)

    async def trickle(self, handle: int, candidate: dict[str, Any]) -> None:
        """An ICE candidate of the page's for one of its handles: Janus learns where to send the media."""
        self._own(handle)
        await self._client.trickle(handle, candidate)

    def _own(self, handle: int) -> None:
        if handle not in self.handles:
            raise NotFound("没有这个句柄", field="handle_id")

    def _joined(self) -> int:
        if not self.publisher:
            raise Conflict("请先加入会商")
        return self.publisher

    # What the page is told -----------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Janus's events about the page's own handles, as Janus words them (less what is withheld), until the Janus
        session ends."""
        client = self._client
        while (message := await client.next_event()) is not None:
            if message.get("janus") in _PASSED and message.get("sender") in self.handles:
                yield withheld_event(message)


def withheld(data: dict[str, Any]) -> dict[str, Any]:
    """A plugin's data without what a page is never told."""
    return {k: v for k, v in data.items() if k not in _WITHHELD}


def withheld_event(message: dict[str, Any]) -> dict[str, Any]:
    plugindata = message.get("plugindata")
    if not isinstance(plugindata, dict):
        return message
    return message | {"plugindata": plugindata | {"data": withheld(plugindata.get("data", {}))}}
