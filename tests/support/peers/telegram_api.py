"""A stand-in for the Telegram Bot API, for tests: no real Bot API server runs offline (the official
telegram-bot-api server still talks to Telegram's data centres), so this speaks the documented HTTP interface
for the methods the channel uses, on 127.0.0.1, and records what it received.

Methods: getMe; sendMessage (text, parse_mode); sendDocument (multipart upload). Answers as the Bot API does:
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": ..., "parameters": {...}}`.
Knobs: `flood(n, retry_after)` answers the next n sends with 429 and `parameters.retry_after`; chat ids in
`bad_chats` answer 400 "Bad Request: chat not found"; `blocked_chats` 403.
"""

import asyncio
import itertools
import socket
import time
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.wait import until


@dataclass
class Received:
    method: str
    fields: dict[str, str]
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # name -> (filename, type, bytes)


class TelegramApiStandIn:
    def __init__(self, token: str) -> None:
        self.token = token
        self.received: list[Received] = []
        self.bad_chats: set[str] = set()
        self.blocked_chats: set[str] = set()
        self._flood = (0, 0)
        self._message_ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/bot"

    def flood(self, sends: int, retry_after: int) -> None:
        self._flood = (sends, retry_after)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/bot{token}/{method}", self._handle, methods=["GET", "POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve())
        await until(lambda: self._server is not None and self._server.started, timeout=10, what="the Bot API to start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    async def _handle(self, request: Request) -> JSONResponse:
        token, method = request.path_params["token"], request.path_params["method"]
        if token != self.token:
            return _error(401, "Unauthorized")
        form = await request.form()
        fields: dict[str, str] = {}
        files: dict[str, tuple[str, str, bytes]] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields[key] = value
            else:
                files[key] = (value.filename or "", value.content_type or "", await value.read())
        self.received.append(Received(method, fields, files))
        if method == "getMe":
            return _ok({"id": 7000001, "is_bot": True, "first_name": "预警发布", "username": "switchboard_test_bot"})
        if method not in ("sendMessage", "sendDocument"):
            return _error(404, "Not Found")
        sends, retry_after = self._flood
        if sends > 0:
            self._flood = (sends - 1, retry_after)
            return _error(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
        chat_id = fields.get("chat_id", "")
        if chat_id in self.bad_chats:
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.blocked_chats:
            return _error(403, "Forbidden: bot was blocked by the user")
        result = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": "private", "first_name": "值班"},
        }
        if method == "sendMessage":
            result["text"] = fields.get("text", "")
        else:
            filename, content_type, content = files["document"]
            result["document"] = {
                "file_id": f"doc{result['message_id']}",
                "file_unique_id": f"u{result['message_id']}",
                "file_name": filename,
                "mime_type": content_type,
                "file_size": len(content),
            }
        return _ok(result)


def _ok(result: dict) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _error(code: int, description: str, parameters: dict | None = None) -> JSONResponse:
    body: dict = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)
