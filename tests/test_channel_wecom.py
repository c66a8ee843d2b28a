"""WeCom channels (group robot, application messages) against a stand-in WeCom API (tests/support/peers/wecom_api.py)
in a process of its own. It is a stand-in because qyapi.weixin.qq.com cannot be reached offline; it checks each
request as WeCom's documentation describes it (paths, query parameters, JSON shapes and types, msgtype fields, size
limits, access_token validity, a robot's 20 messages a minute) and answers its errcodes, so the channels are
exercised over real HTTP and the test reads what the stand-in accepted.
"""

import ipaddress

import pytest

from broadcast.channel import Message
from broadcast.channels.wecom import WeComAppChannel, WeComRobotChannel
from switchboard.core.outbound import REFUSED, OutboundPolicy
from tests.support.peers import wecom_api
from tests.support.peers.standin import StandInProcess, no_receipts
from tests.support.rendered import rendering

KEY, OTHER_KEY = sorted(wecom_api.ROBOT_KEYS)
LOCAL = OutboundPolicy(frozenset(), (ipaddress.ip_network("127.0.0.1/32"),))


@pytest.fixture
async def api():
    async with StandInProcess("tests.support.peers.wecom_api") as stand_in:
        yield stand_in


def _robot(api: StandInProcess, policy: OutboundPolicy | None = None) -> WeComRobotChannel:
    return WeComRobotChannel(policy, base_url=f"{api.base_url}/cgi-bin/webhook/send")


def _app(api: StandInProcess, secret: str = wecom_api.CORP_SECRET) -> WeComAppChannel:
    return WeComAppChannel(wecom_api.CORP_ID, secret, wecom_api.AGENT_ID, base_url=f"{api.base_url}/cgi-bin")


def _message(channel: str, recipient: str, delivery_id: str = "d1") -> Message:
    shown = rendering(channel)
    return Message(delivery_id, recipient, shown.text, subject=shown.subject)


async def test_robot_markdown_arrives_intact_with_userid_mentions(api: StandInProcess) -> None:
    channel = _robot(api)
    await channel.start(no_receipts)
    try:
        message = _message("wecom_robot", f"{KEY}#at=zhangsan,lisi")
        result = await channel.send(message)
    finally:
        await channel.stop()
    assert result.accepted, result
    [sent] = await api.accepted()
    assert sent["key"] == KEY and sent["body"]["msgtype"] == "markdown"
    assert sent["body"]["markdown"]["content"] == message.text + "\n<@zhangsan><@lisi>"
    assert '<font color="warning">橙色</font>' in message.text and "太原市气象台发布暴雨橙色预警信号" in message.text


async def test_robot_mobiles_are_mentioned_in_a_text_message(api: StandInProcess) -> None:
    channel = _robot(api)
    await channel.start(no_receipts)
    try:
        result = await channel.send(_message("wecom_robot", f"{KEY}#at=13800001111,zhangsan"))
    finally:
        await channel.stop()
    assert result.accepted, result
    [sent] = await api.accepted()
    text = sent["body"]["text"]
    assert sent["body"]["msgtype"] == "text"
    assert text["mentioned_mobile_list"] == ["13800001111"] and text["mentioned_list"] == ["zhangsan"]
    assert text["content"].startswith("太原市气象台发布暴雨橙色预警信号\n预警级别：橙色")
    assert (
        "**" not in text["content"] and "<font" not in text["content"] and "防御指南：停止户外作业" in text["content"]
    )


async def test_robot_over_its_limit_backs_off_and_sends_once(api: StandInProcess) -> None:
    channel = _robot(api)
    await channel.start(no_receipts)
    try:
        accepted = [await channel.send(_message("wecom_robot", KEY, f"d{i}")) for i in range(20)]
        over = await channel.send(_message("wecom_robot", KEY, "d20"))  # the stand-in's 21st within a minute
        held = await channel.send(_message("wecom_robot", KEY, "d21"))
        other = await channel.send(_message("wecom_robot", OTHER_KEY, "d22"))  # holds are per robot
        await api.turn(flood=1, http429=1)
        refused_429 = await channel.send(_message("wecom_robot", OTHER_KEY, "d23"))
        flooded = await channel.send(_message("wecom_robot", OTHER_KEY, "d23"))
        channel.holds.release()  # the outbox would wait retry_after; the test need not
        again = await channel.send(_message("wecom_robot", OTHER_KEY, "d23"))
    finally:
        await channel.stop()
    assert all(r.accepted for r in accepted)
    assert (over.accepted, over.permanent, over.retry_after) == (False, False, 60.0), over
    assert "45009" in over.detail and "接口调用超过限制" in over.detail
    assert not held.accepted and held.retry_after is not None and 0 < held.retry_after <= 60
    assert other.accepted
    assert refused_429.retry_after == 60.0 and "HTTP 429" in refused_429.detail
    assert flooded.retry_after == 60.0 and again.accepted
    keys = [a["key"] for a in await api.accepted()]
    assert keys.count(KEY) == 20 and keys.count(OTHER_KEY) == 2  # d22 and d23, each once


async def test_robot_unknown_key_is_permanent_and_an_outlet_address_needs_the_policy(api: StandInProcess) -> None:
    outlet = f"{api.base_url}/cgi-bin/webhook/send?key={KEY}#at=wangwu"
    refusing, allowing = _robot(api, OutboundPolicy(frozenset(), ())), _robot(api, LOCAL)
    for channel in (refusing, allowing):
        await channel.start(no_receipts)
    try:
        unknown = await allowing.send(_message("wecom_robot", "no-such-key"))
        refused = await refusing.send(_message("wecom_robot", outlet))
        allowed = await allowing.send(_message("wecom_robot", outlet))
    finally:
        for channel in (refusing, allowing):
            await channel.stop()
    assert (unknown.accepted, unknown.permanent) == (False, True) and "errcode 93000" in unknown.detail
    assert unknown.detail.startswith("企业微信拒绝发送") and allowing.health()["status"] == "down"  # stopped
    assert (refused.permanent, refused.detail) == (True, REFUSED)
    assert allowed.accepted
    [sent] = await api.accepted()
    assert sent["body"]["markdown"]["content"].endswith("<@wangwu>")


async def test_app_message_reaches_the_user_with_one_token(api: StandInProcess) -> None:
    channel = _app(api)
    await channel.start(no_receipts)
    try:
        first = await channel.send(_message("wecom_app", "zhangsan"))
        second = await channel.send(_message("wecom_app", "lisi", "d2"))
    finally:
        await channel.stop()
    assert first.accepted and second.accepted, (first, second)
    calls = await api.accepted()
    assert [c["api"] for c in calls] == ["gettoken", "message/send", "message/send"]
    body = calls[1]["body"]
    assert body == {
        "touser": "zhangsan",
        "msgtype": "markdown",
        "agentid": wecom_api.AGENT_ID,
        "markdown": {"content": rendering("wecom_app").text},
    }
    assert first.remote_id == calls[1]["msgid"]
    assert channel.health()["status"] == "down"  # stopped


async def test_app_expired_token_is_refreshed_once_and_the_message_goes_once(api: StandInProcess) -> None:
    channel = _app(api)
    await channel.start(no_receipts)
    try:
        assert (await channel.send(_message("wecom_app", "zhangsan"))).accepted
        await api.turn(expire_tokens=True)  # WeCom may end a token before expires_in
        result = await channel.send(_message("wecom_app", "lisi", "d2"))
        assert channel.health()["status"] == "ok"
    finally:
        await channel.stop()
    assert result.accepted, result
    calls = await api.accepted()
    assert [c["api"] for c in calls] == ["gettoken", "message/send", "gettoken", "message/send"]
    assert [c["body"]["touser"] for c in calls if c["api"] == "message/send"] == ["zhangsan", "lisi"]


async def test_app_token_unknown_to_wecom_is_replaced(api: StandInProcess) -> None:
    channel = _app(api)
    await channel.start(no_receipts)
    try:
        assert (await channel.send(_message("wecom_app", "zhangsan"))).accepted
        await api.stop()  # a WeCom that no longer knows the token: 40014, not 42001
        await api.start()
        result = await channel.send(_message("wecom_app", "wangwu", "d2"))
    finally:
        await channel.stop()
    assert result.accepted, result
    assert [(c["api"], c.get("body", {}).get("touser")) for c in await api.accepted()] == [
        ("gettoken", None),
        ("message/send", "wangwu"),
    ]


async def test_app_flood_unknown_user_and_wrong_secret(api: StandInProcess) -> None:
    channel, wrong = _app(api), _app(api, secret="not-the-secret")
    for each in (channel, wrong):
        await each.start(no_receipts)
    try:
        await api.turn(flood=1)
        flooded = await channel.send(_message("wecom_app", "zhangsan"))
        held = await channel.send(_message("wecom_app", "lisi", "d2"))
        channel._held_until = 0  # the outbox would wait retry_after; the test need not
        again = await channel.send(_message("wecom_app", "zhangsan"))
        unknown = await channel.send(_message("wecom_app", "nobody", "d3"))
        refused = await wrong.send(_message("wecom_app", "zhangsan", "d4"))
        health = wrong.health()
    finally:
        for each in (channel, wrong):
            await each.stop()
    assert (flooded.retry_after, flooded.permanent) == (60.0, False) and "45009" in flooded.detail
    assert not held.accepted and held.retry_after is not None and held.retry_after <= 60
    assert again.accepted
    assert unknown.permanent and "errcode 81013" in unknown.detail
    assert refused.permanent and "errcode 40001" in refused.detail
    assert health["status"] == "down" and "errcode 40001" in health["error"] and "not-the-secret" not in str(health)
    sends = [c["body"]["touser"] for c in await api.accepted() if c["api"] == "message/send"]
    assert sends == ["zhangsan"]  # once, after the flood


async def test_a_long_warning_is_cut_to_what_wecom_takes(api: StandInProcess) -> None:
    shown = rendering("wecom_robot", description="汾河水位持续上涨，" * 500)  # 13,500 bytes of description
    robot, app = _robot(api), _app(api)
    for channel in (robot, app):
        await channel.start(no_receipts)
    try:
        to_group = await robot.send(Message("d1", f"{KEY}#at=zhangsan", shown.text))
        to_user = await app.send(Message("d2", "lisi", shown.text))
    finally:
        for channel in (robot, app):
            await channel.stop()
    assert to_group.accepted and to_user.accepted, (to_group, to_user)
    group, user = [c["body"] for c in await api.accepted() if c["api"] != "gettoken"]
    assert len(group["markdown"]["content"].encode()) <= 4096 and group["markdown"]["content"].endswith(
        "……\n<@zhangsan>"
    )
    assert len(user["markdown"]["content"].encode()) <= 2048 and user["markdown"]["content"].endswith("……")
    assert group["markdown"]["content"].startswith(shown.text[:200])
