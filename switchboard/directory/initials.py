"""Pinyin initials of a name, so that typing "zjg" finds 张建国 on a desk without a Chinese input method at hand.

A character with several readings gives each (单 is shan as a surname, dan otherwise: both are kept), as a
space-separated list of spellings, capped so that a long name full of such characters stays a short column.
"""

from itertools import islice, product

from pypinyin import Style, pinyin

_MAX_SPELLINGS = 8
_MAX_LETTERS = 40
COLUMN_LENGTH = _MAX_SPELLINGS * (_MAX_LETTERS + 1)


def initials(name: str) -> str:
    """ "zjg" for 张建国; letters and digits kept as they are, other characters dropped; lower case."""
    letters = pinyin(name, style=Style.FIRST_LETTER, heteronym=True, errors=lambda text: list(text))
    choices = [sorted({c.lower() for c in readings if c.isalnum()}) for readings in letters]
    choices = [c for c in choices if c]
    return " ".join("".join(spelling)[:_MAX_LETTERS] for spelling in islice(product(*choices), _MAX_SPELLINGS))
