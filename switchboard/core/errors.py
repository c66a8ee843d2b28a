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


class Gone(SwitchboardError):
    """What was good once no longer is (an expired link)."""

    status = 410
    code = "gone"


class Unauthorized(SwitchboardError):
    status = 401
    code = "unauthorized"


class Forbidden(SwitchboardError):
    status = 403
    code = "forbidden"


class TooManyRequests(SwitchboardError):
    """Refused for now; `retry_after` seconds later it may work (sent as Retry-After)."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(SwitchboardError):
    """An engine or link the request needs is down."""

    status = 503
    code = "unavailable"


def quoted(value: str, limit: int = 50) -> str:
    """A user's value as an error message quotes it, cut to `limit` characters: a 50 MB spreadsheet header or number
    field must not come back whole in the answer."""
    return value if len(value) <= limit else value[:limit] + "…"
