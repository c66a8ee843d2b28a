"""Stand-ins for HTTP APIs that cannot be reached offline, each served in a process of its own (as the real API is
another machine): the test starts it with `StandInProcess`, points the channel at its base URL, and reads what it
accepted, or turns its knobs, through `/_control/…` routes that no real API has.

Server side, a stand-in subclasses `StandIn` (its documented routes, what it accepted in `accepted`, knobs in
`knobs`) and runs `serve(StandIn(...), port)` from its `__main__`.
"""

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tests.support.wait import until

ROOT = Path(__file__).resolve().parents[3]


class StandIn:
    """The state a stand-in shares with its test: what it accepted, and knobs the test turns."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.knobs: dict[str, Any] = {}
        self._sent: dict[str, list[float]] = {}

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def turn(self, knobs: dict[str, Any]) -> None:
        self.knobs.update(knobs)

    def take(self, name: str) -> bool:
        """Spend one of the `name` knob's count (e.g. answer the next n sends "too fast"): was there one?"""
        if self.knobs.get(name, 0) > 0:
            self.knobs[name] -= 1
            return True
        return False

    def over(self, key: str, per_minute: int) -> bool:
        """Would one more message from `key` exceed `per_minute` in the last 60 s? (If not, it is counted.)"""
        now = time.monotonic()
        recent = [t for t in self._sent.get(key, []) if now - t < 60]
        self._sent[key] = recent if len(recent) >= per_minute else [*recent, now]
        return len(recent) >= per_minute


async def json_body(request: Request) -> dict[str, Any] | None:
    """The request's JSON object, read as UTF-8 whatever the header says (both APIs want UTF-8), or None."""
    try:
        body = json.loads((await request.body()).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def serve(stand_in: StandIn, port: int) -> None:
    async def accepted(request: Request) -> JSONResponse:
        return JSONResponse(stand_in.accepted)

    async def knobs(request: Request) -> JSONResponse:
        stand_in.turn(await request.json())
        return JSONResponse(stand_in.knobs)

    control = [Route("/_control/accepted", accepted), Route("/_control/knobs", knobs, methods=["POST"])]
    app = Starlette(routes=[*stand_in.routes(), *control])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


async def no_receipts(*args: object) -> None:
    """The receipt handler for channels whose API has none (WeCom, DingTalk): never called."""
    raise AssertionError(f"a receipt from an API that has none: {args}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandInProcess:
    """A stand-in module run as `python -m module PORT ARGS…` from the repository root."""

    def __init__(self, module: str, *args: str) -> None:
        self.module, self.args = module, args
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        command = [sys.executable, "-m", self.module, str(self.port), *self.args]
        self._process = subprocess.Popen(command, cwd=ROOT)
        await until(self._answers, timeout=15, what=f"the {self.module} stand-in to listen")

    async def __aenter__(self) -> "StandInProcess":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            await asyncio.to_thread(process.wait, 10)

    async def accepted(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{self.base_url}/_control/accepted")).json()

    async def turn(self, **knobs: Any) -> None:
        async with httpx.AsyncClient() as client:
            (await client.post(f"{self.base_url}/_control/knobs", json=knobs)).raise_for_status()

    async def _answers(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"the {self.module} stand-in exited with {self._process.returncode}")
        try:
            await self.accepted()
        except httpx.HTTPError:
            return False
        return True
