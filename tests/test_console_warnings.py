"""Warnings in the console, in headless Chromium with two people: the alert officer composes (live preview with the
SMS part count) and submits in one browser context, an approver approves in another, the officer issues; the real
SMSC's receipts move the delivery chart to delivered (the chart's data is read, not its pixels) and the SMTP
server receives the mails. Then an update shows the approver what it changes, and the officer cancels it."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from switchboard.core.context import Context
from tests.conftest import PASSWORD
from tests.support.channel_peers import WarningChannels
from tests.support.screenshots import screenshot
from tests.support.wait import until
from tests.test_console import CHROMIUM, FLAGS, _watch, pick_division
from tests.test_warnings import _texts, add_group, incident

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup installs it)"),
    pytest.mark.parametrize("ctx", ["sqlite"], indirect=True),  # PostgreSQL is covered by the API tests
]


async def person(browser: Browser, server: str, username: str, problems: list[str]) -> Page:
    """A browser context of its own (its own cookie session) signed in as `username`, on the 预警发布 tab."""
    context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    page = await context.new_page()
    problems += _watch(page, server)
    await page.goto(f"http://{server}/")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator("#online")).to_have_text("实时")
    await page.get_by_role("tab", name="预警发布").click()
    return page


async def option(page: Page, label: str, text: str) -> None:
    """Open the Element Plus select of the form item `label` and click the option showing `text`, as a person does."""
    await page.locator(".el-form-item", has_text=label).locator(".el-select__wrapper").first.click()
    await page.locator(".el-select-dropdown__item:visible", has_text=text).first.click()


async def chart(page: Page, selector: str) -> dict:
    return json.loads(await page.locator(selector).get_attribute("data-series") or "{}")


async def confirm(page: Page) -> None:
    await page.locator(".el-message-box").get_by_role("button", name="确定").click()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        await launched.close()


async def test_compose_approve_issue_and_follow_the_deliveries(
    app_ctx: Context,
    client: httpx.AsyncClient,
    tokens: dict,
    live_server: str,
    warning_channels: WarningChannels,
    browser: Browser,
) -> None:
    await add_group(app_ctx, 3)
    await incident(client, tokens)
    problems: list[str] = []
    officer = await person(browser, live_server, "alert_officer", problems)
    approver = await person(browser, live_server, "approver", problems)

    # Each channel's state is on the page; one not configured cannot be picked.
    states = officer.locator(".channel-states")
    await expect(states).to_contain_text("短信：可用")
    await expect(states).to_contain_text("Telegram：未配置")

    # The officer composes; the preview follows the typing, with the SMS part count.
    await officer.click("#warning-new")
    await option(officer, "所属事件", "小店区暴雨")
    await officer.locator("#warning-colour").get_by_text("橙色").click()
    await officer.fill("#warning-sender", "太原市应急管理局")
    await officer.fill("#warning-description", "预计未来 3 小时内小店区降雨量将达 50 毫米以上，伴有雷电、短时大风。")
    await pick_division(officer, officer.locator("#warning-compose"), "小店区")
    await option(officer, "接收群组", "预警接收-3")
    await officer.keyboard.press("Escape")
    await officer.locator("#warning-channels").get_by_text("电子邮件").click()
    telegram = officer.locator("#warning-channels label", has_text="Telegram")
    await expect(telegram.locator("input")).to_be_disabled()
    await expect(telegram).to_contain_text("未配置")
    headline = "太原市应急管理局发布暴雨橙色预警"
    await expect(officer.locator("#preview-sms")).to_contain_text(f"【太原市应急管理局】{headline}")
    parts = officer.locator("#sms-parts")
    await expect(parts).to_contain_text("UCS-2，分 2 条发送")
    await officer.fill("#warning-description", "小店区降雨。")
    await officer.fill("#warning-instruction", "")  # the template's advice taken out: one part is enough
    await expect(parts).to_contain_text("分 1 条发送")
    await screenshot(officer, "warning-compose")
    await officer.click("#warning-save")
    await expect(officer.locator("#warning-state")).to_have_text("草稿")
    await officer.click("#warning-submit")
    await expect(officer.locator("#warning-state")).to_have_text("待审核")
    await expect(officer.locator("#warning-approve")).to_have_count(0)  # not the officer's to approve

    # The approver's queue shows it (live: the submit event reloads the list); approving takes a second person.
    queued = approver.locator("#warning-list li", has_text=headline)
    await queued.click()
    await expect(approver.locator("#warning-detail")).to_contain_text("小店区降雨。")
    await approver.click("#warning-approve")
    await expect(approver.locator("#warning-state")).to_have_text("已审核")

    # The officer issues; the chart moves while the outbox sends, and settles at delivered (SMS, receipted by the
    # SMSC) and sent (e-mail, which has no receipts).
    await expect(officer.locator("#warning-state")).to_have_text("已审核")
    await officer.click("#warning-issue")
    await confirm(officer)
    await expect(officer.locator("#warning-state")).to_have_text("已发布")

    async def settled() -> dict | None:
        series = await chart(officer, "#delivery-chart")
        last = {channel: points[-1][1:] for channel, points in series.items()}
        return series if last == {"sms": [0, 0, 3, 0, 0], "email": [0, 3, 0, 0, 0]} else None

    series = await until(settled, timeout=30, what="the delivery chart to reach delivered")
    assert series["sms"][0][1:] == [3, 0, 0, 0, 0]  # all pending at the issue
    await expect(officer.locator("#warning-completed")).to_be_visible()
    await expect(officer.locator("#delivery-table .el-table__row")).to_have_count(6)
    await expect(officer.locator("#delivery-table")).to_contain_text("已送达")
    await expect(officer.locator("#delivery-table")).to_contain_text("接收人001")
    assert sorted(_texts(warning_channels.smsc.submits())) == [f"1390000{i:04d}" for i in range(3)]
    assert sorted(warning_channels.mailbox.recipients()) == [f"r{i:03d}@example.cn" for i in range(3)]
    csv = officer.locator("#delivery-csv")
    assert (await csv.get_attribute("href") or "").endswith("/deliveries?format=csv")
    # The group is asked to confirm: its confirmation board is on the warning's page and follows the receipts live.
    board = officer.locator("#warning-confirmations")
    await expect(board.locator("#notice-counts")).to_contain_text("总人数 3")
    await expect(board.locator("#notice-counts")).to_contain_text("已通知未确认 3")
    await expect(board.locator("#notice-board .el-table__row")).to_have_count(3)
    await screenshot(officer, "warning-delivered")

    # Deliveries per channel on the approver's dashboard.
    await approver.get_by_role("tab", name="统计").click()
    deliveries = approver.locator("#deliveries-chart")
    await expect(deliveries).to_have_attribute("data-channels", '["email","sms"]')
    by_state = dict(json.loads(await deliveries.get_attribute("data-series") or "[]"))
    assert by_state["已送达"] == [0, 3] and by_state["已发送"] == [3, 0]

    # An update: the approver sees what it changes before approving; then the officer cancels the update.
    await officer.click("#warning-update")
    await officer.locator("#warning-colour").get_by_text("红色").click()
    await officer.click("#warning-save")
    await expect(officer.locator("#warning-state")).to_have_text("草稿")
    await officer.click("#warning-submit")
    await approver.get_by_role("tab", name="预警发布").click()
    await approver.locator("#warning-filter").get_by_text("待审核").click()
    await approver.locator("#warning-list li").first.click()  # the update is the only warning waiting
    changes = approver.locator("#warning-changes .el-table__row")
    await expect(changes).to_have_count(2)  # the colour and the headline generated from it; nothing else
    await expect(changes.nth(0)).to_contain_text("预警级别橙色红色")
    await expect(changes.nth(1)).to_contain_text(f"标题{headline}太原市应急管理局发布暴雨红色预警")
    await expect(approver.locator("#warning-detail")).to_contain_text("起草 张敏")
    await screenshot(approver, "warning-update-changes")
    await officer.click("#warning-cancel")
    await confirm(officer)
    await expect(officer.locator("#warning-state")).to_have_text("已撤销")
    assert problems == []
