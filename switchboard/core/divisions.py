"""GB/T 2260 administrative division codes (the shipped dataset covers Shanxi)."""

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from switchboard.core.errors import InvalidInput

_CODE = re.compile(r"^[1-8]\d{5}$")


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    parent_code: str | None
    level: str  # province, city, county


@cache
def all_divisions() -> dict[str, Division]:
    text = resources.files("switchboard.core").joinpath("data/shanxi-divisions.csv").read_text("utf-8")
    return {
        row["code"]: Division(row["code"], row["name"], row["parent_code"] or None, row["level"])
        for row in csv.DictReader(text.splitlines())
    }


def check_area_code(code: str, field: str = "area_code") -> Division | None:
    """Reject malformed codes, and unknown codes in a province whose divisions are shipped.

    Codes of other provinces pass on form alone (returning None): a warning may name a neighbour's area.
    """
    if not _CODE.match(code):
        raise InvalidInput(f"行政区划代码必须是 6 位数字（GB/T 2260），收到 {code!r}", field=field)
    known = all_divisions()
    if code in known:
        return known[code]
    if any(c.startswith(code[:2]) for c in known):
        raise InvalidInput(f"未知的行政区划代码 {code}", field=field)
    return None


def full_name(code: str) -> str:
    """Province, city and county names joined, e.g. 山西省太原市小店区."""
    known = all_divisions()
    names: list[str] = []
    current = known.get(code)
    while current:
        names.append(current.name)
        current = known.get(current.parent_code or "")
    return "".join(reversed(names))
