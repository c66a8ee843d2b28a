"""SMS segmentation at the boundaries that decide the cost of a warning: 70/67 UCS-2, 160/153 GSM-7."""

import pytest
import smpplib.gsm

from broadcast.segments import segment

HAN = "暴"
EMOJI = "\U0001f300"  # 🌀, a surrogate pair in UTF-16


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-be")) // 2


@pytest.mark.parametrize(("chars", "count"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
def test_chinese_boundaries(chars: int, count: int) -> None:
    result = segment(HAN * chars)
    assert result.encoding == "UCS-2"
    assert result.length == chars
    assert result.count == count
    assert "".join(result.parts) == HAN * chars
    if count > 1:
        assert [len(p) for p in result.parts[:-1]] == [67] * (count - 1)


@pytest.mark.parametrize(("chars", "count"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3)])
def test_gsm_boundaries(chars: int, count: int) -> None:
    text = ("Rainstorm warning, Taiyuan. " * 20)[:chars]
    result = segment(text)
    assert result.encoding == "GSM-7"
    assert result.count == count
    if count > 1:
        assert len(result.parts[0]) == 153


def test_extension_characters_count_twice_and_stay_whole() -> None:
    assert segment("€" * 80).count == 1  # 160 septets
    result = segment("€" * 81)
    assert (result.length, result.count) == (162, 2)
    assert [len(p) for p in result.parts] == [76, 5]  # 152 septets: a 77th escape pair would not fit in 153
    result = segment("a" * 152 + "[" + "a" * 10)
    assert result.parts[0] == "a" * 152
    assert result.parts[1].startswith("[")


def test_one_chinese_character_switches_to_ucs2() -> None:
    result = segment("a" * 100 + "中")
    assert (result.encoding, result.count) == ("UCS-2", 2)
    assert segment("ç").encoding == "UCS-2"  # lower-case c-cedilla is not in GSM 03.38 (only Ç is)


def test_surrogate_pairs_count_two_and_are_never_split() -> None:
    assert segment(EMOJI * 35).count == 1  # 70 code units
    assert segment(HAN * 69 + EMOJI).count == 2  # 71 code units
    text = HAN * 66 + EMOJI + HAN * 10
    result = segment(text)
    assert result.parts == (HAN * 66, EMOJI + HAN * 10)
    for part in segment(EMOJI * 100).parts:
        part.encode("utf-16-be")  # strict: a lone surrogate would raise
        assert _utf16_units(part) <= 67
    assert segment(EMOJI * 100).count == 4  # 33 pairs fit in 67 units: 33 + 33 + 33 + 1


def test_empty_text_costs_nothing() -> None:
    assert segment("").count == 0


@pytest.mark.parametrize("unit", ["a", HAN, "a" + HAN])
def test_counts_match_smpplib(unit: str) -> None:
    """smpplib splits encoded bytes, so compare on texts where that cannot break a character."""
    for repeat in range(1, 420):
        text = (unit * repeat)[:repeat]
        parts, _, _ = smpplib.gsm.make_parts(text)
        assert segment(text).count == len(parts), text
