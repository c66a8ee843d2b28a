"""What the work-chat channels (WeCom, DingTalk) share: JSON over HTTPS answered with `errcode`/`errmsg`, robots
addressed by webhook, and per-robot flood limits.

A robot recipient is its webhook address (as a group's settings show it, or as a warning's public outlet names
it: then the outbound policy is asked) or only its key/access_token, resolved against the configured base URL.
Whom to @ rides in the address's fragment, `…#at=13800001111,zhangsan`, which is never sent: the peer sees only
the path and query it documents.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from broadcast.channel import NOT_STARTED, LastContact, Message, SendResult
from broadcast.channels.http_channel import HttpChannel
from switchboard.core.outbound import REFUSED, OutboundPolicy

log = logging.getLogger(__name__)

SCHEMES = ("https", "http")
ELLIPSIS = "……"


@dataclass(frozen=True)
class Robot:
    url: str  # where to POST: the webhook without its fragment
    key: str  # the robot's own key or access_token: flood holds are per robot
    mentions: tuple[str, ...]
    outlet: bool  # a whole address given by a user, not a configured key: the outbound policy decides


def robot_of(recipient: str, base_url: str, key_param: str) -> Robot:
    """The robot a recipient names: a webhook address (`https://…?key=K#at=a,b`) or a bare key (`K#at=a,b`)."""
    address, _, fragment = recipient.strip().partition("#")
    mentions = tuple(m for m in parse_qs(fragment).get("at", [""])[0].split(",") if m.strip())
    if "://" not in address:
        return Robot(f"{base_url}?{key_param}={address}", address, mentions, outlet=False)
    key = parse_qs(urlsplit(address).query).get(key_param, [""])[0]
    return Robot(address, key, mentions, outlet=True)


async def refusal(robot: Robot, policy: OutboundPolicy | None) -> SendResult | None:
    """A warning's outlet may only name an address `[network] outbound_allow` lets the server connect to."""
    if not robot.outlet:
        return None
    reason = "no outbound policy" if policy is None else await policy.refusal(robot.url, SCHEMES)
    if reason:
        log.warning("robot webhook refused: %s", reason)
        return SendResult(False, permanent=True, detail=REFUSED)
    return None


class Holds:
    """Robots that said "too fast", held until they may be sent to again (without calling the peer meanwhile)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def hold(self, key: str, seconds: float) -> None:
        self._until[key] = max(self._until.get(key, 0.0), time.monotonic() + seconds)

    def left(self, key: str) -> float:
        return max(0.0, self._until.get(key, 0.0) - time.monotonic())

    def release(self) -> None:
        self._until.clear()


def cut(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes (the APIs count bytes), cut on a character with an ellipsis."""
    if len(text.encode()) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode())
    return text.encode()[:room].decode(errors="ignore") + ELLIPSIS


async def call(
    client: httpx.AsyncClient, method: str, url: str | httpx.URL, contact: LastContact, peer: str, **kwargs: Any
) -> dict[str, Any] | SendResult:
    """One API call: its JSON answer (errcode and all), or what a failure before any errcode means for the send.
    Logs and health name only `peer`, never the URL: its query carries the robot's key or an access token."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        contact.failed(f"{peer}：网络错误（{type(exc).__name__}）")
        log.info("%s call failed: %r", peer, exc)
        return SendResult(False, detail=f"{peer}：网络错误（{type(exc).__name__}）")
    if response.status_code == 429:
        contact.reached()
        seconds = float(response.headers.get("Retry-After", "60") or 60)
        return SendResult(False, retry_after=seconds, detail=f"{peer} 要求稍后重试（HTTP 429）")
    if response.status_code >= 500:
        contact.failed(f"{peer}：HTTP {response.status_code}")
        return SendResult(False, detail=f"{peer}：HTTP {response.status_code}")
    try:
        answer = response.json()
        errcode = int(answer["errcode"])
    except (ValueError, KeyError, TypeError):
        contact.failed(f"{peer}：应答无法解析（HTTP {response.status_code}）")
        return SendResult(False, detail=f"{peer}：应答无法解析（HTTP {response.status_code}）")
    contact.reached()
    return answer | {"errcode": errcode}


class RobotChannel(HttpChannel):
    """A channel whose recipients are robots (`robot_of`), paced by the outbox at 20 a minute, one at a time."""

    key_param = ""  # the webhook's query parameter that names the robot
    robot_name = ""  # what the duty room calls it, in details

    def __init__(self, policy: OutboundPolicy | None, base_url: str, rate: float, concurrency: int, timeout: float):
        super().__init__(timeout)
        self.policy, self.base_url = policy, base_url
        self.rate_per_second, self.concurrency = rate, concurrency
        self.holds = Holds()

    async def robot(self, message: Message) -> Robot | SendResult:
        """The robot to post to, or why not now: not started, an outlet address refused, or the robot held."""
        if self._client is None:
            return SendResult(False, detail=NOT_STARTED)
        robot = robot_of(message.recipient, self.base_url, self.key_param)
        if refused := await refusal(robot, self.policy):
            return refused
        if held := self.holds.left(robot.key):
            return SendResult(False, retry_after=held, detail=f"{self.robot_name}限流（每分钟 20 条），暂缓发送")
        return robot
