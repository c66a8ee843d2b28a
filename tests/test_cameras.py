"""Cameras: GB/T 28181 devices (the simulator in tests/support/peers, a process of its own) register to our SIP
server with digest authentication, show up in the registry with their channels, go offline when their keepalives
stop, take PTZ commands and stream live video on INVITE; our catalog goes up to an upper platform by cascade."""

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from conference.gb28181 import digest, manscdp, ptz, sdp
from conference.gb28181.message import Framer, parse
from switchboard.api.app import create_app
from switchboard.core.audit.models import AuditEntry
from switchboard.core.context import Context
from tests.conftest import add_users, fresh_database_url, headers_for, settings_for
from tests.support import gb28181_peers
from tests.support.wait import until

PLATFORM_ID = "34020000002000000001"
DEVICE_ID = "34020000001320000001"
UPPER_ID = "34010000002000000001"
UPPER_PASSWORD = "upper-pass-0815"
PASSWORD = "camera-pass-0417"
KEEPALIVE = 0.4  # seconds, both the simulator's interval and the platform's expectation
MISSES = 3


@pytest_asyncio.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def gb(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Context]:
    """An app with the GB/T 28181 server on a free port (and a cascade when the test is marked `upper`)."""
    url = await fresh_database_url(request.param, request, tmp_path)
    overrides = {
        "SWITCHBOARD_GB28181_ENABLED": "true",
        "SWITCHBOARD_GB28181_SIP_ID": PLATFORM_ID,
        "SWITCHBOARD_GB28181_PORT": "0",
        "SWITCHBOARD_GB28181_KEEPALIVE_SECONDS": str(KEEPALIVE),
        "SWITCHBOARD_GB28181_KEEPALIVE_MISSES": str(MISSES),
    }
    upper = None
    if (marker := request.node.get_closest_marker("upper")) is not None:  # the upper platform runs before we start
        port = _free_udp_port()
        upper = await gb28181_peers.upper(tmp_path / "upper.jsonl", UPPER_ID, PLATFORM_ID, UPPER_PASSWORD, port).start()
        overrides |= {"SWITCHBOARD_GB28181_UPPER_ID": UPPER_ID, "SWITCHBOARD_GB28181_UPPER_HOST": "127.0.0.1",
                      "SWITCHBOARD_GB28181_UPPER_PORT": str(port), "SWITCHBOARD_GB28181_UPPER_PASSWORD": marker.args[0],
                      "SWITCHBOARD_GB28181_UPPER_KEEPALIVE_SECONDS": "0.5"}  # fmt: skip
    ctx = Context.from_settings(settings_for(tmp_path, url, **overrides))
    ctx.upper = upper  # type: ignore[attr-defined]
    app = create_app(ctx)
    try:
        async with app.router.lifespan_context(app):
            ctx.app = app  # type: ignore[attr-defined]
            yield ctx
    finally:
        if upper is not None:
            await upper.stop()
        await ctx.db.close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest_asyncio.fixture
async def api(gb: Context) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, dict[str, str]]]]:
    tokens = headers_for(gb, await add_users(gb))
    transport = httpx.ASGITransport(gb.app)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http, tokens


def _port(ctx: Context) -> int:
    platform = ctx.app.state.services.cameras.platform  # type: ignore[attr-defined]
    return int(platform.port)


async def _organisation(http: httpx.AsyncClient, tokens: dict[str, dict[str, str]]) -> str:
    found = (await http.get("/api/v1/directory/organisations", headers=tokens["duty_officer"])).json()
    return str(found[0]["code"])


async def _camera(http: httpx.AsyncClient, tokens: dict[str, dict[str, str]], device_id: str = DEVICE_ID) -> str:
    body = {"kind": "gb28181", "name": "滨江水库NVR", "organisation_code": await _organisation(http, tokens),
            "device_id": device_id, "password": PASSWORD}  # fmt: skip
    created = await http.post("/api/v1/cameras", json=body, headers=tokens["admin"])
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _online(http: httpx.AsyncClient, tokens: dict[str, dict[str, str]], camera_id: str, channels: int) -> Any:
    async def state() -> Any:
        found = (await http.get(f"/api/v1/cameras/{camera_id}", headers=tokens["duty_officer"])).json()
        return found if found["online"] and len(found["channels"]) == channels else None

    return await until(state, timeout=20, what="the camera online with its channels")


async def test_a_device_registers_with_its_own_password_and_shows_its_channels_in_chinese(gb, api, tmp_path) -> None:
    http, tokens = api
    camera_id = await _camera(http, tokens)
    events = gb.bus.listen()
    wrong = await gb28181_peers.device(
        tmp_path / "wrong.jsonl", DEVICE_ID, "not-the-password", PLATFORM_ID, _port(gb)
    ).start()
    try:
        refused = await until(lambda: wrong.events("refused"), timeout=20, what="the wrong password refused")
        assert refused[0]["status"] == 403
        assert not (await http.get(f"/api/v1/cameras/{camera_id}", headers=tokens["admin"])).json()["online"]
    finally:
        await wrong.stop()

    sim = await gb28181_peers.device(tmp_path / "device.jsonl", DEVICE_ID, PASSWORD, PLATFORM_ID, _port(gb)).start()
    try:
        camera = await _online(http, tokens, camera_id, channels=3)
        assert sim.events("registered")[0]["date"], "the 200 to REGISTER carries Date (devices set their clocks by it)"
        names = [channel["name"] for channel in camera["channels"]]
        assert names == ["东门广场", "滨江大道与解放路口", "水库大坝"]
        assert camera["channels"][0]["ptz"] and not camera["channels"][1]["ptz"]
        assert camera["channels"][0]["address"] == "测试地址1号"
        assert camera["state_name"] == "在线"
        seen = []
        while not events.queue.empty():
            seen.append(events.queue.get_nowait().type)
        assert "camera.online" in seen and "camera.catalog" in seen

        health = (await http.get("/healthz")).json()["components"]["gb28181"]
        assert health["status"] == "ok" and health["online"] == 1

        state = await http.get(f"/api/v1/cameras/{camera_id}/state", headers=tokens["leader"])
        assert state.status_code == 200, state.text
        assert state.json()["device_name"] == "模拟硬盘录像机" and state.json()["channels"] == 3
        assert state.json()["online"] == "ONLINE"
        listed = await http.get("/api/v1/cameras", headers=tokens["alert_officer"])
        assert listed.status_code == 403
    finally:
        await sim.stop()


@contextlib.asynccontextmanager
async def _device_online(gb: Context, api: Any, tmp_path: Path, **options: str) -> AsyncIterator[tuple[Any, str, Any]]:
    """A registered camera and its simulator, online with its three channels: (simulator, camera id, camera)."""
    http, tokens = api
    camera_id = await _camera(http, tokens)
    sim = gb28181_peers.device(tmp_path / "device.jsonl", DEVICE_ID, PASSWORD, PLATFORM_ID, _port(gb), **options)
    try:
        await sim.start()
        yield sim, camera_id, await _online(http, tokens, camera_id, channels=3)
    finally:
        await sim.stop()


async def test_a_device_goes_offline_when_its_keepalives_stop(gb, api, tmp_path) -> None:
    http, tokens = api
    async with _device_online(gb, api, tmp_path, keepalive=str(KEEPALIVE)) as (sim, camera_id, _):
        await until(lambda: len(sim.events("keepalive")) >= 3, timeout=20, what="three keepalives")
        events = gb.bus.listen()
        await sim.tell("silence")
        silenced = await until(lambda: sim.events("silenced"), timeout=10, what="the simulator to fall silent")
        offline = await asyncio.wait_for(_next(events, "camera.offline"), 20)
        took = time.time() - silenced[0]["at"]
        assert offline.data["reason"] == "keepalive_lost" and offline.data["reason_name"] == "心跳超时"
        assert KEEPALIVE * MISSES <= took + 0.1 < KEEPALIVE * MISSES + 2, took
        camera = (await http.get(f"/api/v1/cameras/{camera_id}", headers=tokens["leader"])).json()
        assert not camera["online"] and camera["state_name"] == "离线（心跳超时）"


async def _next(events: Any, kind: str) -> Any:
    while True:
        event = await events.queue.get()
        if event.type == kind:
            return event


async def test_a_ptz_call_reaches_the_device_as_the_standard_ptz_cmd(gb, api, tmp_path) -> None:
    http, tokens = api
    async with _device_online(gb, api, tmp_path) as (sim, camera_id, camera):
        dome = camera["channels"][0]["channel_id"]
        url = f"/api/v1/cameras/{camera_id}/channels/{dome}/ptz"
        moved = await http.post(url, json={"move": "up", "speed": 0xFA}, headers=tokens["duty_officer"])
        assert moved.status_code == 200, moved.text
        assert moved.json()["ptz_cmd"] == "A50F010800FA00B7"
        seen = await until(lambda: sim.events("ptz"), timeout=10, what="the PTZ command at the device")
        assert seen[0] | {"at": 0} == {"event": "ptz", "at": 0, "channel": dome, "command": "A50F010800FA00B7",
                                       "checksum_ok": True}  # fmt: skip
        stop = await http.post(url, json={"move": "stop"}, headers=tokens["leader"])
        assert stop.json()["ptz_cmd"] == "A50F0100000000B5"

        wrong = await http.post(url, json={"move": "sideways"}, headers=tokens["duty_officer"])
        assert wrong.status_code == 422 and "move" in wrong.text
        unknown = await http.post(
            f"/api/v1/cameras/{camera_id}/channels/34020000001310009999/ptz",
            json={"move": "up"},
            headers=tokens["leader"],
        )
        assert unknown.status_code == 404 and unknown.json()["field"] == "channel_id"
        assert (await http.post(url, json={"move": "up"}, headers=tokens["alert_officer"])).status_code == 403
        async with gb.db.reader() as session:
            audited = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "camera.ptz"))).all()
        assert [entry.detail["ptz_cmd"] for entry in audited] == ["A50F010800FA00B7", "A50F0100000000B5"]

        assert (await http.delete(f"/api/v1/cameras/{camera_id}", headers=tokens["admin"])).status_code == 204
        await until(lambda: any(k["status"] == 403 for k in sim.events("keepalive")), timeout=10,
                    what="the removed device's keepalives refused")  # fmt: skip


async def test_a_device_over_tcp_registers_and_streams_ps_over_rtp_until_nobody_watches(gb, api, tmp_path) -> None:
    platform = gb.app.state.services.cameras.platform  # type: ignore[attr-defined]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        async with _device_online(gb, api, tmp_path, transport="tcp") as (sim, _, camera):
            channel = camera["channels"][1]["channel_id"]
            stream = await platform.play(DEVICE_ID, channel, "127.0.0.1", receiver.getsockname()[1])
            again = await platform.play(DEVICE_ID, channel, "127.0.0.1", receiver.getsockname()[1])
            assert again is stream and stream.watchers == 2, "a second watcher shares the stream"
            [invite] = sim.events("invite")
            assert f"y={stream.ssrc}" in invite["offer"] and "a=rtpmap:96 PS/90000" in invite["offer"]
            assert invite["subject"] == f"{channel}:{stream.ssrc},{PLATFORM_ID}:0"
            packet = await until(lambda: _datagram(receiver), timeout=30, what="RTP from the device")
            version, payload_type, _, _, ssrc = struct.unpack("!BBHII", packet[:12])
            assert version >> 6 == 2 and payload_type & 0x7F == 96 and ssrc == int(stream.ssrc)
            payloads = await _collect(receiver, seconds=3.0)
            packs = sum(payload.startswith(b"\x00\x00\x01\xba") for payload in payloads)  # MPEG-PS pack headers
            assert len(payloads) >= 30 and packs >= 2 and any(b"\x00\x00\x01\xe0" in p for p in payloads), (
                f"{len(payloads)} packets, {packs} packs: the payload is MPEG-PS carrying a video PES"
            )
            assert not await platform.release(channel), "one watcher left: the stream stays"
            assert await platform.release(channel)
            await until(lambda: sim.events("bye"), timeout=10, what="BYE at the device")
            await until(lambda: _silent(receiver), timeout=10, what="the stream to stop")


def _datagram(sock: socket.socket) -> bytes | None:
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return None


async def _collect(sock: socket.socket, seconds: float) -> list[bytes]:
    """The RTP payloads that arrive within `seconds` (of the packets that pass the RTP header check)."""
    payloads: list[bytes] = []
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        while (data := _datagram(sock)) is not None:
            payloads.append(data[12:])
        await asyncio.sleep(0.02)
    return payloads


async def _silent(sock: socket.socket) -> bool:
    """Nothing more arrives for half a second (what was queued before is read away first)."""
    return not await _collect(sock, seconds=0.5)


@pytest.mark.upper(UPPER_PASSWORD)
async def test_the_upper_platform_sees_our_registration_and_our_catalog(gb, api, tmp_path) -> None:
    http, _ = api
    upper = gb.upper
    live = gb.app.state.services.cameras  # type: ignore[attr-defined]
    async with _device_online(gb, api, tmp_path):
        await until(lambda: upper.events("registered"), timeout=20, what="our registration at the upper platform")
        assert (await http.get("/healthz")).json()["components"]["gb28181:upper"]["status"] == "ok"
        await until(lambda: upper.events("keepalive"), timeout=20, what="our keepalive at the upper platform")
        await until(lambda: upper.events("catalog"), timeout=20, what="the catalog asked on registration")
        await upper.tell("query")  # the first query may have come before the device registered: ask again
        [catalog] = await until(
            lambda: [found for found in upper.events("catalog") if found["total"]], timeout=20, what="our catalog"
        )
        assert catalog["total"] == 3
        assert [item["Name"] for item in catalog["items"]] == ["东门广场", "滨江大道与解放路口", "水库大坝"]
        assert {item["ParentID"] for item in catalog["items"]} == {DEVICE_ID}
        assert {item["Status"] for item in catalog["items"]} == {"ON"}
        assert live.upper.state == "registered"


@pytest.mark.upper("wrong-pass")
async def test_a_refused_cascade_registration_shows_on_healthz(gb, api) -> None:
    http, _ = api
    await until(lambda: gb.upper.events("refused"), timeout=20, what="the upper platform refusing us")
    answer = await until(lambda: _degraded(http), timeout=10, what="healthz to report the refused cascade")
    assert answer["components"]["gb28181:upper"]["state"] == "refused"
    assert "403" in answer["components"]["gb28181:upper"]["error"]


async def _degraded(http: httpx.AsyncClient) -> Any:
    found = await http.get("/healthz")
    return found.json() if found.status_code == 503 and "gb28181:upper" in found.json()["components"] else None


async def test_registry_checks_its_input_and_audits_changes(gb, api) -> None:
    http, tokens = api
    org = await _organisation(http, tokens)

    async def post(role: str = "admin", **body: str) -> httpx.Response:
        return await http.post("/api/v1/cameras", json={"organisation_code": org, **body}, headers=tokens[role])

    missing = await post(kind="gb28181", name="x", password="p")
    assert missing.status_code == 422 and missing.json()["field"] == "device_id"
    short = await post(kind="gb28181", name="x", device_id="3402", password="p")
    assert short.status_code == 422 and "device_id" in short.text
    nowhere = await post(kind="rtsp", name="路口", organisation_code="none", rtsp_url="rtsp://127.0.0.1:8554/camera")
    assert nowhere.status_code == 422 and nowhere.json()["field"] == "organisation_code"
    assert (await post("duty_officer", kind="rtsp", name="路口", rtsp_url="rtsp://127.0.0.1/x")).status_code == 403
    outside = await post(kind="rtsp", name="路口", rtsp_url="rtsp://10.1.2.3/x")
    assert outside.status_code == 422 and outside.json()["field"] == "rtsp_url"
    rtsp = await post(kind="rtsp", name="路口", rtsp_url="rtsp://user:secret@127.0.0.1:8554/camera")
    assert rtsp.status_code == 201, rtsp.text
    assert "secret" not in rtsp.text and rtsp.json()["rtsp_url"] == "rtsp://user:***@127.0.0.1:8554/camera"
    camera_id = await _camera(http, tokens)
    again = await post(kind="gb28181", name="y", device_id=DEVICE_ID, password="p")
    assert again.status_code == 409 and again.json()["field"] == "device_id"
    listed = (await http.get(f"/api/v1/cameras?org={org}", headers=tokens["leader"])).json()
    assert {camera["name"] for camera in listed} == {"路口", "滨江水库NVR"}
    assert "password" not in str(listed) and "ha1" not in str(listed)
    renamed = await http.patch(f"/api/v1/cameras/{camera_id}", json={"name": "大坝NVR"}, headers=tokens["admin"])
    assert renamed.json()["name"] == "大坝NVR"
    assert (await http.delete(f"/api/v1/cameras/{camera_id}", headers=tokens["admin"])).status_code == 204
    async with gb.db.reader() as session:
        query = select(AuditEntry).where(AuditEntry.target_type == "camera").order_by(AuditEntry.seq)
        actions = [entry.action for entry in (await session.scalars(query)).all()]
    assert actions == ["camera.create", "camera.create", "camera.change", "camera.delete"]


# --- the codec, against the standard's and the RFCs' own examples ------------------------------------------------


def test_ptz_cmd_bytes_follow_appendix_a() -> None:
    assert ptz.command("up", 0xFA) == "A50F010800FA00B7"
    assert ptz.command("stop") == "A50F0100000000B5"
    assert ptz.command("left", 0x80) == "A50F010280000037"
    raw = bytes.fromhex(ptz.command("zoom_in", 0xF0))
    assert raw[3] == 0x10 and raw[6] >> 4 == 0xF and sum(raw[:7]) % 256 == raw[7]


def test_digest_matches_rfc_2617_and_refuses_forged_nonces() -> None:
    fields = {"username": "Mufasa", "realm": "testrealm@host.com", "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093",
              "uri": "/dir/index.html", "qop": "auth", "nc": "00000001", "cnonce": "0a4f113b"}  # fmt: skip
    assert digest.expected(digest.ha1("Mufasa", "testrealm@host.com", "Circle Of Life"), "GET", fields) == (
        "6629fae49393a05397450978507c4ef1"
    )
    challenger = digest.Challenger("3402000000")
    issued = digest.parse(challenger.challenge())
    answer = digest.parse(digest.authorization(challenger.challenge(), DEVICE_ID, PASSWORD, "REGISTER", "sip:x"))
    assert challenger.check(answer, "REGISTER", digest.ha1(DEVICE_ID, "3402000000", PASSWORD))
    assert not challenger.check(answer, "REGISTER", digest.ha1(DEVICE_ID, "3402000000", "other"))
    forged = answer | {"nonce": str(int(time.time())) + "0" * 24}
    assert issued["realm"] == "3402000000" and not challenger.check(
        forged, "REGISTER", digest.ha1(DEVICE_ID, "3402000000", PASSWORD)
    )


def test_manscdp_is_read_by_its_declared_encoding() -> None:
    body = '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify><CmdType>Catalog</CmdType><Name>水库大坝</Name></Notify>'
    assert manscdp.text(manscdp.decode(body.encode("gb2312")), "Name") == "水库大坝"
    utf8 = body.replace("GB2312", "UTF-8").encode()
    assert manscdp.text(manscdp.decode(utf8), "Name") == "水库大坝"
    with pytest.raises(manscdp.BodyError):
        manscdp.decode(b'<?xml version="1.0" encoding="GB2312"?><a>')
    item = manscdp.CatalogItem(device_id="1" * 20, name="𠀀东门")  # a character outside GB2312 goes as a reference
    root = manscdp.catalog_response("7", "2" * 20, [item], 1)
    assert manscdp.catalog_items(manscdp.decode(manscdp.encode(root)))[1][0].name == "𠀀东门"


def test_sip_framing_and_sdp() -> None:
    register = (b"REGISTER sip:3402000000 SIP/2.0\r\nv: SIP/2.0/TCP 1.2.3.4:5060;branch=z9hG4bK1\r\n"
                b"f: <sip:a@b>;tag=1\r\nt: <sip:a@b>\r\ni: c1\r\nCSeq: 1 REGISTER\r\nl: 3\r\n\r\nabc")  # fmt: skip
    framer = Framer()
    assert framer.feed(b"\r\n\r\n" + register[:30]) == []
    [whole] = framer.feed(register[30:] + b"\r\n")
    message = parse(whole)
    assert message.method == "REGISTER" and message.branch == "z9hG4bK1" and message.body == b"abc"
    assert message.header("from") == "<sip:a@b>;tag=1"
    offer = sdp.offer("34020000001310000001", "10.0.0.1", 30000, sdp.ssrc("3402000000", 12), "tcp_passive")
    assert "y=0200000012" in offer and "m=video 30000 TCP/RTP/AVP 96" in offer and "a=setup:passive" in offer
    answered = sdp.answer("v=0\r\nc=IN IP4 10.0.0.2\r\nm=video 15060 TCP/RTP/AVP 96\r\na=setup:active\r\n"
                          "a=rtpmap:96 PS/90000\r\ny=0200000012\r\n")  # fmt: skip
    assert answered == sdp.Answer("10.0.0.2", 15060, "tcp_passive", 96, "PS", "0200000012")
    offer = sdp.offer("34020000001310000001", "10.0.0.1", 9, sdp.ssrc("3402000000", 13), "tcp_active")
    assert "m=video 9 TCP/RTP/AVP 96" in offer and "a=setup:active" in offer and "a=setup:passive" not in offer
    answered = sdp.answer("v=0\r\nc=IN IP4 10.0.0.2\r\nm=video 20000 TCP/RTP/AVP 96\r\na=setup:passive\r\n"
                          "a=rtpmap:96 PS/90000\r\ny=0200000013\r\n")  # fmt: skip
    assert answered == sdp.Answer("10.0.0.2", 20000, "tcp_active", 96, "PS", "0200000013")
