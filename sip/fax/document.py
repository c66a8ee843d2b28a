"""Fax documents: a PDF or image (plus an optional cover page) to TIFF-F, and a received TIFF to PDF.

TIFF-F here is what ghostscript's `tiffg3` device writes at 204x196 dpi on a 1728-pixel-wide page (the fax line
width), A4 tall. Conversion runs in subprocesses (`asyncio.create_subprocess_exec`: no shell, argument lists only;
uploaded bytes go to files the service names itself, so no uploaded name reaches a command line) and Pillow works
in a thread, so the event loop never waits on either. A document that cannot be read, is empty, is of another type
or has too many pages is refused with `InvalidInput` (422) naming the `file` field, and no output is left behind.
"""

import asyncio
import io
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image

from switchboard.core.errors import InvalidInput
from switchboard.core.page import HEIGHT, WIDTH, text_page  # the fax line's 1728 dots, A4 at 196 lpi

log = logging.getLogger(__name__)

RESOLUTION = "204x196"
CONVERT_TIMEOUT = 120.0
MAX_PIXELS = 40_000_000  # per image page: an A4 scan at 600 dpi is 35 million; the fax page itself 4 million
MAGIC = {
    b"%PDF-": "pdf",
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}
TYPE_NAMES = "PDF、JPEG、PNG 或 TIFF"


class DocumentError(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__(message, field="file")


@dataclass(frozen=True)
class Page:
    width: int
    height: int
    x_resolution: float
    y_resolution: float


def sniff(data: bytes) -> str | None:
    """The document's type from its first bytes (never from its name or the client's content type)."""
    head = data[:1024].lstrip(b"\x00\t\r\n ")
    return next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)


async def run(*argv: str, timeout: float = CONVERT_TIMEOUT) -> tuple[int, str]:
    """Run a converter; returns (exit code, its stderr and stdout). Killed (and reaped) when it overruns."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, f"{Path(argv[0]).name} timed out after {timeout:.0f} s"
    return process.returncode or 0, out.decode("utf-8", "replace")


def tiff_pages(path: Path) -> list[Page]:
    """Each page (IFD) of a classic TIFF: its size in pixels and its resolution."""
    data = path.read_bytes()
    if len(data) < 8 or data[:4] not in (b"II*\x00", b"MM\x00*"):
        return []
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", data, 4)
    pages: list[Page] = []
    seen: set[int] = set()
    while offset and offset not in seen and offset + 2 <= len(data):
        seen.add(offset)
        (count,) = struct.unpack_from(order + "H", data, offset)
        tags: dict[int, float] = {}
        for i in range(count):
            entry = offset + 2 + 12 * i
            if entry + 12 > len(data):
                break
            tag, kind, _, value = struct.unpack_from(order + "HHI4s", data, entry)
            if kind == 3:
                tags[tag] = struct.unpack_from(order + "H", value)[0]
            elif kind == 4:
                tags[tag] = struct.unpack_from(order + "I", value)[0]
            elif kind == 5:  # RATIONAL: the value is an offset to two LONGs
                (where,) = struct.unpack_from(order + "I", value)
                if where + 8 <= len(data):
                    numerator, denominator = struct.unpack_from(order + "II", data, where)
                    tags[tag] = numerator / denominator if denominator else 0.0
        pages.append(Page(int(tags.get(256, 0)), int(tags.get(257, 0)), tags.get(282, 0.0), tags.get(283, 0.0)))
        next_at = offset + 2 + 12 * count
        offset = struct.unpack_from(order + "I", data, next_at)[0] if next_at + 4 <= len(data) else 0
    return pages


def _image_to_pdf(data: bytes, max_pages: int) -> bytes:
    """Every frame of an image as a page of a PDF (ghostscript then fits it to the fax page). The frame count and
    each frame's size are read from the headers and checked before any pixel is decoded: a small file can declare
    thirty 9000x9000 pages."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            count = getattr(image, "n_frames", 1)
            if count > max_pages:
                raise DocumentError(f"文档超过 {max_pages} 页，请拆分后分别发送")
            for index in range(count):
                image.seek(index)
                if image.width * image.height > MAX_PIXELS:
                    size, most = f"{image.width}×{image.height}", MAX_PIXELS // 1_000_000
                    raise DocumentError(f"第 {index + 1} 页图片过大（{size} 像素，最多 {most} 百万像素）")
            frames = []
            for index in range(count):
                image.seek(index)
                frames.append(image.convert("L"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DocumentError(f"无法读取图片（文件损坏或过大）：{exc}") from None
    buffer = io.BytesIO()
    frames[0].save(buffer, "PDF", resolution=200.0, save_all=True, append_images=frames[1:])
    return buffer.getvalue()


async def _ghostscript(inputs: list[Path], target: Path, last_page: int) -> list[Page]:
    code, output = await run(
        "gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET",
        "-sDEVICE=tiffg3", f"-r{RESOLUTION}", f"-g{WIDTH}x{HEIGHT}", "-dFIXEDMEDIA", "-dPDFFitPage",
        f"-dLastPage={last_page}", f"-sOutputFile={target}", "-f", *map(str, inputs),
    )  # fmt: skip
    pages = tiff_pages(target) if code == 0 and target.is_file() else []
    if code != 0 or not pages:
        log.info("ghostscript refused a document (exit %s): %s", code, output[-500:])
        raise DocumentError("无法读取文档（PDF 损坏、加密或没有页面）")
    return pages


async def to_tiff(data: bytes, target: Path, *, max_pages: int, workdir: Path) -> list[Page]:
    """The document as a TIFF-F at `target`; returns its pages.

    Refuses (DocumentError) an empty, unreadable or unsupported document, or one with more than `max_pages`
    pages; then nothing is left at `target`."""
    if not data.strip():
        raise DocumentError("文件为空")
    kind = sniff(data)
    if kind is None:
        raise DocumentError(f"不支持的文件类型：只接受 {TYPE_NAMES}")
    if kind != "pdf":
        data = await asyncio.to_thread(_image_to_pdf, data, max_pages)
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / f"{target.stem}.document.pdf"
    try:
        source.write_bytes(data)
        # Render one page past the limit: enough to know a document is too long without rendering all of it.
        pages = await _ghostscript([source], target, max_pages + 1)
        if len(pages) > max_pages:
            raise DocumentError(f"文档超过 {max_pages} 页，请拆分后分别发送")
        return pages
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        source.unlink(missing_ok=True)


async def prepend_cover(cover: bytes, document: Path, workdir: Path) -> list[Page]:
    """Put a cover page (a one-page PDF) in front of a TIFF-F document, in place; returns the pages."""
    source, page, joined = (workdir / f"{document.stem}.{suffix}" for suffix in ("cover.pdf", "cover.tif", "all.tif"))
    try:
        source.write_bytes(cover)
        await _ghostscript([source], page, 1)
        code, output = await run("tiffcp", str(page), str(document), str(joined))
        if code != 0:
            raise RuntimeError(f"tiffcp failed ({code}): {output[-300:]}")
        joined.replace(document)
        return tiff_pages(document)
    finally:
        for path in (source, page, joined):
            path.unlink(missing_ok=True)


async def tiff_to_pdf(source: Path, target: Path) -> None:
    """A received TIFF as a PDF whose page size follows the fax resolution (tiff2pdf from libtiff-tools)."""
    code, output = await run("tiff2pdf", "-o", str(target), str(source))
    if code != 0 or not target.is_file() or target.stat().st_size == 0:
        target.unlink(missing_ok=True)
        raise RuntimeError(f"tiff2pdf failed ({code}): {output[-300:]}")


# ---------------------------------------------------------------------------------------------- cover page

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("sip.fax", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # plain text drawn onto an image, never markup
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


def cover_text(values: dict[str, Any], template: str = "cover.txt.j2") -> str:
    return _templates.get_template(template).render(values)


def _cover_pdf(text: str) -> bytes:
    """The rendered cover text on a fax page, its first line as the title."""
    lines = text.splitlines() or [""]
    return text_page(lines[0], lines[1:])


async def cover_page(values: dict[str, Any]) -> bytes:
    text = cover_text(values)
    return await asyncio.to_thread(_cover_pdf, text)
