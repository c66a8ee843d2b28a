"""DingTalk custom robot channel against a stand-in robot webhook (tests/support/peers/dingtalk_api.py) in a
process of its own. It is a stand-in because oapi.dingtalk.com cannot be reached offline; it checks each request as
DingTalk's documentation describes it (path, access_token, the 加签 timestamp within an hour and its HMAC-SHA256
signature, keywords, JSON shapes and types, a robot's 20 messages a minute) and answers its errcodes, so the channel
is exercised over real HTTP and the test reads what the stand-in accepted.
"""

import base64
import hashlib
import hmac
import ipaddress
import time
import urllib.parse

import pytest

from broadcast.channel import Message
from broadcast.channels.dingtalk import DingTalkRobotChannel, sign
from switchboard.core.outbound import REFUSED, OutboundPolicy
from tests.support.peers import dingtalk_api
from tests.support.peers.dingtalk_api import KEYWORD, SECRET, SIGNED
from tests.support.peers.standin import StandInProcess, no_receipts
from tests.support.rendered import rendering


@pytest.fixture
async def api():
    async with StandInProcess("tests.support.peers.dingtalk_api") as stand_in:
        yield stand_in


def _channel(api: StandInProcess, secret: str = SECRET, policy: OutboundPolicy | None = None) -> DingTalkRobotChannel:
    return DingTalkRobotChannel({SIGNED: secret}, policy, base_url=f"{api.base_url}/robot/send")


def _message(recipient: str, delivery_id: str = "d1") -> Message:
    shown = rendering("dingtalk")
    return Message(delivery_id, recipient, shown.text, subject=shown.subject)


def test_signature_is_the_documented_one() -> None:
    """DingTalk's own Python example: quote_plus(b64encode(hmac(secret, f"{timestamp}\\n{secret}")))."""
    timestamp = 1700000000000
    expected = base64.b64encode(hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest())
    assert urllib.parse.quote_plus(sign(SECRET, timestamp)) == urllib.parse.quote_plus(expected)


async def test_signed_markdown_arrives_intact_with_mentions(api: StandInProcess) -> None:
    channel = _channel(api)
    await channel.start(no_receipts)
    try:
        message = _message(f"{SIGNED}#at=13800001111,13900002222")
        result = await channel.send(message)
        health = channel.health()
    finally:
        await channel.stop()
    assert result.accepted, result
    assert health["status"] == "ok"
    [sent] = await api.accepted()  # the stand-in checked timestamp and sign before accepting
    assert sent["access_token"] == SIGNED and abs(int(sent["timestamp"]) - time.time() * 1000) < 60_000
    assert sent["body"] == {
        "msgtype": "markdown",
        "markdown": {
            "title": "【橙色预警】太原市气象台发布暴雨橙色预警信号",
            "text": message.text + "\n\n@13800001111 @13900002222",
        },
        "at": {"atMobiles": ["13800001111", "13900002222"], "isAtAll": False},
    }
    assert "### 🟠 太原市气象台发布暴雨橙色预警信号" in message.text and "**防御指南：**" in message.text


async def test_wrong_secret_is_refused_permanently_in_chinese_and_in_health(api: StandInProcess) -> None:
    channel = _channel(api, secret="SEC-not-the-one")
    await channel.start(no_receipts)
    try:
        result = await channel.send(_message(SIGNED))
        health = channel.health()
    finally:
        await channel.stop()
    assert (result.accepted, result.permanent, result.retry_after) == (False, True, None)
    assert result.detail.startswith("钉钉机器人拒绝发送：签名校验失败") and "errcode 310000" in result.detail
    assert health["status"] == "down" and health["error"] == result.detail and "SEC-not-the-one" not in str(health)
    assert await api.accepted() == []


async def test_keywords_unknown_robot_and_an_outlet_address(api: StandInProcess) -> None:
    outlet = f"{api.base_url}/robot/send?access_token={KEYWORD}#at=13800001111"
    refusing = _channel(api, policy=OutboundPolicy(frozenset(), ()))
    allowing = _channel(api, policy=OutboundPolicy(frozenset(), (ipaddress.ip_network("127.0.0.1/32"),)))
    for channel in (refusing, allowing):
        await channel.start(no_receipts)
    try:
        with_keyword = await allowing.send(_message(KEYWORD))  # the warning says 预警: the robot's keyword
        without = await allowing.send(Message("d2", KEYWORD, "### 测试消息", subject="测试"))
        unknown = await allowing.send(_message("no-such-robot", "d3"))
        refused = await refusing.send(_message(outlet, "d4"))
        allowed = await allowing.send(_message(outlet, "d4"))
    finally:
        for channel in (refusing, allowing):
            await channel.stop()
    assert with_keyword.accepted and allowed.accepted
    assert without.permanent and "自定义关键词" in without.detail and "errcode 310000" in without.detail
    assert unknown.permanent and unknown.detail.startswith("钉钉拒绝发送") and "errcode 300001" in unknown.detail
    assert (refused.permanent, refused.detail) == (True, REFUSED)
    accepted = await api.accepted()
    assert [a["access_token"] for a in accepted] == [KEYWORD, KEYWORD]
    assert accepted[1]["body"]["at"]["atMobiles"] == ["13800001111"] and accepted[1]["timestamp"] is None


async def test_sending_too_fast_backs_off_and_sends_once(api: StandInProcess) -> None:
    channel = _channel(api)
    await channel.start(no_receipts)
    try:
        sent = [await channel.send(_message(SIGNED, f"d{i}")) for i in range(dingtalk_api.PER_MINUTE)]
        over = await channel.send(_message(SIGNED, "d20"))  # the 21st within a minute: 130101
        held = await channel.send(_message(SIGNED, "d21"))
        other = await channel.send(_message(KEYWORD, "d22"))  # another robot is not held
        await api.turn(flood=1, flood_errcode=410100)
        throttled = await channel.send(_message(KEYWORD, "d23"))
        channel.holds.release()  # the outbox would wait retry_after; the test need not
        again = await channel.send(_message(KEYWORD, "d23"))
    finally:
        await channel.stop()
    assert all(r.accepted for r in sent) and other.accepted and again.accepted
    assert (over.accepted, over.permanent, over.retry_after) == (False, False, 600.0)
    assert "errcode 130101" in over.detail and "限流" in over.detail
    assert not held.accepted and held.retry_after is not None and 590 < held.retry_after <= 600
    assert throttled.retry_after == 600.0 and "errcode 410100" in throttled.detail
    tokens = [a["access_token"] for a in await api.accepted()]
    assert tokens.count(SIGNED) == dingtalk_api.PER_MINUTE and tokens.count(KEYWORD) == 2  # d22 and d23, once each
