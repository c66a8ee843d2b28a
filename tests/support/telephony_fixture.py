"""Switchboard driving the session's real Asterisk (tests/support/asterisk_fixture.py) as an external engine, on a fresh
SQLite database with a directory imported: what the call and bridge tests stand on."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sip import dialplan
from switchboard.api.app import create_app
from switchboard.core.config import Settings
from switchboard.core.context import Context
from switchboard.core.events import Listener
from switchboard.telephony import Telephony
from tests.conftest import add_users, fresh_database_url, headers_for, settings_for
from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.phone_client import PhoneProcess


@dataclass
class Desk:
    switchboard: Context
    http: httpx.AsyncClient
    tokens: dict[str, dict[str, str]]
    events: Listener
    telephony: Telephony
    app: Any  # the FastAPI app, lifespan running: serve it for a browser (tests.support.served)

    async def next_event(self, type_: str, timeout: float = 20) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                event = await self.events.queue.get()
                if event.type == type_:
                    return event.data | {"incident_id": event.incident_id}

        return await asyncio.wait_for(wait(), timeout)

    async def open_incident(self, title: str, category: str, level: str, area_code: str) -> str:
        """A new incident (by the duty officer); returns its id."""
        body = {"title": title, "category": category, "level": level, "area_code": area_code}
        response = await self.http.post("/api/v1/incidents", json=body, headers=self.tokens["duty_officer"])
        assert response.status_code == 201, response.text
        return response.json()["id"]


def engine_settings(asterisk: AsteriskHarness, tmp_path: Path, url: str, **environ: str) -> Settings:
    """Settings of a control plane driving the session's Asterisk as an external engine (and its spools)."""
    spool = dialplan.Layout.for_settings(asterisk.settings).base / "spool"
    return settings_for(
        tmp_path,
        url,
        SWITCHBOARD_ASTERISK_MODE="external",
        SWITCHBOARD_ASTERISK_AMI_PORT=str(asterisk.ami_port),
        SWITCHBOARD_ASTERISK_AMI_SECRET=asterisk.ami_secret,
        SWITCHBOARD_ASTERISK_MONITOR_DIR=str(spool / "monitor"),
        **environ,
    )


@contextlib.asynccontextmanager
async def switchboard_on(
    asterisk: AsteriskHarness,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    directory_csv: str,
    expect_contacts: int,
    **environ: str,
) -> AsyncIterator[Desk]:
    url = await fresh_database_url("sqlite", request, tmp_path)
    ctx = Context.from_settings(engine_settings(asterisk, tmp_path, url, **environ))
    telephony = Telephony(ctx, definition=asterisk.engine.definition)
    app = create_app(ctx, telephony=telephony)
    async with app.router.lifespan_context(app):
        assert telephony.ami is not None
        await telephony.ami.wait_up(15)
        tokens = headers_for(ctx, await add_users(ctx))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as http:
            files = {"file": ("contacts.csv", directory_csv.encode(), "text/csv")}
            imported = await http.post("/api/v1/directory/import", files=files, headers=tokens["duty_officer"])
            assert imported.json()["created"] == expect_contacts, imported.text
            yield Desk(ctx, http, tokens, ctx.bus.listen(), telephony, app)


async def register(phone: PhoneProcess, asterisk: AsteriskHarness, number: str, answer: str, name: str = "") -> None:
    registrar = f"{asterisk.sip_host}:{asterisk.sip_port}"
    password = asterisk.extensions[number]
    name = name or number
    await phone.command("account", name=name, registrar=registrar, user=number, password=password)
    await phone.wait_for("registration", account=name, code=200, timeout=10)
    await phone.command("answer", account=name, mode=answer, delay_ms=200)
