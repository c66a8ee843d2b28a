"""The console's dispatch and bridge panels in headless Chromium against the real Asterisk, with pjsua2 phones:
a duty officer finds a contact by pinyin initials and calls them with one click, the desk phone rings and is
answered, the far party answers, the call board shows 通话中 with names, and hanging up from the page ends both
phones' calls; convening from the page fills the roll call with 已入会 and 占线, and muting one member from the page
silences their tone for the others."""

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from playwright.async_api import expect

from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.phone_client import PhoneProcess
from tests.support.screenshots import screenshot
from tests.support.served import served
from tests.support.telephony_fixture import Desk, register, switchboard_on
from tests.support.tones import load, recorded_so_far, tone_present
from tests.support.wait import until
from tests.test_console import CHROMIUM, _choose, _watch, console_page, pick_division, sign_in

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the pages run in the duty room's time zone
SHARED_LINE = "03517654321"
DIRECTORY = (
    "organisation,department,name,title,office_phone,mobile,home_phone,groups\n"
    "140105,应急管理局,王强,局长,8002,,,会商组\n"
    "140105,应急管理局,李明,值班员,8003,,,会商组\n"
    "140106,应急管理局,赵磊,值班员,8004,,,会商组\n"  # busy
    f"140107,应急管理局,孙丽,科员,{SHARED_LINE},,,\n"  # two people share one office line: both are candidates
    f"140107,应急管理局,周涛,科员,{SHARED_LINE},,,\n"
)
BRIDGE = "8600"


@pytest_asyncio.fixture
async def desk(asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    environ = {"SWITCHBOARD_BRIDGES_RETRY_SECONDS": "1"}
    async with switchboard_on(asterisk, request, tmp_path, DIRECTORY, expect_contacts=5, **environ) as desk:
        yield desk


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup installs it)")
@pytest.mark.timeout(180)
async def test_click_to_call_from_the_tree_and_hang_up_from_the_board(desk: Desk, asterisk: AsteriskHarness) -> None:
    seated = await desk.http.patch("/api/v1/users/duty_officer", json={"desk": "8001"}, headers=desk.tokens["admin"])
    assert seated.status_code == 200  # the officer's own desk: the page names no desk, the call rings this one
    async with PhoneProcess() as phones, served(desk.app) as server, console_page(server) as (page, problems):
        await register(phones, asterisk, "8001", "auto")  # the officer's desk phone
        await register(phones, asterisk, "8002", "auto")  # 王强's office phone
        await sign_in(page, server, "duty_officer")
        await page.get_by_role("tab", name="电话调度").click()

        # The tree unfolds province -> city -> county -> department -> people.
        tree = page.locator("#org-tree")
        for level in ("山西省", "太原市", "小店区", "应急管理局"):
            await tree.get_by_text(level, exact=True).click()
        await expect(tree).to_contain_text("王强（局长）")
        # Pinyin initials find him too.
        await page.fill("#contact-search", "wq")
        await page.locator("#search-results li", has_text="王强").click()
        card = page.locator("#contact-card")
        await expect(card).to_contain_text("办公电话 8002")
        await expect(card.locator("#desk")).to_have_value("8001")
        await screenshot(page, "dispatch-card")

        await page.click("#call-contact")
        desk_leg = await phones.wait_for("call_state", account="8001", state="confirmed", timeout=20)
        far_leg = await phones.wait_for("call_state", account="8002", state="confirmed", timeout=30)
        board = page.locator("#call-board")
        await expect(board).to_contain_text("王强")
        await expect(board).to_contain_text("通话中", timeout=15_000)
        await expect(board).to_contain_text("8001")
        await screenshot(page, "call-board")
        await board.locator(".hold").first.click()
        await expect(board.locator(".state").first).to_have_text("保持", timeout=10_000)
        await board.locator(".hold").first.click()
        await expect(board.locator(".state").first).to_have_text("通话中", timeout=10_000)

        await board.locator(".hang-up").first.click()
        await phones.wait_for("call_state", call=desk_leg["call"], state="disconnected", timeout=20)
        await phones.wait_for("call_state", call=far_leg["call"], state="disconnected", timeout=20)
        await expect(board).to_contain_text("当前没有通话", timeout=15_000)

        # The figures: the call counts for desk 8001 in this hour (the chart's data, not its pixels).
        await page.get_by_role("tab", name="统计").click()
        chart = page.locator("#calls-chart")
        await expect(chart).to_have_attribute("data-series", re.compile(r"调度台 8001"), timeout=15_000)
        [(name, per_hour)] = json.loads(await chart.get_attribute("data-series") or "[]")
        assert name == "调度台 8001" and sum(per_hour) == 1 and per_hour[datetime.now(SHANGHAI).hour] == 1
        await screenshot(page, "dashboard")
    assert problems == []


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup installs it)")
@pytest.mark.timeout(240)
async def test_convene_from_the_page_then_mute_one_member(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    async with PhoneProcess() as phones, served(desk.app) as server, console_page(server) as (page, problems):
        for number, mode in (("8002", "auto"), ("8003", "auto"), ("8004", "busy")):
            await register(phones, asterisk, number, mode)
        await sign_in(page, server, "duty_officer")
        await page.get_by_role("tab", name="会议").click()
        bridge = page.locator(f"[data-bridge='{BRIDGE}']")
        await bridge.locator(".convene").click()
        await _choose(page, "群组", "会商组（3 人）")
        await page.get_by_role("button", name="开始召集").click()

        roll = bridge.locator(".roll-call")
        await expect(roll.locator("tr", has_text="王强")).to_contain_text("已入会", timeout=40_000)
        await expect(roll.locator("tr", has_text="李明")).to_contain_text("已入会", timeout=40_000)
        await expect(roll.locator("tr", has_text="赵磊")).to_contain_text("占线", timeout=60_000)
        await expect(bridge.locator(".members")).to_contain_text("李明")
        await screenshot(page, "bridge-roll-call")

        # 李明 (8003) plays a tone that 王强 (8002) hears; muted from the page, it is heard no more.
        legs = {e["account"]: e["call"] for e in phones.find("call_state", state="confirmed")}
        heard = tmp_path / "wang.wav"
        await phones.command("record", call=legs["8002"], path=str(heard))
        await phones.command("play_tone", call=legs["8003"], freq=900)

        def hears_the_tone() -> bool:
            audio = recorded_so_far(heard)
            return audio.seconds > 1.5 and tone_present(load(audio, start=audio.seconds - 1.5), 900, min_share=0.5)

        await until(hears_the_tone, timeout=30, what="王强 to hear 李明's tone", interval=0.25)
        member = bridge.locator(".members tr", has_text="李明")
        await expect(member.locator(".talking-dot.on")).to_have_count(1, timeout=15_000)  # lit by bridge.talking
        await expect(bridge.locator(".members tr", has_text="王强").locator(".talking-dot.on")).to_have_count(0)
        await member.locator(".mute").click()
        await expect(member.locator(".mic")).to_have_text("已静音", timeout=10_000)
        await until(lambda: not hears_the_tone(), timeout=15, what="李明's tone to stop reaching 王强", interval=0.25)
        await screenshot(page, "bridge-muted")

        await page.get_by_role("tab", name="统计").click()  # how the bridge filled up: two joins, in order
        joins = page.locator("#joins-chart")
        await expect(joins).to_have_attribute("data-series", re.compile(r"^\[\[\d+,1\],\[\d+,2\]\]$"), timeout=15_000)
        await page.get_by_role("tab", name="会议").click()
        await bridge.locator(".end").click()
        await page.get_by_role("button", name="确定").click()
        await phones.wait_for("call_state", call=legs["8002"], state="disconnected", timeout=20)
        await phones.wait_for("call_state", call=legs["8003"], state="disconnected", timeout=20)
    assert problems == []


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup installs it)")
@pytest.mark.timeout(180)
async def test_a_hotline_call_becomes_an_incident_whose_first_report_is_written_and_printed(
    desk: Desk, asterisk: AsteriskHarness
) -> None:
    async with (
        PhoneProcess() as phones,
        PhoneProcess() as outside,
        served(desk.app) as server,
        console_page(server) as (page, problems),
    ):
        await register(phones, asterisk, "8001", "auto")  # the duty desk the hotline rings
        await outside.command("account", name="pstn", port=asterisk.trunk_port, uri=f"sip:{SHARED_LINE}@127.0.0.1")
        await sign_in(page, server, "duty_officer")

        hotline = f"sip:{asterisk.hotlines[0]}@127.0.0.1:{asterisk.sip_port}"
        caller = (await outside.command("call", account="pstn", uri=hotline))["call"]
        popup = page.locator("#incoming-call")
        await expect(popup).to_contain_text(SHARED_LINE, timeout=20_000)
        await expect(popup.locator("#caller-candidates")).to_contain_text("孙丽")
        await expect(popup.locator("#caller-candidates")).to_contain_text("周涛")
        await outside.wait_for("call_state", call=caller, state="confirmed", timeout=20)
        await screenshot(page, "incoming-call")

        await popup.locator("#new-incident-from-call").click()
        await popup.locator("input").first.fill("杏花岭区居民楼燃气泄漏")
        await pick_division(page, popup, "杏花岭区")
        await popup.locator("#create-from-call").click()
        timeline = page.locator("#timeline")
        await expect(page.locator("#timeline-title")).to_have_text("杏花岭区居民楼燃气泄漏")
        await expect(timeline).to_contain_text("关联来电")

        await outside.command("hangup", call=caller)
        await expect(timeline).to_contain_text("录音", timeout=30_000)  # its recording, filed under it at the end
        incidents = (await desk.http.get("/api/v1/incidents", headers=desk.tokens["leader"])).json()["items"]
        (incident,) = [i for i in incidents if i["title"] == "杏花岭区居民楼燃气泄漏"]
        assert incident["area_code"] == "140107"
        calls = await desk.http.get(
            f"/api/v1/incidents/{incident['id']}/timeline", params={"kind": "call"}, headers=desk.tokens["leader"]
        )
        assert [e["type"] for e in calls.json()["items"]] == ["call.attached", "call.ended"]
        await expect(timeline).to_contain_text("王建国")  # people by name

        # The 初报, written in the page and printed from the link the browser opens with its session.
        await page.click("#write-report")
        form = page.locator("#report-form")
        await form.locator("#r-occurred").fill("2026-12-02 08:00:00")
        await form.locator("#r-occurred").press("Enter")
        for field, text in (
            ("info_source", "群众电话报告"),
            ("nature", "居民楼燃气泄漏"),
            ("impact_scope", "一个单元 24 户"),
            ("casualties_losses", "暂无人员伤亡"),
            ("trend", "已关阀，浓度下降"),
            ("measures_taken", "疏散居民 60 人"),
            ("reporting_unit", "太原市应急管理局"),
            ("signed_by", "周建华"),
            ("contact_phone", "0351-4012345"),
        ):
            await form.locator(f"#r-{field}").fill(text)
        async with page.context.expect_page() as opened:
            await form.locator("#submit-report").click()
        printed = await opened.value
        problems_printed = _watch(printed, server)
        await expect(printed.locator("h1")).to_have_text("突发事件信息初报")
        for text in ("报送单位：太原市应急管理局", "签发人：周建华", "联系电话：0351-4012345", "报送人：王建国"):
            await expect(printed.locator("body")).to_contain_text(text)
        await screenshot(printed, "first-report")
        await expect(page.locator("#incident-clock")).to_have_text("已初报")
    assert problems == [] and problems_printed == []
