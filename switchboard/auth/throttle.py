"""Login back-off: after too many failed logins within a window, a wait that doubles with each further failure.

Per account (the username tried, existing or not) the state is a database row: it survives restarts and every
worker shares it. Per client address it is this process's memory: a restart forgets it, and with several workers
each keeps its own table, so an address gets `login_address_failures` per worker before it waits.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.auth.models import LoginFailure
from switchboard.core.config import Settings
from switchboard.core.errors import TooManyRequests

_MAX_DOUBLINGS = 20
_MAX_ADDRESSES = 10_000


@dataclass
class Strikes:
    failures: int
    last_at: datetime
    blocked_until: datetime | None


def strike(previous: Strikes | None, now: datetime, allowed: int, settings: Settings) -> Strikes:
    """The state after one more failure: forgotten after the window, a wait from the `allowed`-th on."""
    window = settings.auth.login_window_seconds
    fresh = previous is None or (now - previous.last_at).total_seconds() > window
    failures = 1 if fresh or previous is None else previous.failures + 1
    if failures < allowed:
        return Strikes(failures, now, None)
    wait = min(settings.auth.login_wait_seconds * 2 ** min(failures - allowed, _MAX_DOUBLINGS), window)
    return Strikes(failures, now, now + timedelta(seconds=wait))


def refuse_while_blocked(blocked_until: datetime | None, now: datetime, settings: Settings) -> None:
    """429 saying (in the duty room's time zone) when to try again."""
    if blocked_until is None or blocked_until <= now:
        return
    seconds = ceil((blocked_until - now).total_seconds())
    at = blocked_until.astimezone(ZoneInfo(settings.incidents.timezone)).strftime("%H:%M:%S")
    raise TooManyRequests(f"登录失败次数过多，请于 {at}（{seconds} 秒后）再试", retry_after=seconds)


class AddressThrottle:
    """Failed logins per client address, in this process's memory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._strikes: dict[str, Strikes] = {}

    def check(self, address: str, now: datetime) -> None:
        found = self._strikes.get(address)
        refuse_while_blocked(found.blocked_until if found else None, now, self.settings)

    def fail(self, address: str, now: datetime) -> None:
        allowed = self.settings.auth.login_address_failures
        self._strikes[address] = strike(self._strikes.get(address), now, allowed, self.settings)
        if len(self._strikes) > _MAX_ADDRESSES:  # many addresses: drop those whose failures are forgotten anyway
            window = self.settings.auth.login_window_seconds
            for key, old in list(self._strikes.items()):
                if (now - old.last_at).total_seconds() > window:
                    del self._strikes[key]


async def account_blocked_until(session: AsyncSession, username: str, *, lock: bool = False) -> datetime | None:
    found = await session.get(LoginFailure, username, with_for_update=lock or None)
    return found.blocked_until if found else None


async def fail_account(session: AsyncSession, username: str, now: datetime, settings: Settings) -> Strikes:
    """Count a failure for `username` (row locked, so concurrent failures each count) and forget stale rows."""
    dialect = sqlite if session.bind.dialect.name == "sqlite" else postgresql
    placeholder = {"username": username, "failures": 0, "last_at": now, "blocked_until": None}
    await session.execute(dialect.insert(LoginFailure).values(placeholder).on_conflict_do_nothing())
    row = (
        await session.execute(select(LoginFailure).where(LoginFailure.username == username).with_for_update())
    ).scalar_one()
    previous = Strikes(row.failures, row.last_at, row.blocked_until) if row.failures else None
    now_strikes = strike(previous, now, settings.auth.login_failures, settings)
    row.failures, row.last_at, row.blocked_until = now_strikes.failures, now, now_strikes.blocked_until
    stale = now - timedelta(seconds=settings.auth.login_window_seconds)
    await session.execute(delete(LoginFailure).where(LoginFailure.last_at < stale, LoginFailure.username != username))
    return now_strikes


async def clear_account(session: AsyncSession, username: str) -> None:
    """A successful login starts the account's count afresh."""
    await session.execute(delete(LoginFailure).where(LoginFailure.username == username))
