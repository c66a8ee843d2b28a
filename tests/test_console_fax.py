"""A fax sent from the console's page, in headless Chromium, over the real Asterisk: the officer uploads a PDF,
addresses it to a fax number, follows it to 已发送, finds it in the inbox of the number it went to and views the
received PDF in the page; the received pages are the pages sent."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import expect

from switchboard.api.app import create_app
from switchboard.core.context import Context
from switchboard.telephony import Telephony
from tests.conftest import add_users, fresh_database_url, headers_for
from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.screenshots import screenshot
from tests.support.served import served
from tests.support.wait import until
from tests.test_console import CHROMIUM, console_page, sign_in
from tests.test_fax import assert_same_pages, fax_settings, pdf_document, pdf_pages, tiff_pages


@pytest_asyncio.fixture
async def fax_app(
    asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Context, Telephony, object]]:
    url = await fresh_database_url("sqlite", request, tmp_path)
    settings = fax_settings(asterisk, tmp_path, url, SWITCHBOARD_FAX_HEADER="Switchboard console")
    ctx = Context.from_settings(settings)
    telephony = Telephony(ctx, definition=asterisk.engine.definition)
    app = create_app(ctx, telephony=telephony)
    async with app.router.lifespan_context(app):
        assert telephony.ami is not None
        await telephony.ami.wait_up(15)
        headers_for(ctx, await add_users(ctx))
        yield ctx, telephony, app


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup installs it)")
@pytest.mark.timeout(180)
async def test_a_fax_sent_from_the_page_arrives_with_the_same_pages(
    fax_app: tuple[Context, Telephony, object], asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    ctx, telephony, app = fax_app
    document = tmp_path / "通知.pdf"
    document.write_bytes(pdf_document(tmp_path, 2))
    number = asterisk.fax_numbers["t38"]
    async with served(app) as server, console_page(server) as (page, problems):
        await sign_in(page, server, "duty_officer")
        await page.get_by_role("tab", name="传真").click()
        await page.set_input_files("#fax-file", str(document))
        await page.fill("#fax-numbers", number)
        await page.click("#fax-send")
        batch = page.locator("#fax-batch")
        await expect(batch.locator(".fax-state")).to_have_text("已发送", timeout=120_000)
        await expect(batch).to_contain_text("第 1 次：发送成功")
        await expect(page.locator("#fax-list")).to_contain_text("发送成功")
        await screenshot(page, "fax-sent")

        await page.locator("#fax-inbox").click()
        received = page.locator("#fax-list tr", has_text="已接收")
        await expect(received.first).to_be_visible(timeout=60_000)
        async with page.expect_response(lambda r: r.url.endswith("/document")) as shown:
            await received.first.locator(".view").click()
        response = await shown.value
        assert response.status == 200 and response.headers["content-type"] == "application/pdf"
        await expect(page.locator("#fax-viewer")).to_be_visible()  # the PDF, framed in the page
        await screenshot(page, "fax-inbox")
    assert telephony.faxes is not None and telephony.recordings is not None
    [sent] = await telephony.faxes.search(direction="out", incident_id=None, batch_id=None, state=None, limit=10)

    async def arrived() -> list | None:
        found = await telephony.faxes.search(direction="in", incident_id=None, batch_id=None, state=None, limit=10)
        return [f for f in found if f.recording_id] or None

    [inbound] = await until(arrived, timeout=30, what="the fax in the inbox")
    pdf = telephony.recordings.path_of(await telephony.recordings.get(inbound.recording_id))
    assert_same_pages(tiff_pages(telephony.faxes.document_path(sent)), pdf_pages(pdf, tmp_path))
    assert problems == []
