"""Live camera video against the real engines: the GB/T 28181 device simulator (a process of its own, streaming PS
over RTP from GStreamer) INVITEd on demand, its stream demultiplexed by the ingest process and published into the
session's Janus, decoded in headless Chromium (inside the Janus namespace): on the console's camera wall and
inside a consultation. Watching stops -> BYE reaches the simulator; a PTZ button reaches it as the right PTZCmd."""

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from conference.gb28181 import ptz
from switchboard.api.app import create_app
from switchboard.core.context import Context
from tests.conftest import fresh_database_url, settings_for
from tests.support import gb28181_peers
from tests.support.janus_fixture import CHROMIUM, JanusHarness, janus, stop  # noqa: F401
from tests.support.peers import ps_clip
from tests.support.screenshots import screenshot
from tests.support.wait import until
from tests.test_console import _watch, sign_in
from tests.test_consultations import Room, _consultation, _decoding, _join, _ports, browser, served_room  # noqa: F401

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup)")

PLATFORM_ID = "34020000002000000001"
DEVICE_ID = "34020000001320000001"
PASSWORD = "camera-pass-0417"
CHANNELS = [f"{DEVICE_ID[:10]}131{i:07d}" for i in range(1, 4)]  # the simulator's; the first is a dome


class Site(Room):
    """The app with the GB/T 28181 server, served into the Janus namespace, and one simulated NVR registered."""

    device: Any
    camera_id: str

    def events(self, kind: str) -> list[dict[str, Any]]:
        return list(self.device.events(kind))


@pytest_asyncio.fixture
async def site(janus: JanusHarness, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Site]:  # noqa: F811
    url = await fresh_database_url("sqlite", request, tmp_path)
    port = next(_ports)
    transport = getattr(request, "param", "udp")  # tcp_passive, tcp_active: RTP over TCP, from a pre-encoded clip
    overrides = {
        "SWITCHBOARD_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SWITCHBOARD_GB28181_ENABLED": "true",
        "SWITCHBOARD_GB28181_SIP_ID": PLATFORM_ID,
        "SWITCHBOARD_GB28181_PORT": "0",
        "SWITCHBOARD_GB28181_KEEPALIVE_SECONDS": "1",
        "SWITCHBOARD_GB28181_MEDIA_TRANSPORT": transport,
    }
    device_options = {"keepalive": "1"}
    if transport != "udp":
        clip = ps_clip.make(tmp_path / "h264.psclip", width=320, height=240, kbps=300, seconds=2)
        device_options["clip"] = str(clip)
    ctx = Context.from_settings(settings_for(tmp_path, url, **janus.environ, **overrides))
    app = create_app(ctx)
    async with served_room(janus, ctx, app, port, tmp_path) as room:
        served = Site(room.ctx, room.http, room.tokens, room.base, room.socket)
        organisations = (await served.api("GET", "/api/v1/directory/organisations")).json()
        body = {"kind": "gb28181", "name": "滨江水库NVR", "organisation_code": organisations[0]["code"],
                "device_id": DEVICE_ID, "password": PASSWORD}  # fmt: skip
        created = await served.api("POST", "/api/v1/cameras", role="admin", json=body)
        assert created.status_code == 201, created.text
        served.camera_id = created.json()["id"]
        platform_port = app.state.services.cameras.platform.port
        served.device = await gb28181_peers.device(
            tmp_path / "device.jsonl", DEVICE_ID, PASSWORD, PLATFORM_ID, platform_port, **device_options
        ).start()
        try:
            await until(_online(served), timeout=20, what="the simulated NVR online with its channels")
            yield served
        finally:
            await served.device.stop()
    await ctx.db.close()


def _online(site: Site) -> Any:
    async def check() -> bool:
        camera = (await site.api("GET", f"/api/v1/cameras/{site.camera_id}")).json()
        return bool(camera["online"] and len(camera["channels"]) == len(CHANNELS))

    return check


_ANSWER = """async (offer) => {
  const pc = new RTCPeerConnection();
  window.pcs = (window.pcs || []).concat([pc]);
  await pc.setRemoteDescription({type: "offer", sdp: offer});
  await pc.setLocalDescription(await pc.createAnswer());
  if (pc.iceGatheringState !== "complete")
    await new Promise((done) => pc.addEventListener("icegatheringstatechange",
      () => pc.iceGatheringState === "complete" && done()));
  return pc.localDescription.sdp;
}"""
_FRAMES = """async () => {
  let frames = 0;
  for (const pc of window.pcs || [])
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
    });
  return frames;
}"""


async def _watched_in(page: Page, site: Site, camera_id: str, channel_id: str = "") -> dict[str, Any]:
    """A watch through the API, answered by a bare RTCPeerConnection in `page`, decoding: the watch."""
    watched = await site.api("POST", f"/api/v1/cameras/{camera_id}/watches", json={"channel_id": channel_id})
    assert watched.status_code == 201, watched.text
    answer = await page.evaluate(_ANSWER, watched.json()["offer"])
    answered = await site.api("POST", f"/api/v1/cameras/watches/{watched.json()['id']}/answer", json={"sdp": answer})
    assert answered.status_code == 204, answered.text
    return dict(watched.json())


async def _decoding_in(page: Page, frames: int = 25) -> None:
    async def decoding() -> bool:
        return int(await page.evaluate(_FRAMES)) > frames

    await until(decoding, timeout=30, what=f"Chromium decoding {frames} frames", interval=0.5)


@pytest.mark.parametrize("site", ["udp", "tcp_passive", "tcp_active"], indirect=True)
async def test_a_channel_watched_twice_streams_once_and_ends_with_bye(site: Site, browser: Browser) -> None:  # noqa: F811
    """tcp_active: the simulator listens only a second after its 200 OK, so the ingest's connect is retried."""
    page = await (await browser.new_context()).new_page()
    watches = [await _watched_in(page, site, site.camera_id, CHANNELS[0]) for _ in range(2)]
    [invited] = site.events("invite")  # the second watcher shares the stream
    transport = site.ctx.settings.gb28181.media_transport
    tcp = transport != "udp"
    assert ("m=video" in invited["offer"]) and (("TCP/RTP/AVP" in invited["offer"]) == tcp)
    assert ("a=setup:passive" in invited["offer"]) == (transport == "tcp_passive")
    assert ("a=setup:active" in invited["offer"]) == (transport == "tcp_active")

    await _decoding_in(page)
    services = site.http._transport.app.state.services  # type: ignore[attr-defined]
    stream = services.cameras.wall.streams.streams[f"gb28181:{CHANNELS[0]}"]
    assert stream.process.restarts == 0  # a late listener is waited for, not a reason to restart the ingest
    if tcp:  # the side that listens: ours (the offer's port) or the device's (its answer's)
        [answered] = site.events("answered")
        listening = _media_port(invited["offer"] if transport == "tcp_passive" else answered["answer"])
        assert "01" in _tcp_states(listening), "no established RTP connection on the listening port"
    for watched in watches:
        ended = await site.api("DELETE", f"/api/v1/cameras/watches/{watched['id']}")
        assert ended.status_code == 204, ended.text
    await until(lambda: site.events("bye"), timeout=10, what="BYE at the simulator once nobody watches")
    if tcp:  # BYE ends the connection on both sides (and the listener): nothing but TIME_WAIT left on that port
        await until(
            lambda: _tcp_states(listening) <= {"06"}, timeout=10,
            what=lambda: f"the RTP connection closed after BYE (states {_tcp_states(listening)})",
        )  # fmt: skip


def _media_port(description: str) -> int:
    return int(description.split("m=video ", 1)[1].split()[0])


def _tcp_states(port: int) -> set[str]:
    """The states of this host's IPv4 TCP sockets with `port` at either end, as /proc/net/tcp writes them
    (01 established, 06 time-wait, 08 close-wait, 0A listen)."""
    states = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if port in (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)):
            states.add(state)
    return states


async def test_a_device_ending_its_stream_lets_its_watchers_go(site: Site, browser: Browser) -> None:  # noqa: F811
    page = await (await browser.new_context()).new_page()
    await _watched_in(page, site, site.camera_id, CHANNELS[2])
    await _decoding_in(page, frames=5)
    await site.device.tell("hangup")  # the device's own BYE
    [hung_up] = await until(lambda: site.events("hung_up"), timeout=10, what="the device's BYE answered")
    assert hung_up["status"] == 200

    async def let_go() -> bool:
        health = (await site.http.get("/healthz")).json()["components"]["gb28181"]
        state = await page.evaluate("window.pcs[0].connectionState")
        return health["live_streams"] == 0 and state in ("disconnected", "failed", "closed")

    await until(let_go, timeout=30, what="the stream taken down and the page's subscription ended", interval=0.5)
    assert not site.events("bye"), "no BYE back for a stream the device ended"


async def _wall_frames(page: Page, name: str, above: int) -> int:
    found: dict[str, int] = {}

    async def risen() -> bool:
        found.update(await page.evaluate("window.cameraWallStats()"))
        return found.get(name, 0) > above

    await until(risen, timeout=30, what=lambda: f"the wall decoding {name} past {above} frames: {found}", interval=0.5)
    return found[name]


async def test_the_camera_wall_plays_a_dome_moves_it_files_a_snapshot_and_lets_go(
    site: Site,
    browser: Browser,  # noqa: F811
) -> None:
    incident = {"title": "滨江水库险情", "category": "natural_disaster", "level": "III", "area_code": "140105"}
    incident_id = (await site.api("POST", "/api/v1/incidents", json=incident)).json()["id"]
    server = site.base.removeprefix("http://")
    page = await (await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")).new_page()
    problems = _watch(page, server)
    await sign_in(page, server, "duty_officer")
    await page.get_by_role("tab", name="视频监控").click()
    tree = page.locator("#camera-tree")
    await tree.get_by_text("东门广场", exact=True).click()  # the dome: channel 1 of the simulated NVR
    tile = page.locator('.tile[data-tile="0"]')
    await expect(tile.locator(".name")).to_have_text("滨江水库NVR · 东门广场")
    first = await _wall_frames(page, "滨江水库NVR · 东门广场", 10)
    await _wall_frames(page, "滨江水库NVR · 东门广场", first)  # still flowing, not one picture
    assert len(site.events("invite")) == 1

    # A PTZ button held and let go: the device gets the move, then stop, each the standard's 8-byte PTZCmd.
    await tile.locator(".ptz-up").dispatch_event("pointerdown")
    await tile.locator(".ptz-up").dispatch_event("pointerup")
    moved = await until(lambda: len(site.events("ptz")) >= 2 and site.events("ptz"), timeout=10, what="two PTZCmds")
    assert [(m["channel"], m["command"], m["checksum_ok"]) for m in moved] == [
        (CHANNELS[0], ptz.command("up", 128), True),
        (CHANNELS[0], ptz.command("stop", 128), True),
    ]
    await expect(tile.locator(".ptz button")).to_have_count(10)  # a dome; fixed channels get none

    # The picture filed under the incident: on its timeline, in the recording store as a JPEG.
    await page.locator(".el-form-item", has_text="截图归档到").locator(".el-select__wrapper").click()
    await page.get_by_role("option", name="滨江水库险情", exact=True).click()
    await tile.locator(".snapshot").click()
    await expect(page.locator(".el-message--success")).to_contain_text("截图已归档到事件")

    async def on_timeline() -> bool:
        entries = (await site.api("GET", f"/api/v1/incidents/{incident_id}/timeline")).json()["items"]
        return any("摄像机截图" in e["summary"] and "东门广场" in e["summary"] for e in entries)

    await until(on_timeline, timeout=10, what="the snapshot on the incident's timeline")
    [still] = (await site.api("GET", f"/api/v1/recordings?incident_id={incident_id}")).json()
    picture = await site.api("GET", f"/api/v1/recordings/{still['id']}/audio")
    assert picture.headers["content-type"] == "image/jpeg" and picture.content.startswith(b"\xff\xd8\xff")
    await screenshot(page, "camera-wall")

    health = (await site.http.get("/healthz")).json()["components"]["gb28181"]
    assert (health["online"], health["live_streams"]) == (1, 1)

    # The tile closed: nobody watches any more, the device gets BYE.
    await tile.locator(".close").click()
    await until(lambda: site.events("bye"), timeout=10, what="BYE at the simulator once the tile closed")
    # Its keepalives stop: the wall greys it out, live from the event stream.
    await site.device.tell("silence")
    await expect(tree.locator('.camera-node[data-key="' + site.camera_id + '"]')).to_contain_text(
        "离线", timeout=15_000
    )
    assert problems == [], problems


async def test_a_channel_joins_a_consultation_in_one_action_and_shares_its_stream_with_the_wall(
    site: Site,
    browser: Browser,  # noqa: F811
) -> None:
    cid, _ = await _consultation(site, pin="")
    invites = (
        await site.api(
            "POST", f"/api/v1/consultations/{cid}/invites", json={"invitees": [{"site": "山西省应急管理厅"}]}
        )
    ).json()
    channel = {"camera_id": site.camera_id, "channel_id": CHANNELS[1]}
    added = await site.api("POST", f"/api/v1/consultations/{cid}/cameras", json=channel)
    assert added.status_code == 201, added.text
    name = "滨江水库NVR · 滨江大道与解放路口"
    assert added.json()["site"] == name
    page = await _join(browser, invites[0]["url"], "")
    await _decoding([page], {0: {name}}, timeout=40)
    present = (await site.api("GET", f"/api/v1/consultations/{cid}/participants")).json()
    assert name in {p["site"] for p in present}

    # The wall watching the same channel shares the stream: still one INVITE.
    watched = await site.api("POST", f"/api/v1/cameras/{site.camera_id}/watches", json=channel)
    assert watched.status_code == 201, watched.text
    assert (await site.api("DELETE", f"/api/v1/cameras/watches/{watched.json()['id']}")).status_code == 204
    assert len(site.events("invite")) == 1 and not site.events("bye")

    # The moderator removes the camera's site: the last watcher gone, BYE reaches the device.
    removed = await site.api("DELETE", f"/api/v1/consultations/{cid}/participants/{added.json()['invite_id']}")
    assert removed.status_code == 204, removed.text
    await until(lambda: site.events("bye"), timeout=10, what="BYE at the simulator once the camera left the room")


async def test_an_rtsp_camera_plays_on_the_wall_through_the_ingest(site: Site, browser: Browser) -> None:  # noqa: F811
    """An RTSP camera on the host (GStreamer's RTSP server, tests/support/peers/rtsp_camera.py), pulled by the same
    ingest process (libavformat's RTSP client) into the camera room: no WebRTC publisher for the wall."""
    port = _free_tcp_port()
    script = Path(__file__).parent / "support" / "peers" / "rtsp_camera.py"
    argv = ["/usr/bin/python3", str(script), "127.0.0.1", str(port)]
    camera = subprocess.Popen(argv, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert camera.stdout is not None and (await asyncio.to_thread(camera.stdout.readline)).strip() == b"ready"
        organisations = (await site.api("GET", "/api/v1/directory/organisations")).json()
        body = {"kind": "rtsp", "name": "大坝球机", "organisation_code": organisations[0]["code"],
                "rtsp_url": f"rtsp://127.0.0.1:{port}/camera"}  # fmt: skip
        created = await site.api("POST", "/api/v1/cameras", role="admin", json=body)
        assert created.status_code == 201, created.text
        page = await (await browser.new_context()).new_page()
        watched = await _watched_in(page, site, created.json()["id"])
        await _decoding_in(page)
        assert (await site.api("DELETE", f"/api/v1/cameras/watches/{watched['id']}")).status_code == 204
        health = (await site.http.get("/healthz")).json()["components"]["gb28181"]
        assert health["live_streams"] == 0
    finally:
        stop(camera)


def _free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_h265_channel_is_refused_in_chinese_and_let_go(site: Site, tmp_path: Path) -> None:
    """Chromium here has no H.265 decoder (no hardware): the stream is found to be H.265, refused, and ended."""
    clip = ps_clip.make(tmp_path / "h265.psclip", codec="libx265", width=320, height=240, kbps=300, seconds=2)
    device_id = DEVICE_ID[:-1] + "2"
    organisations = (await site.api("GET", "/api/v1/directory/organisations")).json()
    body = {"kind": "gb28181", "name": "化工园区H265", "organisation_code": organisations[0]["code"],
            "device_id": device_id, "password": PASSWORD}  # fmt: skip
    camera_id = (await site.api("POST", "/api/v1/cameras", role="admin", json=body)).json()["id"]
    platform_port = site.http._transport.app.state.services.cameras.platform.port  # type: ignore[attr-defined]
    device = await gb28181_peers.device(
        tmp_path / "h265.jsonl", device_id, PASSWORD, PLATFORM_ID, platform_port, keepalive="1", clip=str(clip)
    ).start()
    try:

        async def online() -> bool:
            return len((await site.api("GET", f"/api/v1/cameras/{camera_id}")).json()["channels"]) == 3

        await until(online, timeout=20, what="the H.265 NVR online with its channels")
        channel = f"{device_id[:10]}1310000001"
        refused = await site.api("POST", f"/api/v1/cameras/{camera_id}/watches", json={"channel_id": channel})
        assert (refused.status_code, refused.json()["field"]) == (422, "channel_id"), refused.text
        assert "H.265" in refused.json()["message"] and "无法解码" in refused.json()["message"]
        await until(lambda: device.events("bye"), timeout=10, what="BYE once the H.265 stream was refused")
    finally:
        await device.stop()


async def test_the_console_joins_a_camera_to_the_incidents_consultation_in_one_click(
    site: Site,
    browser: Browser,  # noqa: F811
) -> None:
    incident = {"title": "水库大坝渗漏", "category": "natural_disaster", "level": "III", "area_code": "140105"}
    assert (await site.api("POST", "/api/v1/incidents", json=incident)).status_code == 201
    server = site.base.removeprefix("http://")
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    console = await context.new_page()
    watched = [_watch(console, server)]  # each page's problems, filling as it runs
    await sign_in(console, server, "duty_officer")
    await console.locator("#incidents").get_by_text("水库大坝渗漏").click()
    await console.click("#consult-incident")
    await console.click("#create-consultation")
    await expect(console.locator("#consultation-state")).to_contain_text("进行中")
    await console.locator("#consult-camera .el-cascader").click()
    await console.locator(".el-cascader-node", has_text="滨江水库NVR").click()
    await console.locator(".el-cascader-node", has_text="水库大坝").click()
    await console.click("#add-camera")
    await expect(console.locator(".el-message--success")).to_contain_text("滨江水库NVR · 水库大坝 已接入会商")

    async with console.expect_popup() as opened:
        await console.click("#open-moderator")
    moderator = await opened.value
    watched.append(_watch(moderator, server))
    await expect(moderator.locator("#join-button")).to_be_visible()
    await moderator.click("#join-button")
    await expect(moderator.locator("body")).to_have_attribute("data-state", "joined", timeout=15_000)
    await _decoding([moderator], {0: {"滨江水库NVR · 水库大坝"}}, timeout=40)
    await screenshot(moderator, "consultation-camera")
    assert len(site.events("invite")) == 1
    assert watched == [[], []], watched
