"""Browser sessions: the token in an HttpOnly SameSite cookie, so report, recording and export links open in a tab,
with a CSRF token that state-changing requests by cookie must carry, and a cookie-borne event socket only for pages
of this host.
"""

import asyncio

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from switchboard.auth import cookies
from tests.conftest import PASSWORD
from tests.test_incidents import BASE, FIRST_REPORT, FLOOD


async def _open(http: httpx.AsyncClient, username: str = "duty_officer") -> httpx.Response:
    response = await http.post("/api/v1/auth/session", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response


async def test_a_browser_session_opens_reports_in_a_tab_and_needs_csrf_to_change_things(
    client: httpx.AsyncClient, users: dict
) -> None:
    opened = await _open(client)
    set_cookie = opened.headers["set-cookie"]
    assert set_cookie.startswith(f"{cookies.COOKIE}=") and "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    answer = opened.json()
    assert "access_token" not in answer and answer["display_name"] == "王建国" and answer["roles"] == ["duty_officer"]
    csrf = {cookies.CSRF_HEADER: answer["csrf_token"]}

    refused = await client.post(BASE, json=FLOOD)  # the cookie alone, as a forged form or fetch would send it
    assert refused.status_code == 403 and cookies.CSRF_HEADER in refused.json()["message"]
    wrong = await client.post(BASE, json=FLOOD, headers={cookies.CSRF_HEADER: "0" * 64})
    assert wrong.status_code == 403
    incident = (await client.post(BASE, json=FLOOD, headers=csrf)).json()
    report = await client.post(f"{BASE}/{incident['id']}/reports", json=FIRST_REPORT, headers=csrf)
    assert report.status_code == 201, report.text

    link = f"{BASE}/{incident['id']}/reports/{report.json()['id']}"
    printed = await client.get(link, headers={"Accept": "text/html"})
    assert printed.status_code == 200 and "强降雨引发城市内涝" in printed.text  # a link clicked: cookie, no header
    again = await client.get("/api/v1/auth/session")  # a reloaded tab asks for its CSRF token again
    assert again.json()["csrf_token"] == answer["csrf_token"]

    assert (await client.post("/api/v1/auth/logout")).status_code == 403  # logout by cookie is a change too
    out = await client.post("/api/v1/auth/logout", headers=csrf)
    assert out.status_code == 204 and f'{cookies.COOKIE}=""' in out.headers["set-cookie"]
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_a_bearer_token_needs_no_csrf_token(client: httpx.AsyncClient, tokens: dict) -> None:
    assert (await client.post(BASE, json=FLOOD, headers=tokens["duty_officer"])).status_code == 201


async def _first_frame(ws: websockets.ClientConnection) -> tuple[int, str] | None:
    """The close code and reason if the server closes at once, else None (the socket stays open)."""
    try:
        await asyncio.wait_for(ws.recv(), 1.5)
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code, closed.rcvd.reason
    pytest.fail("no event was expected")


async def test_the_event_socket_takes_the_cookie_only_from_this_hosts_pages(live_server: str, users: dict) -> None:
    async with httpx.AsyncClient(base_url=f"http://{live_server}") as http:
        await _open(http, "leader")
        cookie = f"{cookies.COOKIE}={http.cookies[cookies.COOKIE]}"
    url = f"ws://{live_server}/api/v1/events"
    async with websockets.connect(url, origin=f"http://{live_server}", additional_headers={"Cookie": cookie}) as ws:
        assert await _first_frame(ws) is None
    async with websockets.connect(url, origin="http://evil.example", additional_headers={"Cookie": cookie}) as ws:
        closed = await _first_frame(ws)
        assert closed is not None and closed[0] == 1008
