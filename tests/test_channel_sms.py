"""SMS channel against a real SMSC process (tests/support/peers/smsc.py, on smpp34's SMPP server).

The test reads the SMSC's own record of every submit_sm and decodes the UDH and UCS-2 bytes itself: a wrong
part count, an inconsistent concatenation header or one changed character fails here.
"""

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import pytest

from broadcast.channel import Message, SendResult
from broadcast.channels.gateway import GatewayChannel
from broadcast.channels.sms import SmsChannel
from broadcast.framing import Frame, FramedLink
from broadcast.segments import segment
from broadcast.smpp import pdu
from tests.support.channel_peers import Smsc
from tests.support.wait import until

LONG_ZH = (
    "【山西省气象台】太原市气象台2025年7月30日14时发布暴雨橙色预警信号：预计未来3小时内，小店区、迎泽区、"
    "杏花岭区将出现50毫米以上降水，局地伴有雷电、短时大风。请停止户外作业，远离河道、低洼地带和地质灾害"
    "隐患点，驾车注意积水路段，学校、幼儿园应采取适当措施保证学生和幼儿安全。🌧 详情请关注太原气象微博及当地广播电视。"
)


class Receipts:
    def __init__(self) -> None:
        self.got: list[tuple[str, str, bool, str, float]] = []
        self.event = asyncio.Event()

    async def __call__(self, channel: str, remote_id: str, delivered: bool, detail: str) -> None:
        self.got.append((channel, remote_id, delivered, detail, time.monotonic()))
        self.event.set()

    def by_id(self) -> dict[str, tuple[bool, str]]:
        """(delivered, detail) of each receipt, by remote id."""
        return {remote_id: (delivered, detail) for _, remote_id, delivered, detail, _ in self.got}

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.got) < count:
                self.event.clear()
                await self.event.wait()


async def send_until_accepted(channel: GatewayChannel, message: Message) -> tuple[SendResult, list[float]]:
    """As the outbox does: a refused send with retry_after is sent again that much later. The result, the waits."""
    waits: list[float] = []
    result = await channel.send(message)
    while not result.accepted:
        assert not result.permanent and result.retry_after is not None, result
        waits.append(result.retry_after)
        await asyncio.sleep(result.retry_after)
        result = await channel.send(message)
    return result, waits


@contextlib.asynccontextmanager
async def started(channel: GatewayChannel) -> AsyncIterator[Receipts]:
    """The channel started, and stopped again whatever happens; what it reports arrives in the Receipts."""
    receipts = Receipts()
    await channel.start(receipts)
    try:
        yield receipts
    finally:
        await channel.stop()


async def sent(channel: GatewayChannel, *messages: Message) -> tuple[list[SendResult], Receipts]:
    """Start `channel`, send `messages` one after the other, wait for a receipt on each one accepted, and stop it."""
    async with started(channel) as receipts:
        results = [await channel.send(message) for message in messages]
        await receipts.wait_for(sum(result.accepted for result in results))
    return results, receipts


async def first_mobile_originated(make: Callable[..., GatewayChannel]) -> tuple[str, str]:
    """Start the channel `make(on_mobile_originated=...)` builds, and return the first MO message it hands over."""
    got: list[tuple[str, str]] = []

    async def mobile_originated(source: str, text: str) -> None:
        got.append((source, text))

    async with started(make(on_mobile_originated=mobile_originated)):
        await until(lambda: got, timeout=10, what="the MO message")
    return got[0]


def _channel(smsc: Smsc, **options: object) -> SmsChannel:
    return SmsChannel("127.0.0.1", smsc.port, "switchboard", "secret", source_addr="12121", **options)


def _decode_parts(records: list[dict]) -> tuple[list[tuple[int, int, int]], str]:
    """(ref, total, part) from each short_message's own UDH bytes, and the reassembled text."""
    headers, texts = [], []
    for record in records:
        raw = bytes.fromhex(record["short_message"])
        assert record["esm_class"] & 0x40
        assert raw[:3] == b"\x05\x00\x03"  # UDH length 5, IEI 0 (8-bit ref concatenation), IE length 3
        headers.append((raw[3], raw[4], raw[5]))
        assert len(raw) <= 140 and len(raw[6:]) <= 134
        texts.append(raw[6:].decode("utf-16-be"))  # a surrogate pair split across parts would fail here
    return headers, "".join(texts)


async def test_long_chinese_message_is_ucs2_parts_that_reassemble_and_receipt_maps_back(smsc_factory) -> None:
    smsc = smsc_factory(receipt_delay=0.3)
    receipts = Receipts()
    channel = _channel(smsc)
    await channel.start(receipts)
    try:
        sent_at = time.monotonic()
        result = await channel.send(Message("w1:sms:1", "+8613800000001", LONG_ZH))
        assert result.accepted, result
        await receipts.wait_for(1)
    finally:
        await channel.stop()

    expected_parts = segment(LONG_ZH).count
    assert expected_parts == 3 and len(LONG_ZH) > 70
    records = await smsc.recorded(expected_parts)
    assert len(records) == expected_parts
    assert {(r["data_coding"], r["destination"], r["dest_addr_ton"], r["source"]) for r in records} == {
        (8, "8613800000001", 1, "12121")
    }
    headers, text = _decode_parts(records)
    assert text == LONG_ZH
    assert [h[2] for h in headers] == [1, 2, 3] and {h[:2] for h in headers} == {(headers[0][0], 3)}
    assert [(r["udh"]["ref"], r["udh"]["total"], r["udh"]["part"]) for r in records] == headers  # peer agrees
    assert result.remote_id == records[-1]["message_id"]  # the LAST part's id
    [(name, remote_id, delivered, detail, at)] = receipts.got
    assert (name, remote_id, delivered) == ("sms", records[-1]["message_id"], True)
    assert "DELIVRD" in detail
    assert at - sent_at >= 0.3  # it waited for every part's (delayed) receipt


async def test_short_gsm_and_undeliverable_receipts(smsc_factory) -> None:
    smsc = smsc_factory(receipt_delay=0.1, undeliverable_prefix="8613900")
    [ok, bad], receipts = await sent(
        _channel(smsc), Message("d1", "+8613800000002", "Test [1] €5"), Message("d2", "+8613900000003", "暴雨预警" * 30)
    )
    assert ok.accepted and bad.accepted
    by_id = receipts.by_id()
    assert by_id[ok.remote_id][0] is True
    assert by_id[bad.remote_id][0] is False and "UNDELIV" in by_id[bad.remote_id][1]
    gsm = smsc.submits()[0]
    assert gsm["data_coding"] == 0 and gsm["esm_class"] == 0
    assert bytes.fromhex(gsm["short_message"]) == b"Test \x1b<1\x1b> \x1be5"  # GSM 03.38 escapes


async def test_the_sender_is_numbered_as_it_looks(smsc_factory) -> None:
    """The SMSC receives the short code as a national number (TON 2, NPI 1: repliable), a +86 number as
    international E.164, a name as alphanumeric; configuration may still say otherwise."""
    smsc = smsc_factory(receipt_delay=0.1)
    for source, options in (("12379", {}), ("+8612379", {}), ("YJGLJ", {}), ("12379", {"source_addr_ton": 3})):
        channel = SmsChannel("127.0.0.1", smsc.port, "switchboard", "secret", source_addr=source, **options)
        await channel.start(Receipts())
        try:
            assert (await channel.send(Message("d1", "+8613800000002", "预警"))).accepted
        finally:
            await channel.stop()
    records = await smsc.recorded(4)
    assert [(r["source"], r["source_addr_ton"], r["source_addr_npi"]) for r in records] == [
        ("12379", 2, 1),
        ("8612379", 1, 1),
        ("YJGLJ", 5, 0),
        ("12379", 3, 1),
    ]


async def test_a_transmitter_and_a_receiver_deliver_and_get_receipts(smsc_factory) -> None:
    """bind="transmitter_receiver": the parts go on a bind_transmitter, the receipts come on a bind_receiver, to an
    SMSC that binds so and refuses a transceiver's submits."""
    smsc = smsc_factory(receipt_delay=0.1, bind="transmitter_receiver")
    channel = _channel(smsc, bind="transmitter_receiver")
    [result], receipts = await sent(channel, Message("d1", "+8613800000001", LONG_ZH))
    assert result.accepted, result
    binds = {b["session"]: b for b in smsc.events("bind")}
    assert [b.get("problem") for b in binds.values()] == [None, None]
    records = smsc.submits()
    assert [r["answer"] for r in records] == ["ESME_ROK"] * 3
    assert _decode_parts(records)[1] == LONG_ZH
    [transmitter] = {r["session"] for r in records}
    [receiver] = {r["session"] for r in smsc.events("receipt")}
    assert (binds[transmitter]["can_receive"], binds[receiver]["can_receive"]) == (False, True)
    assert receipts.got[0][1:3] == (result.remote_id, True)
    assert channel.receiver is not None and channel.receiver.connects == channel.session.connects == 1


async def test_the_smsc_holds_each_side_to_its_bind_type(smsc_factory) -> None:
    """A transceiver's submits to an SMSC that wants a transmitter and a receiver are refused (ESME_RINVBNDSTS,
    worth retrying once it is bound right); a transmitter and receiver pair at one that wants a transceiver loses
    its transmitter, and health says the channel is down."""
    pair_only = smsc_factory(bind="transmitter_receiver")
    channel = _channel(pair_only)
    async with started(channel):
        refused = await channel.send(Message("d1", "+8613800000002", "x"))
    assert (refused.accepted, refused.permanent) == (False, False)
    assert "绑定类型不允许此命令（状态码 0x00000004）" in refused.detail
    await until(pair_only.submits, timeout=10, what="the SMSC's record of the submit")  # written after its answer
    assert [r["answer"] for r in pair_only.submits()] == ["ESME_RINVBNDSTS"]
    transceiver_only = smsc_factory()
    channel = _channel(transceiver_only, bind="transmitter_receiver", reconnect_max=0.3)
    async with started(channel):
        problems = lambda: [b for b in transceiver_only.events("bind") if "problem" in b]  # noqa: E731
        await until(problems, timeout=10, what="the SMSC to refuse the transmitter")
        await until(lambda: channel.health()["status"] == "down", timeout=10, what="health to say down")
    assert {b["can_receive"] for b in problems()} == {False}


def test_mobile_originated_text_reads_gsm_escapes_and_skips_the_udh() -> None:
    assert pdu.short_message_text(pdu.gsm_encode("Test [1] €5 @"), pdu.DATA_CODING_DEFAULT, False) == "Test [1] €5 @"
    ucs2 = pdu.concatenation_udh(7, 2, 1) + "收到".encode("utf-16-be")
    assert pdu.short_message_text(ucs2, pdu.DATA_CODING_UCS2, True) == "收到"


async def test_a_mobile_originated_message_reaches_the_callback(smsc_factory) -> None:
    smsc = smsc_factory(mo="8613800000009=收到，已转移", bind="transmitter_receiver")
    got = await first_mobile_originated(partial(_channel, smsc, bind="transmitter_receiver"))
    assert got == ("8613800000009", "收到，已转移")
    [mo] = smsc.events("mo")
    assert [b["can_receive"] for b in smsc.events("bind") if b["session"] == mo["session"]] == [True]


async def test_throttling_is_backed_off_and_the_message_goes_once(smsc_factory) -> None:
    smsc = smsc_factory(throttle_first=3, receipt_delay=0.1)
    channel = _channel(smsc, throttle_backoff=0.1)
    receipts = Receipts()
    await channel.start(receipts)
    waits: list[float] = []
    try:
        message = Message("d1", "+8613800000004", "请注意防范")
        result = await channel.send(message)
        while not result.accepted:  # what the outbox does with retry_after
            assert not result.permanent and result.retry_after is not None, result
            waits.append(result.retry_after)
            # while held, the channel answers at once without bothering the SMSC
            held = await channel.send(message)
            assert not held.accepted and held.retry_after is not None
            await asyncio.sleep(result.retry_after)
            result = await channel.send(message)
        await receipts.wait_for(1)
    finally:
        await channel.stop()
    answers = [r["answer"] for r in smsc.submits()]
    assert answers == ["ESME_RTHROTTLED"] * 3 + ["ESME_ROK"]
    assert len(waits) == 3 and waits[0] < waits[1] < waits[2]  # exponential
    assert receipts.got[0][1] == result.remote_id


async def test_throttle_mid_message_resubmits_only_that_part(smsc_factory) -> None:
    smsc = smsc_factory(throttle_after=1, throttle_first=2, receipt_delay=0.1)
    [result], receipts = await sent(_channel(smsc, throttle_backoff=0.05), Message("d1", "+8613800000005", LONG_ZH))
    assert result.accepted, result
    records = smsc.submits()
    assert [(r["udh"]["part"], r["answer"]) for r in records] == [
        (1, "ESME_ROK"),
        (2, "ESME_RTHROTTLED"),
        (2, "ESME_RTHROTTLED"),
        (2, "ESME_ROK"),
        (3, "ESME_ROK"),
    ]
    _, text = _decode_parts([r for r in records if r["answer"] == "ESME_ROK"])
    assert text == LONG_ZH
    assert receipts.got[0][1:3] == (result.remote_id, True)


async def test_window_keeps_several_submits_in_flight(smsc_factory) -> None:
    smsc = smsc_factory(receipt_delay=0.2)
    channel = _channel(smsc, window=8, rate_per_second=10_000)  # the window, not the pace, is what limits here
    receipts = Receipts()
    await channel.start(receipts)
    try:
        results = await asyncio.gather(
            *(channel.send(Message(f"d{i}", f"+86138000{i:05d}", f"第{i}号预警：请注意防范。")) for i in range(40))
        )
        await receipts.wait_for(40)
        assert 1 < channel.session.max_in_flight <= 8
    finally:
        await channel.stop()
    assert all(r.accepted for r in results)
    assert sorted(r[1] for r in receipts.got) == sorted(r.remote_id for r in results)
    assert len(smsc.submits()) == 40


async def test_bad_recipients_are_permanent_and_never_raise(smsc_factory) -> None:
    smsc = smsc_factory(invalid_prefix="000")
    channel = _channel(smsc)
    not_started = await channel.send(Message("d0", "+8613800000000", "x"))
    assert (not_started.accepted, not_started.permanent) == (False, False)
    await channel.start(Receipts())
    try:
        letters = await channel.send(Message("d1", "not-a-number", "x"))
        refused = await channel.send(Message("d2", "0001234", "x"))
        empty = await channel.send(Message("d3", "+8613800000000", ""))
    finally:
        await channel.stop()
    assert (letters.accepted, letters.permanent) == (False, True)
    assert (refused.accepted, refused.permanent) == (False, True) and "0x0000000B" in refused.detail
    assert (empty.accepted, empty.permanent) == (False, True)
    assert [r["answer"] for r in await smsc.recorded(1)] == ["ESME_RINVDSTADR"]


async def test_session_reconnects_after_the_smsc_restarts(smsc_factory) -> None:
    smsc = smsc_factory(receipt_delay=0.1)
    channel = _channel(smsc, bind_wait=0.5, reconnect_max=0.5)
    receipts = Receipts()
    await channel.start(receipts)
    try:
        assert (await channel.send(Message("d1", "+8613800000006", "第一条"))).accepted
        await receipts.wait_for(1)
        smsc.kill()
        down = await channel.send(Message("d2", "+8613800000007", "第二条"))
        assert (down.accepted, down.permanent) == (False, False), down
        smsc.start()
        assert await channel.session.wait_bound(10)
        for _ in range(5):  # as the outbox would: a retryable failure right after the rebind is tried again
            again = await channel.send(Message("d2", "+8613800000007", "第二条"))
            if again.accepted:
                break
            assert not again.permanent, again
            await asyncio.sleep(again.retry_after or 0.2)
        assert again.accepted, again
        await receipts.wait_for(2)
        assert receipts.got[1][1:3] == (again.remote_id, True)
        assert channel.session.connects == 2
    finally:
        await channel.stop()
    assert [r["destination"] for r in smsc.submits()] == ["8613800000006", "8613800000007"]


async def test_enquire_link_detects_a_hung_smsc_and_rebinds(smsc_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    answered = 0
    request = FramedLink.request

    async def counted(self: FramedLink, command: int, body: bytes = b"", **options: Any) -> Frame:
        nonlocal answered
        response = await request(self, command, body, **options)
        answered += command == pdu.ENQUIRE_LINK
        return response

    monkeypatch.setattr(FramedLink, "request", counted)
    smsc = smsc_factory()
    channel = _channel(smsc, enquire_link_interval=0.2, response_timeout=0.5, reconnect_max=0.5)
    await channel.start(Receipts())
    try:
        assert await channel.session.wait_bound(5)
        await until(lambda: answered >= 3, timeout=10, what="three enquire_links answered")
        assert channel.session.connects == 1 and channel.session.bound
        assert smsc.process is not None
        os.kill(smsc.process.pid, signal.SIGSTOP)  # TCP stays up, nothing answers
        try:
            await until(lambda: not channel.session.bound, timeout=10, what="the unanswered link to be dropped")
        finally:
            os.kill(smsc.process.pid, signal.SIGCONT)
        await until(lambda: channel.session.connects >= 2, timeout=20, what="a second bind")
        assert (await channel.send(Message("d1", "+8613800000008", "恢复"))).accepted
    finally:
        await channel.stop()


async def test_start_stop_idempotent_and_no_task_left(smsc_factory) -> None:
    smsc = smsc_factory()
    channel = _channel(smsc, enquire_link_interval=0.1)
    before = asyncio.all_tasks()
    await channel.start(Receipts())
    await channel.start(Receipts())
    assert await channel.session.wait_bound(5)
    assert (await channel.send(Message("d1", "+8613800000009", "x"))).accepted
    await channel.stop()
    await channel.stop()
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    assert left == []
    result: SendResult = await channel.send(Message("d2", "+8613800000009", "x"))
    assert not result.accepted


async def test_health_follows_the_smpp_link_down_and_back(smsc_factory) -> None:
    smsc = smsc_factory()
    channel = _channel(smsc, reconnect_max=0.5)
    changed = asyncio.Event()
    channel.session.on_state(lambda state: changed.set())

    async def health_becomes(status: str) -> dict[str, str]:
        async with asyncio.timeout(10):
            while (health := channel.health())["status"] != status:
                changed.clear()
                await changed.wait()
        return health

    assert channel.health() == {"status": "down", "link": "down"}  # not started
    await channel.start(Receipts())
    try:
        assert await health_becomes("ok") == {"status": "ok", "link": "up"}
        smsc.kill()
        down = await health_becomes("down")
        assert down["link"] in ("down", "connecting") and down["error"], down
        smsc.start()
        assert await health_becomes("ok") == {"status": "ok", "link": "up"}
        assert channel.session.connects == 2
    finally:
        await channel.stop()
    assert channel.health() == {"status": "down", "link": "down"}
