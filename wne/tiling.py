"""Exact tiled inference: large images through a model in overlapping tiles.

Neighbouring tiles overlap by at least ``overlap`` pixels; each output pixel comes
from the one tile in which it lies farthest from a cut edge (seams in the middle of
the overlaps). So a model whose receptive field reaches at most ``overlap // 2``
pixels gives the same result tiled as untiled, and an exactly normalization-
equivariant model stays exactly equivariant (WNE's statistics are then per tile).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

__all__ = [
    "GPU_TILE_SIZE",
    "TILE_OVERLAP",
    "TILE_SIZE",
    "Tile",
    "apply_tiled",
    "tile_count",
    "tile_grid",
    "tile_size",
    "tile_starts",
]

TILE_SIZE = 512
"""Default tile side in pixels on the CPU (bounds the memory of one model call)."""
GPU_TILE_SIZE = 2048
"""Default tile side on a GPU (a 1024² image goes through whole)."""
TILE_OVERLAP = 32
"""Default overlap of neighbouring tiles in pixels."""


def tile_starts(length: int, tile: int = TILE_SIZE, overlap: int = TILE_OVERLAP) -> list[int]:
    """Tile start offsets covering ``[0, length)``, neighbours overlapping by ``overlap``.

    Raises:
        ValueError: If ``overlap`` is not in ``[0, tile)``.
    """
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile={tile}), got {overlap}")
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return [*starts, length - tile]


def tile_size(device: torch.device | str | None = None) -> int:
    """The default tile side: :data:`GPU_TILE_SIZE` on a CUDA ``device``, else :data:`TILE_SIZE`."""
    on_gpu = device is not None and torch.device(device).type == "cuda"
    return GPU_TILE_SIZE if on_gpu else TILE_SIZE


def tile_count(
    height: int,
    width: int,
    tile: int | None = None,
    overlap: int = TILE_OVERLAP,
    *,
    device: torch.device | str | None = None,
) -> int:
    """How many tiles :func:`apply_tiled` uses for an image (``tile``: its default)."""
    tile = tile or tile_size(device)
    return len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))


def _keep(starts: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """For each tile, the ``[lo, hi)`` range of pixels it supplies: seams halfway
    through each overlap, so the ranges partition ``[0, length)``."""
    ends = [min(s + tile, length) for s in starts]
    cuts = [(starts[i + 1] + ends[i]) // 2 for i in range(len(starts) - 1)]
    return list(zip([0, *cuts], [*cuts, length], strict=True))


class Tile(NamedTuple):
    """One tile of :func:`tile_grid`: the model reads ``rows × cols`` of the image and the
    tile supplies the output's ``keep_rows × keep_cols`` (both in image coordinates)."""

    rows: slice
    cols: slice
    keep_rows: slice
    keep_cols: slice

    @property
    def inner(self) -> tuple[slice, slice]:
        """The kept part in the tile's own coordinates."""
        top, left = self.rows.start, self.cols.start
        return (
            slice(self.keep_rows.start - top, self.keep_rows.stop - top),
            slice(self.keep_cols.start - left, self.keep_cols.stop - left),
        )


def tile_grid(
    height: int, width: int, tile: int = TILE_SIZE, overlap: int = TILE_OVERLAP
) -> list[Tile]:
    """The tiles :func:`apply_tiled` uses for a ``height × width`` image, row by row; their
    kept parts partition the image (seams halfway through each overlap).

    Raises:
        ValueError: If ``overlap`` is not in ``[0, tile)``.
    """
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    return [
        Tile(slice(top, top + th), slice(left, left + tw), slice(r0, r1), slice(c0, c1))
        for top, (r0, r1) in zip(rows, _keep(rows, tile, height), strict=True)
        for left, (c0, c1) in zip(cols, _keep(cols, tile, width), strict=True)
    ]


def apply_tiled(
    model: nn.Module,
    x: torch.Tensor,
    *,
    device: torch.device | str | None = None,
    tile: int | None = None,
    overlap: int = TILE_OVERLAP,
) -> torch.Tensor:
    """Runs ``model`` on ``x`` in overlapping tiles (see the module docstring), without
    gradients; each tile is moved to ``device`` on its own, so its memory holds one.

    Args:
        model: A ``[B, C, H, W] → [B, C, H, W]`` model.
        x: ``[B, C, H, W]`` input (any device; float32 after conversion).
        device: Where the model runs (default: the device of its first parameter,
            else ``x``'s).
        tile: Tile side (default: :func:`tile_size` of ``device``).
        overlap: Smallest overlap of neighbouring tiles.

    Returns:
        ``[B, C, H, W]`` float32 output on ``x``'s device, unclipped.

    Raises:
        ValueError: For a tensor that is not 4-D, or ``overlap`` outside ``[0, tile)``.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a [B, C, H, W] tensor, got shape {tuple(x.shape)}")
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else x.device
    tile = tile or tile_size(device)
    home = x.device
    x = x.to(torch.float32)
    h, w = x.shape[-2:]
    grid = tile_grid(h, w, tile, overlap)
    with torch.inference_mode():
        if len(grid) == 1:
            return model(x.to(device)).float().to(home)
        out = torch.empty_like(x)
        for t in grid:
            y = model(x[..., t.rows, t.cols].to(device)).float().to(home)
            out[..., t.keep_rows, t.keep_cols] = y[(..., *t.inner)]
        return out
