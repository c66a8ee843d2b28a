"""Video consultation against a real Janus (tests/support/janus_fixture.py) and real headless Chromium pages joining
from inside the test network namespace with fake cameras and microphones."""

import asyncio
import contextlib
import itertools
import json
import math
import os
import re
import struct
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import pytest_asyncio
import uvicorn
import websockets
from playwright.async_api import Browser, Page, async_playwright, expect

from switchboard.api.app import create_app
from switchboard.core.context import Context
from tests.conftest import add_users, fresh_database_url, headers_for, settings_for
from tests.support.janus_fixture import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    PAGE_PORT,
    JanusHarness,
    janus,  # noqa: F401
    stop,
)
from tests.support.screenshots import screenshot
from tests.support.wait import until

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup)")
SITES = ["山西省应急管理厅", "太原市应急管理局", "大同市应急管理局"]
_ports = itertools.count(PAGE_PORT)


class Room:
    """The app driving the session's Janus, served to browsers inside the namespace."""

    def __init__(
        self, ctx: Context, http: httpx.AsyncClient, tokens: dict[str, dict[str, str]], base: str, socket: Path
    ) -> None:
        self.ctx, self.http, self.tokens, self.base, self.socket = ctx, http, tokens, base, socket

    async def api(self, method: str, path: str, role: str = "duty_officer", **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, path, headers=self.tokens[role], **kwargs)


@pytest_asyncio.fixture
async def room(janus: JanusHarness, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Room]:  # noqa: F811
    url = await fresh_database_url(getattr(request, "param", "sqlite"), request, tmp_path)
    port = next(_ports)
    public = {"SWITCHBOARD_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}"}  # where the pages reach it, via the forward
    ctx = Context.from_settings(settings_for(tmp_path, url, **janus.environ, **public))
    async with served_room(janus, ctx, create_app(ctx), port, tmp_path) as served:
        yield served
    await ctx.db.close()


@contextlib.asynccontextmanager
async def served_room(harness: JanusHarness, ctx: Context, app: Any, port: int, tmp_path: Path) -> AsyncIterator[Room]:
    """The app (lifespan running) served on a Unix socket and forwarded to 127.0.0.1:`port` inside the namespace,
    where the browsers reach it."""
    socket_path = tmp_path / "app.sock"
    async with app.router.lifespan_context(app):
        await app.state.services.video.session.wait_up(10)
        server = uvicorn.Server(uvicorn.Config(app, uds=str(socket_path), lifespan="off", log_level="warning"))
        task = asyncio.create_task(server.serve())
        await until(lambda: server.started, timeout=10, what="the app to serve on its socket")
        forward = harness.popen(
            [sys.executable, "-m", "tests.support.peers.forward", f"127.0.0.1:{port}", str(socket_path)],
            stdout=subprocess.PIPE,
        )
        assert forward.stdout is not None
        await asyncio.to_thread(forward.stdout.readline)
        tokens = headers_for(ctx, await add_users(ctx))
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=base) as http:
                yield Room(ctx, http, tokens, base, socket_path)
        finally:
            stop(forward)
            server.should_exit = True
            await task


def _tone(path: Path, seconds: float = 4.0, rate: int = 48000) -> Path:
    """A steady 440 Hz tone at -10 dBFS: the fake microphones "talk" all the time (Chromium's own fake audio is
    a short beep a second, too little for Janus's talking detection)."""
    amplitude = int(32767 * 10 ** (-10 / 20))
    samples = (int(amplitude * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


@pytest_asyncio.fixture
async def browser(janus: JanusHarness) -> AsyncIterator[Browser]:  # noqa: F811
    tone = _tone(janus.var_dir / "tone.wav")
    async with async_playwright() as pw:
        flags = [*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={tone}"]
        chromium = await pw.chromium.launch(executable_path=str(janus.chromium), args=flags)
        yield chromium
        await chromium.close()


async def _consultation(room: Room, pin: str = "2468", **extra: Any) -> tuple[str, str]:
    incident = await room.api(
        "POST", "/api/v1/incidents",
        json={"title": "晋中市榆次区燃气泄漏", "category": "accident_disaster", "level": "III", "area_code": "140702"},
    )  # fmt: skip
    assert incident.status_code == 201, incident.text
    body = {"title": "燃气泄漏处置会商", "incident_id": incident.json()["id"], "max_sites": 6, "pin": pin} | extra
    created = await room.api("POST", "/api/v1/consultations", json=body)
    assert created.status_code == 201, created.text
    return created.json()["id"], incident.json()["id"]


# A page that ignores being cut off: it keeps every peer connection and its signalling socket open, whatever it is
# told.
_STUBBORN = """(() => {
  const Native = window.RTCPeerConnection;
  window.keptConnections = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    keptConnections.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
  Native.prototype.close = function () {};
  WebSocket.prototype.close = function () {};
})();"""
_KEPT_FRAMES = """async () => {
  let frames = 0;
  for (const pc of window.keptConnections)
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
    });
  return frames;
}"""


async def _join(browser: Browser, url: str, pin: str, stubborn: bool = False, check: bool = False) -> Page:
    page = await (await browser.new_context(locale="zh-CN")).new_page()
    if stubborn:
        await page.add_init_script(_STUBBORN)
    await page.goto(url)
    await expect(page.locator("#join-button")).to_be_visible()
    if check:
        await _check_devices(page)
    if pin:
        await page.fill("#pin", pin)
    await page.click("#join-button")
    await expect(page.locator("body")).to_have_attribute("data-state", "joined", timeout=15_000)
    return page


async def _check_devices(page: Page) -> None:
    """The device check before joining: devices listed by name, the camera's preview playing, the microphone's
    level moving with the fake tone, a test sound played; another microphone picked is captured."""
    await expect(page.locator("#camera option")).not_to_have_count(0)
    await expect(page.locator("#speaker option").first).to_have_text("系统默认扬声器")
    await page.wait_for_function("document.getElementById('preview').videoWidth > 0", timeout=10_000)
    await page.wait_for_function("Number(document.getElementById('level').dataset.level) > 5", timeout=10_000)
    await page.click("#test-sound")
    await expect(page.locator("#test-sound")).to_have_attribute("data-played", "1")
    second = await page.locator("#microphone option").nth(1).get_attribute("value")
    await page.select_option("#microphone", second)
    captured = "id => document.getElementById('preview').srcObject.getAudioTracks()[0].getSettings().deviceId === id"
    await page.wait_for_function(captured, arg=second, timeout=10_000)
    await screenshot(page, "consultation-device-check")


async def _frames(page: Page) -> dict[str, int]:
    return await page.evaluate("window.consultStats()")


async def _frames_risen(
    pages: list[Page], since: list[dict[str, int]], expected: dict[int, set[str]], by: int, timeout: float = 30
) -> list[dict[str, int]]:
    """Wait until page i has decoded `by` more frames of every site in expected[i] than it had in since[i]."""
    now: list[dict[str, int]] = []

    async def risen() -> bool:
        now[:] = [await _frames(p) for p in pages]
        return all(now[i].get(s, 0) >= since[i].get(s, 0) + by for i, sites in expected.items() for s in sites)

    await until(risen, timeout=timeout, what=lambda: f"{by} more frames of every site: {since} -> {now}", interval=0.5)
    return now


async def _decoding(pages: list[Page], expected: dict[int, set[str]], timeout: float = 30) -> list[dict[str, int]]:
    """Wait until every page decodes video of every site it should see, and then until the counts rise (the video
    flows rather than stalled after a first frame)."""
    first = await _frames_risen(pages, [{} for _ in pages], expected, 1, timeout)
    return await _frames_risen(pages, first, expected, 1, timeout)


async def test_three_sites_see_each_other_record_and_one_is_removed(
    room: Room, browser: Browser, tmp_path: Path
) -> None:
    cid, incident_id = await _consultation(room)
    invitees = [{"site": s, "moderator": i == 0} for i, s in enumerate(SITES)]
    invites = (await room.api("POST", f"/api/v1/consultations/{cid}/invites", json={"invitees": invitees})).json()
    assert [i["site"] for i in invites] == SITES and invites[0]["url"].startswith(room.base + f"/consult/{cid}?token=")

    pages = [await _join(browser, i["url"], "2468", stubborn=n == 2, check=n == 1) for n, i in enumerate(invites)]
    await expect(pages[1].locator(".tile .name")).to_contain_text(["太原市应急管理局（本地）"])
    for page in pages:
        await expect(page.locator(".tile")).to_have_count(3, timeout=15_000)
    expected = {i: set(SITES) - {SITES[i]} for i in range(3)}
    frames = await _decoding(pages, expected)
    print("frames decoded per page:", frames)
    await screenshot(pages[0], "consultation-tiles")
    # The tiles fill the window; the speaker view shows one site large and the others beside it.
    tiles = [await t.bounding_box() for t in await pages[0].locator(".tile").all()]
    assert all(t and t["width"] > 300 and t["height"] > 200 for t in tiles), tiles
    await pages[0].click("#layout")
    await expect(pages[0].locator("#layout")).to_have_text("宫格视图")
    main = await pages[0].locator(".tile.main").bounding_box()
    others = [await t.bounding_box() for t in await pages[0].locator(".tile:not(.main)").all()]
    assert main and len(others) == 2 and all(o and o["width"] * 2 < main["width"] for o in others), (main, others)
    await screenshot(pages[0], "consultation-speaker-view")

    health = (await room.http.get("/healthz")).json()["components"]["janus"]
    assert health["status"] == "ok" and health["link"] == "up"
    # The fake microphones beep: Janus reports who talks and the page frames that site.
    await expect(pages[0].locator("body")).to_have_attribute("data-speaker", re.compile("应急管理"), timeout=15_000)
    listed = (await room.api("GET", f"/api/v1/consultations/{cid}/participants")).json()
    assert sorted(p["site"] for p in listed) == sorted(SITES) and all(p["invite_id"] for p in listed)
    mute_path = f"/api/v1/consultations/{cid}/participants/{invites[1]['invite_id']}/mute"
    muted = await room.api("POST", mute_path, json={"on": True})
    assert muted.status_code == 204, muted.text
    unmuted = await room.api("POST", mute_path, json={"on": False})  # (a muted site's audio would not be recorded)
    assert unmuted.status_code == 204, unmuted.text

    # The moderator records from its page; the recording is post-processed and filed under the incident.
    await pages[0].click("#record")
    await expect(pages[0].locator("#record")).to_have_text("停止录像")
    for page in pages:  # every site is told it is being recorded
        await expect(page.locator("#recording-notice")).to_be_visible()
    await screenshot(pages[1], "consultation-recording-notice")
    recording_from = [await _frames(p) for p in pages]
    await _frames_risen(pages, recording_from, expected, 60)  # 3 s of each 20 fps camera went through Janus
    await pages[0].click("#record")
    await expect(pages[0].locator("#record")).to_have_text("开始录像")
    for page in pages:
        await expect(page.locator("#recording-notice")).to_be_hidden()
    video = room.http._transport.app.state.services.video  # type: ignore[attr-defined]
    await video.live.filing.drain()
    found = (await room.api("GET", f"/api/v1/recordings?incident_id={incident_id}")).json()
    assert sorted((r["parties"][0]["name"], r["format"]) for r in found) == sorted(
        (site, kind) for site in SITES for kind in ("webm", "opus")
    ), found
    assert all(r["kind"] == "consultation" for r in found)
    assert all(
        (r["video"], r["label"]) == ((True, "会商录像") if r["format"] == "webm" else (False, "会商录音"))
        for r in found
    )
    webm = next(r for r in found if r["format"] == "webm")
    played = await room.api("GET", f"/api/v1/recordings/{webm['id']}/audio")
    assert played.status_code == 200 and played.headers["content-type"] == "video/webm"
    path = video.live.recordings.root / (await video.live.recordings.get(webm["id"])).path
    assert _video_frames(path) >= 40, "a recording through 60 frames of a camera holds at least 40 of them"
    assert not await video.live.recordings.verify()

    # The moderator removes 大同: its page is disconnected and told so; the others lose its tile.
    await pages[0].locator(f'.tile[data-site="{SITES[2]}"] button.remove').click()
    await expect(pages[0].locator("#confirm-text")).to_contain_text(f"确定将“{SITES[2]}”移出本次会商")
    await expect(pages[2].locator("body")).to_have_attribute("data-state", "joined")  # nothing happens before "yes"
    await pages[0].click("#confirm-yes")
    await expect(pages[2].locator("#notice")).to_have_text("您已被主持人移出本次会商", timeout=10_000)
    await expect(pages[2].locator("body")).to_have_attribute("data-state", "removed")
    for page in pages[:2]:
        await expect(page.locator(".tile")).to_have_count(2, timeout=10_000)
    # 大同's page kept its connections open, as a tampered page would: Janus ended its subscriptions all the same
    # (the server closed its Janus session), so no more frames reach it, while the others' video flows on.
    samples: list[int] = []

    async def stalled() -> bool:
        samples.append(await pages[2].evaluate(_KEPT_FRAMES))
        return len(samples) >= 3 and samples[-1] == samples[-3]

    await until(stalled, timeout=30, interval=1, what=lambda: f"the removed page's frames to stop: {samples}")
    still = [await _frames(p) for p in pages[:2]]
    await _frames_risen(pages[:2], still, {0: {SITES[1]}, 1: {SITES[0]}}, 20)
    assert await pages[2].evaluate(_KEPT_FRAMES) == samples[-1], "frames reached the removed page again"
    # ...and its link no longer opens the room.
    again = await (await browser.new_context()).new_page()
    response = await again.goto(invites[2]["url"])
    assert response is not None and response.status == 403
    await expect(again.locator("#reason")).to_have_text("您已被移出本次会商，链接已失效")

    async def departure_noted() -> list[str] | None:  # by the presence watch, on its next look at the room
        timeline = (await room.api("GET", f"/api/v1/incidents/{incident_id}/timeline")).json()
        summaries = [e["summary"] for e in (timeline["items"] if isinstance(timeline, dict) else timeline)]
        return summaries if any("大同市应急管理局 离开视频会商" in s for s in summaries) else None

    summaries = await until(departure_noted, timeout=20, what="大同's departure on the incident's timeline")
    assert any("大同市应急管理局 加入视频会商" in s for s in summaries), summaries
    assert sum(s.startswith("会商录像") for s in summaries) == 3, summaries  # each site's video
    assert sum(s.startswith("会商录音") for s in summaries) == 3, summaries  # and voice


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


@pytest.mark.parametrize("room", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
async def test_api_roles_validation_and_close(room: Room) -> None:
    body = {"title": "防汛会商", "max_sites": 4}
    assert (await room.http.post("/api/v1/consultations", json=body)).status_code == 401
    assert (await room.api("POST", "/api/v1/consultations", "alert_officer", json=body)).status_code == 403
    bad = await room.api("POST", "/api/v1/consultations", json=body | {"pin": "12ab"})
    assert bad.status_code == 422 and bad.json()["field"] == "pin"
    bad = await room.api("POST", "/api/v1/consultations", json=body | {"max_sites": 40})
    assert bad.status_code == 422 and bad.json()["field"] == "max_sites"
    bad = await room.api("POST", "/api/v1/consultations", json=body | {"incident_id": "01NOSUCHINCIDENT"})
    assert bad.status_code == 422 and bad.json()["field"] == "incident_id"
    assert (await room.api("GET", "/api/v1/consultations/nope")).status_code == 404

    cid, incident_id = await _consultation(room, pin="")
    created = (await room.api("GET", f"/api/v1/consultations/{cid}", "leader")).json()
    assert created["state"] == "open" and created["incident_id"] == incident_id
    video = room.http._transport.app.state.services.video  # type: ignore[attr-defined]
    assert await video.live.rooms.exists(created["room"])
    invitees = {"invitees": [{"site": "吕梁市应急管理局", "person": "张三", "moderator": True}]}
    [invite] = (await room.api("POST", f"/api/v1/consultations/{cid}/invites", json=invitees)).json()
    # The console finds the incident's open consultation and its links again (after a reload, say).
    assert [c["id"] for c in (await room.api("GET", f"/api/v1/consultations?incident_id={incident_id}")).json()] == [
        cid
    ]
    assert (await room.api("GET", f"/api/v1/consultations/{cid}/invites")).json() == [invite]
    listed = await room.api("GET", f"/api/v1/consultations?incident_id={incident_id}", "alert_officer")
    assert listed.status_code == 403
    ticket = await room.http.post(f"/consult/{cid}/session", headers={"Authorization": f"Bearer {invite['token']}"})
    assert ticket.status_code == 200 and ticket.json()["site"] == "吕梁市应急管理局" and ticket.json()["moderator"]
    assert ticket.json()["pin_required"] is False
    assert not {"room_token", "room", "janus_url"} & ticket.json().keys()  # nothing to take to Janus itself
    # A moderator's link may close the consultation; the room goes and the link with it.
    closed = await room.http.delete(
        f"/api/v1/consultations/{cid}", headers={"Authorization": f"Bearer {invite['token']}"}
    )
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert not await video.live.rooms.exists(created["room"])
    again = await room.http.post(f"/consult/{cid}/session", headers={"Authorization": f"Bearer {invite['token']}"})
    assert again.status_code == 403 and again.json()["message"] == "本次会商已结束"
    timeline = (await room.api("GET", f"/api/v1/incidents/{incident_id}/timeline")).json()["items"]
    assert [e["summary"] for e in timeline][-1] == "视频会商《燃气泄漏处置会商》结束"
    assert (await room.api("GET", f"/api/v1/consultations?incident_id={incident_id}")).json() == []


async def test_wrong_expired_and_locked_links_are_refused(room: Room, browser: Browser) -> None:
    cid, _ = await _consultation(room, pin="")
    short = {"invitees": [{"site": "晋中市应急管理局"}], "hours": 0.0005}  # 1.8 s
    expiring = (await room.api("POST", f"/api/v1/consultations/{cid}/invites", json=short)).json()[0]
    late = await room.api("POST", f"/api/v1/consultations/{cid}/invites", json={"invitees": [{"site": "长治市"}]})
    page = await (await browser.new_context()).new_page()

    response = await page.goto(f"{room.base}/consult/{cid}?token=not-a-token")
    assert response is not None and response.status == 401
    await expect(page.locator("#reason")).to_have_text("会商链接无效")
    forged = expiring["token"][:-4] + ("AAAA" if not expiring["token"].endswith("AAAA") else "BBBB")
    response = await page.goto(f"{room.base}/consult/{cid}?token={forged}")
    assert response is not None and response.status == 401

    expires = datetime.fromisoformat(expiring["expires_at"])
    await until(lambda: datetime.now(UTC) > expires, timeout=10, what=f"the short link to expire at {expires}")
    response = await page.goto(expiring["url"])
    assert response is not None and response.status == 401
    await expect(page.locator("#reason")).to_have_text("会商链接已过期，请向值班室索取新的链接")
    ticket = await room.http.post(f"/consult/{cid}/session", headers={"Authorization": f"Bearer {expiring['token']}"})
    assert ticket.status_code == 401

    # Locked: a site not yet in the room cannot join, and Janus itself refuses its token.
    locked = await room.api("POST", f"/api/v1/consultations/{cid}/lock", json={"on": True})
    assert locked.status_code == 200 and locked.json()["locked"] is True
    url = late.json()[0]["url"]
    await page.goto(url)
    await expect(page.locator("#notice")).to_have_text("会商已锁定，暂不能加入")
    # A moderator route with a non-moderator's link is refused.
    token = late.json()[0]["token"]
    refused = await room.http.post(
        f"/api/v1/consultations/{cid}/lock", json={"on": False}, headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 403


class Signal:
    """A page's signalling socket spoken by hand (the Janus API, framed as janus.js frames it), as an attacker
    would: whatever the join page never sends."""

    def __init__(self, connection: websockets.ClientConnection, token: str) -> None:
        self.connection, self.token, self.next = connection, token, 0

    async def send(self, verb: str, **fields: Any) -> str:
        self.next += 1
        transaction = f"t{self.next}"
        frame = {"janus": verb, "transaction": transaction, "token": self.token} | fields
        await self.connection.send(json.dumps(frame))
        return transaction

    async def ask(self, verb: str, **fields: Any) -> dict[str, Any]:
        """The answer to one request (for a message: the plugin's event that follows the ack)."""
        transaction = await self.send(verb, **fields)
        while True:
            reply = json.loads(await asyncio.wait_for(self.connection.recv(), 15))
            if reply.get("transaction") == transaction and (reply.get("janus") != "ack" or verb != "message"):
                return reply

    async def request(self, handle: int, body: dict[str, Any], jsep: dict[str, str] | None = None) -> dict[str, Any]:
        """A VideoRoom request on `handle`: the plugin's data (an error carries error_code, error and field)."""
        reply = await self.ask("message", handle_id=handle, body=body, **({"jsep": jsep} if jsep else {}))
        assert reply["janus"] == "event", reply
        return reply["plugindata"]["data"]

    async def attach(self) -> int:
        return (await self.ask("attach", plugin="janus.plugin.videoroom"))["data"]["id"]

    async def closed(self) -> tuple[int, str]:
        """Read until the server closes: its code and reason."""
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(self.connection.recv(), 15)
        assert self.connection.close_code is not None
        return self.connection.close_code, self.connection.close_reason or ""


@contextlib.asynccontextmanager
async def _signal(room: Room, cid: str, token: str, create: bool = True) -> AsyncIterator[Signal]:
    url = f"ws://127.0.0.1/consult/{cid}/signal"
    async with websockets.unix_connect(str(room.socket), url, subprotocols=["janus-protocol"]) as connection:
        assert connection.subprotocol == "janus-protocol"
        signal = Signal(connection, token)
        if create:
            assert (await signal.ask("create"))["janus"] == "success"
        yield signal


OFFER = {"type": "offer", "sdp": "v=0"}


def _janus_listens_on_tcp(janus: JanusHarness) -> list[str]:  # noqa: F811
    """The TCP ports Janus's own process listens on (its sockets among the namespace's listening ones)."""
    assert janus.engine.process is not None
    pid = janus.engine.process.pid
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    ports = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and f"socket:[{fields[9]}]" in inodes:  # 0A: LISTEN
                ports.append(fields[1])
    return ports


async def test_janus_is_reached_only_through_an_invite(room: Room, janus: JanusHarness) -> None:  # noqa: F811
    """The review's attacks: Janus's own API from the network (list, subscribe, record), a page naming its own
    recording, a removed or locked-out site keeping its way in. Janus has no network API now; the relay answers
    only an invite, and builds every Janus request itself."""
    assert _janus_listens_on_tcp(janus) == []
    cid, _ = await _consultation(room, pin="1357")
    invitees = [{"site": "忻州市应急管理局"}, {"site": "朔州市应急管理局"}, {"site": "阳泉市应急管理局"}]
    invites = (await room.api("POST", f"/api/v1/consultations/{cid}/invites", json={"invitees": invitees})).json()

    async with _signal(room, cid, "", create=False) as anonymous:  # no session: nothing else is answered
        await anonymous.send("attach", plugin="janus.plugin.videoroom")
        assert await anonymous.closed() == (4401, "链接缺少会商令牌")
    async with _signal(room, cid, invites[0]["token"][:-3] + "xyz", create=False) as forged:
        await forged.send("create")
        assert await forged.closed() == (4401, "会商链接无效")

    async with _signal(room, cid, invites[0]["token"]) as page:
        handle = await page.attach()
        subscribe = {"request": "join", "ptype": "subscriber", "streams": [{"feed": invites[1]["participant_id"]}]}
        refused = await page.request(handle, subscribe)
        assert (refused["error_code"], refused["error"], refused["field"]) == (409, "请先加入会商", None)
        listing = await page.request(handle, {"request": "listparticipants", "room": 1234})
        assert (listing["error_code"], listing["field"]) == (422, "request")
        streaming = await page.ask("attach", plugin="janus.plugin.streaming")
        assert (streaming["janus"], streaming["field"]) == ("error", "plugin")
        for _ in range(6):  # with `handle`: one to publish and one per other site (max_sites 6), no more
            await page.attach()
        too_many = await page.ask("attach", plugin="janus.plugin.videoroom")
        assert (too_many["janus"], too_many["error"]["code"]) == ("error", 409)
        hearing = (await page.ask("attach", plugin="janus.plugin.audiobridge"))["data"]["id"]  # what is heard: one
        second = await page.ask("attach", plugin="janus.plugin.audiobridge")
        assert (second["janus"], second["error"]["code"]) == ("error", 409)
        early = await page.request(hearing, {"request": "join"})  # the audio room only after the VideoRoom's checks
        assert (early["error_code"], early["error"]) == (409, "请先加入会商")
        foreign = await page.ask("detach", handle_id=handle + 1)
        assert (foreign["janus"], foreign["error"]["code"], foreign["field"]) == ("error", 404, "handle_id")
        junk = await page.ask("trickle", handle_id=handle, candidate={"candidate": "x", "exec": "rm"})
        assert (junk["janus"], junk["field"]) == ("error", "candidate.exec")
        assert (await page.ask("keepalive"))["janus"] == "ack"  # refused, not cut off
        stranger = await page.ask("keepalive", token=invites[2]["token"])  # another site's token on this session
        assert (stranger["janus"], stranger["error"]["code"], stranger["field"]) == ("error", 403, "token")
        wrong_pin = await page.request(handle, {"request": "join", "ptype": "publisher", "pin": "0000"})
        assert (wrong_pin["error"], wrong_pin["field"]) == ("会商密码错误", "pin")
        named = await page.request(handle, {"request": "join", "ptype": "publisher", "pin": "1357", "room": 1})
        assert named["field"] == "room" and "不允许的字段" in named["error"]
        joined = await page.request(handle, {"request": "join", "ptype": "publisher", "pin": "1357"})
        assert joined["videoroom"] == "joined" and not {"room", "private_id"} & joined.keys(), joined
        foreign_room = await page.request(hearing, {"request": "join", "room": 1, "group": "phone"})
        assert foreign_room["field"] == "room" and "不允许的字段" in foreign_room["error"]
        heard = await page.request(hearing, {"request": "join"})
        assert heard["audiobridge"] == "joined" and "room" not in heard, heard
        configure = {"request": "configure", "audio": True, "video": True}
        planted = await page.request(handle, configure | {"record": True, "filename": "../../../../x"}, OFFER)
        assert planted["field"] == "record" and "不允许的字段" in planted["error"]
        assert not await asyncio.to_thread(lambda: list(janus.engine.layout.base.rglob("x*")))
        huge = await page.ask("message", handle_id=handle, body=configure, jsep={"type": "offer", "sdp": "a" * 66_000})
        assert (huge["janus"], huge["field"]) == ("error", "jsep.sdp")

        # Removed while connected: the socket, and with it the site's Janus session, is closed by the server.
        async with _signal(room, cid, invites[1]["token"]) as removed:
            joined = await removed.request(
                await removed.attach(), {"request": "join", "ptype": "publisher", "pin": "1357"}
            )
            assert joined["videoroom"] == "joined"
            gone = await room.api("DELETE", f"/api/v1/consultations/{cid}/participants/{invites[1]['invite_id']}")
            assert gone.status_code == 204, gone.text
            assert await removed.closed() == (4403, "您已被主持人移出本次会商")
        still = (await room.api("GET", f"/api/v1/consultations/{cid}/invites")).json()
        assert [i["site"] for i in still] == ["忻州市应急管理局", "阳泉市应急管理局"]  # a removed site's link is gone
        async with _signal(room, cid, invites[1]["token"], create=False) as again:
            await again.send("create")
            assert await again.closed() == (4403, "您已被移出本次会商，链接已失效")

        # Locked: a site outside the room may open a session but not join (nor, without joining, subscribe).
        assert (await room.api("POST", f"/api/v1/consultations/{cid}/lock", json={"on": True})).status_code == 200
        async with _signal(room, cid, invites[2]["token"]) as outside:
            handle = await outside.attach()
            locked_out = await outside.request(handle, {"request": "join", "ptype": "publisher", "pin": "1357"})
            assert locked_out["error"] == "会商已锁定，暂不能加入"
            subscribe["streams"] = [{"feed": invites[0]["participant_id"]}]
            assert (await outside.request(handle, subscribe))["error"] == "请先加入会商"

        closed = await room.api("DELETE", f"/api/v1/consultations/{cid}")
        assert closed.status_code == 200, closed.text
        assert await page.closed() == (4403, "本次会商已结束")


async def test_rtsp_camera_feed_is_published_and_comes_back(
    room: Room,
    browser: Browser,
    janus: JanusHarness,  # noqa: F811
) -> None:
    camera_argv = [
        "/usr/bin/python3",
        str(Path(__file__).parent / "support" / "peers" / "rtsp_camera.py"),
        "127.0.0.1",
        "8554",
    ]
    camera = janus.popen(camera_argv, stdout=subprocess.PIPE)
    try:
        assert camera.stdout is not None and (await asyncio.to_thread(camera.stdout.readline)).strip() == b"ready"
        cid, _ = await _consultation(room, pin="")
        invites = (
            await room.api("POST", f"/api/v1/consultations/{cid}/invites", json={"invitees": [{"site": SITES[0]}]})
        ).json()
        # A camera URL is an address the server connects to: only hosts the configuration lists (the review made
        # it reach the cloud metadata address and the AMI port).
        for url in ("rtsp://169.254.169.254/latest", "rtsp://localhost:5038/x", "rtsp://10.1.2.3/camera"):
            refused = await room.api("POST", f"/api/v1/consultations/{cid}/feeds", json={"url": url, "site": "外部"})
            assert (refused.status_code, refused.json()["field"]) == (422, "url"), refused.text
        camera_feed = {"url": "rtsp://127.0.0.1:8554/camera", "site": "榆次现场"}
        feed = await room.api("POST", f"/api/v1/consultations/{cid}/feeds", json=camera_feed)
        assert feed.status_code == 201, feed.text
        page = await _join(browser, invites[0]["url"], "")
        await _decoding([page], {0: {"榆次现场"}}, timeout=40)

        # The camera drops (the feed leaves the room) and returns: the feed comes back on its own.
        stop(camera)
        await expect(page.locator('.tile[data-site="榆次现场"]')).to_have_count(0, timeout=20_000)
        camera = janus.popen(camera_argv, stdout=subprocess.PIPE)
        assert camera.stdout is not None and (await asyncio.to_thread(camera.stdout.readline)).strip() == b"ready"
        await _decoding([page], {0: {"榆次现场"}}, timeout=40)
    finally:
        stop(camera)


async def test_janus_restart_recreates_rooms(room: Room, janus: JanusHarness) -> None:  # noqa: F811
    cid, _ = await _consultation(room)
    video = room.http._transport.app.state.services.video  # type: ignore[attr-defined]
    number = (await room.api("GET", f"/api/v1/consultations/{cid}")).json()["room"]
    connects = video.session.connects
    started = time.monotonic()
    await janus.engine.stop()
    await until(lambda: video.session.state != "up", timeout=20, what="the session to see Janus gone")
    refused = await room.api("POST", "/api/v1/consultations", json={"title": "引擎停止时", "max_sites": 2})
    assert refused.status_code == 503 and "Janus" in refused.json()["message"]
    assert (await room.http.get("/healthz")).json()["components"]["janus"]["status"] == "down"
    await janus.engine.start()
    await until(lambda: video.session.connects != connects, timeout=30, what="the session to reconnect")
    print(f"reconnected {time.monotonic() - started:.2f} s after the restart began")
    assert await video.live.rooms.exists(number)
    assert (await room.http.get("/healthz")).json()["components"]["janus"]["status"] == "ok"


async def test_local_janus_is_started_and_restarted_by_the_app(
    janus: JanusHarness,  # noqa: F811
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """mode = local (what `switchboard serve` runs): the app starts its own Janus, and starts it again when it
    dies; the session reconnects and the consultation's room is back."""
    url = await fresh_database_url("sqlite", request, tmp_path)
    local = {
        "SWITCHBOARD_JANUS_MODE": "local",
        "SWITCHBOARD_JANUS_NETNS": janus.netns,
        "SWITCHBOARD_JANUS_INTERFACE": "vj0",
        "SWITCHBOARD_JANUS_RTP_PORT_START": "31000",  # beside the session's Janus in the same namespace
        "SWITCHBOARD_JANUS_RTP_PORT_END": "31999",
        "SWITCHBOARD_JANUS_KEEPALIVE_SECONDS": "5",
    }
    ctx = Context.from_settings(settings_for(tmp_path, url, **local))
    app = create_app(ctx)
    async with app.router.lifespan_context(app):
        video = app.state.services.video
        await video.session.wait_up(10)
        assert video.engine is not None and video.engine.running
        tokens = headers_for(ctx, await add_users(ctx))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as http:
            created = await http.post(
                "/api/v1/consultations", json={"title": "本地引擎", "max_sites": 3}, headers=tokens["leader"]
            )
            assert created.status_code == 201, created.text
            health = (await http.get("/healthz")).json()["components"]["janus"]
            assert health == {"status": "ok", "link": "up", "engine": "running"}
            connects, started = video.session.connects, time.monotonic()
            os.kill(video.engine.process.pid, 9)
            await until(lambda: video.session.connects != connects, timeout=30, what="Janus restarted and reconnected")
            print(f"killed Janus back and reconnected in {time.monotonic() - started:.2f} s")
            assert await video.live.rooms.exists(created.json()["room"])
    assert video.engine.process is None  # stopped with the app
    await ctx.db.close()
