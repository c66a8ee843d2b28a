"""A page of Chinese text at the fax line's resolution, as a one-page PDF: the fax cover page, and a warning or
notice faxed to its recipients (with a band in the warning's colour at the top).

The page is drawn at 1728 x 2292 dots (the fax line's width, A4 at 204 x 196 dpi), so each pixel is one dot on
the line and ghostscript lays the PDF 1:1 onto the fax page. Drawing takes a few hundred milliseconds of CPU:
callers run it in a thread."""

import contextlib
import io

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1728, 2292
FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)
_MARGIN, _LINE = 120, 64


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_PATHS:
        with contextlib.suppress(OSError):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def text_page(title: str, lines: list[str], *, band: tuple[str, str] | None = None) -> bytes:
    """`title` centred at the top, then `lines` wrapped by width (Chinese has no spaces to break at; a blank line
    is a gap), cut at the page's end. `band` (colour "#rrggbb", label): a full-width band of that colour above the
    title with the label in it, kept in colour in the PDF (the fax conversion dithers it); without it the page is
    drawn black on white."""
    page = Image.new("RGB" if band else "L", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(page)
    y = 160
    if band:
        colour, label = band
        draw.rectangle((0, 0, WIDTH, 260), fill=colour)
        light = int(colour[1:3], 16) * 299 + int(colour[3:5], 16) * 587 + int(colour[5:7], 16) * 114 > 150_000
        draw.text((WIDTH // 2, 130), label, font=_font(120), fill="black" if light else "white", anchor="mm")
        y = 360
    draw.text((WIDTH // 2, y), title, font=_font(96 if not band else 72), fill="black", anchor="mm")
    body = _font(44)
    y += 160
    for line in lines:
        if not line:
            y += _LINE
        while line and y < HEIGHT - _MARGIN:
            cut = len(line)
            while cut > 1 and draw.textlength(line[:cut], font=body) > WIDTH - 2 * _MARGIN:
                cut -= 1
            draw.text((_MARGIN, y), line[:cut], font=body, fill="black")
            line, y = line[cut:], y + _LINE
    buffer = io.BytesIO()
    (page if band else page.convert("1")).save(buffer, "PDF", resolution=204.0)
    return buffer.getvalue()
