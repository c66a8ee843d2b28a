"""One phone-number rule for every way a number comes in: ASCII digits reach a dial string, other scripts' digits
never do, full-width input from a Chinese input method is folded to ASCII."""

import pytest

from switchboard.core import numbers
from switchboard.core.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0351-1234567", "03511234567"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("（0351）１２３４５６７", "03511234567"),  # full-width parentheses and digits
        ("１３８－００１３－８０００", "13800138000"),  # full-width minus
        ("110", "110"),
    ],
)
def test_numbers_are_normalised_to_ascii(raw: str, expected: str) -> None:
    assert numbers.normalise(raw) == expected
    assert numbers.is_number(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "٠٣٥١١٢٣٤٥٦٧",  # Arabic-Indic digits: \\d matches them, a dial string must not get them
        "۰۳۵۱۱۲۳۴۵۶۷",  # Extended Arabic-Indic
        "०३५११२३४५६७",  # Devanagari
        "12",
        "1" * 21,
        "8001&PJSIP/8002",
        "+",
        "",
    ],
)
def test_anything_else_is_refused_naming_the_field(raw: str) -> None:
    assert not numbers.is_number(raw)
    with pytest.raises(InvalidInput) as refused:
        numbers.normalise(raw, field="numbers.0")
    assert refused.value.field == "numbers.0"
    assert "格式不正确" in refused.value.message


def test_mainland_mobiles_have_eleven_digits_from_one() -> None:
    assert numbers.is_domestic_mobile_ok("13800138000")
    assert numbers.is_domestic_mobile_ok("+8613800138000")
    assert not numbers.is_domestic_mobile_ok("1380013800")
    assert numbers.is_domestic_mobile_ok("+4915112345678")  # abroad: the country's own rule
    assert numbers.dialled("+8613800138000") == "8613800138000"
