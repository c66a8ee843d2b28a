"""Fixtures: a migrated database per test on SQLite and on a throwaway PostgreSQL cluster, the app around it,
and a signed-in user of every role."""

import asyncio
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher

from switchboard.api.app import create_app
from switchboard.auth.models import Role, User
from switchboard.auth.service import issue_token
from switchboard.core import config
from switchboard.core.context import Context
from switchboard.core.db import Database
from tests.support import throwaway_pg
from tests.support.asterisk_fixture import asterisk  # noqa: F401  (one real Asterisk per test run)
from tests.support.channel_peers import smsc_factory, smtp_server, warning_channels  # noqa: F401
from tests.support.served import served

PASSWORD = "correct horse battery"
_HASH = PasswordHasher().hash(PASSWORD)


def settings_for(var_dir: Path, url: str, **overrides: str) -> config.Settings:
    """Test settings; `overrides` are further SWITCHBOARD_* variables."""
    return config.load(
        path=var_dir / "absent.toml",
        environ={
            "SWITCHBOARD_PATHS_VAR_DIR": str(var_dir),
            "SWITCHBOARD_DATABASE_URL": url,
            "SWITCHBOARD_AUTH_TOKEN_SECRET": "test-secret-not-for-production-0123456789",
            "SWITCHBOARD_ASTERISK_MODE": "off",  # telephony tests point the app at the `asterisk` fixture
            "SWITCHBOARD_JANUS_MODE": "off",  # consultation tests point the app at the `janus` fixture
            "SWITCHBOARD_CHANNELS_WEATHER_PUSH": "false",  # warning tests add the channels they drive
            "SWITCHBOARD_NETWORK_OUTBOUND_ALLOW": "127.0.0.1/32",  # the test peers (CAP inbox, RTSP camera) run here
        }
        | overrides,
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with throwaway_pg.cluster() as url:
        yield url


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run set-up on a loop of its own: these fixtures are sync so that async ones may request them lazily."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


async def _migrate(url: str) -> None:
    db = Database(url)
    await db.migrate()
    await db.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> str:
    _run(throwaway_pg.create_database(pg_server, "template_switchboard"))
    _run(_migrate(f"{pg_server}/template_switchboard"))
    return "template_switchboard"


_counter = iter(range(1_000_000))


async def fresh_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, migrated database: a copy of the session's template (fast, and isolated per test)."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "switchboard.db")
        return f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}"
    server: str = request.getfixturevalue("pg_server")
    template_name: str = request.getfixturevalue("pg_template")
    name = f"t{next(_counter)}"
    await throwaway_pg.create_database(server, name, template_name)
    return f"{server}/{name}"


@pytest_asyncio.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Context]:
    url = await fresh_database_url(request.param, request, tmp_path)
    context = Context.from_settings(settings_for(tmp_path, url))
    yield context
    await context.db.close()


@pytest_asyncio.fixture
async def app_ctx(ctx: Context) -> AsyncIterator[Context]:
    """The context with the app's lifespan running (timeline subscriber, deadline watch)."""
    app = create_app(ctx)
    async with app.router.lifespan_context(app):
        ctx.app = app  # type: ignore[attr-defined]
        yield ctx


@pytest_asyncio.fixture
async def client(app_ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app_ctx.app)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


NAMES = {"duty_officer": "王建国", "leader": "李明", "alert_officer": "张敏", "approver": "刘洋", "admin": "赵强"}


async def add_users(ctx: Context) -> dict[str, User]:
    """One user per role, username = role name, password PASSWORD, a Chinese name from NAMES."""
    created = {
        role.value: User(username=role.value, display_name=NAMES[role.value], password_hash=_HASH, roles=[role.value])
        for role in Role
    }
    async with ctx.db.session() as session:
        session.add_all(created.values())
    return created


def headers_for(ctx: Context, users: dict[str, User]) -> dict[str, dict[str, str]]:
    """Authorization headers per role."""
    return {role: {"Authorization": f"Bearer {issue_token(ctx.settings, user)}"} for role, user in users.items()}


@pytest_asyncio.fixture
async def users(ctx: Context) -> dict[str, User]:
    return await add_users(ctx)


@pytest.fixture
def tokens(ctx: Context, users: dict[str, User]) -> dict[str, dict[str, str]]:
    return headers_for(ctx, users)


@pytest_asyncio.fixture
async def live_server(app_ctx: Context) -> AsyncIterator[str]:
    """The app served by uvicorn on a free loopback port (for WebSockets and real HTTP peers): host:port."""
    async with served(app_ctx.app) as address:  # type: ignore[attr-defined]
        yield address
