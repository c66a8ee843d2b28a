"""SMGP channel against a test China Telecom gateway process (tests/support/peers/smgp_gateway.py), written from
the spec apart from the client: it checks every Login and Submit field and records each Submit decoded. The test
reassembles the parts from the gateway's record itself, so a wrong UDH, TLV or one changed character fails here.

No independent SMGP client exists on PyPI (the `smgp` package there is unrelated), so none talks to the peer.
"""

import asyncio
from functools import partial

from broadcast.channel import Message
from broadcast.channels.smgp import SmgpChannel
from broadcast.segments import segment
from broadcast.smgp import pdu
from broadcast.smgp.session import timestamp
from tests.support.channel_peers import Smsc
from tests.support.wait import until
from tests.test_channel_sms import LONG_ZH, Receipts, first_mobile_originated, sent


class SmgpGateway(Smsc):
    module = "tests.support.peers.smgp_gateway"


def _channel(gateway: Smsc, secret: str = "secret", **options: object) -> SmgpChannel:
    return SmgpChannel("127.0.0.1", gateway.port, "sb", secret, src_term_id="1065912379", **options)


def _reassemble(records: list[dict]) -> tuple[list[tuple[int, int, int]], str]:
    headers, texts = [], []
    for record in records:
        raw = bytes.fromhex(record["msg_content"])
        assert raw[:3] == b"\x05\x00\x03" and record["tlvs"]["TP_udhi"] == 1
        assert (record["tlvs"]["PkTotal"], record["tlvs"]["PkNumber"]) == (raw[4], raw[5])
        headers.append((raw[3], raw[4], raw[5]))
        assert len(raw) <= 140
        texts.append(raw[6:].decode("utf-16-be"))
    return headers, "".join(texts)


def test_authenticator_client_is_the_spec_digest() -> None:
    """MD5 over ClientID, 7 zero bytes, the secret and the 10-digit time stamp, computed independently."""
    import hashlib

    expected = hashlib.md5(b"sb" + b"\0" * 7 + b"secret" + b"0102030405").digest()
    assert pdu.authenticator_client("sb", "secret", 102030405) == expected
    assert len(pdu.login("sb", "secret", 102030405)) == 30
    assert 101000000 <= timestamp() <= 1231235959


async def test_long_chinese_message_reassembles_and_the_report_maps_back(smsc_factory) -> None:
    gateway = smsc_factory(SmgpGateway, receipt_delay=0.3)
    [result], receipts = await sent(_channel(gateway), Message("w1:smgp:1", "+8613300000001", LONG_ZH))
    assert result.accepted, result
    assert segment(LONG_ZH, "UCS-2").count == 3
    records = await gateway.recorded(3)
    assert [r["status"] for r in records] == [0, 0, 0]
    assert {
        (r["msg_type"], r["msg_format"], r["need_report"], r["src_term_id"], tuple(r["dest_term_ids"])) for r in records
    } == {(6, 8, 1, "1065912379", ("8613300000001",))}
    headers, text = _reassemble(records)
    assert text == LONG_ZH
    assert [h[2] for h in headers] == [1, 2, 3] and {h[:2] for h in headers} == {(headers[0][0], 3)}
    assert result.remote_id == records[-1]["msg_id"] and len(result.remote_id) == 20
    [(name, remote_id, delivered, detail, _)] = receipts.got
    assert (name, remote_id, delivered) == ("smgp", records[-1]["msg_id"], True)
    assert "已送达" in detail and "DELIVRD" in detail


async def test_undeliverable_report_and_a_short_message(smsc_factory) -> None:
    gateway = smsc_factory(SmgpGateway, receipt_delay=0.1, undeliverable_prefix="8618900")
    [ok, bad], receipts = await sent(
        _channel(gateway),
        Message("d1", "8613300000002", "Test [1] €5"),
        Message("d2", "+8618900000003", "暴雨预警" * 30),
    )
    assert ok.accepted and bad.accepted
    by_id = receipts.by_id()
    assert by_id[ok.remote_id][0] is True
    delivered, detail = by_id[bad.remote_id]
    assert delivered is False and "未送达" in detail and "UNDELIV" in detail
    short = gateway.submits()[0]
    assert (short["msg_format"], short["tlvs"]["TP_udhi"], short["udh"]) == (8, 0, None)
    assert bytes.fromhex(short["msg_content"]).decode("utf-16-be") == "Test [1] €5"


async def test_throttling_is_backed_off_and_the_message_goes_once(smsc_factory) -> None:
    gateway = smsc_factory(SmgpGateway, throttle_first=3, receipt_delay=0.1)
    channel = _channel(gateway, throttle_backoff=0.1)
    receipts = Receipts()
    await channel.start(receipts)
    waits: list[float] = []
    try:
        message = Message("d1", "+8613300000004", "请注意防范")
        result = await channel.send(message)
        while not result.accepted:  # what the outbox does with retry_after
            assert not result.permanent and result.retry_after is not None, result
            assert "系统忙（Status 1）" in result.detail or "限流" in result.detail
            waits.append(result.retry_after)
            held = await channel.send(message)  # while held, answered at once without bothering the gateway
            assert not held.accepted and held.retry_after is not None
            await asyncio.sleep(result.retry_after)
            result = await channel.send(message)
        await receipts.wait_for(1)
    finally:
        await channel.stop()
    assert [r["status"] for r in gateway.submits()] == [1, 1, 1, 0]
    assert len(waits) == 3 and waits[0] < waits[1] < waits[2]
    assert receipts.got[0][1] == result.remote_id


async def test_throttle_mid_message_resubmits_only_that_part(smsc_factory) -> None:
    gateway = smsc_factory(SmgpGateway, throttle_after=1, throttle_first=2, receipt_delay=0.1)
    [result], receipts = await sent(_channel(gateway, throttle_backoff=0.05), Message("d1", "+8613300000005", LONG_ZH))
    assert result.accepted, result
    records = gateway.submits()
    assert [(r["udh"]["part"], r["status"]) for r in records] == [(1, 0), (2, 1), (2, 1), (2, 0), (3, 0)]
    assert _reassemble([r for r in records if r["status"] == 0])[1] == LONG_ZH


async def test_dropped_connection_is_reconnected_and_the_message_goes_once(smsc_factory) -> None:
    gateway = smsc_factory(SmgpGateway, drop_after=1, receipt_delay=0.1)
    channel = _channel(gateway, bind_wait=5.0, reconnect_max=0.5)
    receipts = Receipts()
    await channel.start(receipts)
    try:
        first = await channel.send(Message("d1", "+8613300000006", "第一条"))
        assert first.accepted, first
        await until(lambda: channel.session.connects >= 2, timeout=10, what="a second login")
        second = await channel.send(Message("d2", "+8613300000007", "第二条"))
        assert second.accepted, second
        await until(lambda: any(r[1] == second.remote_id for r in receipts.got), timeout=10, what="the report")
    finally:
        await channel.stop()
    assert [r["dest_term_ids"] for r in gateway.submits()] == [["8613300000006"], ["8613300000007"]]


async def test_window_keeps_several_submits_in_flight(smsc_factory) -> None:
    gateway = smsc_factory(SmgpGateway, receipt_delay=0.2, response_delay=0.01)
    channel = _channel(gateway, window=8, rate_per_second=10_000)  # the window, not the pace, is what limits here
    receipts = Receipts()
    await channel.start(receipts)
    try:
        results = await asyncio.gather(
            *(channel.send(Message(f"d{i}", f"86133000{i:05d}", f"第{i}号预警：请注意防范。")) for i in range(30))
        )
        await receipts.wait_for(30)
        assert 1 < channel.session.max_in_flight <= 8
    finally:
        await channel.stop()
    assert all(r.accepted for r in results)
    assert sorted(r[1] for r in receipts.got) == sorted(r.remote_id for r in results)


async def test_wrong_secret_is_refused_with_a_chinese_error_in_health(smsc_factory) -> None:
    gateway = smsc_factory(SmgpGateway)
    channel = _channel(gateway, secret="wrong", reconnect_max=0.5)
    assert channel.health() == {"status": "down", "link": "down"}
    await channel.start(Receipts())
    try:
        health = await until(lambda: (h := channel.health()).get("error") and h, timeout=10, what="a login error")
        result = await channel.send(Message("d1", "+8613300000008", "x"))
    finally:
        await channel.stop()
    assert health["status"] == "down"
    assert "短信网关拒绝登录" in health["error"] and "认证错" in health["error"] and "Status 21" in health["error"]
    assert not result.accepted and not result.permanent and result.retry_after
    assert gateway.submits() == []


async def test_mobile_originated_message_reaches_the_callback(smsc_factory) -> None:
    gateway = smsc_factory(SmgpGateway, mo="8613300000009=收到，已转移")
    assert await first_mobile_originated(partial(_channel, gateway)) == ("8613300000009", "收到，已转移")


async def test_active_test_keeps_the_link_and_exit_on_stop(smsc_factory) -> None:
    gateway = smsc_factory(SmgpGateway)
    channel = _channel(gateway, active_test_interval=0.1)
    before = asyncio.all_tasks()
    await channel.start(Receipts())
    try:
        assert await channel.session.wait_bound(5)
        connects = channel.session.connects
        await until(lambda: channel.session.max_in_flight >= 1, timeout=5, what="an Active_Test in flight")
        assert (await channel.send(Message("d1", "+8613300000010", "x"))).accepted
        assert channel.session.connects == connects and channel.health() == {"status": "ok", "link": "up"}
    finally:
        await channel.stop()
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    assert left == []
    assert not (await channel.send(Message("d2", "+8613300000010", "x"))).accepted
