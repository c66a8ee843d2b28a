"""Field types shared by API schemas: strings a database and a dialplan can hold safely."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints


def _printable(value: str) -> str:
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
        raise ValueError("不能包含控制字符")
    return value


def text(max_length: int, *, min_length: int = 0) -> type[str]:
    """A stripped string without control characters (PostgreSQL refuses NUL; dialplans must never see them)."""
    return Annotated[  # type: ignore[return-value]
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(_printable),
    ]


Name = text(200, min_length=1)
SearchText = text(100)
ShortText = text(200)
LongText = text(20000)

# Instants must carry a zone (a bare "08:00" is ambiguous between the duty room and the server); they are
# kept and answered in UTC.
Instant = Annotated[
    AwareDatetime,
    Field(ge=datetime(1900, 1, 1, tzinfo=UTC), le=datetime(9000, 1, 1, tzinfo=UTC)),
    AfterValidator(lambda value: value.astimezone(UTC)),
]
