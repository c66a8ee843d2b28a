"""Value types CAP 1.2 shares between its objects: times, tokens, name/value pairs."""

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, StringConstraints

from switchboard.core.fields import ShortText, text

BEIJING = ZoneInfo("Asia/Shanghai")

# CAP times carry whole seconds and an explicit offset; fractions are dropped on the way in so that the rules
# compare exactly what the document will say.
CapTime = Annotated[AwareDatetime, AfterValidator(lambda value: value.replace(microsecond=0))]

# identifier, sender and incident ids: CAP forbids spaces, commas and the XML-restricted "<" and "&".
Token = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r'^[^\s,<&"]+$')]

Language = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$")]

Uri = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")
]
# A link people are sent to (a warning's `web`): http or https only, never javascript:, data: or file:.
WebLink = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=r"^[hH][tT][tT][pP][sS]?://[^\s/?#]+\S*$")
]


class CapModel(BaseModel):
    """Every CAP object refuses unknown fields, so a misspelt `expirse` is an error rather than silently lost."""

    model_config = ConfigDict(extra="forbid")


class ValuePair(CapModel):
    """CAP's valueName/value pair, used by eventCode, parameter and geocode."""

    valueName: ShortText
    value: text(2000, min_length=1)  # type: ignore[valid-type]


def cap_time(value: datetime) -> str:
    """CAP's dateTime form in Beijing time, e.g. 2026-11-30T08:00:00+08:00 (no fractions, never "Z")."""
    return value.astimezone(BEIJING).replace(microsecond=0).isoformat()
