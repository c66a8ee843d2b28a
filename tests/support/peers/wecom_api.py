"""A stand-in for the WeCom (企业微信) server API, for tests: qyapi.weixin.qq.com cannot be reached offline, so this
speaks the documented interface for the calls the channels make and refuses requests that stray from it.

Run `python -m tests.support.peers.wecom_api PORT` (see `standin.StandInProcess`). It knows corp `CORP_ID` with
secret `CORP_SECRET` and agent `AGENT_ID`, users `USERS`, and group robot keys `ROBOT_KEYS`.

- GET /cgi-bin/gettoken?corpid&corpsecret: `access_token` and `expires_in` (knob `token_ttl`, default 7200 s);
  a wrong corpid answers 40013, a wrong secret 40001.
- POST /cgi-bin/message/send?access_token: JSON with `touser` ("a|b"), `msgtype` text or markdown, `agentid` an
  integer, `<msgtype>.content` a string of at most 2,048 bytes. Unknown token 40014, expired 42001, every
  recipient unknown 81013, some unknown: errcode 0 with `invaliduser`.
- POST /cgi-bin/webhook/send?key: JSON with `msgtype` text (content at most 2,048 bytes, optional
  `mentioned_list` / `mentioned_mobile_list` lists of strings) or markdown (content at most 4,096 bytes).
  Unknown key 93000; a robot's 21st message within a minute 45009, as WeCom answers.
- Knobs: `flood` (the next n sends answer 45009), `http429` (the next n answer HTTP 429), `expire_tokens` (every
  token handed out so far is expired from now on).
Errors are HTTP 200 with `{"errcode": N, "errmsg": "..."}`, as WeCom's are.
"""

import itertools
import sys
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tests.support.peers.standin import StandIn, json_body, serve

CORP_ID = "ww0123456789abcdef"
CORP_SECRET = "app-secret-0123456789"
AGENT_ID = 1000002
USERS = {"zhangsan", "lisi", "wangwu"}
ROBOT_KEYS = {"693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa", "0ec2sifa-4bc4-97a0-7xxx-693a91f6aaaa"}
ROBOT_PER_MINUTE = 20
MARKDOWN_BYTES = {"robot": 4096, "app": 2048}
TEXT_BYTES = 2048


def _error(errcode: int, errmsg: str, **more: Any) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg, **more})


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _content_error(body: dict[str, Any], markdown_bytes: int) -> JSONResponse | None:
    """The message part's shape: `msgtype` names it, its `content` a non-empty string within the size limit."""
    msgtype = body.get("msgtype")
    if msgtype not in ("text", "markdown"):
        return _error(40008, f"invalid message type: {msgtype!r}")
    part = body.get(msgtype)
    if not isinstance(part, dict) or not isinstance(part.get("content"), str) or not part["content"]:
        return _error(44004, "empty content")
    limit = TEXT_BYTES if msgtype == "text" else markdown_bytes
    if len(part["content"].encode()) > limit:
        return _error(45002, f"content size out of limit: {len(part['content'].encode())} > {limit} bytes")
    return None


class WeComApi(StandIn):
    def __init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, float] = {}  # access_token -> monotonic expiry
        self._counter = itertools.count(1)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/cgi-bin/gettoken", self.gettoken),
            Route("/cgi-bin/message/send", self.message_send, methods=["POST"]),
            Route("/cgi-bin/webhook/send", self.webhook_send, methods=["POST"]),
        ]

    def turn(self, knobs: dict[str, Any]) -> None:
        if knobs.pop("expire_tokens", False):
            self.tokens = dict.fromkeys(self.tokens, 0.0)
        super().turn(knobs)

    async def gettoken(self, request: Request) -> JSONResponse:
        query = request.query_params
        self.accepted.append({"api": "gettoken", "corpid": query.get("corpid")})
        if query.get("corpid") != CORP_ID:
            return _error(40013, "invalid corpid")
        if query.get("corpsecret") != CORP_SECRET:
            return _error(40001, "invalid credential")
        ttl = int(self.knobs.get("token_ttl", 7200))
        token = f"accesstoken{next(self._counter):06d}"
        self.tokens[token] = time.monotonic() + ttl
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": ttl})

    async def message_send(self, request: Request) -> JSONResponse:
        token = request.query_params.get("access_token")
        if not token:
            return _error(41001, "access_token missing")
        if token not in self.tokens:
            return _error(40014, "invalid access_token")
        if time.monotonic() >= self.tokens[token]:
            return _error(42001, "access_token expired")
        if (body := await json_body(request)) is None:
            return _error(47001, "data format error")
        if not isinstance(body.get("agentid"), int) or body["agentid"] != AGENT_ID:
            return _error(40056, f"invalid agentid: {body.get('agentid')!r}")
        if not isinstance(body.get("touser"), str) or not body["touser"]:
            return _error(40031, "invalid userid list")
        if refused := _content_error(body, MARKDOWN_BYTES["app"]):
            return refused
        if flooded := self._flooded():
            return flooded
        users = body["touser"].split("|")
        invalid = [user for user in users if user.lower() not in USERS]
        if len(invalid) == len(users):
            return _error(81013, "user & party & tag all invalid", invaliduser="|".join(invalid))
        msgid = f"msg{next(self._counter):06d}"
        self.accepted.append({"api": "message/send", "body": body, "msgid": msgid})
        return JSONResponse({"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "msgid": msgid})

    async def webhook_send(self, request: Request) -> JSONResponse:
        key = request.query_params.get("key", "")
        if key not in ROBOT_KEYS:
            return _error(93000, "invalid webhook url")
        if (body := await json_body(request)) is None:
            return _error(47001, "data format error")
        if refused := _content_error(body, MARKDOWN_BYTES["robot"]):
            return refused
        for mentions in ("mentioned_list", "mentioned_mobile_list"):
            if mentions in body.get("text", {}) and not _strings(body["text"][mentions]):
                return _error(40058, f"{mentions} must be a list of strings")
        if flooded := self._flooded():
            return flooded
        if self.over(key, ROBOT_PER_MINUTE):
            return _error(45009, "api freq out of limit")
        self.accepted.append({"api": "webhook/send", "key": key, "body": body})
        return _error(0, "ok")

    def _flooded(self) -> JSONResponse | None:
        if self.take("http429"):
            return JSONResponse({"errcode": 45009, "errmsg": "too many requests"}, status_code=429)
        if self.take("flood"):
            return _error(45009, "api freq out of limit")
        return None


if __name__ == "__main__":
    serve(WeComApi(), int(sys.argv[1]))
