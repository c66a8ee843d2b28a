"""Warning identifiers as GB/T 35965.1 Appendix A (normative) lays them out, 31 characters:

    ZZZZZZ DDD UUU XX _ YYYYMMDDhhmmss _ N
    |      |   |   |    |                sequence, 0-9, for this issuing unit within that second
    |      |   |   |    entry time (the alert's `sent`) in Beijing time, to the second
    |      |   |   extension code, 2 digits (default 00)
    |      |   internal code of the unit, 3 digits (default 000)
    |      industry code of the issuing department (GB/T 4657), 3 digits
    GB/T 2260 area code of the issuing unit, 6 digits

e.g. 14010541600000_20261130080005_0. The first 14 digits are the issuing unit's code. A receiving national
warning system rejects anything else, so the layout is checked here and the unit code comes from configuration
([warnings] in switchboard.toml), never from code.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from switchboard.core.divisions import check_area_code
from switchboard.core.errors import InvalidInput

from .values import BEIJING

LAYOUT = re.compile(
    r"^(?P<area>\d{6})(?P<industry>\d{3})(?P<internal>\d{3})(?P<extension>\d{2})_(?P<time>\d{14})_(?P<sequence>\d)$"
)
SEQUENCES = 10  # N is one digit: at most ten identifiers per unit and second


@dataclass(frozen=True)
class UnitCode:
    """The issuing unit's 14-digit code."""

    area: str
    industry: str
    internal: str = "000"
    extension: str = "00"

    def __post_init__(self) -> None:
        check_area_code(self.area, field="unit_code.area")
        for name, digits, what in (
            ("industry", 3, "行业代码"),
            ("internal", 3, "内设机构代码"),
            ("extension", 2, "扩展码"),
        ):
            if not re.fullmatch(rf"\d{{{digits}}}", getattr(self, name)):
                raise InvalidInput(f"发布单位的{what}必须是 {digits} 位数字", field=f"unit_code.{name}")

    def __str__(self) -> str:
        return f"{self.area}{self.industry}{self.internal}{self.extension}"


def prefix(unit: UnitCode, sent: datetime) -> str:
    """What every identifier of `unit` entered at `sent` starts with; the sequence digit follows."""
    return f"{unit}_{sent.astimezone(BEIJING):%Y%m%d%H%M%S}_"


def next_identifier(unit: UnitCode, sent: datetime, taken: set[str]) -> str | None:
    """The first identifier of `unit` at `sent` not among `taken` (the ones already issued in that second); None
    when all ten are taken: the message then waits for the next second."""
    start = prefix(unit, sent)
    return next((f"{start}{n}" for n in range(SEQUENCES) if f"{start}{n}" not in taken), None)
