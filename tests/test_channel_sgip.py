"""SGIP channel against a test China Unicom gateway process (tests/support/peers/sgip_gateway.py), written from
the spec apart from the client: it checks every Bind and Submit field, records each Submit decoded, and sends
Reports and MO messages the SGIP way, over a connection of its own to the channel's listener.

No independent SGIP client exists on PyPI (the names that come close are unrelated), so none talks to the peer.
"""

import asyncio
from functools import partial
from pathlib import Path

import pytest

from broadcast.channel import Message
from broadcast.channels.sgip import SgipChannel
from broadcast.sgip import pdu
from tests.support.channel_peers import Smsc, free_port
from tests.support.wait import until
from tests.test_channel_sms import LONG_ZH, Receipts, first_mobile_originated, send_until_accepted, sent

NODE_ID = 3010012345


class SgipGateway(Smsc):
    module = "tests.support.peers.sgip_gateway"

    def __init__(self, tmp: Path, **options: object) -> None:
        self.sp_port = free_port()
        super().__init__(tmp, sp_port=self.sp_port, **options)


def _channel(gateway: SgipGateway, password: str = "secret", **options: object) -> SgipChannel:
    return SgipChannel(
        "127.0.0.1",
        gateway.port,
        "sb",
        password,
        sp_number="1065512379",
        corp_id="12345",
        node_id=NODE_ID,
        listen_host="127.0.0.1",
        listen_port=gateway.sp_port,
        listen_login_name="smg",
        listen_password="smgsecret",
        **options,
    )


def _reassemble(records: list[dict]) -> str:
    texts = []
    for record in records:
        raw = bytes.fromhex(record["message_content"])
        assert raw[:3] == b"\x05\x00\x03" and record["tp_udhi"] == 1 and len(raw) <= 140
        texts.append(raw[6:].decode("utf-16-be"))
    return "".join(texts)


async def test_a_national_number_goes_with_the_country_code_sgip_requires(smsc_factory) -> None:
    """The directory keeps 13012345678; SGIP's UserNumber is 86 and the number (Unicom refuses it otherwise)."""
    gateway = smsc_factory(SgipGateway, receipt_delay=0.1)
    [result], receipts = await sent(_channel(gateway), Message("w1:sgip:2", "13000000002", "暴雨预警"))
    assert result.accepted, result
    [record] = await gateway.recorded(1)
    assert (record["result"], record["user_numbers"]) == (0, ["8613000000002"])


async def test_long_chinese_message_reassembles_and_the_report_maps_back(smsc_factory) -> None:
    gateway = smsc_factory(SgipGateway, receipt_delay=0.3)
    [result], receipts = await sent(_channel(gateway), Message("w1:sgip:1", "+8613000000001", LONG_ZH))
    assert result.accepted, result
    records = await gateway.recorded(3)
    assert [r["result"] for r in records] == [0, 0, 0]
    assert {
        (r["sp_number"], tuple(r["user_numbers"]), r["corp_id"], r["message_coding"], r["report_flag"]) for r in records
    } == {("1065512379", ("8613000000001",), "12345", 8, 1)}
    assert [(r["udh"]["total"], r["udh"]["part"]) for r in records] == [(3, 1), (3, 2), (3, 3)]
    assert len({r["udh"]["ref"] for r in records}) == 1
    assert _reassemble(records) == LONG_ZH
    assert [r["sequence_fields"][0] for r in records] == [NODE_ID] * 3
    assert result.remote_id == records[-1]["sequence"] and len(result.remote_id) == 24
    [(name, remote_id, delivered, detail, _)] = receipts.got
    assert (name, remote_id, delivered) == ("sgip", records[-1]["sequence"], True)
    assert "已送达" in detail


async def test_undeliverable_report_names_the_error(smsc_factory) -> None:
    gateway = smsc_factory(SgipGateway, receipt_delay=0.1, undeliverable_prefix="8613100")
    [ok, bad], receipts = await sent(
        _channel(gateway), Message("d1", "8613000000002", "预警"), Message("d2", "+8613100000003", "暴雨预警" * 30)
    )
    by_id = receipts.by_id()
    assert by_id[ok.remote_id][0] is True
    delivered, detail = by_id[bad.remote_id]
    assert delivered is False and "未送达" in detail and "29" in detail and "不知道的用户" in detail


async def test_throttling_is_backed_off_and_the_message_goes_once(smsc_factory) -> None:
    gateway = smsc_factory(SgipGateway, throttle_first=2, receipt_delay=0.1)
    channel = _channel(gateway, throttle_backoff=0.1)
    receipts = Receipts()
    await channel.start(receipts)
    try:
        result, waits = await send_until_accepted(channel, Message("d1", "+8613000000004", "请注意防范"))
        await receipts.wait_for(1)
    finally:
        await channel.stop()
    assert [r["result"] for r in gateway.submits()] == [pdu.NODE_BUSY, pdu.NODE_BUSY, 0]
    assert len(waits) == 2 and waits[0] < waits[1]
    assert receipts.got[0][1] == result.remote_id


async def test_throttle_mid_message_resubmits_only_that_part(smsc_factory) -> None:
    gateway = smsc_factory(SgipGateway, throttle_after=1, throttle_first=1, receipt_delay=0.1)
    [result], receipts = await sent(_channel(gateway, throttle_backoff=0.05), Message("d1", "+8613000000005", LONG_ZH))
    assert result.accepted, result
    records = gateway.submits()
    assert [(r["udh"]["part"], r["result"]) for r in records] == [(1, 0), (2, 11), (2, 0), (3, 0)]
    assert _reassemble([r for r in records if r["result"] == 0]) == LONG_ZH


async def test_dropped_connection_is_bound_again_and_the_message_goes_once(smsc_factory) -> None:
    gateway = smsc_factory(SgipGateway, drop_after=1, receipt_delay=0.1)
    channel = _channel(gateway, reconnect_max=0.5)
    receipts = Receipts()
    await channel.start(receipts)
    try:
        assert (await channel.send(Message("d1", "+8613000000006", "第一条"))).accepted
        await until(lambda: channel.session.connects >= 2, timeout=10, what="a second bind")
        second = await channel.send(Message("d2", "+8613000000007", "第二条"))
        assert second.accepted, second
        await receipts.wait_for(2)  # reports come on the gateway's own connection, untouched by the drop
    finally:
        await channel.stop()
    assert [r["user_numbers"] for r in gateway.submits()] == [["8613000000006"], ["8613000000007"]]


async def test_wrong_password_is_refused_with_a_chinese_error_in_health(smsc_factory) -> None:
    gateway = smsc_factory(SgipGateway)
    channel = _channel(gateway, password="wrong", reconnect_max=0.5)
    await channel.start(Receipts())
    try:
        health = await until(lambda: (h := channel.health()).get("error") and h, timeout=10, what="a bind error")
    finally:
        await channel.stop()
    assert health["status"] == "down"
    assert "短信网关拒绝登录" in health["error"] and "非法登录" in health["error"] and "Result 1" in health["error"]


async def test_mobile_originated_message_reaches_the_callback(smsc_factory) -> None:
    gateway = smsc_factory(SgipGateway, mo="8613000000009=收到，已转移")
    assert await first_mobile_originated(partial(_channel, gateway)) == ("8613000000009", "收到，已转移")


async def test_the_listener_refuses_a_gateway_with_wrong_credentials(smsc_factory) -> None:
    gateway = smsc_factory(SgipGateway)
    channel = _channel(gateway)
    await channel.start(Receipts())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.sp_port)
        sequence = pdu.sequence_number(1, 1)
        body = pdu.bind(pdu.LOGIN_SMG_TO_SP, "smg", "guess")
        writer.write((20 + len(body)).to_bytes(4, "big") + pdu.BIND.to_bytes(4, "big") + sequence + body)
        answer = await asyncio.wait_for(reader.readexactly(29), 5)
        assert answer[4:8] == pdu.BIND_RESP.to_bytes(4, "big") and answer[8:20] == sequence
        assert answer[20] == pdu.BAD_LOGIN
        assert await asyncio.wait_for(reader.read(), 5) == b""  # and closed
        writer.close()
    finally:
        await channel.stop()


async def test_a_listener_port_in_use_shows_in_health(smsc_factory) -> None:
    gateway = smsc_factory(SgipGateway)
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", gateway.sp_port)
    channel = _channel(gateway)
    try:
        await channel.start(Receipts())
        await channel.session.wait_bound(5)
        health = channel.health()
        assert health["status"] == "down" and "无法在" in health["error"]
    finally:
        await channel.stop()
        blocker.close()


@pytest.mark.parametrize("recipient", ["not-a-number", ""])
async def test_bad_recipients_are_permanent(smsc_factory, recipient: str) -> None:
    gateway = smsc_factory(SgipGateway)
    channel = _channel(gateway)
    await channel.start(Receipts())
    try:
        result = await channel.send(Message("d1", recipient, "x"))
    finally:
        await channel.stop()
    assert (result.accepted, result.permanent) == (False, True)
