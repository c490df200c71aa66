"""Slide-ready figure: images in one labelled grid under a title, as PNG and PDF (matplotlib,
imported inside the functions), about 1920 px wide, images enlarged by whole pixels.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["DPI", "FIGURE_WIDTH", "Figure", "Tile", "render_figure"]

FIGURE_WIDTH = 1920
"""Width of the PNG in pixels (a full-HD slide)."""
DPI = 100
"""Pixels per inch of the PNG (the PDF page has the same size in inches)."""
_INK, _MUTED = "#141414", "#5a5a5a"


@dataclass(frozen=True)
class Tile:
    """One image of the figure: ``[H, W]`` or ``[H, W, 3]`` uint8, a title and a caption line."""

    image: np.ndarray
    title: str
    caption: str = ""

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
            raise TypeError(f"tile {self.title!r}: image must be a uint8 numpy array")
        if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)) or 0 in img.shape:
            raise ValueError(f"tile {self.title!r}: image must be HxW or HxWx3, got {img.shape}")


@dataclass(frozen=True)
class Figure:
    """A rendered figure: PNG and PDF bytes, the PNG's ``size`` and each tile's ``boxes``
    (left, top, right, bottom) in tile order."""

    png: bytes
    pdf: bytes
    size: tuple[int, int]
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)

    def save(self, target: str | Path, stem: str = "figure") -> list[Path]:
        """Writes to ``target`` (``.png`` or ``.pdf``), else ``stem.png`` and ``stem.pdf`` into the
        folder ``target``; returns the files. ValueError for another extension."""
        target = Path(target)
        suffix = target.suffix.lower()
        if suffix and not target.is_dir() and suffix not in (".png", ".pdf"):
            raise ValueError(f"figure file must end in .png or .pdf, got {target.name!r}")
        if suffix in (".png", ".pdf") and not target.is_dir():
            paths = [target]
        else:
            paths = [target / f"{stem}.png", target / f"{stem}.pdf"]
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.png if path.suffix.lower() == ".png" else self.pdf)
        return paths


def _grid(n: int) -> tuple[int, int]:
    """Rows and columns: one row up to 3 tiles, else two rows (up to 10), else rows of five."""
    rows = 1 if n <= 3 else 2 if n <= 10 else math.ceil(n / 5)
    return rows, math.ceil(n / rows)


def _fit(text: str, width_in: float, size: float) -> float:
    """A font size (points) at most ``size`` at which ``text`` fits ``width_in`` inches."""
    return max(6.0, min(size, 72 * width_in / (0.58 * max(len(text), 1))))


def render_figure(tiles: Sequence[Tile], title: str, subtitle: str = "") -> Figure:
    """Draws ``tiles`` (reading order, at least one) in a grid under a title and subtitle.

    Raises:
        ValueError: Without tiles.
        TypeError: If an item is not a :class:`Tile`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    if not tiles:
        raise ValueError("a figure needs at least one image")
    if not all(isinstance(t, Tile) for t in tiles):
        raise TypeError("render_figure takes a sequence of Tile")
    rows, cols = _grid(len(tiles))
    h0, w0 = tiles[0].image.shape[:2]
    width = FIGURE_WIDTH / DPI
    margin, gap, band, head = 0.3, 0.2, 0.75, 1.1  # inches: edges, between tiles, labels, title
    tile_w = (width - 2 * margin - (cols - 1) * gap) / cols
    if tile_w * DPI >= 2 * w0:  # whole-pixel enlargement keeps the noise crisp
        tile_w = (tile_w * DPI // w0) * w0 / DPI
    tile_h = tile_w * h0 / w0
    height = head + rows * (tile_h + band) + (rows - 1) * gap + margin
    left = (width - cols * tile_w - (cols - 1) * gap) / 2
    fig = MplFigure(figsize=(width, height), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    fig.text(left / width, 1 - margin / height, title, va="top", color=_INK,
             fontsize=_fit(title, width - 2 * left, 26), fontweight="bold")  # fmt: skip
    fig.text(left / width, 1 - (margin + 0.5) / height, subtitle, va="top", color=_MUTED,
             fontsize=_fit(subtitle, width - 2 * left, 15))  # fmt: skip
    axes = []
    for i, tile in enumerate(tiles):
        col, row = divmod(i, rows)
        x = left + col * (tile_w + gap)
        top = head + row * (tile_h + band + gap)
        ax = fig.add_axes((x / width, 1 - (top + tile_h) / height, tile_w / width, tile_h / height))
        rgb = tile.image if tile.image.ndim == 3 else np.repeat(tile.image[..., None], 3, -1)
        ax.imshow(rgb, interpolation="nearest")  # RGB: exact grey levels (no colormap)
        ax.set_axis_off()
        axes.append(ax)
        y = 1 - (top + tile_h + 0.08) / height
        fig.text(x / width, y, tile.title, va="top", color=_INK, fontweight="bold",
                 fontsize=_fit(tile.title, tile_w, 16))  # fmt: skip
        fig.text(x / width, y - 0.32 / height, tile.caption, va="top", color=_MUTED,
                 fontsize=_fit(tile.caption, tile_w, 13))  # fmt: skip
    fig.canvas.draw()
    png, pdf = io.BytesIO(), io.BytesIO()
    Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]).save(png, format="png")
    fig.savefig(pdf, format="pdf", dpi=DPI, metadata={"Title": title, "Subject": subtitle})
    px_w, px_h = fig.canvas.get_width_height()
    boxes = []
    for ax in axes:
        b = ax.get_window_extent()
        boxes.append((round(b.x0), round(px_h - b.y1), round(b.x1), round(px_h - b.y0)))
    return Figure(png.getvalue(), pdf.getvalue(), (px_w, px_h), boxes)
