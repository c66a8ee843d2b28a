"""Phones in video consultations, on the real engines: the session's Asterisk (on the host) and Janus (in its
network namespace, reached over the fixture's host link), pjsua2 phones and a Chromium page. A desk phone dials the
consultation's number: its tone is heard in the page (WebAudio on the room's mix) and the page's tone on the phone;
the phone is listed with its directory name, muted (its tone no longer reaches the page) and removed (hung up). A
dial-out to a contact whose first number does not answer reaches the second. The console's consultation lists a
phone live and mutes and removes it with its buttons. A consultation with a PIN asks dialled-in phones for it, and
closing it hangs them up."""

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from switchboard.api.app import create_app
from switchboard.core.audit.models import AuditEntry
from switchboard.core.context import Context
from switchboard.telephony import Telephony
from tests.conftest import fresh_database_url
from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.janus_fixture import CHROMIUM, JanusHarness, janus  # noqa: F401
from tests.support.phone_client import PhoneProcess
from tests.support.screenshots import screenshot
from tests.support.telephony_fixture import engine_settings, register
from tests.support.tones import load, recorded_so_far, tone_present
from tests.support.wait import until
from tests.test_bridges import asked_for_pin
from tests.test_console import _watch, sign_in
from tests.test_consultations import Room, _join, browser, served_room  # noqa: F401

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup)")

PHONE_TONE, PAGE_TONE = 1000, 440  # the page's fake microphone plays 440 Hz (tests/test_consultations.py)
DIRECTORY = (
    "organisation,department,name,title,office_phone,mobile,home_phone,groups\n"
    "140105,应急管理局,王强,局长,8002,,,\n"
    "140106,应急管理局,张伟,副局长,8009,,8003,\n"  # 8009 is never registered: unreachable, then 8003
)
_ports = itertools.count(8180)

# The room's mix as the page plays it, analysed by WebAudio: the level (dB) of the loudest FFT bin near each
# frequency asked for, over the last analysis window.
_LEVELS = """async (freqs) => {
  const mix = document.getElementById('room-mix');
  if (!mix.srcObject) return null;
  if (!window.mixAnalyser) {
    const audio = new AudioContext();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 8192;
    audio.createMediaStreamSource(mix.srcObject).connect(analyser);
    window.mixAnalyser = analyser;
    await audio.resume();
  }
  const analyser = window.mixAnalyser;
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  const hz = analyser.context.sampleRate / analyser.fftSize;
  return freqs.map((f) => {
    const at = Math.round(f / hz);
    return Math.max(...bins.slice(at - 3, at + 4));
  });
}"""
HEARD_DB = -50.0  # measured -44 dB for pjsua2's tone through Asterisk and Janus
MUTED_DROP_DB = 25.0  # measured -80 dB once muted: a drop of 35 dB


@pytest_asyncio.fixture
async def room(
    janus: JanusHarness,  # noqa: F811
    asterisk: AsteriskHarness,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> AsyncIterator[Room]:
    if janus.host_link is None:
        pytest.skip("phone audio needs the fixture's host link (run as root)")
    url = await fresh_database_url("sqlite", request, tmp_path)
    port = next(_ports)
    public = {"SWITCHBOARD_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    ctx = Context.from_settings(engine_settings(asterisk, tmp_path, url, **janus.environ, **public))
    telephony = Telephony(ctx, definition=asterisk.engine.definition)
    async with served_room(janus, ctx, create_app(ctx, telephony=telephony), port, tmp_path) as served:
        assert telephony.ami is not None
        await telephony.ami.wait_up(15)
        files = {"file": ("contacts.csv", DIRECTORY.encode(), "text/csv")}
        imported = await served.api("POST", "/api/v1/directory/import", files=files)
        assert imported.json()["created"] == 2, imported.text
        yield served
    await ctx.db.close()


async def _levels(page: Page) -> list[float] | None:
    return await page.evaluate(_LEVELS, [PHONE_TONE, PAGE_TONE])


async def _phone_level(page: Page, enough: Callable[[float], bool], what: str) -> float:
    """The level of the phone's tone in the page's mix once `enough` holds for it."""

    async def settled() -> float | None:
        levels = await _levels(page)
        return levels[0] if levels is not None and enough(levels[0]) else None

    return await until(settled, timeout=20, what=what)


async def _linked(asterisk: AsteriskHarness, number: str) -> None:
    async def linked() -> bool:
        _, listing = await asterisk.engine.cli(f"confbridge list consult-{number}")
        return "UnicastRTP/" in listing

    await until(linked, timeout=20, what=f"the consultation's link in ConfBridge consult-{number}")


async def _participants(room: Room, cid: str) -> list[dict[str, Any]]:
    response = await room.api("GET", f"/api/v1/consultations/{cid}/participants")
    assert response.status_code == 200, response.text
    return response.json()


async def _phone(room: Room, cid: str, number: str) -> dict[str, Any]:
    async def listed() -> dict[str, Any] | None:
        return next((p for p in await _participants(room, cid) if p["kind"] == "phone" and p["number"] == number), None)

    return await until(listed, timeout=15, what=f"phone {number} in the participant list")


@pytest.mark.timeout(240)
async def test_a_phone_dials_in_is_heard_hears_the_room_is_muted_and_removed(
    room: Room,
    asterisk: AsteriskHarness,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    created = await room.api("POST", "/api/v1/consultations", json={"title": "汾河防汛会商", "pin": ""})
    assert created.status_code == 201, created.text
    cid, number = created.json()["id"], created.json()["dial_in"]
    assert number == asterisk.engine.definition.consultations.numbers()[0]
    await _linked(asterisk, number)
    invited = await room.api("POST", f"/api/v1/consultations/{cid}/invites", json={"invitees": [{"site": "太原市"}]})
    page = await _join(browser, invited.json()[0]["url"], pin="")

    async with PhoneProcess() as phone:
        await register(phone, asterisk, "8002", "manual")
        call = (
            await phone.command("call", account="8002", uri=f"sip:{number}@{asterisk.sip_host}:{asterisk.sip_port}")
        )["call"]
        await phone.wait_for("call_state", call=call, state="confirmed", timeout=10)
        listed = await _phone(room, cid, "8002")
        assert listed["name"] == "王强" and listed["site"] == "王强" and not listed["muted"], listed

        recording = str(tmp_path / "phone.wav")
        await phone.command("record", call=call, path=recording)
        await phone.command("play_tone", call=call, freq=PHONE_TONE)
        heard = await _phone_level(page, lambda db: db >= HEARD_DB, "the phone's tone in the page")
        print(f"page hears the phone: {heard:.1f} dB at {PHONE_TONE} Hz")

        def page_heard_lately() -> bool:
            audio = recorded_so_far(recording)
            return audio.seconds > 2 and tone_present(load(audio, start=audio.seconds - 1.5), PAGE_TONE)

        await until(page_heard_lately, timeout=20, what="the page's tone on the phone")

        # The moderator mutes the site: muted where it is heard (AudioBridge), the phone no longer hears its tone.
        site_path = f"/api/v1/consultations/{cid}/participants/{invited.json()[0]['invite_id']}/mute"
        assert (await room.api("POST", site_path, json={"on": True})).status_code == 204
        await until(lambda: not page_heard_lately(), timeout=20, what="the muted site's tone gone from the phone")
        assert (await room.api("POST", site_path, json={"on": False})).status_code == 204
        await until(page_heard_lately, timeout=20, what="the unmuted site's tone on the phone again")

        muted = await room.api(
            "POST", f"/api/v1/consultations/{cid}/phones/{listed['phone_id']}/mute", json={"on": True}
        )
        assert muted.status_code == 204, muted.text
        silent = await _phone_level(page, lambda db: db <= heard - MUTED_DROP_DB, "the muted phone's tone gone")
        print(f"muted phone in the page: {silent:.1f} dB at {PHONE_TONE} Hz")
        assert (await _phone(room, cid, "8002"))["muted"]

        removed = await room.api("DELETE", f"/api/v1/consultations/{cid}/phones/{listed['phone_id']}")
        assert removed.status_code == 204, removed.text
        await phone.wait_for("call_state", call=call, state="disconnected", timeout=10)
        await phone.command("record", call=call, stop=True, check=False)
    async with room.ctx.db.reader() as session:
        query = select(AuditEntry.action).where(AuditEntry.action.startswith("consultation.phone_"))
        assert list(await session.scalars(query.order_by(AuditEntry.seq))) == [
            "consultation.phone_mute",
            "consultation.phone_remove",
        ]

    async def gone() -> bool:
        return not any(p["kind"] == "phone" for p in await _participants(room, cid))

    await until(gone, timeout=10, what="the removed phone to leave the participant list")


@pytest.mark.timeout(180)
async def test_dial_out_to_a_contact_reaches_the_second_number(room: Room, asterisk: AsteriskHarness) -> None:
    created = await room.api("POST", "/api/v1/consultations", json={"title": "调度会商", "pin": ""})
    cid, number = created.json()["id"], created.json()["dial_in"]
    await _linked(asterisk, number)
    contacts = (await room.api("GET", "/api/v1/directory/contacts", params={"q": "张伟"})).json()
    contact_id = contacts[0]["id"]
    async with PhoneProcess() as phone:
        await register(phone, asterisk, "8003", "auto")
        dialled = await room.api("POST", f"/api/v1/consultations/{cid}/phones", json={"contact_id": contact_id})
        assert dialled.status_code == 201, dialled.text
        assert dialled.json()["numbers"] == ["8009", "8003"]
        listed = await _phone(room, cid, "8003")
        assert listed["name"] == "张伟", listed
        refused = await room.api("POST", f"/api/v1/consultations/{cid}/phones", json={"contact_id": "nobody"})
        assert refused.status_code == 422 and refused.json()["field"] == "contact_id", refused.text
        too_short = {"contact_id": contact_id, "ring_seconds": 1}
        refused = await room.api("POST", f"/api/v1/consultations/{cid}/phones", json=too_short)
        assert refused.status_code == 422 and refused.json()["field"] == "ring_seconds", refused.text
        forbidden = await room.api(
            "POST", f"/api/v1/consultations/{cid}/phones", json={"contact_id": contact_id}, role="alert_officer"
        )
        assert forbidden.status_code == 403, forbidden.text
        unknown = await room.api("POST", f"/api/v1/consultations/{cid}/phones/nobody/mute", json={"on": True})
        assert unknown.status_code == 404 and unknown.json()["field"] == "phone_id", unknown.text
    async with room.ctx.db.reader() as session:
        audited = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "consultation.dial_out")))
    assert [(a.actor, a.detail["numbers"]) for a in audited] == [("duty_officer", ["8009", "8003"])]


@pytest.mark.timeout(240)
async def test_the_console_lists_mutes_and_removes_a_phone_live(
    room: Room,
    asterisk: AsteriskHarness,
    browser: Browser,  # noqa: F811
) -> None:
    incident = {"title": "小店区化工厂火灾", "category": "accident_disaster", "level": "II", "area_code": "140105"}
    incident_id = (await room.api("POST", "/api/v1/incidents", json=incident)).json()["id"]
    body = {"title": "化工厂火灾会商", "pin": "", "incident_id": incident_id}
    number = (await room.api("POST", "/api/v1/consultations", json=body)).json()["dial_in"]
    await _linked(asterisk, number)
    server = room.base.removeprefix("http://")
    console = await (await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")).new_page()
    problems = _watch(console, server)
    await sign_in(console, server, "duty_officer")
    await console.locator("#incidents").get_by_text("小店区化工厂火灾").click()
    await console.click("#consult-incident")
    await expect(console.locator("#dial-in")).to_contain_text(number)
    rows = console.locator("#consult-phones .el-table__body tr")

    async with PhoneProcess() as phone:
        await register(phone, asterisk, "8002", "manual")
        uri = f"sip:{number}@{asterisk.sip_host}:{asterisk.sip_port}"
        call = (await phone.command("call", account="8002", uri=uri))["call"]
        await phone.wait_for("call_state", call=call, state="confirmed", timeout=10)
        row = rows.filter(has_text="王强")
        await expect(row).to_contain_text("8002")  # live: the event stream brought it
        await expect(row.locator(".phone-state")).to_have_text("通话中")
        await row.locator(".phone-mute").click()
        await expect(row.locator(".phone-state")).to_have_text("已静音")
        await expect(row.locator(".phone-mute")).to_have_text("取消静音")
        await screenshot(console, "console-consultation-phones")
        await row.locator(".phone-remove").click()
        await console.get_by_role("dialog", name="移出电话参会方").get_by_role("button", name="移出").click()
        await phone.wait_for("call_state", call=call, state="disconnected", timeout=10)
        await expect(rows.filter(has_text="王强")).to_have_count(0)
    assert problems == [], problems


@pytest.mark.timeout(180)
async def test_a_consultation_with_a_pin_asks_phones_for_it_and_closing_hangs_them_up(
    room: Room, asterisk: AsteriskHarness
) -> None:
    created = await room.api("POST", "/api/v1/consultations", json={"title": "保密会商", "pin": "2468"})
    cid, number = created.json()["id"], created.json()["dial_in"]
    await _linked(asterisk, number)
    async with PhoneProcess() as phone:
        await register(phone, asterisk, "8002", "manual")
        uri = f"sip:{number}@{asterisk.sip_host}:{asterisk.sip_port}"
        call = (await phone.command("call", account="8002", uri=uri))["call"]
        await phone.wait_for("call_state", call=call, state="confirmed", timeout=10)
        await asked_for_pin(asterisk, "8002")
        assert not [p for p in await _participants(room, cid) if p["kind"] == "phone"]  # not in before the PIN
        await phone.command("dtmf", call=call, digits="2468#")
        assert (await _phone(room, cid, "8002"))["name"] == "王强"
        closed = await room.api("DELETE", f"/api/v1/consultations/{cid}")  # its phones are hung up with it
        assert closed.status_code == 200, closed.text
        await phone.wait_for("call_state", call=call, state="disconnected", timeout=10)


async def _link_channel(asterisk: AsteriskHarness, number: str) -> str:
    _, listing = await asterisk.engine.cli(f"confbridge list consult-{number}")
    return next((word for word in listing.split() if word.startswith("UnicastRTP/")), "")


@pytest.mark.timeout(120)
async def test_a_lost_link_is_made_again(room: Room, asterisk: AsteriskHarness) -> None:
    number = (await room.api("POST", "/api/v1/consultations", json={"title": "断线重连", "pin": ""})).json()["dial_in"]
    await _linked(asterisk, number)
    lost = await _link_channel(asterisk, number)
    await asterisk.engine.cli(f"channel request hangup {lost}")

    async def relinked() -> str:
        channel = await _link_channel(asterisk, number)
        return channel if channel and channel != lost else ""

    await until(relinked, timeout=15, what="the consultation's link made again")
