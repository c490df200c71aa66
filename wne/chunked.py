"""Denoising a ``dask.array`` lazily: :func:`wne.denoise` given one returns one.

Each frame's mean and spread (WNE with ``stats="image"``) are dask reductions over the whole
frame, taken relative to its first value as :func:`wne.wrapper.normalization_stats` does (a
constant frame keeps ``std == 0``); the model runs on the very tiles of :func:`wne.tiling.tile_grid`
that the numpy path uses, one task each, their kept parts the result's chunks. So the result
equals the numpy path for any model (a transformer's windows included), on one machine or on
a cluster; memory per task is one tile and its part of the input's chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from wne.tiling import tile_grid

__all__ = ["denoise_dask", "is_dask"]


def is_dask(image: object) -> bool:
    """Whether ``image`` is a ``dask.array.Array`` (without importing dask otherwise)."""
    return type(image).__module__.split(".")[0] == "dask" and hasattr(image, "chunks")


def _frame_stats(x: Any, axes: tuple[int, ...]) -> tuple[Any, Any]:
    """Lazy ``(mean, std)`` (population, float64) of ``x`` over ``axes``, relative to each
    sample's first value (exact for a constant sample), keeping the reduced axes."""
    first = x[tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))]
    d = x.astype(np.float64) - first.astype(np.float64)
    mean_d = d.mean(axis=axes, keepdims=True)
    var = ((d - mean_d) ** 2).mean(axis=axes, keepdims=True)
    return first.astype(np.float64) + mean_d, var**0.5


def denoise_dask(
    image: Any,
    run: Callable[[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None], torch.Tensor],
    *,
    has_c: bool,
    colour: int,
    per_channel: bool,
    image_stats: bool,
    work: torch.dtype,
    clip: tuple[float, float] | None,
    tile: int,
    overlap: int,
) -> Any:
    """The lazy result of ``run`` over ``image`` ``[..., H, W]`` or ``[..., H, W, C]``.

    Args:
        image: The dask array (numpy layout).
        run: The model on one ``[C, h, w]`` tile in ``work`` dtype with the frame's
            ``(mean, std)`` (``[S, 1, 1, 1]``) or None, returning ``[colour, h, w]``.
        has_c: Whether the last axis is channels.
        colour: The channels denoised (the rest, alpha, is kept as is).
        per_channel: The statistics are per channel (a grayscale model).
        image_stats: Whole-frame statistics (else the model's own, per tile).
        work: The dtype the model's input is given in.
        clip: Integer output: its ``(low, high)``, rounded and clipped.
        tile: Tile side (:func:`wne.tiling.tile_grid`).
        overlap: Smallest overlap of neighbouring tiles.

    Returns:
        A dask array of ``image``'s shape and dtype, one chunk per tile's kept part.
    """
    import dask
    import dask.array as da

    lead = image.shape[: image.ndim - (3 if has_c else 2)]
    height, width = image.shape[len(lead) : len(lead) + 2]
    grid = tile_grid(height, width, tile, overlap)
    np_dtype = np.dtype(image.dtype)
    torch_dtype = torch.from_numpy(np.empty(0, np_dtype.newbyteorder("="))).dtype

    def one(y: np.ndarray, inner: tuple[slice, slice], stats: Any) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(y, y.dtype.newbyteorder("=")))
        t = (t.permute(2, 0, 1) if has_c else t[None]).to(work)
        given = None
        if stats is not None:
            n = colour if per_channel and has_c else 1
            given = tuple(
                torch.as_tensor(np.asarray(v), dtype=torch.float64).reshape(-1)[:n].to(work)
                .reshape(n, 1, 1, 1)
                for v in stats
            )  # fmt: skip
        with torch.inference_mode():
            res = run(t[:colour], given)[(slice(None), *inner)]
            if clip is not None:
                res = res.round_().clamp_(*clip)
        kept = np.array(y[inner], copy=True)  # alpha, as it is
        if has_c:
            kept[..., :colour] = res.to(torch_dtype).permute(1, 2, 0).numpy()
        else:
            kept[...] = res[0].to(torch_dtype).numpy()
        return kept

    tail = (image.shape[-1],) if has_c else ()
    frames = []
    for idx in np.ndindex(*lead) if lead else [()]:
        frame = image[idx]
        stats = None
        if image_stats:
            part = frame[..., :colour] if has_c else frame
            axes = (0, 1) if per_channel or not has_c else (0, 1, 2)
            stats = dask.delayed(tuple)(_frame_stats(part, axes))
        rows = []
        for r0 in sorted({g.rows.start for g in grid}):
            row = []
            for g in (g for g in grid if g.rows.start == r0):
                shape = (g.keep_rows.stop - g.keep_rows.start, g.keep_cols.stop - g.keep_cols.start)
                done = dask.delayed(one, pure=True)(frame[g.rows, g.cols], g.inner, stats)
                part = da.from_delayed(done, (*shape, *tail), dtype=np_dtype)
                row.append([part] if has_c else part)  # da.block nests one list per axis
            rows.append(row)
        frames.append(da.block(rows))
    if not lead:
        return frames[0]
    return da.stack(frames).reshape(image.shape)
