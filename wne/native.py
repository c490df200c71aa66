"""Denoising data in its own units: :func:`denoise` for arrays of any dtype, layout and size.

An equivariant model (WNE or ``ne``) works on the values as they are (``f(a·y + b) =
a·f(y) + b``): a 12-bit frame in 16 bits or a float frame with a negative offset gets the
answer of the image scaled to [0, 1], with no rescaling guess. A plain model's input is
mapped to [0, 1] from ``data_range`` (default: the dtype's range, ``[iinfo.min,
iinfo.max]``; floats taken to be in [0, 1]) and its output mapped back. Images go through
:func:`wne.apply_tiled`; with ``stats="image"`` WNE's mean and spread are the whole
image's, so the result does not depend on the tile size or device.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from wne import catalog
from wne.checkpoints import available_checkpoints, default_root, load, read_config
from wne.device import pick_device
from wne.models._common import MIN_SIZE
from wne.tiling import TILE_OVERLAP, apply_tiled
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


def _run(
    model: nn.Module,
    y: torch.Tensor,
    units: str,
    value_range: tuple[float, float],
    stats: str,
    **tiling: object,
) -> torch.Tensor:
    """The model on ``[B, C, H, W]`` values in their own units, tiled. A WNE model's
    normalize, backbone and de-normalize are :meth:`wne.NormEquivariant.steps` written in place,
    so that a frame of any size costs a few copies at most (tested equal to the wrapper)."""
    if units == "plain":
        lo, hi = value_range
        return apply_tiled(model, (y - lo) / (hi - lo), **tiling) * (hi - lo) + lo
    if units == "ne" or stats == "tile":
        return apply_tiled(model, y, **tiling)
    mean, std = normalization_stats(y)  # over the whole image, not per tile
    if not bool(torch.isfinite(mean).all() and torch.isfinite(std).all()):
        raise ValueError("the image holds NaN or infinite values")
    z = (y - mean).div_(torch.where(std > 0, std, torch.ones_like(std)))
    g = apply_tiled(model.backbone, z.float(), **tiling).to(std.dtype).mul_(std)
    del z  # in-place steps: a few copies of one frame at most, at any size
    return g.add_(mean) if model.mode == "direct" else y - g


def _native_order(image: np.ndarray) -> np.dtype:
    return np.asarray(image).dtype.newbyteorder("=")  # torch reads native byte order only


def denoise(
    image: Array,
    model: str | nn.Module | None = None,
    device: str | torch.device | None = None,
    *,
    stats: Literal["image", "tile"] = "image",
    data_range: tuple[float, float] | None = None,
    tile: int | None = None,
    overlap: int = TILE_OVERLAP,
) -> Array:
    """Denoises an image or a stack in its own dtype, shape and units.

    Layout: numpy arrays are ``[..., H, W]`` or ``[..., H, W, C]``, torch tensors
    ``[..., H, W]`` or ``[..., C, H, W]``; an axis of at most 4 in the channel place is
    the channels (a second or fourth channel is alpha, kept as is), and every leading
    axis is frames, denoised one at a time. A grayscale model takes each colour channel
    as its own image.

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

    Raises:
        ValueError: For an unsupported dtype or shape, an image smaller than 8×8, NaN
            or infinite values, an image whose channels the model cannot take, or a bad
            ``stats`` or ``data_range``.
    """
    if stats not in ("image", "tile"):
        raise ValueError(f"stats must be 'image' or 'tile', got {stats!r}")
    if data_range is not None and not float(data_range[0]) < float(data_range[1]):
        raise ValueError(f"data_range must be (low, high) with low < high, got {data_range}")
    is_torch = isinstance(image, torch.Tensor)
    x = image if is_torch else torch.from_numpy(np.require(image, _native_order(image), ["C", "W"]))
    if x.dtype == torch.bool or x.is_complex() or x.ndim < 2:
        raise ValueError(f"expected [..., H, W] real image data, got {x.dtype} {tuple(x.shape)}")
    has_c = x.ndim >= 3 and x.shape[-3 if is_torch else -1] <= 4
    if not has_c:
        frames = x.reshape(-1, 1, *x.shape[-2:])
    elif is_torch:
        frames = x.reshape(-1, *x.shape[-3:])
    else:
        frames = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)
    if min(frames.shape[-2:]) < MIN_SIZE:
        raise ValueError(
            f"{tuple(frames.shape[-2:])} pixels: the models need {MIN_SIZE}×{MIN_SIZE}"
        )
    net = load_model(model, device)
    units = model_units(net)
    first = next(iter(net.parameters()), None)
    dev = first.device if first is not None else pick_device(device)
    colour = frames.shape[1] - (frames.shape[1] in (2, 4))  # the rest is alpha
    takes = getattr(getattr(net, "backbone", net), "channels", 1)
    if takes not in (1, colour):
        raise ValueError(f"the model takes {takes} channel(s), the image has {colour}")
    if x.is_floating_point():
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        value_range, clip = (0.0, 1.0), None
    else:
        info = torch.iinfo(x.dtype)
        work, value_range = torch.float32, (float(info.min), float(info.max))
        clip = value_range
    value_range = (float(data_range[0]), float(data_range[1])) if data_range else value_range
    out = torch.empty_like(frames)
    for i, frame in enumerate(frames):
        with torch.inference_mode():  # `out` stays a normal tensor
            y = frame[:colour].to(work)  # stays where it is: tiles go to the device
            y = y[:, None] if takes == 1 else y[None]
            res = _run(net, y, units, value_range, stats, device=dev, tile=tile, overlap=overlap)
            res = res.reshape(colour, *res.shape[-2:])
            if clip is not None:
                res = res.round_().clamp_(*clip)
            out[i, :colour] = res.to(out.device, out.dtype)
            out[i, colour:] = frame[colour:]
    if is_torch:
        return out.reshape(x.shape)
    return (out.permute(0, 2, 3, 1) if has_c else out).reshape(x.shape).numpy()
