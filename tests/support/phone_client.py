"""Drive ``python -m tests.support.phone`` processes from asyncio: one ``PhoneProcess`` per phone process.

    async with PhoneProcess() as phone:
        await phone.command("account", name="a", registrar="127.0.0.1:5060", user="8001", password="secret")
        await phone.wait_for("registration", account="a", code=200)
        call = (await phone.command("call", uri="sip:8002@127.0.0.1:5060"))["call"]
        await phone.wait_for("call_state", call=call, state="confirmed", timeout=5)

``wait_for`` looks at every event the phone has sent (also those that arrived before it was called) and hands
each event out at most once, so successive waits for the same kind of event return successive events.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import sys
from pathlib import Path
from types import TracebackType
from typing import IO, Any

START_TIMEOUT = 15.0


class PhoneError(Exception):
    """The phone refused a command (``field`` names the offending field), died, or an event did not come."""

    def __init__(self, message: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reply = reply or {}
        self.field: str | None = self.reply.get("field")


def free_rtp_base() -> int:
    """An even RTP port base clear of Asterisk's 20000-21999 and UDPTL's 4000-4999 (pjsua moves on if taken)."""
    return random.randrange(30000, 60000, 200)


class PhoneProcess:
    """A phone agent process, spawned on entry and told to quit (then killed if need be) on exit."""

    def __init__(
        self,
        *,
        rtp_port: int | None = None,
        log_level: int = 1,
        log_path: str | Path | None = None,
        codecs: str | None = None,
    ) -> None:
        self.rtp_port = rtp_port if rtp_port is not None else free_rtp_base()
        self.log_level = log_level
        self.log_path = log_path
        self.codecs = codecs
        self.events: list[dict[str, Any]] = []
        self.process: asyncio.subprocess.Process | None = None
        self._taken: set[int] = set()
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._reader: asyncio.Task[None] | None = None
        self._log: IO[bytes] | None = None
        self._gone: str | None = None

    async def __aenter__(self) -> PhoneProcess:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        args = [
            sys.executable,
            "-m",
            "tests.support.phone",
            "--rtp-port",
            str(self.rtp_port),
            "--log-level",
            str(self.log_level),
        ]
        if self.codecs:
            args += ["--codecs", self.codecs]
        if self.log_path is not None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in close())
        self.process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            limit=1 << 20,
        )
        self._reader = asyncio.create_task(self._read())
        try:
            await self.wait_for("ready", timeout=START_TIMEOUT)
        except BaseException:
            await self.close()
            raise

    async def close(self, timeout: float = 5.0) -> int | None:
        """Ask the phone to quit (it hangs up and frees pjsua), kill it if it does not; returns its exit code."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(Exception):
                process.stdin.write(b'{"cmd": "quit"}\n')
                await process.stdin.drain()
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 2)
        if self._log is not None:
            self._log.close()
            self._log = None
        return process.returncode

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process else None

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        try:
            while line := await self.process.stdout.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if "event" in message:
                    self.events.append(message)
                    self._wake()
                elif (future := self._replies.pop(message.get("id"), None)) is not None and not future.done():
                    future.set_result(message)
        finally:
            rc = await self.process.wait()
            self._gone = f"phone process exited (code {rc})"
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(PhoneError(self._gone))
            self._replies.clear()
            self._wake()

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def command(self, cmd: str, /, *, timeout: float = 10.0, check: bool = True, **fields: Any) -> dict[str, Any]:
        """Send one command and return its reply; a refusal raises PhoneError unless ``check`` is false."""
        if self.process is None or self._gone:
            raise PhoneError(self._gone or "phone process not started")
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[command_id] = future
        line = json.dumps({"id": command_id, "cmd": cmd, **fields}, ensure_ascii=False) + "\n"
        self.process.stdin.write(line.encode())
        await self.process.stdin.drain()
        try:
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self._replies.pop(command_id, None)
            raise PhoneError(f"no reply to {cmd} within {timeout} s") from None
        if check and not reply.get("ok"):
            raise PhoneError(f"{cmd} refused: {reply.get('error')} (field {reply.get('field')})", reply)
        return reply

    def find(self, event: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """Every event received so far that matches (taken or not)."""
        return [e for e in self.events if _matches(e, event, match)]

    async def wait_for(self, event: str | None = None, *, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        """The first matching event not yet handed out, waiting up to ``timeout`` seconds for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for index, candidate in enumerate(self.events):
                if index not in self._taken and _matches(candidate, event, match):
                    self._taken.add(index)
                    return candidate
            if self._gone:
                raise PhoneError(f"{self._gone} while waiting for {_describe(event, match)}; {self._recent()}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise PhoneError(f"timed out after {timeout} s waiting for {_describe(event, match)}; {self._recent()}")
            waiter = loop.create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, remaining)

    def _recent(self) -> str:
        return "last events: " + "; ".join(json.dumps(e, ensure_ascii=False) for e in self.events[-6:])


def _matches(candidate: dict[str, Any], event: str | None, match: dict[str, Any]) -> bool:
    if event is not None and candidate.get("event") != event:
        return False
    return all(candidate.get(key) == value for key, value in match.items())


def _describe(event: str | None, match: dict[str, Any]) -> str:
    return " ".join([event or "any event", *(f"{k}={v!r}" for k, v in match.items())])
