"""SMS routed by carrier over real gateways: two SMSC processes stand for two carriers' gateways (the ISMG, SMGP
and SGIP peers plug in the same way); each number goes through the gateway of its segment, receipts come back
under the gateway's name, and each gateway keeps its own pace."""

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from broadcast.channel import Message
from broadcast.channels import from_settings
from broadcast.channels.carriers import CarrierRouter, carrier_of
from broadcast.channels.sms import SmsChannel
from switchboard.core import config
from tests.support.wait import until


@pytest.mark.parametrize(
    ("number", "carrier"),
    [
        ("13800000001", "mobile"),
        ("+8619800000001", "mobile"),
        ("8613000000001", "unicom"),
        ("18900000001", "telecom"),
        ("19900000001", "telecom"),
        ("14500000001", "unicom"),
        ("17000000001", None),  # virtual operators' segment: the default route
        ("02112345678", None),
        ("+4915112345678", None),
    ],
)
def test_carrier_by_number_segment(number: str, carrier: str | None) -> None:
    assert carrier_of(number) == carrier


async def test_each_number_goes_through_its_carriers_gateway(smsc_factory: Any) -> None:
    mobile, telecom = smsc_factory(receipt_delay=0.1), smsc_factory(receipt_delay=0.1)
    gateways = [
        SmsChannel("127.0.0.1", mobile.port, "sp", "secret", source_addr="12379", name="cmcc", rate_per_second=20),
        SmsChannel("127.0.0.1", telecom.port, "sp", "secret", source_addr="12379", name="ctcc", rate_per_second=50),
    ]
    router = CarrierRouter(gateways, {"mobile": "cmcc", "telecom": "ctcc"}, default="ctcc")
    assert (router.rate_per_second, router.receipts) == (70, True)
    receipts: list[tuple[str, str, bool]] = []

    async def on_receipt(channel: str, remote_id: str, delivered: bool, detail: str) -> None:
        receipts.append((channel, remote_id, delivered))

    await router.start(on_receipt)
    try:
        await until(lambda: router.health()["status"] == "ok", timeout=10, what="both gateways to bind")
        numbers = ["13800000001", "18900000002", "13000000003", "+8613900000004"]
        results = await asyncio.gather(*(router.send(Message(f"d{i}", n, "暴雨预警")) for i, n in enumerate(numbers)))
        await until(lambda: len(receipts) == 4, timeout=10, what="the four receipts")
    finally:
        await router.stop()
    assert [r.via for r in results] == ["cmcc", "ctcc", "ctcc", "cmcc"]
    assert all(r.remote_id and r.remote_id.startswith(f"{r.via}:") for r in results)
    assert sorted(r["destination"] for r in mobile.submits()) == ["13800000001", "8613900000004"]
    assert sorted(r["destination"] for r in telecom.submits()) == ["13000000003", "18900000002"]
    assert {(channel, delivered) for channel, _, delivered in receipts} == {("sms", True)}
    assert sorted(remote for _, remote, _ in receipts) == sorted(r.remote_id for r in results)


async def test_a_gateway_holds_its_flow_limit_in_submits_not_messages(smsc_factory: Any) -> None:
    """A carrier's flow limit counts submits in any one second: 15 two-part messages at 10 submits/s are 30 submits,
    and no second holds more than 10 of them as the SMSC's own clock sees them arrive."""
    smsc = smsc_factory(receipt_delay=0.1)
    gateway = SmsChannel("127.0.0.1", smsc.port, "sp", "secret", source_addr="12379", name="cmcc", rate_per_second=10)
    router = CarrierRouter([gateway], {}, default="cmcc")
    await router.start(lambda *_: asyncio.sleep(0))
    try:
        await until(lambda: router.health()["status"] == "ok", timeout=10, what="the gateway to bind")
        long_text = "暴雨橙色预警：" + "预计未来3小时内降雨量将达50毫米以上。" * 4  # two UCS-2 parts
        began = time.monotonic()
        sent = await asyncio.gather(*(router.send(Message(f"d{i}", f"1380000{i:04d}", long_text)) for i in range(15)))
        took = time.monotonic() - began
    finally:
        await router.stop()
    assert all(r.accepted for r in sent)
    times = sorted(r["time"] for r in smsc.submits())
    assert len(times) == 30 and took >= 2.0  # the third ten waits for the third second
    # Counted by arrival: 0.8 s, since on a busy machine submits can arrive up to that much closer than they left.
    assert max(sum(1 for t in times if start <= t < start + 0.8) for start in times) <= 10


async def test_a_gateway_down_is_named_in_health(smsc_factory: Any) -> None:
    up = smsc_factory()
    gateways = [
        SmsChannel("127.0.0.1", up.port, "sp", "secret", source_addr="12379", name="cmcc"),
        SmsChannel("127.0.0.1", 9, "sp", "secret", source_addr="12379", name="cucc"),  # nothing listens there
    ]
    router = CarrierRouter(gateways, {"mobile": "cmcc"}, default="cucc")
    await router.start(lambda *_: asyncio.sleep(0))
    try:
        error = lambda: router.health().get("error", "")  # noqa: E731
        await until(lambda: "cucc" in error() and "cmcc" not in error(), timeout=10, what="only the dead one named")
        assert router.health()["status"] == "down"
    finally:
        await router.stop()
    with pytest.raises(ValueError, match="sgip"):
        CarrierRouter(gateways, {"unicom": "sgip"}, default="cucc")


def test_configuration_puts_the_gateways_behind_one_sms_channel(tmp_path: Path) -> None:
    """[channels] with SMPP, CMPP, SMGP and SGIP gateways and routes: one "sms" channel routing by carrier, and the
    WeCom and DingTalk channels beside it (nothing is connected before start)."""
    environ = {
        "SWITCHBOARD_WARNINGS_UNIT_AREA": "140100",
        "SWITCHBOARD_CHANNELS_SMS_HOST": "smsc.example.cn",
        "SWITCHBOARD_CHANNELS_SMS_BIND": "transmitter_receiver",
        "SWITCHBOARD_CHANNELS_CMPP_HOST": "ismg.example.cn",
        "SWITCHBOARD_CHANNELS_CMPP_VERSION": "2.0",
        "SWITCHBOARD_CHANNELS_SMGP_HOST": "smgp.example.cn",
        "SWITCHBOARD_CHANNELS_SGIP_HOST": "sgip.example.cn",
        "SWITCHBOARD_CHANNELS_SMS_ROUTES": "mobile=cmpp, unicom=sgip, telecom=smgp",
        "SWITCHBOARD_CHANNELS_WECOM_ROBOT": "true",
        "SWITCHBOARD_CHANNELS_WECOM_CORPID": "ww0123",
        "SWITCHBOARD_CHANNELS_DINGTALK": "true",
        "SWITCHBOARD_CHANNELS_WEATHER_PUSH": "false",
    }
    channels = {c.name: c for c in from_settings(config.load(tmp_path / "absent.toml", environ=environ))}
    assert set(channels) == {"sms", "wecom_robot", "wecom_app", "dingtalk"}
    router = channels["sms"]
    assert isinstance(router, CarrierRouter)
    routed = [router.route(n) for n in ("13800000001", "13000000001", "18900000001", "17000000001")]
    assert routed == ["cmpp", "sgip", "smgp", "smpp"]  # the last, a virtual operator's, by the default route
    with pytest.raises(config.ConfigError, match="SMS_BIND"):
        config.load(tmp_path / "absent.toml", environ={**environ, "SWITCHBOARD_CHANNELS_SMS_BIND": "receiver"})
