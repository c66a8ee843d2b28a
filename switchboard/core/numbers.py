"""Telephone numbers, one rule for every way a number comes in (API, directory import, fax recipients, search).

A number that reaches a dial string is ASCII digits with at most a leading +. Python's `\\d` also matches the
digits of other scripts (Arabic-Indic, Devanagari ...), which must never reach Asterisk; full-width digits and
punctuation typed with a Chinese input method are folded to ASCII first (NFKC), so "１３８－０１３８" is a number.
"""

import re
import unicodedata

from switchboard.core.errors import InvalidInput, quoted

_NOISE = re.compile(r"[\s\-()]")  # spacing and punctuation people put in numbers (after NFKC: full-width folded)
_NUMBER = re.compile(r"\+?[0-9]{3,20}", re.ASCII)
_CN_MOBILE = re.compile(r"(\+86)?1[0-9]{10}", re.ASCII)


def cleaned(raw: str) -> str:
    """`raw` folded to ASCII (NFKC) without spacing and punctuation; not yet checked."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", raw))


def is_number(raw: str) -> bool:
    return _NUMBER.fullmatch(cleaned(raw)) is not None


def normalise(raw: str, field: str = "number") -> str:
    """The number in `raw` (3 to 20 ASCII digits, optional leading +), or a 422 naming `field`."""
    number = cleaned(raw)
    if not _NUMBER.fullmatch(number):
        raise InvalidInput(f"号码“{quoted(raw)}”格式不正确：应为 3 到 20 位数字，可带 + 前缀", field=field)
    return number


def is_domestic_mobile_ok(number: str) -> bool:
    """A normalised number filed as a mobile: a mainland one (no country code or +86) has 11 digits from 1."""
    domestic = number.startswith("+86") or not number.startswith("+")
    return not domestic or _CN_MOBILE.fullmatch(number) is not None


def dialled(number: str) -> str:
    """The form a normalised number takes in a dial string (the trunk adds any international prefix)."""
    return number.lstrip("+")
