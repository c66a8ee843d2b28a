"""Values in exported CSV files that a spreadsheet program would run as a formula (`=2+5+cmd|' /C calc'!A0`,
`@SUM(...)`, `+...`, `-...`) are written as text, with the customary leading apostrophe; an import takes the
apostrophe off again, so an export imports back unchanged. Phone numbers (`+8613800138000`, `-100123` chat ids)
are numbers to a spreadsheet, not formulas, and stay as they are."""

import re

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9 ]+", re.ASCII)


def is_formula(value: str) -> bool:
    return value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value)


def neutralised(value: str) -> str:
    """`value` as a CSV cell that opens as text."""
    return "'" + value if is_formula(value) else value


def restored(value: str) -> str:
    """An imported cell as it was before `neutralised`."""
    return value[1:] if value.startswith("'") and is_formula(value[1:]) else value
