"""The weather-service broadcast: the public Atom feed of alerts in force (ETag; expired, superseded and
cancelled alerts drop out), each alert's CAP document and Mandarin bulletin, and the CAP push to a real HTTP
endpoint through the outbox, retried after a server error."""

import asyncio
import wave
from datetime import timedelta
from xml.etree import ElementTree

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broadcast.channels.weather import WeatherPushChannel
from broadcast.models import PublicWarning
from broadcast.schema import validate
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.outbound import OutboundPolicy
from tests.support.channel_peers import WarningChannels
from tests.support.tones import loud_seconds
from tests.support.wait import until
from tests.test_warnings import add_group, draft, incident, issued, step

ATOM = "{http://www.w3.org/2005/Atom}"


def entries(feed: bytes) -> list[str]:
    return [e.findtext(f"{ATOM}title") or "" for e in ElementTree.fromstring(feed).iter(f"{ATOM}entry")]


async def test_feed_lists_alerts_in_force(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, warning_channels: WarningChannels
) -> None:
    group = await add_group(app_ctx, 1)
    incident_id = await incident(client, tokens)
    first = await issued(client, tokens, (await draft(client, tokens, incident_id, group))["id"])
    other = await issued(
        client,
        tokens,
        (
            await draft(
                client,
                tokens,
                incident_id,
                group,
                headline="阳泉市大风蓝色预警",
                colour="blue",
                description="阳泉市大风。" * 1000,  # 6,000 characters: too long to speak as a bulletin
                audiences={"groups": [group], "channels": ["email"]},
            )
        )["id"],
    )

    response = await client.get("/feeds/cap.atom")  # no token: the feed is public
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/atom+xml")
    assert sorted(entries(response.content)) == [
        "[橙色预警] 太原市气象台发布暴雨橙色预警信号",
        "[蓝色预警] 阳泉市大风蓝色预警",
    ]
    authors = [
        e.findtext(f"{ATOM}author/{ATOM}name") for e in ElementTree.fromstring(response.content).iter(f"{ATOM}entry")
    ]
    assert authors == ["太原市应急管理局", "太原市应急管理局"]  # RFC 4287 4.1.1
    spoken = {
        e.findtext(f"{ATOM}title"): [link.get("rel") for link in e.iter(f"{ATOM}link")]
        for e in ElementTree.fromstring(response.content).iter(f"{ATOM}entry")
    }
    assert list(spoken.values()) == [["alternate", "enclosure"]] * 2
    # Every enclosure plays: the warning too long to speak whole is summarised, not refused.
    long_bulletin = await client.get(f"/feeds/cap/{other['identifier']}.wav")
    assert long_bulletin.status_code == 200 and long_bulletin.headers["content-type"] == "audio/wav"
    tag = response.headers["etag"]
    assert (await client.get("/feeds/cap.atom", headers={"If-None-Match": tag})).status_code == 304

    # The update stands in for the first alert; the cancelled and the expired ones drop out.
    changed = {"colour": "red", "headline": "太原市气象台升级发布暴雨红色预警信号"}
    body = (await client.get(f"/api/v1/warnings/{first['id']}", headers=tokens["leader"])).json()["content"] | changed
    update = await client.post(f"/api/v1/warnings/{first['id']}/update", json=body, headers=tokens["alert_officer"])
    assert update.status_code == 201, update.text
    second = await issued(client, tokens, update.json()["id"])
    fresh = await client.get("/feeds/cap.atom", headers={"If-None-Match": tag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != tag
    assert sorted(entries(fresh.content)) == [
        "[红色预警] 太原市气象台升级发布暴雨红色预警信号",
        "[蓝色预警] 阳泉市大风蓝色预警",
    ]

    async with app_ctx.db.session() as session:
        row = await session.get(PublicWarning, other["id"])
        row.content = row.content | {"expires": (utcnow() - timedelta(minutes=1)).isoformat()}
    assert entries((await client.get("/feeds/cap.atom")).content) == ["[红色预警] 太原市气象台升级发布暴雨红色预警信号"]
    await step(client, tokens["approver"], second["id"], "cancel")
    assert entries((await client.get("/feeds/cap.atom")).content) == []

    document = await client.get(f"/feeds/cap/{second['identifier']}.xml")
    assert document.headers["content-type"] == "application/cap+xml"
    validate(document.content)
    audio = await client.get(f"/feeds/cap/{second['identifier']}.wav")
    path = app_ctx.settings.var_path / "bulletin.wav"
    path.write_bytes(audio.content)
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == 8000
        seconds = wav.getnframes() / 8000
    assert seconds > 5 and loud_seconds(path) > 0.5 * seconds
    assert (await client.get("/feeds/cap/nonsense.xml")).status_code == 404


async def test_cap_is_pushed_to_the_weather_service_with_retries(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, warning_channels: WarningChannels
) -> None:
    received: list[bytes] = []
    answers = iter([503])  # the first push meets a server error; the retry gets through

    async def cap_inbox(request: Request) -> Response:
        status = next(answers, 201)
        if status == 201:
            received.append(await request.body())
        return Response(status_code=status)

    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=[Route("/cap", cap_inbox, methods=["POST"])]), port=0, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    await until(lambda: server.started, timeout=10, what="the CAP inbox server to start")
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/cap"
    await warning_channels.outbox.add(WeatherPushChannel(OutboundPolicy.from_settings(app_ctx.settings)))
    try:
        group = await add_group(app_ctx, 1)
        incident_id = await incident(client, tokens)
        public = {"groups": [group], "channels": ["email"], "public": [{"channel": "weather", "recipient": url}]}
        warning = await issued(
            client, tokens, (await draft(client, tokens, incident_id, group, audiences=public))["id"]
        )

        async def pushed() -> bool:
            path = f"/api/v1/warnings/{warning['id']}/deliveries"
            report = (await client.get(path, headers=tokens["leader"])).json()
            return report["counts"].get("weather") == {"sent": 1}

        await until(pushed, timeout=20, what="the weather delivery to be sent after its retry")
        assert len(received) == 1
        validate(received[0])
        assert warning["identifier"].encode() in received[0]
    finally:
        server.should_exit = True
        await serving
