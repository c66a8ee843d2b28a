"""The console's video consultation in Chromium: created from an incident by clicking as a duty officer does, a
site invited from the directory, the moderator's page opened from the console and the site joining by its link
in a browser context of its own; each sees the other's video, with no console error and no request elsewhere.
Runs inside the Janus test namespace (the room and browser of tests/test_consultations.py). And a consultation's
video recording is listed and played as video."""

from datetime import timedelta
from pathlib import Path

import av
import numpy
from playwright.async_api import Browser, Page, expect

from recording.store import RecordingStore
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from tests.support.janus_fixture import janus  # noqa: F401
from tests.support.screenshots import screenshot
from tests.test_console import _watch, console_page, sign_in
from tests.test_consultations import Room, _decoding, browser, room  # noqa: F401

DIRECTORY = (
    "organisation,department,name,title,office_phone,mobile,home_phone,groups\n"
    "140105,应急管理局,王强,局长,8002,,,\n"
    "140106,应急管理局,李明,值班员,8003,,,\n"
)
MODERATOR = "应急指挥中心值班室"


async def _joined(page: Page) -> None:
    await expect(page.locator("#join-button")).to_be_visible()
    await page.click("#join-button")
    await expect(page.locator("body")).to_have_attribute("data-state", "joined", timeout=15_000)


async def test_a_consultation_from_an_incident_is_joined_by_two_sites(room: Room, browser: Browser) -> None:  # noqa: F811
    files = {"file": ("contacts.csv", DIRECTORY.encode(), "text/csv")}
    imported = await room.api("POST", "/api/v1/directory/import", files=files)
    assert imported.status_code == 200 and imported.json()["created"] == 2, imported.text
    incident = {"title": "小店区化工厂火灾", "category": "accident_disaster", "level": "II", "area_code": "140105"}
    assert (await room.api("POST", "/api/v1/incidents", json=incident)).status_code == 201
    server = room.base.removeprefix("http://")
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=room.base)
    console = await context.new_page()
    watched = [_watch(console, server)]  # each page's problems, filling as it runs

    await sign_in(console, server, "duty_officer")
    await console.locator("#incidents").get_by_text("小店区化工厂火灾").click()
    await console.click("#consult-incident")
    await expect(console.locator("#c-title")).to_have_value("小店区化工厂火灾视频会商")
    await console.click("#create-consultation")
    await expect(console.locator("#consultation-state")).to_contain_text("进行中")
    # 王强 is picked in the directory tree and invited; his link is copied for sending.
    tree = console.locator("#invite-tree")
    for level in ("山西省", "太原市", "小店区", "应急管理局"):
        await tree.get_by_text(level, exact=True).click()
    await tree.locator(".el-tree-node__content", has_text="王强（局长）").locator(".el-checkbox").click()
    await expect(console.locator("#invitees")).to_contain_text("王强")
    await console.click("#send-invites")
    links = console.locator("#invite-links .el-table__body tr")
    await expect(links).to_have_count(2)
    await expect(console.locator("#invitees li")).to_have_count(0)
    await expect(tree.locator(".el-checkbox.is-checked")).to_have_count(0)  # picked afresh for the next invites
    site = links.filter(has_text="王强")
    url = await site.locator(".link input").input_value()
    assert url.startswith(f"{room.base}/consult/") and "token=" in url
    await site.locator("button.copy").click()
    assert await console.evaluate("navigator.clipboard.readText()") == url
    await screenshot(console, "console-consultation")
    # After a reload the console finds the incident's consultation and its links again.
    await console.reload()
    await console.locator("#incidents").get_by_text("小店区化工厂火灾").click()
    await console.click("#consult-incident")
    await expect(console.locator("#consultation-state")).to_contain_text("进行中")
    await expect(links).to_have_count(2)

    async with console.expect_popup() as opened:
        await console.click("#open-moderator")
    moderator = await opened.value
    watched.append(_watch(moderator, server))
    far = await (await browser.new_context(locale="zh-CN")).new_page()
    watched.append(_watch(far, server))
    await far.goto(url)
    await expect(far.locator("#join-site")).to_contain_text("身份加入会商")
    site_name = (await far.locator("#join-site").text_content() or "").split("“")[1].split("”")[0]
    await _joined(moderator)
    await _joined(far)
    await _decoding([moderator, far], {0: {site_name}, 1: {MODERATOR}})
    await screenshot(moderator, "console-consultation-moderator")
    assert watched == [[], [], []], watched


def _webm(path: Path, frames: int = 10) -> Path:
    """A second of VP8 video, as janus-pp-rec makes of a site's camera."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx", rate=frames)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(frames):
            image = numpy.full((120, 160, 3), i * 20, dtype=numpy.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return path


async def test_a_consultation_video_recording_is_listed_and_played_as_video(
    app_ctx: Context, live_server: str, users: dict, tmp_path: Path
) -> None:
    now, site = utcnow(), [{"name": "太原市应急管理局"}]
    when = {"started_at": now - timedelta(seconds=1), "ended_at": now, "parties": site}
    await RecordingStore(app_ctx).file(_webm(tmp_path / "site.webm"), kind="consultation", **when)  # type: ignore[arg-type]
    async with console_page(live_server) as (page, problems):
        await sign_in(page, live_server, "leader")
        await page.get_by_role("tab", name="录音").click()
        row = page.locator("#rec-table tr", has_text="太原市应急管理局")
        await expect(row).to_contain_text("会商录像")
        await row.locator(".play").click()
        await expect(page.locator(".player")).to_contain_text("会商录像 · 太原市应急管理局")
        await page.wait_for_function("() => document.querySelector('video#player')?.ended === true", timeout=20_000)
    assert problems == []
