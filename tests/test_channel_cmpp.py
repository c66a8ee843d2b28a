"""CMPP channel against a test ISMG process (tests/support/peers/ismg.py) that checks every field it receives.

The tests read the ISMG's own record of each SUBMIT (every field decoded, and "problem" where it refused one) and
reassemble the UCS-2 text from the UDH themselves; one test logs in and submits with an independent client
(pycmpp), so our PDU tables and the peer's are not only checked against each other.
"""

import asyncio
import json
import socket
import struct
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from broadcast.channel import Message
from broadcast.channels.carriers import CarrierRouter
from broadcast.channels.cmpp import CmppChannel
from broadcast.channels.sms import SmsChannel
from broadcast.segments import segment
from tests.support.channel_peers import Smsc
from tests.support.wait import until
from tests.test_channel_sms import LONG_ZH, first_mobile_originated, send_until_accepted, sent, started

SOURCE_ADDR = "901234"  # the SP id the ISMG knows
SECRET = "Sw1tchb0ard"  # the shared secret the gateway issued
SRC_ID = "1237901"  # the warning access number 12379 and our extension
SERVICE_ID = "YJYJ"


class Ismg(Smsc):
    """One ISMG process; `pdus` is everything it recorded, `submits` the SUBMITs among it."""

    module = "tests.support.peers.ismg"

    def __init__(self, tmp: Path, **options: object) -> None:
        super().__init__(tmp, source_addr=SOURCE_ADDR, secret=SECRET, **options)

    def pdus(self, kind: str | None = None) -> list[dict]:
        lines = [json.loads(line) for line in self.record.read_text().splitlines()]
        return [line for line in lines if kind is None or line["pdu"] == kind]

    def submits(self) -> list[dict]:
        return self.pdus("SUBMIT")

    async def seen(self, kind: str, count: int = 1) -> list[dict]:
        return await until(
            lambda: len(found := self.pdus(kind)) >= count and found, timeout=10, what=f"the ISMG to record {kind}"
        )


@pytest.fixture
def ismg_factory(smsc_factory: Any) -> Any:
    return partial(smsc_factory, Ismg)


def _channel(ismg: Smsc, version: str = "3.0", **options: Any) -> CmppChannel:
    options.setdefault("shared_secret", SECRET)
    return CmppChannel(
        "127.0.0.1", ismg.port, SOURCE_ADDR, service_id=SERVICE_ID, src_id=SRC_ID, version=version, **options
    )


def _reassembled(records: list[dict]) -> str:
    return "".join(r["text"] for r in sorted(records, key=lambda r: r["Pk_number"]))


@pytest.mark.parametrize("version", ["3.0", "2.0"])
async def test_long_chinese_message_reassembles_at_the_ismg_and_its_receipt_maps_back(ismg_factory, version) -> None:
    ismg = ismg_factory(report_delay=0.3)
    [result], receipts = await sent(_channel(ismg, version), Message("w1:cmpp:1", "+8613800000001", LONG_ZH))
    assert result.accepted, result
    parts = segment(LONG_ZH, "UCS-2").count
    assert parts == 3
    records = await ismg.recorded(parts)
    assert [r.get("problem") for r in records] == [None] * parts
    assert {r["version"] for r in records} == {version}
    assert [(r["Pk_total"], r["Pk_number"], r["TP_udhi"], r["Msg_Fmt"]) for r in records] == [
        (3, n, 1, 8) for n in (1, 2, 3)
    ]
    assert [(r["udh"]["total"], r["udh"]["part"]) for r in records] == [(3, 1), (3, 2), (3, 3)]
    assert len({r["udh"]["ref"] for r in records}) == 1
    assert {(r["Msg_src"], r["Src_Id"], r["Service_Id"], r["Registered_Delivery"]) for r in records} == {
        (SOURCE_ADDR, SRC_ID, SERVICE_ID, 1)
    }
    assert all(r["Dest_terminal_Id"] == ["13800000001"] and r["Msg_Length"] <= 140 for r in records)
    assert all(r.get("Dest_terminal_type") == (0 if version == "3.0" else None) for r in records)
    assert _reassembled(records) == LONG_ZH
    assert result.remote_id == records[-1]["answer_msg_id"]
    [(name, remote_id, delivered, detail, _)] = receipts.got
    assert (name, remote_id, delivered) == ("cmpp", records[-1]["answer_msg_id"], True)
    assert detail == "回执：已送达（状态 DELIVRD）"
    answered = await ismg.seen("DELIVER_RESP", parts)
    assert all(r["ok"] and r["result"] == 0 for r in answered)


async def test_an_undeliverable_part_fails_the_message_and_short_ones_deliver(ismg_factory) -> None:
    ismg = ismg_factory(report_delay=0.1, undeliverable_prefix="13900")
    [ok, bad], receipts = await sent(
        _channel(ismg),
        Message("d1", "13800000002", "请注意防范 test"),
        Message("d2", "+8613900000003", "暴雨预警" * 30),
    )
    assert ok.accepted and bad.accepted
    by_id = receipts.by_id()
    assert by_id[ok.remote_id] == (True, "回执：已送达（状态 DELIVRD）")
    assert by_id[bad.remote_id] == (False, "回执：未送达（状态 UNDELIV）")
    short = ismg.submits()[0]
    assert (short["Pk_total"], short["TP_udhi"], short["Msg_Fmt"], short["text"]) == (1, 0, 8, "请注意防范 test")


async def test_flow_control_is_backed_off_and_the_message_goes_once(ismg_factory) -> None:
    ismg = ismg_factory(throttle_first=3, report_delay=0.1)
    channel = _channel(ismg, throttle_backoff=0.1)
    async with started(channel) as receipts:
        message = Message("d1", "13800000004", "请注意防范")
        first = await channel.send(message)
        held = await channel.send(message)  # while held, answered at once without bothering the ISMG
        assert not held.accepted and held.retry_after is not None
        assert "短信网关繁忙：流量控制错（Result=8）" in first.detail
        await asyncio.sleep(first.retry_after or 0)
        result, waits = await send_until_accepted(channel, message)
        await receipts.wait_for(1)
    assert [r["result"] for r in ismg.submits()] == [8, 8, 8, 0]
    assert len(waits) == 2 and first.retry_after < waits[0] < waits[1]  # exponential
    assert receipts.got[0][1] == result.remote_id


async def test_flow_control_mid_message_resubmits_only_that_part(ismg_factory) -> None:
    ismg = ismg_factory(throttle_after=1, throttle_first=2, report_delay=0.1)
    [result], receipts = await sent(_channel(ismg, throttle_backoff=0.05), Message("d1", "13800000005", LONG_ZH))
    assert result.accepted, result
    records = ismg.submits()
    assert [(r["Pk_number"], r["result"]) for r in records] == [(1, 0), (2, 8), (2, 8), (2, 0), (3, 0)]
    assert _reassembled([r for r in records if r["result"] == 0]) == LONG_ZH
    assert receipts.got[0][1:3] == (result.remote_id, True)


async def test_a_dropped_connection_is_reconnected_and_the_message_goes_once(ismg_factory) -> None:
    ismg = ismg_factory(drop_after=1, report_delay=0.1)
    channel = _channel(ismg, reconnect_max=0.3)
    async with started(channel) as receipts:
        result, _ = await send_until_accepted(channel, Message("d1", "13800000006", LONG_ZH))
        await receipts.wait_for(1)
        assert channel.session.connects == 2
    records = ismg.submits()
    assert [(r["Pk_number"], r["result"]) for r in records] == [(1, 0), (2, 0), (3, 0)]
    assert len(ismg.pdus("DROPPED")) == 1 and len(ismg.pdus("CONNECT")) == 2
    assert _reassembled(records) == LONG_ZH
    assert receipts.got[0][1:3] == (result.remote_id, True)


async def test_a_wrong_secret_is_refused_with_a_chinese_error_in_health(ismg_factory) -> None:
    ismg = ismg_factory()
    channel = _channel(ismg, shared_secret="wrong", reconnect_max=0.3, bind_wait=0.2)
    async with started(channel):
        await until(lambda: "error" in channel.health(), timeout=10, what="the refused login in health()")
        health = channel.health()
        refused = await channel.send(Message("d1", "13800000007", "x"))
    assert health["status"] == "down"
    assert "短信网关拒绝登录：认证错（Status=3）" in health["error"], health
    assert (refused.accepted, refused.permanent) == (False, False)
    assert {r["status"] for r in ismg.pdus("CONNECT")} == {3}
    assert ismg.submits() == []


async def test_active_test_both_ways(ismg_factory) -> None:
    ismg = ismg_factory(active_test=0.1)
    channel = _channel(ismg, active_test_interval=0.1)
    async with started(channel):
        answered = await ismg.seen("ACTIVE_TEST_RESP", 3)  # the ISMG asks, we answer
        asked = await ismg.seen("ACTIVE_TEST", 3)  # we ask, the ISMG answers, the link stays up
        assert channel.session.connects == 1 and channel.health() == {"status": "ok", "link": "up"}
    assert all(r["ok"] for r in answered) and all(r["length"] == 12 for r in asked)
    assert ismg.pdus("TERMINATE") == [{"pdu": "TERMINATE", "ok": True}]  # stop says goodbye


async def test_a_mobile_originated_message_reaches_the_callback(ismg_factory) -> None:
    ismg = ismg_factory(mo="13800000008=收到，已转移到安置点")
    got = await first_mobile_originated(partial(_channel, ismg, "2.0"))
    assert got == ("13800000008", "收到，已转移到安置点")
    assert [r["ok"] for r in await ismg.seen("DELIVER_RESP")] == [True]


async def test_bad_recipients_are_permanent_and_never_raise(ismg_factory) -> None:
    ismg = ismg_factory(invalid_prefix="000")
    channel = _channel(ismg)
    not_started = await channel.send(Message("d0", "13800000000", "x"))
    assert (not_started.accepted, not_started.permanent) == (False, False)
    async with started(channel):
        letters = await channel.send(Message("d1", "not-a-number", "x"))
        refused = await channel.send(Message("d2", "0001234", "x"))
        empty = await channel.send(Message("d3", "13800000000", ""))
    assert (letters.accepted, letters.permanent) == (False, True)
    assert (refused.accepted, refused.permanent, refused.detail) == (
        False,
        True,
        "短信网关拒绝：Dest_terminal_Id 错误（Result=13）",
    )
    assert (empty.accepted, empty.permanent) == (False, True)


async def test_behind_the_carrier_router_mobile_numbers_go_to_the_ismg(ismg_factory, smsc_factory) -> None:
    """As [channels] sets it up: China Mobile's numbers through the ISMG, the rest through an SMSC."""
    ismg, smsc = ismg_factory(report_delay=0.1), smsc_factory(receipt_delay=0.1)
    smpp = SmsChannel("127.0.0.1", smsc.port, "sp", "secret", source_addr="12379", name="smpp")
    router = CarrierRouter([_channel(ismg), smpp], {"mobile": "cmpp"}, default="smpp")
    receipts: list[tuple[str, bool]] = []

    async def on_receipt(channel: str, remote_id: str, delivered: bool, detail: str) -> None:
        receipts.append((remote_id, delivered))

    await router.start(on_receipt)
    try:
        await until(lambda: router.health()["status"] == "ok", timeout=10, what="both gateways to log in")
        results = [
            await router.send(Message(f"d{i}", n, "暴雨预警")) for i, n in enumerate(("+8613800000001", "18900000002"))
        ]
        await until(lambda: len(receipts) == 2, timeout=10, what="both receipts")
    finally:
        await router.stop()
    assert [(r.remote_id or "").split(":")[0] for r in results] == ["cmpp", "smpp"]
    assert [r["Dest_terminal_Id"] for r in ismg.submits()] == [["13800000001"]]
    assert [r["destination"] for r in smsc.submits()] == ["18900000002"]
    assert sorted(receipts) == sorted((r.remote_id, True) for r in results)


def _pycmpp_session(port: int) -> tuple[int, int, dict]:
    """Log in and submit with pycmpp's own CMPP 2.0 PDUs over a plain socket: (Status, Result, SUBMIT_RESP)."""
    from pycmpp.request import ConnectRequestInstance, SubmitRequestInstance

    def read(sock: socket.socket) -> tuple[int, bytes]:
        head = sock.recv(12, socket.MSG_WAITALL)
        length, command_id, _ = struct.unpack(">LLL", head)
        return command_id, sock.recv(length - 12, socket.MSG_WAITALL)

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(ConnectRequestInstance().create(SOURCE_ADDR, SECRET))
        command_id, body = read(sock)
        assert command_id == 0x80000001
        status = body[0]
        sock.sendall(
            SubmitRequestInstance().create(
                msg_src=SOURCE_ADDR,
                msg_content="独立客户端：请注意防范",
                dest_terminal_id=["13800000010"],
                src_id=SRC_ID,
                service_id=SERVICE_ID,
                registered_delivery=1,
            )
        )
        command_id, body = read(sock)
        assert command_id == 0x80000004
        msg_id, result = struct.unpack(">QB", body)
        return status, result, {"msg_id": msg_id}


async def test_an_independent_client_agrees_with_the_ismg(ismg_factory) -> None:
    """pycmpp (PyPI, CMPP 2.0, version byte 0x21) logs in and submits; the ISMG accepts both as the spec says."""
    ismg = ismg_factory()
    status, result, answer = await asyncio.to_thread(_pycmpp_session, ismg.port)
    assert (status, result) == (0, 0)
    [record] = await ismg.recorded(1)
    assert record.get("problem") is None and record["text"] == "独立客户端：请注意防范"
    assert record["answer_msg_id"] == f"{answer['msg_id']:016x}"
