"""The join page's signalling, relayed: each browser in a room talks to the control plane over one WebSocket, and the
control plane talks to Janus for it through a Janus session of that browser's own (conference.video.client).

A page can ask for five things: join as its invite's site, publish its camera and microphone, subscribe to a site
in the room, answer (start) that subscription, and end it. Every Janus request is built here from the invite, so
a browser never names a room, a participant id, an ACL token, a recording or a file name, and nobody without a
live invite reaches Janus at all: its API listens on a Unix socket only. Removing a site or closing the
consultation closes its relays, and with them its Janus sessions: publisher and subscriptions end in Janus,
whatever the browser does.
"""

import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

from conference.video.client import JanusClient
from conference.video.models import Consultation, Invite
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
_ROOM_EVENTS = ("publishers", "unpublished", "leaving", "kicked")


class Relay:
    """One browser's way into one room."""

    def __init__(self, ctx: Context, live: LiveRooms, consultation: Consultation, invite: Invite, token: str) -> None:
        self.ctx, self.live, self.token = ctx, live, token
        self.consultation, self.invite = consultation, invite
        self.end_reason = ""  # why the control plane cut this page off, once it has
        self.janus: JanusClient | None = None
        self.publisher = 0  # the publisher handle, once joined
        self.private_id = 0
        self.subscriptions: dict[int, int] = {}  # feed (participant id) -> subscriber handle

    async def open(self) -> None:
        self.janus = await JanusClient.open(self.live.layout.api_socket)

    async def close(self) -> None:
        if self.janus is not None:
            await self.janus.close()

    async def end(self, reason: str) -> None:
        """Cut the page off (removed, consultation closed): its Janus session, and so its media, ends now."""
        self.end_reason = reason
        await self.close()

    @property
    def _client(self) -> JanusClient:
        if self.janus is None or self.janus.closed.is_set():
            raise Unavailable("视频会商引擎连接已断开，请刷新页面重新加入")
        return self.janus

    # What the page may ask --------------------------------------------------------------------------------------

    async def join(self, pin: str) -> dict[str, Any]:
        """Join as the invite's site; refused while the room is locked to sites outside it, or for a wrong PIN."""
        if self.publisher:
            raise Conflict("已加入会商")
        consultation, _ = await flows.admitted(self.ctx, self.live, self.consultation.id, self.token)
        if consultation.pin and not hmac.compare_digest(pin.encode(), consultation.pin.encode()):
            raise Forbidden("会商密码错误", field="pin")
        handle = await self._client.attach()
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
            await self._client.detach(handle)
            code, reason = reply.error or (0, str(reply.data))
            log.info("join of %s refused by Janus: %s (%s)", self.invite.site, reason, code)
            raise Forbidden(_JOIN_REFUSED.get(code, f"无法加入会商（{code}）"))
        self.publisher, self.private_id = handle, int(reply.data.get("private_id", 0))
        return {"publishers": _publishers(reply.data)}

    async def publish(self, offer: str) -> str:
        """Our camera and microphone into the room: the answer to the page's offer."""
        reply = await self._client.message(
            self._joined(), {"request": "configure", "audio": True, "video": True}, {"type": "offer", "sdp": offer}
        )
        if reply.error or not reply.jsep:
            raise Unavailable(f"发布音视频失败：{(reply.error or (0, '无应答'))[1]}")
        return str(reply.jsep["sdp"])

    async def subscribe(self, feed: int) -> str:
        """A subscription to the site publishing as `feed`: Janus's offer."""
        self._joined()
        if feed == self.invite.participant_id or feed in self.subscriptions:
            raise Conflict("已订阅该参会方", field="feed")
        if len(self.subscriptions) >= self.consultation.max_sites:
            raise Conflict("订阅数已达会商参会方上限", field="feed")
        handle = await self._client.attach()
        body = {
            "request": "join",
            "ptype": "subscriber",
            "room": self.consultation.room,
            "streams": [{"feed": feed}],
            "private_id": self.private_id,
        } | ({"pin": self.consultation.pin} if self.consultation.pin else {})
        reply = await self._client.message(handle, body)
        if reply.error or not reply.jsep:
            await self._client.detach(handle)
            raise NotFound("该参会方已不在会商中", field="feed")
        self.subscriptions[feed] = handle
        return str(reply.jsep["sdp"])

    async def start(self, feed: int, answer: str) -> None:
        handle = self._subscription(feed)
        reply = await self._client.message(
            handle, {"request": "start", "room": self.consultation.room}, {"type": "answer", "sdp": answer}
        )
        if reply.error:
            raise Unavailable(f"接收该参会方音视频失败：{reply.error[1]}")

    async def unsubscribe(self, feed: int) -> None:
        await self._client.detach(self._subscription(feed))
        self.subscriptions.pop(feed, None)

    def _joined(self) -> int:
        if not self.publisher:
            raise Conflict("请先加入会商")
        return self.publisher

    def _subscription(self, feed: int) -> int:
        if feed not in self.subscriptions:
            raise NotFound("没有订阅该参会方", field="feed")
        return self.subscriptions[feed]

    # What the page is told -----------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Room events for the page, in its terms, until the Janus session ends."""
        client = self._client
        while (message := await client.next_event()) is not None:
            if page_event := self._translate(message):
                yield page_event

    def _translate(self, message: dict[str, Any]) -> dict[str, Any] | None:
        sender = message.get("sender")
        feed = next((f for f, h in self.subscriptions.items() if h == sender), None)
        if message.get("janus") == "hangup":
            if sender == self.publisher:
                return {"event": "hangup"}
            if feed is not None:
                return {"event": "gone", "id": feed}
            return None
        data = message.get("plugindata", {}).get("data", {})
        if sender != self.publisher:
            return None
        if data.get("videoroom") in ("talking", "stopped-talking"):
            return {"event": "talking", "id": data.get("id"), "on": data["videoroom"] == "talking"}
        if data.get("videoroom") == "destroyed":
            return {"event": "ended", "message": "本次会商已结束"}
        if data.get("leaving") == "ok" and data.get("reason") == "kicked":
            return {"event": "removed", "message": "您已被主持人移出本次会商"}
        if data.get("publishers"):
            return {"event": "publishers", "publishers": _publishers(data)}
        for key in ("unpublished", "leaving", "kicked"):
            if isinstance(data.get(key), int):
                return {"event": "gone", "id": data[key]}
        return None


def _publishers(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": p["id"], "display": p.get("display", "")} for p in data.get("publishers", [])]
