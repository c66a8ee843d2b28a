"""What every response promises a browser (no inline or foreign script, no framing, no sniffing), absolute links
built from the configured public URL rather than a request's Host header, and warning links that are only ever
http(s)."""

import re

import httpx
import pytest

from switchboard.core.context import Context
from tests.test_warnings import BASE, add_group, content, incident


@pytest.mark.parametrize("path", ["/", "/healthz", "/api/v1/incidents", "/consult/nonexistent?token=x"])
async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "'unsafe-eval'" not in policy
    assert "connect-src 'self';" in policy  # the join page's video signalling too goes to this server only


async def test_the_console_page_has_no_inline_script(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and all(re.search(r'src="/assets/index-[\w-]+\.js"', tag) for tag in scripts), scripts
    script = await client.get(re.search(r'src="(/assets/[^"]+)"', page)[1])  # type: ignore[index]
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "immutable" in script.headers["cache-control"]
    assert (await client.get("/assets/..%2Fdocs.html")).status_code == 404


async def test_feed_links_come_from_the_configured_address_not_the_host_header(
    app_ctx: Context, client: httpx.AsyncClient
) -> None:
    feed = await client.get("/feeds/cap.atom", headers={"Host": "attacker.example"})
    assert feed.status_code == 200
    assert "attacker.example" not in feed.text
    assert f'href="{app_ctx.settings.server.link_base}/feeds/cap.atom"' in feed.text


@pytest.mark.parametrize(
    "web", ["javascript:alert(document.cookie)", "data:text/html,<script>x</script>", "file:///etc/passwd", "http:/x"]
)
async def test_a_warning_link_is_http_or_https_only(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, web: str
) -> None:
    group = await add_group(app_ctx, 1)
    body = content(group, web=web) | {"incident_id": await incident(client, tokens)}
    refused = await client.post(BASE, json=body, headers=tokens["alert_officer"])
    assert refused.status_code == 422 and refused.json()["field"] == "web", refused.text
    body["web"] = "https://yjt.shanxi.gov.cn/yj/1"
    assert (await client.post(BASE, json=body, headers=tokens["alert_officer"])).status_code == 201
