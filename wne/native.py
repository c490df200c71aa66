"""Denoising data in its own units: :func:`denoise` for arrays of any dtype, layout and size.

An equivariant model (WNE or ``ne``) works on the values as they are (``f(a·y + b) =
a·f(y) + b``): a 12-bit frame in 16 bits or a float frame with a negative offset gets the
answer of the image scaled to [0, 1], with no rescaling guess. A plain model's input is
mapped to [0, 1] from ``data_range`` (default: the dtype's range, ``[iinfo.min,
iinfo.max]``; floats taken to be in [0, 1]) and its output mapped back. Images go through
the tiles of :func:`wne.tiling.tile_grid`, read and written one at a time; with
``stats="image"`` WNE's mean and spread are the whole image's (one streaming pass before
the tiles), so the result does not depend on the tile size or device, and memory does not
grow with the image beyond its input and output (none of either for memmaps).
"""

from __future__ import annotations

import functools
import logging
import math
import mmap
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from wne import catalog
from wne.checkpoints import available_checkpoints, default_root, load, read_config
from wne.chunked import denoise_dask, is_dask
from wne.device import pick_device
from wne.models._common import MIN_SIZE
from wne.tiling import TILE_OVERLAP, tile_grid, tile_size
from wne.wrapper import NormEquivariant, normalization_stats

__all__ = ["default_model", "denoise", "load_model", "model_units"]

log = logging.getLogger(__name__)

Array = np.ndarray | torch.Tensor


def default_model(device: str | torch.device | None = None, root: str | Path | None = None) -> str:
    """The best WNE checkpoint installed for ``device``: each family's σ_train = 25 WNE key
    that :func:`wne.catalog.best_checkpoint` picks for the device, then the one with the
    highest Set12 PSNR its ``config.json`` records (ties: the catalog's order).

    Raises:
        FileNotFoundError: If no WNE checkpoint at σ_train = 25 is installed.
    """
    root = Path(root) if root is not None else default_root()
    found = set(available_checkpoints(root)) & {e.key for e in catalog.entries(sigma_train=25)}
    psnrs = {k: catalog.set12_psnr(read_config(root / k).metrics) for k in sorted(found)}
    dev = pick_device(device)
    picks = [
        k
        for f in catalog.families(zoo_only=True)
        if "wne" in f.variants
        and (k := catalog.best_checkpoint(f.id, "wne", 25, psnrs, device=dev))
    ]
    if not picks:
        raise FileNotFoundError(f"no WNE checkpoint at σ_train = 25 in {root}")
    return max(picks, key=lambda k: (psnrs[k] or float("-inf"), -picks.index(k)))


@functools.lru_cache(maxsize=8)
def _default_cached(device: str, root: str) -> str:
    return default_model(device, root)


@functools.lru_cache(maxsize=8)
def _load_cached(key: str, device: str, root: str) -> nn.Module:
    log.info("denoising with %s on %s", key, device)
    return load(key, device=device, root=root)


def load_model(
    model: str | nn.Module | None, device: str | torch.device | None = None
) -> nn.Module:
    """A model to denoise with: a catalog key loaded (verified, cached) by :func:`wne.load`,
    a module (moved to ``device`` when one is given), or ``None``: :func:`default_model`
    (chosen once per device and folder in a process)."""
    if isinstance(model, nn.Module):
        return model.to(pick_device(device)) if device is not None else model
    dev, root = str(pick_device(device)), str(default_root())
    return _load_cached(model or _default_cached(dev, root), dev, root)


def model_units(model: nn.Module) -> Literal["wne", "ne", "plain"]:
    """How a model takes data: ``"wne"`` (a :class:`wne.NormEquivariant`) and ``"ne"``
    (a catalogued equivariant architecture) in its own units, ``"plain"`` in [0, 1]."""
    if isinstance(model, NormEquivariant):
        return "wne"
    cfg = getattr(model, "wne_config", None)
    found = catalog.describe(cfg.arch, cfg.wrapper) if cfg is not None else None
    return "ne" if found is not None and found[1] == "ne" else "plain"


_BAND_VALUES = 1 << 22
"""Values per band of the statistics pass (float64: 32 MiB)."""


def _mapping(arr: object) -> mmap.mmap | None:
    """The shared file mapping under a numpy memmap (or a view of one), else None
    (copy-on-write mappings too: dropping their pages would lose their changes)."""
    while arr is not None:
        mm = getattr(arr, "_mmap", None)
        if mm is not None:
            return mm if getattr(arr, "mode", None) in ("r", "r+", "w+") else None
        arr = getattr(arr, "base", None)
    return None


def _release(*arrays: object) -> None:
    """Writes back and unmaps the pages a memmap has touched so far: they stay in the page
    cache, but no longer count as this process's memory, so reading and writing a file of
    any size holds a few bands of it at most."""
    for arr in arrays:
        mm = _mapping(arr)
        if mm is None or not hasattr(mmap, "MADV_DONTNEED"):
            continue
        try:
            mm.flush()
            mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # a closed mapping, an OS without madvise
            pass


class _Frames:
    """Reads and writes tiles of the frames of an array, whatever its layout.

    numpy arrays and array-likes (a memmap, :class:`wne.imageio.TiffPages`) are
    ``[..., H, W]`` or ``[..., H, W, C]``, tensors ``[..., H, W]`` or ``[..., C, H, W]``;
    tiles come out as ``[C, h, w]`` tensors in native byte order."""

    def __init__(self, arr: object, is_torch: bool) -> None:
        shape = tuple(arr.shape)
        if len(shape) < 2:
            raise ValueError(f"expected [..., H, W] real image data, got {arr.dtype} {shape}")
        self.is_torch = is_torch
        self.has_c = len(shape) >= 3 and shape[-3 if is_torch else -1] <= 4
        if not self.has_c:
            self.lead, self.channels = shape[:-2], 1
        elif is_torch:
            self.lead, self.channels = shape[:-3], shape[-3]
        else:
            self.lead, self.channels = shape[:-3], shape[-1]
        self.height, self.width = shape[-3:-1] if self.has_c and not is_torch else shape[-2:]
        self.count = math.prod(self.lead)

    def _key(self, i: int, rows: slice, cols: slice, chans: slice) -> tuple:
        idx = tuple(int(j) for j in np.unravel_index(i, self.lead)) if self.lead else ()
        if not self.has_c:
            return (*idx, rows, cols)
        return (*idx, chans, rows, cols) if self.is_torch else (*idx, rows, cols, chans)

    def read(self, arr: object, i: int, rows: slice, cols: slice, chans: slice) -> torch.Tensor:
        """Frame ``i``'s ``chans × rows × cols`` as a ``[C, h, w]`` tensor (a copy for numpy)."""
        part = arr[self._key(i, rows, cols, chans)]
        if self.is_torch:
            return part if self.has_c else part[None]
        part = np.asarray(part)  # a tile: copied below, so read-only input is fine
        part = np.moveaxis(part, -1, 0) if self.has_c else part[None]
        return torch.from_numpy(np.array(part, part.dtype.newbyteorder("="), order="C"))

    def write(
        self, out: object, i: int, rows: slice, cols: slice, chans: slice, values: torch.Tensor
    ) -> None:
        """Stores ``[C, h, w]`` values in frame ``i`` of ``out`` (cast to its dtype)."""
        key = self._key(i, rows, cols, chans)
        if self.is_torch:
            out[key] = (values if self.has_c else values[0]).to(out.device, out.dtype)
        else:
            values = values.cpu()
            out[key] = (values.permute(1, 2, 0) if self.has_c else values[0]).numpy()


def _bands(height: int, width: int, channels: int) -> list[slice]:
    rows = max(1, _BAND_VALUES // max(1, width * channels))
    return [slice(r, min(r + rows, height)) for r in range(0, height, rows)]


def _image_stats(
    read: Callable[[slice], torch.Tensor], height: int, width: int, per_channel: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """A frame's :func:`wne.wrapper.normalization_stats` in one streaming pass: the
    statistics of each band of rows, merged in float64 (Chan et al.'s pairwise update;
    a constant image keeps exactly ``std == 0``).

    Args:
        read: ``[C, h, w]`` values of a band of rows, in the working dtype.
        height: The frame's height.
        width: The frame's width.
        per_channel: Each channel is its own sample (a grayscale model), else one sample.

    Returns:
        ``(mean, std)``, each ``[S, 1, 1, 1]`` in the statistics dtype.
    """
    n, mean, m2, dtype = 0, torch.zeros(()), torch.zeros(()), torch.float32
    for band in _bands(height, width, 4):
        y = read(band)
        m, s = normalization_stats(y[:, None] if per_channel else y[None])
        dtype, k = m.dtype, y[0].numel() if per_channel else y.numel()
        m, s = m.double().reshape(-1), s.double().reshape(-1)
        if n == 0:
            mean, m2 = m, s.square() * k
        else:
            delta, total = m - mean, n + k
            mean = mean + delta * (k / total)  # unchanged when delta == 0: constant stays exact
            m2 = m2 + s.square() * k + delta.square() * (n * k / total)
        n += k
    return mean.to(dtype).reshape(-1, 1, 1, 1), (m2 / n).sqrt().to(dtype).reshape(-1, 1, 1, 1)


def _native_order(image: object) -> np.dtype:
    return np.dtype(image.dtype).newbyteorder("=")  # torch reads native byte order only


def _tile_model(
    net: nn.Module,
    units: str,
    value_range: tuple[float, float],
    stats: tuple[torch.Tensor, torch.Tensor] | None,
    device: torch.device,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model on one ``[B, C, h, w]`` tile of values in their own units. A WNE model with
    whole-image ``stats`` runs as :meth:`wne.NormEquivariant.steps` does, its normalize and
    de-normalize around ``net.backbone`` written in place (tested equal to the wrapper)."""

    def call(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return module(x.to(device, torch.float32)).float().to(x.device)

    if units == "plain":
        lo, hi = value_range
        return lambda y: call(net, (y - lo) / (hi - lo)) * (hi - lo) + lo
    if stats is None:  # NE models, or WNE with per-tile statistics
        return lambda y: call(net, y)
    mean, std = stats
    safe = torch.where(std > 0, std, torch.ones_like(std))

    def wne(y: torch.Tensor) -> torch.Tensor:
        g = call(net.backbone, (y - mean).div_(safe)).to(std.dtype).mul_(std)
        return g.add_(mean) if net.mode == "direct" else y - g

    return wne


def denoise(
    image: Array,
    model: str | nn.Module | None = None,
    device: str | torch.device | None = None,
    *,
    stats: Literal["image", "tile"] = "image",
    data_range: tuple[float, float] | None = None,
    tile: int | None = None,
    overlap: int = TILE_OVERLAP,
    out: Array | None = None,
    progress: Callable[[int], None] | None = None,
) -> Array:
    """Denoises an image or a stack in its own dtype, shape and units, tile by tile.

    Layout: numpy arrays are ``[..., H, W]`` or ``[..., H, W, C]``, torch tensors
    ``[..., H, W]`` or ``[..., C, H, W]``; an axis of at most 4 in the channel place is
    the channels (a second or fourth channel is alpha, kept as is), and every leading
    axis is frames, denoised one at a time. A grayscale model takes each colour channel
    as its own image.

    Memory: each frame is read a band or a tile at a time (WNE's statistics in one
    streaming pass, then the model tile by tile), so beyond the input and ``out`` it costs
    a few tiles. With a numpy memmap in and out (or :class:`wne.imageio.TiffPages`, or any
    array-like with numpy slicing as input) a file of any size stays out of memory: the
    pages of each row of tiles are handed back once done.

    Output: the input's type, dtype, shape and device; integers are rounded and
    clipped to their dtype's range, floats are neither clipped nor rounded.

    Args:
        image: The noisy data.
        model: A catalog key, a loaded module, or None (:func:`default_model`).
        device: Where the model runs (default: :func:`wne.pick_device`).
        stats: For WNE models, mean and spread over the whole ``"image"`` or per ``"tile"``.
        data_range: For plain models, the values mapped to [0, 1] (default: the dtype's).
        tile: Tile side (default: :func:`wne.tiling.tile_size` of the device).
        overlap: Smallest overlap of neighbouring tiles.
        out: Where to write the result, of the input's shape: a numpy array (a memmap,
            say) for numpy-like input, a tensor for a tensor (default: a new one).
        progress: Called after each tile with the number of pixels (H × W) it supplied.

    Returns:
        ``out``, or a new array or tensor.

    Raises:
        ValueError: For an unsupported dtype or shape, an image smaller than 8×8, NaN
            or infinite values, an image whose channels the model cannot take, a bad
            ``stats``, ``data_range`` or ``out``.
    """
    if stats not in ("image", "tile"):
        raise ValueError(f"stats must be 'image' or 'tile', got {stats!r}")
    if data_range is not None and not float(data_range[0]) < float(data_range[1]):
        raise ValueError(f"data_range must be (low, high) with low < high, got {data_range}")
    is_torch = isinstance(image, torch.Tensor)
    if is_torch:
        dtype = image.dtype
    else:
        kind = np.dtype(image.dtype)
        dtype = (
            None
            if kind.kind in "bcOSUVMm"
            else torch.from_numpy(np.empty(0, kind.newbyteorder("="))).dtype
        )
    if dtype is None or dtype == torch.bool or dtype.is_complex or len(image.shape) < 2:
        raise ValueError(
            f"expected [..., H, W] real image data, got {image.dtype} {tuple(image.shape)}"
        )
    layout = _Frames(image, is_torch)
    if min(layout.height, layout.width) < MIN_SIZE:
        raise ValueError(
            f"{(layout.height, layout.width)} pixels: the models need {MIN_SIZE}×{MIN_SIZE}"
        )
    net = load_model(model, device)
    units = model_units(net)
    first = next(iter(net.parameters()), None)
    dev = first.device if first is not None else pick_device(device)
    colour = layout.channels - (layout.channels in (2, 4))  # the rest is alpha
    takes = getattr(getattr(net, "backbone", net), "channels", 1)
    if takes not in (1, colour):
        raise ValueError(f"the model takes {takes} channel(s), the image has {colour}")
    if dtype.is_floating_point:
        work = torch.float64 if dtype == torch.float64 else torch.float32
        value_range, clip = (0.0, 1.0), None
    else:
        info = torch.iinfo(dtype)
        work, value_range = torch.float32, (float(info.min), float(info.max))
        clip = value_range
    value_range = (float(data_range[0]), float(data_range[1])) if data_range else value_range
    if is_dask(image):
        if out is not None:
            raise ValueError("out is not taken with a dask array: store the lazy result")

        def block(y: torch.Tensor, st: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
            res = _tile_model(net, units, value_range, st, dev)(
                y[:, None] if takes == 1 else y[None]
            )
            return res.reshape(colour, *res.shape[-2:])

        return denoise_dask(
            image, block, has_c=layout.has_c, colour=colour, per_channel=takes == 1,
            image_stats=units == "wne" and stats == "image", work=work, clip=clip,
            tile=tile or tile_size(dev), overlap=overlap,
        )  # fmt: skip
    if out is None:
        out = torch.empty_like(image) if is_torch else np.empty(image.shape, _native_order(image))
    elif tuple(out.shape) != tuple(image.shape) or isinstance(out, torch.Tensor) != is_torch:
        raise ValueError(f"out must be a {type(image).__name__} of shape {tuple(image.shape)}")
    grid = tile_grid(layout.height, layout.width, tile or tile_size(dev), overlap)
    col, alpha, whole = slice(0, colour), slice(colour, None), slice(None)
    for i in range(layout.count):

        def read(rows: slice, cols: slice = whole, i: int = i) -> torch.Tensor:
            return layout.read(image, i, rows, cols, col).to(work)

        def band(rows: slice) -> torch.Tensor:
            y = read(rows)
            _release(image)  # a copy is taken: the band's pages may leave memory
            return y

        with torch.inference_mode():  # `out` stays a normal tensor
            image_stats = None
            if units == "wne" and stats == "image":  # over the whole image, not per tile
                mean, std = _image_stats(band, layout.height, layout.width, takes == 1)
                if not bool(torch.isfinite(mean).all() and torch.isfinite(std).all()):
                    raise ValueError("the image holds NaN or infinite values")
                image_stats = (mean, std)
            run = _tile_model(net, units, value_range, image_stats, dev)
            for k, t in enumerate(grid):
                y = read(t.rows, t.cols)
                res = run(y[:, None] if takes == 1 else y[None])
                res = res.reshape(colour, *res.shape[-2:])[(slice(None), *t.inner)]
                if clip is not None:
                    res = res.round_().clamp_(*clip)
                layout.write(out, i, t.keep_rows, t.keep_cols, col, res)
                if colour < layout.channels:  # alpha, as it is
                    kept = layout.read(image, i, t.keep_rows, t.keep_cols, alpha)
                    layout.write(out, i, t.keep_rows, t.keep_cols, alpha, kept)
                if progress is not None:
                    rows, cols = t.keep_rows, t.keep_cols
                    progress((rows.stop - rows.start) * (cols.stop - cols.start))
                if k + 1 == len(grid) or grid[k + 1].rows != t.rows:
                    _release(image, out)  # a row of tiles done: its pages leave memory
    return out
