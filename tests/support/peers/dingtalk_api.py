"""A stand-in for DingTalk's (钉钉) custom robot webhook, for tests: oapi.dingtalk.com cannot be reached offline,
so this speaks the documented interface and refuses requests that stray from it.

Run `python -m tests.support.peers.dingtalk_api PORT` (see `standin.StandInProcess`). Its robots are `ROBOTS`:
access_token -> (secret for 加签 or None, keywords or ()).

POST /robot/send?access_token=…[&timestamp=…&sign=…], JSON: `msgtype` text (`text.content`) or markdown
(`markdown.title`, `markdown.text`, both non-empty strings, the text at most `MARKDOWN_BYTES`), optional `at` with
`atMobiles` / `atUserIds` lists of strings and `isAtAll` a boolean. A robot with a secret wants `timestamp` (ms,
within an hour of this clock) and `sign` = Base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), which arrives
URL-decoded; a robot with keywords wants one of them in the message. Security failures answer 310000 with the
errmsg DingTalk uses (sign not match, invalid timestamp, keywords not in content), an unknown token 300001, a
robot's 21st message within a minute 130101. Knob `flood`: the next n sends answer `flood_errcode` (default
130101; DingTalk also answers 410100 发送速度太快而限流). Errors are HTTP 200 with errcode/errmsg.
"""

import base64
import hashlib
import hmac
import sys
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tests.support.peers.standin import StandIn, json_body, serve

SIGNED = "b2a0c7f1e3d9signedrobot"
SECRET = "SEC5f0c2a9d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1"
KEYWORD = "b7e4keywordrobot"
ROBOTS: dict[str, tuple[str | None, tuple[str, ...]]] = {SIGNED: (SECRET, ()), KEYWORD: (None, ("预警",))}
MARKDOWN_BYTES = 20000
WINDOW_MS = 3600 * 1000
PER_MINUTE = 20


def _error(errcode: int, errmsg: str) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg})


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _shape_error(body: dict[str, Any]) -> JSONResponse | None:
    msgtype = body.get("msgtype")
    fields = {"text": ("content",), "markdown": ("title", "text")}.get(msgtype)  # type: ignore[arg-type]
    if fields is None:
        return _error(40035, f"缺少参数 msgtype（{msgtype!r}）")
    part = body.get(msgtype)
    for name in fields:
        if not isinstance(part, dict) or not isinstance(part.get(name), str) or not part[name]:
            return _error(40035, f"缺少参数 {msgtype}.{name}")
    if msgtype == "markdown" and len(part["text"].encode()) > MARKDOWN_BYTES:
        return _error(460101, f"message too long, exceed {MARKDOWN_BYTES} bytes")
    at = body.get("at", {})
    if not isinstance(at, dict) or not all(_strings(at.get(k, [])) for k in ("atMobiles", "atUserIds")):
        return _error(40035, "不合法的参数 at")
    if not isinstance(at.get("isAtAll", False), bool):
        return _error(40035, "不合法的参数 at.isAtAll")
    return None


def _sign_error(secret: str, timestamp: str | None, sign: str | None) -> JSONResponse | None:
    if not timestamp or not sign:
        return _error(310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]")
    if not timestamp.isdigit() or abs(int(timestamp) - time.time() * 1000) > WINDOW_MS:
        return _error(310000, "invalid timestamp")
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64encode(digest).decode(), sign):
        return _error(310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]")
    return None


class DingTalkApi(StandIn):
    def routes(self) -> list[BaseRoute]:
        return [Route("/robot/send", self.send, methods=["POST"])]

    async def send(self, request: Request) -> JSONResponse:
        query = request.query_params
        token = query.get("access_token", "")
        if token not in ROBOTS:
            return _error(300001, "token is not exist")
        secret, keywords = ROBOTS[token]
        if secret and (refused := _sign_error(secret, query.get("timestamp"), query.get("sign"))):
            return refused
        if (body := await json_body(request)) is None:
            return _error(40035, "缺少参数 json")
        if refused := _shape_error(body):
            return refused
        if keywords and not any(word in str(body.get(body["msgtype"])) for word in keywords):
            return _error(
                310000, "keywords not in content, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"
            )
        if self.take("flood"):
            code = int(self.knobs.get("flood_errcode", 130101))
            return _error(code, "send too fast, exceed 20 times per minute" if code == 130101 else "发送速度太快而限流")
        if self.over(token, PER_MINUTE):
            return _error(130101, "send too fast, exceed 20 times per minute")
        self.accepted.append({"access_token": token, "timestamp": query.get("timestamp"), "body": body})
        return _error(0, "ok")


if __name__ == "__main__":
    serve(DingTalkApi(), int(sys.argv[1]))
