"""How many SMS a text costs, and where it splits, so the office sees the segment count before it issues.

GSM 03.38 text goes as 7-bit septets: 160 in one message, 153 per part once a concatenation header (UDH) takes
its 6 bytes; extension-table characters (€ [ ] { } ...) take an escape septet and so count twice. Anything else,
Chinese included, goes as UCS-2 (SMPP data_coding=8): 70 characters alone, 67 per part. Characters outside the
Basic Multilingual Plane (emoji) are sent as UTF-16 surrogate pairs, count two, and never straddle two parts;
nor does an escape pair.
"""

from dataclasses import dataclass
from typing import Literal

_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

# (single message, per part when concatenated), in septets for GSM-7 and UTF-16 code units for UCS-2
LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class Segments:
    encoding: Encoding
    length: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.parts)


def encoding_of(text: str) -> Encoding:
    return "GSM-7" if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text) else "UCS-2"


def segment(text: str, encoding: Encoding | None = None) -> Segments:
    """The encoding, length and message parts of `text`; an empty text costs no message. `encoding` forces one:
    the Chinese carriers' gateways (CMPP, SMGP, SGIP) are sent UCS-2 only, having no GSM 03.38 format."""
    encoding = encoding or encoding_of(text)
    single, per_part = LIMITS[encoding]
    units = [_units(ch, encoding) for ch in text]
    length = sum(units)
    if length <= single:
        return Segments(encoding, length, (text,) if text else ())
    parts: list[str] = []
    start = used = 0
    for index, size in enumerate(units):
        if used + size > per_part:
            parts.append(text[start:index])
            start, used = index, 0
        used += size
    parts.append(text[start:])
    return Segments(encoding, length, tuple(parts))


def mobile_originated_text(content: bytes, coding: int) -> str:
    """The text of an MO message from a Chinese carrier's gateway, by its coding (CMPP Msg_Fmt, SMGP MsgFormat,
    SGIP MessageCoding all number them alike): UCS-2 (8), GB 18030 and its GBK subset (15), else ASCII."""
    if coding == 8:
        return content.decode("utf-16-be", "replace")
    if coding == 15:
        return content.decode("gb18030", "replace")
    return content.decode("ascii", "replace")


def _units(ch: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if ch in _GSM_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1
