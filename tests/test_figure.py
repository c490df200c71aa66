"""The slide figure (wne.demo.figure): size, labels, and the right numbers under the right image.

Runs the demo's comparison with tiny random-init checkpoints
(:func:`app_fixtures.make_demo_checkpoints`), renders it and checks the
returned layout: every cell's label strings, and that the pixels inside each
cell's box are that model's output (so a label cannot sit under another
model's image). Also the page path (:func:`tiles_from_page`), the lossless PNG,
the PDF's structure, the command line and the committed classroom figure.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from app_fixtures import PARROTS, make_demo_checkpoints
from PIL import Image

from wne.demo import DemoHandlers, Zoo
from wne.demo.classroom import ClassroomKit
from wne.demo.figure import (
    FIGURE_WIDTH,
    Tile,
    comparison_tiles,
    main,
    render_figure,
    render_tiles,
    tiles_from_page,
)
from wne.demo.imaging import to_display
from wne.demo.settings import DemoInputError, params
from wne.demo.views import DenoiseView

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "assets" / "figures" / "dim-the-lights.png"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo_checkpoints(tmp_path_factory.mktemp("figure") / "ckpt", broken=False)


@pytest.fixture(scope="module")
def handlers(checkpoints: Path) -> DemoHandlers:
    return DemoHandlers(Zoo.discover(checkpoints, device="cpu", hub_repo=""))


@pytest.fixture(scope="module")
def view(handlers: DemoHandlers) -> DenoiseView:
    """ "Dim the lights" on the parrots, all three backbones, at 64 px."""
    return handlers.denoise(
        PARROTS,
        a=0.3,
        sigma=25,
        order="noise-then-shift",
        max_side=64,
        backbones=["dncnn", "swinir", "fdncnn-ne"],
    )


def cell_pixels(image: Image.Image, box: tuple[int, int, int, int], size: tuple[int, int]) -> Any:
    """The cell's pixels sampled back to the tile's own size (the figure enlarges by NEAREST)."""
    x0, y0, x1, y1 = box
    w, h = size
    xs = x0 + (np.arange(w) * (x1 - x0) + (x1 - x0) // 2) // w
    ys = y0 + (np.arange(h) * (y1 - y0) + (y1 - y0) // 2) // h
    return np.asarray(image)[np.ix_(ys, xs)]


def as_rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img


def test_size_labels_and_numbers_match_the_comparison(view: DenoiseView) -> None:
    res = view.comparison
    assert res is not None
    fig = render_figure(view, title="Dim the lights")
    width, height = fig.image.size
    assert width == FIGURE_WIDTH and 600 < height < 2200
    runs = [r for r in res.runs if r.output is not None]
    assert len(runs) == 5  # plain + WNE for two backbones, and the NE-arch baseline
    names = ["noisy input", "target a·x + b", *(r.label for r in runs)]
    assert [c.name for c in fig.cells] == names
    assert fig.labels[:2] == ["Dim the lights", fig.subtitle]
    assert "a = 0.3" in fig.subtitle and "σ = 25" in fig.subtitle and "64×64 px" in fig.subtitle
    # The figure's numbers are the scores table's (PSNR to 2 decimals, SSIM to 4).
    table = {row[0]: row for row in res.table()}
    for cell in fig.cells:
        if cell.name.startswith("target"):
            assert cell.caption == "a = 0.3, b = 0"
            continue
        name = "noisy input" if cell.name == "noisy input" else cell.name
        psnr, ssim = table[name][1], table[name][2]
        m = re.fullmatch(r"PSNR (-?\d+\.\d\d) dB · SSIM (-?\d\.\d{4})", cell.caption)
        assert m, cell.caption
        assert float(m.group(1)) == pytest.approx(psnr, abs=1e-9), cell.name
        assert float(m.group(2)) == pytest.approx(ssim, abs=1e-9), cell.name


def test_each_label_sits_under_its_own_image(view: DenoiseView) -> None:
    """The pixels in a cell's box are the output of the model named under it."""
    res = view.comparison
    assert res is not None
    fig = render_figure(res)
    images = [to_display(res.noisy)[0], to_display(res.target)[0]]
    images += [to_display(r.output)[0] for r in res.runs if r.output is not None]
    h, w = images[0].shape[:2]
    for cell, expected in zip(fig.cells, images, strict=True):
        x0, y0, x1, y1 = cell.box
        assert 0 <= x0 < x1 <= fig.image.width and 0 <= y0 < y1 <= fig.image.height
        np.testing.assert_array_equal(cell_pixels(fig.image, cell.box, (w, h)), as_rgb(expected))
    boxes = [c.box for c in fig.cells]
    assert len(set(boxes)) == len(boxes)


def test_the_page_figure_equals_the_comparison_figure(view: DenoiseView, tmp_path: Path) -> None:
    """What the app draws from the page (images, gallery, JSON) equals render_figure's."""
    res = view.comparison
    assert res is not None
    tiles, settings = tiles_from_page(view.noisy, view.target, view.gallery, view.summary)
    assert settings == res.settings
    direct = comparison_tiles(res)
    assert [(t.name, t.caption) for t in tiles] == [(t.name, t.caption) for t in direct]
    for got, want in zip(tiles, direct, strict=True):
        np.testing.assert_array_equal(got.image, want.image)
    kit = ClassroomKit(params(), [], [("Compare", "compare")], tmp_path)
    png, pdf = kit.figure(view.noisy, view.target, view.gallery, view.summary)
    assert Image.open(png).width == FIGURE_WIDTH and Path(pdf).read_bytes().startswith(b"%PDF")
    with pytest.raises(DemoInputError, match="no comparison"):
        kit.figure(None, None, [], {})
    with pytest.raises(DemoInputError, match="no output of"):
        tiles_from_page(view.noisy, view.target, view.gallery[:1], view.summary)


def test_png_is_lossless_and_pdf_is_well_formed(view: DenoiseView, tmp_path: Path) -> None:
    fig = render_figure(view)
    png = fig.save(tmp_path / "fig.png")
    np.testing.assert_array_equal(np.asarray(Image.open(png)), np.asarray(fig.image))
    data = fig.save(tmp_path / "fig.pdf").read_bytes()
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    assert b"/FlateDecode" in data and b"DCTDecode" not in data  # no JPEG inside
    start = int(data[data.rindex(b"startxref") + 9 :].split()[0])
    assert data[start:].startswith(b"xref")
    offsets = [int(line[:10]) for line in data[start:].split(b"\n")[3:9]]
    for i, offset in enumerate(offsets, start=1):
        assert data[offset:].startswith(f"{i} 0 obj".encode())
    with pytest.raises(ValueError, match=r"\.png or \.pdf"):
        fig.save(tmp_path / "fig.jpg")


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        render_tiles([], "t")
    tile = Tile(np.zeros((8, 8), np.uint8), "x")
    with pytest.raises(ValueError, match="at least 480"):
        render_tiles([tile], "t", width=100)
    with pytest.raises(TypeError, match="Comparison or a DenoiseView"):
        render_figure("not a comparison")  # type: ignore[arg-type]


def test_command_line(checkpoints: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "fig.png"
    argv = ["--image", str(PARROTS), "--scenario", "dim the lights", "--out", str(out)]
    argv += ["--checkpoints", str(checkpoints), "--set", "max_side=48", "--pdf"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out), str(out.with_suffix(".pdf"))]
    assert Image.open(out).width == FIGURE_WIDTH
    assert main([*argv[:6], "--set", "a=9"]) == 2
    assert "contrast a must be in" in capsys.readouterr().out


def test_the_committed_classroom_figure() -> None:
    """assets/figures/dim-the-lights.png: a full-HD-wide PNG under 1 MB."""
    assert COMMITTED.is_file()
    assert COMMITTED.stat().st_size <= 1_000_000
    with Image.open(COMMITTED) as im:
        assert im.format == "PNG" and im.width == FIGURE_WIDTH and im.mode == "RGB"
