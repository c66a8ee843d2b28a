"""Every error leaves as JSON {"error": code, "message": ..., "field": ...}."""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from switchboard.core.errors import SwitchboardError, TooManyRequests

log = logging.getLogger(__name__)

_ZH = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_too_long": "过长",
    "string_too_short": "过短或为空",
    "enum": "取值无效",
    "literal_error": "取值无效",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为布尔值",
    "datetime_parsing": "应为 ISO 8601 时间",
    "datetime_from_date_parsing": "应为 ISO 8601 时间",
    "timezone_aware": "时间必须带时区（例如 +08:00）",
    "greater_than_equal": "过小",
    "less_than_equal": "过大",
    "model_attributes_type": "应为 JSON 对象",
    "dict_type": "应为 JSON 对象",
    "json_invalid": "JSON 格式错误",
    "value_error": "取值无效",
}
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}
_STATUS_MESSAGES = {404: "路径不存在", 405: "该路径不支持此请求方法"}


class ErrorBody(BaseModel):
    error: str
    message: str
    field: str | None


# Declared on every API route, so that the published contract lists the errors clients must handle.
RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "No token, or an invalid or expired one"},
    403: {"model": ErrorBody, "description": "The user's roles do not allow this"},
    404: {"model": ErrorBody, "description": "No such object"},
    409: {"model": ErrorBody, "description": "Conflicts with the object's state"},
    422: {"model": ErrorBody, "description": "Bad input; `field` names it"},
}


def body(code: str, message: str, field: str | None = None) -> dict[str, str | None]:
    return {"error": code, "message": message, "field": field}


def explain(errors: Sequence[Any]) -> tuple[str, str | None]:
    """The first validation error in Chinese, naming its field: (message, field)."""
    error = errors[0]
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or None
    reason = _ZH.get(error.get("type", ""), "")
    detail = str(error.get("msg", "")).removeprefix("Value error, ")
    message = f"{field or '请求'}：{reason}（{detail}）" if reason else f"{field or '请求'}：{detail}"
    return message, field


def install(app: FastAPI) -> None:
    @app.exception_handler(SwitchboardError)
    async def domain_error(_: Request, exc: SwitchboardError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(body(exc.code, exc.message, exc.field), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = explain(exc.errors())
        return JSONResponse(body("invalid", message, field), 422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = _STATUS_MESSAGES.get(exc.status_code, str(exc.detail))
        return JSONResponse(body(code, message, None), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(body("internal", "服务器内部错误，已记录日志"), 500)
