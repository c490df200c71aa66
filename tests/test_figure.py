"""The slide figure (wne.demo.figure) on synthetic tiles: valid PNG and PDF, the layout, each
image where its box says, the labels as text in the PDF, saving, and bad input named."""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wne.demo.figure import FIGURE_WIDTH, Tile, render_figure


def tiles(n: int, side: int = 48) -> list[Tile]:
    """``n`` tiles of distinct random pixels (grey for even, colour for odd indices)."""
    rng = np.random.default_rng(n)
    shapes = [(side, side) if i % 2 == 0 else (side, side, 3) for i in range(n)]
    return [
        Tile(rng.integers(0, 256, s, dtype=np.uint8), f"model {i} WNE", f"PSNR {20 + i}.25 dB")
        for i, s in enumerate(shapes)
    ]


def pdf_text(pdf: bytes) -> str:
    """The text shown by the PDF's content streams (the strings of its TJ/Tj operators)."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            data = zlib.decompress(stream)
        except zlib.error:
            continue
        for block in re.findall(rb"BT(.*?)ET", data, re.S):
            out.append(b"".join(re.findall(rb"\(((?:\\.|[^\\)])*)\)", block)).decode("cp1252"))
    return "\n".join(out)


@pytest.mark.parametrize(("n", "rows"), [(1, 1), (3, 1), (5, 2), (7, 2), (12, 3)])
def test_png_layout_puts_each_image_in_its_box(n: int, rows: int) -> None:
    """The PNG is FIGURE_WIDTH wide; up to 3 tiles make a row, more fill rows column by column;
    each box shows its own tile, enlarged by whole pixels (nearest neighbour)."""
    ts = tiles(n)
    fig = render_figure(ts, "A title", "a = 0.3, b = 0")
    png = Image.open(io.BytesIO(fig.png))
    assert png.format == "PNG" and png.size == fig.size and png.width == FIGURE_WIDTH
    assert len({box[1] for box in fig.boxes}) == rows  # distinct top edges = rows
    if rows > 1:  # column by column: the second tile sits under the first
        assert fig.boxes[1][0] == fig.boxes[0][0] and fig.boxes[1][1] > fig.boxes[0][1]
    pixels = np.asarray(png.convert("RGB"))
    for tile, (left, top, right, bottom) in zip(ts, fig.boxes, strict=True):
        assert 0 <= left < right <= png.width and 0 <= top < bottom <= png.height
        h, w = tile.image.shape[:2]
        ys = top + (np.arange(h) + 0.5) * (bottom - top) / h
        xs = left + (np.arange(w) + 0.5) * (right - left) / w
        shown = pixels[np.ix_(ys.astype(int), xs.astype(int))]
        want = tile.image if tile.image.ndim == 3 else np.repeat(tile.image[..., None], 3, -1)
        np.testing.assert_array_equal(shown, want)


def test_pdf_is_lossless_and_carries_the_labels_as_text() -> None:
    ts = tiles(4)
    fig = render_figure(ts, "Dim the lights", "noise 25 · seed 0")
    assert fig.pdf.startswith(b"%PDF-") and fig.pdf.rstrip().endswith(b"%%EOF")
    assert b"/DCTDecode" not in fig.pdf  # images are not JPEG-compressed
    text = pdf_text(fig.pdf)
    for label in ["Dim the lights", "noise 25 · seed 0", *(t.title for t in ts)]:
        assert label in text, label
    assert all(t.caption in text for t in ts)


def test_save_writes_both_files_into_a_folder_or_one_named_file(tmp_path: Path) -> None:
    fig = render_figure(tiles(2), "t", "s")
    both = fig.save(tmp_path / "out", stem="slide")
    assert [p.name for p in both] == ["slide.png", "slide.pdf"]
    assert both[0].read_bytes() == fig.png and both[1].read_bytes() == fig.pdf
    (one,) = fig.save(tmp_path / "fig.pdf")
    assert one.read_bytes() == fig.pdf
    with pytest.raises(ValueError, match=r"\.png or \.pdf"):
        fig.save(tmp_path / "fig.jpg")


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        render_figure([], "t", "s")
    with pytest.raises(TypeError, match="uint8"):
        Tile(np.zeros((8, 8), np.float32), "float", "")
    with pytest.raises(ValueError, match="HxW or HxWx3"):
        Tile(np.zeros((8, 8, 4), np.uint8), "rgba", "")
    with pytest.raises(TypeError, match="Tile"):
        render_figure([np.zeros((8, 8), np.uint8)], "t", "s")  # type: ignore[list-item]
