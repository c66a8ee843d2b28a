"""The console's 通知 page in headless Chromium against the test SMSC: the duty officer composes a notice to a
mobile number by SMS, the phone replies 收到, and the page's confirmation board turns to 已确认 live (notice events
over the event stream) with the counts, the confirming channel and number, and the completion summary."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect

from switchboard.api.app import create_app
from switchboard.core.context import Context
from tests.conftest import add_users, fresh_database_url, headers_for, settings_for
from tests.support.channel_peers import sms_gateway
from tests.support.screenshots import screenshot
from tests.support.served import served
from tests.test_console import CHROMIUM, console_page, sign_in

NUMBER = "13800000001"


@pytest_asyncio.fixture
async def notice_app(request: pytest.FixtureRequest, tmp_path: Path, smsc_factory: Any) -> AsyncIterator[object]:
    url = await fresh_database_url("sqlite", request, tmp_path)
    ctx = Context.from_settings(settings_for(tmp_path, url, SWITCHBOARD_NOTICES_CHECK_SECONDS="0.2"))
    app = create_app(ctx)
    smsc = smsc_factory(receipt_delay=0.1, reply=f"{NUMBER}=收到")
    async with app.router.lifespan_context(app):
        services = app.state.services
        await sms_gateway(services.outbox, smsc, services.notices.on_reply)
        headers_for(ctx, await add_users(ctx))
        yield app
        await services.outbox.stop()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup installs it)")
@pytest.mark.timeout(120)
async def test_a_notice_composed_on_the_page_is_confirmed_live_on_its_board(notice_app: object) -> None:
    async with served(notice_app) as server, console_page(server) as (page, problems):
        await sign_in(page, server, "duty_officer")
        await page.get_by_role("tab", name="通知").click()
        await page.fill("#notice-subject", "防汛值班")
        await page.fill("#notice-text", "今晚 20:00 起加强防汛值班。")
        await page.fill("#notice-numbers", NUMBER)
        await page.locator("#notice-channels").get_by_text("语音电话").click()  # SMS only: no telephony here
        await page.click("#notice-send")
        board = page.locator("#notice-board")
        await expect(board).to_contain_text(NUMBER)
        await expect(board.locator(".notice-state")).to_have_text("已确认", timeout=30_000)
        await expect(board).to_contain_text(f"短信 {NUMBER}")
        await expect(page.locator("#notice-counts .confirmed b")).to_have_text("1")
        await expect(page.locator("#notice-summary")).to_have_text(
            "通知《防汛值班》完成：1 人中 1 人确认", timeout=10_000
        )
        await expect(page.locator("#notice-list")).to_contain_text("已完成")
        await screenshot(page, "notice-confirmed")
    assert problems == []
