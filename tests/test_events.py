"""WS /api/v1/events over a real server: signed-in users see the domain events their roles may see."""

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.incidents import service
from tests.test_incidents import FLOOD


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def _next(ws: websockets.ClientConnection) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def test_incident_events_are_pushed(live_server: str, tokens: dict) -> None:
    url = f"ws://{live_server}/api/v1/events?token={_token(tokens['leader'])}"
    async with websockets.connect(url) as ws, httpx.AsyncClient(base_url=f"http://{live_server}") as http:
        created = (await http.post("/api/v1/incidents", json=FLOOD, headers=tokens["duty_officer"])).json()
        event = await _next(ws)
        assert (event["type"], event["incident_id"], event["actor"]) == (
            "incident.created",
            created["id"],
            "duty_officer",
        )
        assert event["data"]["title"] == FLOOD["title"]
        assert event["actor_name"] == "王建国"  # named as people know them
        assert event["data"]["summary"] == f"接报：{FLOOD['title']}（较大）"  # as its timeline entry reads
        await http.post(
            f"/api/v1/incidents/{created['id']}/timeline", json={"text": "已派出救援队"}, headers=tokens["duty_officer"]
        )
        assert (await _next(ws))["data"] == {"text": "已派出救援队", "summary": "已派出救援队", "on_timeline": True}


async def test_events_respect_their_audience(
    app_ctx: Context, live_server: str, tokens: dict, client: httpx.AsyncClient
) -> None:
    leader = await websockets.connect(f"ws://{live_server}/api/v1/events?token={_token(tokens['leader'])}")
    alert = await websockets.connect(f"ws://{live_server}/api/v1/events?token={_token(tokens['alert_officer'])}")
    reported = (utcnow() - timedelta(hours=3)).isoformat()
    await client.post("/api/v1/incidents", json=FLOOD | {"reported_at": reported}, headers=tokens["duty_officer"])
    await service.check_deadlines(app_ctx)
    assert [(await _next(leader))["type"] for _ in range(2)] == ["incident.created", "report.overdue"]
    assert (await _next(alert))["type"] == "incident.created"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(alert.recv(), 0.5)
    await leader.close()
    await alert.close()


async def test_bad_token_is_refused(live_server: str) -> None:
    async with websockets.connect(f"ws://{live_server}/api/v1/events?token=nonsense") as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (1008, "无效的访问令牌")


async def test_a_reconnecting_console_gets_what_it_missed(app_ctx: Context, live_server: str, tokens: dict) -> None:
    url = f"ws://{live_server}/api/v1/events?token={_token(tokens['leader'])}"
    async with httpx.AsyncClient(base_url=f"http://{live_server}") as http:
        async with websockets.connect(url) as ws:
            await http.post("/api/v1/incidents", json=FLOOD, headers=tokens["duty_officer"])
            seen = await _next(ws)
        # Away (a network drop): two incidents are registered meanwhile.
        for title in ("迎泽区山体滑坡", "尖草坪区火灾"):
            await http.post("/api/v1/incidents", json=FLOOD | {"title": title}, headers=tokens["duty_officer"])
        async with websockets.connect(f"{url}&since={seen['seq']}") as ws:
            missed = [await _next(ws) for _ in range(2)]
            assert [e["data"]["title"] for e in missed] == ["迎泽区山体滑坡", "尖草坪区火灾"]
            assert missed[0]["seq"] > seen["seq"]
            await http.post("/api/v1/incidents", json=FLOOD | {"title": "万柏林区内涝"}, headers=tokens["duty_officer"])
            assert (await _next(ws))["data"]["title"] == "万柏林区内涝"  # then live, nothing twice
        # Too far back (or from before a restart): told so, to reload instead.
        async with websockets.connect(f"{url}&since=1") as ws:
            assert (await _next(ws))["type"] == "catch_up.incomplete"
