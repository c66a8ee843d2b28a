"""WeCom (企业微信) channels: group robots (`wecom_robot`) and application messages to users (`wecom_app`).

They are two channels, not one, because the outbox paces per channel and their limits differ by two orders of
magnitude: a group robot may send 20 messages a minute (its channel goes at 1/3 a second, one at a time), an
application is limited per member (30 a minute, 1,000 an hour), per day (account limit × 200 person-times) and by
the corporation's base frequency (10,000 calls a minute per API, shared with its other applications): its channel
goes at 20 a second, 4 at a time, and each warning reaches each user once. They also differ in whom they reach (a
group by its webhook, a person by WeCom userid), in credentials (a key in the URL; corpid + corpsecret for an access
token) and in what makes them "down" (a wrong secret takes the whole application down, a wrong key one robot's rows).

Answers map onto `SendResult` from the API's errcode (HTTP is 200 either way): 45009 (接口调用超过限制) and HTTP 429
answer `retry_after` and hold (a robot, or the whole application), -1 (系统繁忙) is retried, 40014/42001 (access token
invalid or expired) fetch a new token once and send again (refused again, the row is retried later); anything else
is permanent, with the errcode in the Chinese detail. Neither API reports delivery later.
"""

import asyncio
import re
import time
from typing import Any

from broadcast.channel import NOT_STARTED, LastContact, Message, SendResult
from broadcast.channels.chat import RobotChannel, call, cut
from broadcast.channels.http_channel import HttpChannel
from switchboard.core.outbound import OutboundPolicy

API = "https://qyapi.weixin.qq.com/cgi-bin"
PEER = "企业微信"
ROBOT_MARKDOWN_BYTES = 4096  # group robot markdown.content
TEXT_BYTES = 2048  # text.content (robot and application), and an application's markdown.content
FLOOD_HOLD = 60.0  # seconds: the robot limit is per minute, and so is the application's per-member limit
TOKEN_ERRORS = {40014, 42001}  # 不合法的access_token, access_token已过期
# The application as a whole is refused: every send would fail alike, so the channel is down.
APP_ERRORS = {40001, 40013, 40056, 40091, 48002, 60020}
MOBILE = re.compile(r"\+?\d{6,15}")


def _verdict(answer: dict[str, Any], contact: LastContact, hold: float | None = None) -> SendResult:
    """What an errcode means for the row, once token errors are dealt with."""
    errcode, errmsg = answer["errcode"], str(answer.get("errmsg", ""))
    if errcode == 0:
        return SendResult(True, remote_id=answer.get("msgid") or None)
    detail = f"企业微信拒绝发送（errcode {errcode}：{errmsg}）"
    if errcode == 45009:
        return SendResult(
            False, retry_after=hold, detail=f"企业微信接口调用超过限制，暂缓发送（errcode 45009：{errmsg}）"
        )
    if errcode == -1:
        return SendResult(False, detail=f"企业微信系统繁忙（errcode -1：{errmsg}）")
    if errcode in TOKEN_ERRORS:  # refused again right after a new token: a passing fault at WeCom, worth a retry
        return SendResult(False, detail=f"企业微信不认新取得的 access_token（errcode {errcode}：{errmsg}）")
    if errcode in APP_ERRORS:
        contact.failed(detail)
    return SendResult(False, permanent=True, detail=detail)


class WeComRobotChannel(RobotChannel):
    """A group robot per recipient (webhook address or key; `#at=` names userids or mobiles to @).

    Markdown can @ only by userid (`<@userid>` in the content); a mobile number can be @-ed only in a text message
    (`mentioned_mobile_list`), so a recipient that names mobiles gets the rendering as text, markup removed."""

    name = "wecom_robot"
    key_param, robot_name = "key", "企业微信群机器人"

    def __init__(
        self,
        policy: OutboundPolicy | None = None,
        *,
        base_url: str = f"{API}/webhook/send",
        rate_per_second: float = 20 / 60,
        concurrency: int = 1,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(policy, base_url, rate_per_second, concurrency, timeout)

    async def send(self, message: Message) -> SendResult:
        robot = await self.robot(message)
        if isinstance(robot, SendResult):
            return robot
        assert self._client is not None
        answer = await call(
            self._client, "POST", robot.url, self.contact, PEER, json=_robot_body(message, robot.mentions)
        )
        if isinstance(answer, SendResult):
            return answer
        if answer["errcode"] == 45009:
            self.holds.hold(robot.key, FLOOD_HOLD)
        return _verdict(answer, self.contact, FLOOD_HOLD)


def _robot_body(message: Message, mentions: tuple[str, ...]) -> dict[str, Any]:
    mobiles = [m for m in mentions if MOBILE.fullmatch(m)]
    userids = [m for m in mentions if m not in mobiles]
    if not mobiles:
        tail = "".join(f"<@{userid}>" for userid in userids)
        content = cut(message.text, ROBOT_MARKDOWN_BYTES - len(tail.encode()) - 1) + ("\n" + tail if tail else "")
        return {"msgtype": "markdown", "markdown": {"content": content}}
    text: dict[str, Any] = {"content": cut(_plain(message.text), TEXT_BYTES), "mentioned_mobile_list": mobiles}
    if userids:
        text["mentioned_list"] = userids
    return {"msgtype": "text", "text": text}


def _plain(markdown: str) -> str:
    """The markdown rendering as a text message shows it: without heading marks, emphasis, quotes or font tags."""
    text = re.sub(r"</?font[^>]*>", "", markdown)
    text = re.sub(r"^(#+|>)\s*", "", text, flags=re.MULTILINE)
    return text.replace("**", "")


class WeComAppChannel(HttpChannel):
    """Application messages (message/send) to one WeCom userid per recipient, as markdown.

    The access token (gettoken with corpid + corpsecret) is kept until `expires_in` says, fetched once for all
    concurrent sends, and fetched again once when the API calls it invalid or expired (WeCom may revoke it early)."""

    name = "wecom_app"

    def __init__(
        self,
        corpid: str,
        corpsecret: str,
        agentid: int,
        *,
        base_url: str = API,
        rate_per_second: float = 20.0,
        concurrency: int = 4,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(timeout)
        self.corpid, self.corpsecret, self.agentid, self.base_url = corpid, corpsecret, agentid, base_url
        self.rate_per_second, self.concurrency = rate_per_second, concurrency
        self._token: tuple[str, float] | None = None  # (access_token, monotonic time it expires)
        self._token_lock = asyncio.Lock()
        self._held_until = 0.0

    async def send(self, message: Message) -> SendResult:
        if self._client is None:
            return SendResult(False, detail=NOT_STARTED)
        if (held := self._held_until - time.monotonic()) > 0:
            return SendResult(False, retry_after=held, detail="企业微信应用消息限流，暂缓发送")
        body = {
            "touser": message.recipient,
            "msgtype": "markdown",
            "agentid": self.agentid,
            "markdown": {"content": cut(message.text, TEXT_BYTES)},
        }
        refused = None
        for _ in range(2):  # the second time only with a new token, after the API refused the first
            token = await self._access_token(refused)
            if isinstance(token, SendResult):
                return token
            url = f"{self.base_url}/message/send"
            answer = await call(
                self._client, "POST", url, self.contact, PEER, params={"access_token": token}, json=body
            )
            if isinstance(answer, SendResult):
                return answer
            if answer["errcode"] not in TOKEN_ERRORS:
                break
            refused = token
        if answer["errcode"] == 45009:
            self._held_until = max(self._held_until, time.monotonic() + FLOOD_HOLD)
        return _verdict(answer, self.contact, FLOOD_HOLD)

    async def _access_token(self, refused: str | None) -> str | SendResult:
        """The cached token, or a new one from gettoken when there is none, it has expired, or the API refused it
        (unless a concurrent send has fetched a new one meanwhile)."""
        async with self._token_lock:
            if self._token is not None and self._token[0] != refused and time.monotonic() < self._token[1]:
                return self._token[0]
            assert self._client is not None
            params = {"corpid": self.corpid, "corpsecret": self.corpsecret}
            answer = await call(self._client, "GET", f"{self.base_url}/gettoken", self.contact, PEER, params=params)
            if isinstance(answer, SendResult):
                return answer
            if answer["errcode"] != 0:
                return _verdict(answer, self.contact, FLOOD_HOLD)
            self._token = (str(answer["access_token"]), time.monotonic() + float(answer["expires_in"]))
            return self._token[0]
