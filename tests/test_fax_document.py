"""Fax documents are checked from their headers before anything is decoded: the review's 164 KB TIFF of thirty
9000x9000 pages took 2.5 GB to convert before the page limit applied."""

import io
import time
from pathlib import Path

import pytest
from PIL import Image

from sip.fax.document import DocumentError, to_tiff


def _tiff(pages: int, size: tuple[int, int]) -> bytes:
    """A bilevel G4 TIFF: white pages compress to almost nothing however large they claim to be."""
    frames = [Image.new("1", size, 1) for _ in range(pages)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "TIFF", compression="group4", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


async def test_too_many_pages_are_refused_before_decoding(tmp_path: Path) -> None:
    data = _tiff(60, (1728, 2292))
    started = time.monotonic()
    with pytest.raises(DocumentError, match="超过 50 页") as refused:
        await to_tiff(data, tmp_path / "out.tif", max_pages=50, workdir=tmp_path)
    assert refused.value.field == "file"
    assert time.monotonic() - started < 5
    assert not (tmp_path / "out.tif").exists()


async def test_a_huge_page_is_refused_before_decoding(tmp_path: Path) -> None:
    data = _tiff(2, (9000, 9000))
    assert len(data) < 200_000  # small on the wire, 81 million pixels a page once decoded
    with pytest.raises(DocumentError, match="第 1 页图片过大（9000×9000 像素"):
        await to_tiff(data, tmp_path / "out.tif", max_pages=50, workdir=tmp_path)
    assert not (tmp_path / "out.tif").exists()


async def test_a_scan_of_ordinary_size_is_converted(tmp_path: Path) -> None:
    pages = await to_tiff(_tiff(2, (2480, 3508)), tmp_path / "out.tif", max_pages=50, workdir=tmp_path)  # A4, 300 dpi
    assert [(p.width, p.height) for p in pages] == [(1728, 2292), (1728, 2292)]
