"""Domain errors. The API maps each to a status and a JSON body {"error", "message", "field"}."""


class SwitchboardError(Exception):
    """Base of every error a user may see; `message` is user-facing (zh-CN first)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(SwitchboardError):
    status = 422
    code = "invalid"


class NotFound(SwitchboardError):
    status = 404
    code = "not_found"


class Conflict(SwitchboardError):
    status = 409
    code = "conflict"


class Unauthorized(SwitchboardError):
    status = 401
    code = "unauthorized"


class Forbidden(SwitchboardError):
    status = 403
    code = "forbidden"


class Unavailable(SwitchboardError):
    """An engine or link the request needs is down."""

    status = 503
    code = "unavailable"
