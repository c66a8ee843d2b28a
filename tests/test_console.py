"""The console in headless Chromium (Debian's, driven by Playwright): sign in, register an incident, see it
listed and its live event arrive, open its timeline."""

import re
import shutil
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.conftest import PASSWORD

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _watch(page: Page, server: str) -> list[str]:
    """What must not happen on a page: console errors (a CSP violation is one), uncaught errors, requests to another
    host, failed responses. The list fills as the page runs."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"request: {r.url}") if server not in r.url else None)
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    return problems


async def _choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the Element Plus select labelled `label`, as a person does: open it, click the option."""
    await page.locator(".el-form-item", has_text=label).locator(".el-select__wrapper").click()
    await page.get_by_role("option", name=option, exact=True).click()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup installs it)")
async def test_duty_officer_registers_an_incident(
    live_server: str, client: httpx.AsyncClient, tokens: dict, tmp_path: Path
) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(locale="zh-CN")
        problems = _watch(page, live_server)
        opened = await page.goto(f"http://{live_server}/")
        assert opened is not None and "script-src 'self'" in opened.headers["content-security-policy"]
        await expect(page.locator("#health")).to_contain_text("数据库：正常")

        await page.fill("#username", "duty_officer")
        await page.fill("#password", "wrong password")
        await page.get_by_role("button", name="登录").click()
        await expect(page.locator("#error")).to_contain_text("用户名或密码错误")

        await page.fill("#password", PASSWORD)
        await page.get_by_role("button", name="登录").click()
        await expect(page.locator("#who")).to_have_text("王建国")  # the Chinese name, not the username
        await expect(page.locator("#online")).to_have_text("实时")

        await page.fill("#f-title", "晋中市榆次区燃气泄漏")
        await _choose(page, "类别", "事故灾难")
        await _choose(page, "级别", "较大（III）")
        await page.fill("#f-area", "140702")
        await page.fill("#f-source", "群众电话报告")
        await page.get_by_role("button", name="登记").click()
        await expect(page.locator("#incidents")).to_contain_text("晋中市榆次区燃气泄漏")
        await expect(page.locator("#incidents")).to_contain_text(re.compile(r"剩余 0[01]:\d\d:\d\d"))
        # The live feed speaks Chinese: the event's summary, never its code.
        await expect(page.locator("#events")).to_contain_text("接报：晋中市榆次区燃气泄漏（较大）")
        await expect(page.locator("#events")).not_to_contain_text("incident.created")
        await expect(page.locator("#timeline")).to_contain_text("接报：晋中市榆次区燃气泄漏（较大）")

        # An event from elsewhere (another officer's note) reaches the open page live.
        incidents = (await client.get("/api/v1/incidents", headers=tokens["leader"])).json()["items"]
        note = {"text": "已疏散周边居民"}
        await client.post(f"/api/v1/incidents/{incidents[0]['id']}/timeline", json=note, headers=tokens["admin"])
        await expect(page.locator("#timeline")).to_contain_text("已疏散周边居民")

        await page.fill("#f-title", "错误区划")
        await page.fill("#f-area", "149999")
        await page.get_by_role("button", name="登记").click()
        await expect(page.locator("#error")).to_contain_text("area_code")
        await page.screenshot(path=tmp_path / "console.png", full_page=True)

        await page.click("#logout")
        await expect(page.locator("#login")).to_be_visible()
        await browser.close()
    assert [p for p in problems if "401" not in p and "422" not in p] == []  # the wrong password and bad area


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup installs it)")
async def test_api_documentation_opens_offline(live_server: str, tmp_path: Path) -> None:
    """/docs is Swagger UI from this server's own files, under the same CSP as every page."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(locale="zh-CN")
        problems = _watch(page, live_server)
        await page.goto(f"http://{live_server}/docs")
        await expect(page.locator(".swagger-ui .title")).to_contain_text("Switchboard")
        await expect(page.locator(".opblock-summary-path").first).to_be_visible()
        await page.screenshot(path=tmp_path / "docs.png")
        await browser.close()
    assert problems == []
