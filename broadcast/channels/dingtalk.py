"""DingTalk (钉钉) custom robots: one rendered warning (markdown) to one group per recipient (`dingtalk`).

A recipient is the robot's webhook address or its access_token (see `broadcast.channels.chat`); `#at=` names the
mobiles to @, which go in `at.atMobiles` and, as DingTalk wants for the highlight, as `@mobile` in the text. A robot
secured by signature (加签) has its secret configured here by access_token, never in the recipient (delivery rows
and reports show recipients): each send then carries `timestamp` (ms) and `sign` = Base64(HMAC-SHA256(secret,
f"{timestamp}\\n{secret}")), URL-encoded by httpx, which DingTalk accepts within an hour of its clock.

A robot may send 20 messages a minute, and one that sends more is throttled for 10 minutes: the channel goes at
1/3 a second, and errcode 130101 or 410100 (too fast) holds that robot for 10 minutes with `retry_after`.
310000 (keyword, IP allow-list or signature refused) is permanent and marks the channel down with a Chinese
reason: it is the robot's security settings against ours, which no retry can mend. The API has no receipts.
"""

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import httpx

from broadcast.channel import Message, SendResult
from broadcast.channels.chat import RobotChannel, call, cut
from switchboard.core.outbound import OutboundPolicy

API = "https://oapi.dingtalk.com/robot/send"
PEER = "钉钉"
MARKDOWN_BYTES = 20000
TITLE_CHARS = 64
THROTTLED = {130101, 410100}  # send too fast, exceed 20 times per minute; 发送速度太快而限流
THROTTLE_HOLD = 600.0  # seconds: DingTalk throttles a robot that exceeds its limit for 10 minutes
SECURITY = (  # what 310000's errmsg names, and what to tell the duty room
    ("sign", "签名校验失败：请核对该机器人“加签”的密钥（[channels] dingtalk_secrets）"),
    ("timestamp", "时间戳超出钉钉允许的 1 小时误差：请校准服务器时钟"),
    ("keyword", "消息不含机器人设置的自定义关键词：请在钉钉群机器人安全设置中添加“预警”等关键词"),
    ("ip", "服务器 IP 不在机器人的 IP 白名单中：请在钉钉群机器人安全设置中登记"),
)


def sign(secret: str, timestamp: int) -> str:
    """The documented signature, before URL encoding."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalkRobotChannel(RobotChannel):
    name = "dingtalk"
    key_param, robot_name = "access_token", "钉钉机器人"

    def __init__(
        self,
        secrets: Mapping[str, str] | None = None,
        policy: OutboundPolicy | None = None,
        *,
        base_url: str = API,
        rate_per_second: float = 20 / 60,
        concurrency: int = 1,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(policy, base_url, rate_per_second, concurrency, timeout)
        self.secrets = dict(secrets or {})  # access_token -> SEC… secret, for robots secured by signature

    async def send(self, message: Message) -> SendResult:
        robot = await self.robot(message)
        if isinstance(robot, SendResult):
            return robot
        assert self._client is not None
        url = httpx.URL(robot.url)  # the webhook's own query stays: httpx would replace it with `params`
        if secret := self.secrets.get(robot.key):
            timestamp = int(time.time() * 1000)
            url = url.copy_merge_params({"timestamp": str(timestamp), "sign": sign(secret, timestamp)})
        body = _body(message, robot.mentions)
        answer = await call(self._client, "POST", url, self.contact, PEER, json=body)
        if isinstance(answer, SendResult):
            return answer
        return self._verdict(answer, robot.key)

    def _verdict(self, answer: dict[str, Any], key: str) -> SendResult:
        errcode, errmsg = answer["errcode"], str(answer.get("errmsg", ""))
        if errcode == 0:
            return SendResult(True)
        if errcode in THROTTLED:
            self.holds.hold(key, THROTTLE_HOLD)
            detail = f"钉钉机器人发送过快被限流 10 分钟（errcode {errcode}：{errmsg}）"
            return SendResult(False, retry_after=THROTTLE_HOLD, detail=detail)
        if errcode == -1:
            return SendResult(False, detail=f"钉钉系统繁忙（errcode -1：{errmsg}）")
        if errcode == 310000:
            reason = next((why for word, why in SECURITY if word in errmsg.lower()), "安全设置校验未通过")
            detail = f"钉钉机器人拒绝发送：{reason}（errcode 310000：{errmsg}）"
            self.contact.failed(detail)
            return SendResult(False, permanent=True, detail=detail)
        return SendResult(False, permanent=True, detail=f"钉钉拒绝发送（errcode {errcode}：{errmsg}）")


def _body(message: Message, mobiles: tuple[str, ...]) -> dict[str, Any]:
    tail = " ".join(f"@{mobile}" for mobile in mobiles)
    text = cut(message.text, MARKDOWN_BYTES - len(tail.encode()) - 2) + (f"\n\n{tail}" if tail else "")
    title = (message.subject or message.text.split("\n", 1)[0].lstrip("#> "))[:TITLE_CHARS]
    return {
        "msgtype": "markdown",
        "markdown": {"title": title, "text": text},
        "at": {"atMobiles": list(mobiles), "isAtAll": False},
    }
