"""Keep tokens out of the logs: browsers put them in URLs (`/api/v1/events?token=`, `/consult/{id}?token=`).

uvicorn logs each request's path with its query string (HTTP lines on `uvicorn.access`, WebSocket handshakes on
`uvicorn.error`); this filter rewrites every `token=` value there to `***` before any handler sees it.
"""

import logging
import re

_TOKEN = re.compile(r"((?:^|[?&;])(?:access_)?token=)[^&\s\"']*", re.IGNORECASE)
LOGGERS = ("uvicorn.access", "uvicorn.error")


class TokenRedactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "token=" in a.lower() for a in record.args):
            record.args = tuple(_TOKEN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str) and "token=" in record.msg.lower():
            record.msg = _TOKEN.sub(r"\1***", record.msg)
        return True


def hide_tokens() -> None:
    """Install the filter on uvicorn's loggers (after uvicorn configured logging; twice is harmless)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenRedactor) for f in logger.filters):
            logger.addFilter(TokenRedactor())
