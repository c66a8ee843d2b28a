"""The console in headless Chromium (Debian's, driven by Playwright): sign in, register an incident, see it
listed and its live event arrive, open its timeline."""

import shutil
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright, expect

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


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/setup installs it)")
async def test_duty_officer_registers_an_incident(
    live_server: str, client: httpx.AsyncClient, tokens: dict, tmp_path: Path
) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(locale="zh-CN")
        problems: list[str] = []  # console errors (a CSP violation is one), uncaught errors, requests elsewhere
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("request", lambda r: problems.append(f"request: {r.url}") if live_server not in r.url else None)
        page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
        opened = await page.goto(f"http://{live_server}/")
        assert opened is not None and "script-src 'self'" in opened.headers["content-security-policy"]
        await expect(page.locator("#health")).to_contain_text("database: 正常")

        await page.fill("#username", "duty_officer")
        await page.fill("#password", "wrong password")
        await page.click("#login-form button")
        await expect(page.locator("#error")).to_have_text("用户名或密码错误")

        await page.fill("#password", PASSWORD)
        await page.click("#login-form button")
        await expect(page.locator("#who")).to_have_text("duty_officer")

        await page.fill("#f-title", "晋中市榆次区燃气泄漏")
        await page.select_option("#f-category", "accident_disaster")
        await page.select_option("#f-level", "III")
        await page.fill("#f-area", "140702")
        await page.click("#incident-form button")
        await expect(page.locator("#incidents")).to_contain_text("晋中市榆次区燃气泄漏")
        await expect(page.locator("#events")).to_contain_text("incident.created 晋中市榆次区燃气泄漏")
        await expect(page.locator("#timeline")).to_contain_text("接报：晋中市榆次区燃气泄漏（较大）")

        # An event from elsewhere (another officer's note) reaches the open page live.
        incidents = (await client.get("/api/v1/incidents", headers=tokens["leader"])).json()["items"]
        note = {"text": "已疏散周边居民"}
        await client.post(f"/api/v1/incidents/{incidents[0]['id']}/timeline", json=note, headers=tokens["admin"])
        await expect(page.locator("#timeline")).to_contain_text("已疏散周边居民")

        await page.fill("#f-title", "错误区划")
        await page.fill("#f-area", "149999")
        await page.click("#incident-form button")
        await expect(page.locator("#error")).to_contain_text("area_code")
        await page.screenshot(path=tmp_path / "console.png", full_page=True)
        await browser.close()
    assert [p for p in problems if "401" not in p and "422" not in p] == []  # the wrong password and bad area
