"""Noise-mismatch evaluation of denoisers on an image folder (the paper's protocol).

``python -m wne.evaluate --models dncnn-plain-s25 dncnn-wne-s25 --data DIR --out OUT``

Protocol (WNE paper §4, ``eval.py`` of the paper's code):

- Test noise levels ``geomspace(5, 100, 20) ∪ {σ_train}`` (0–255 scale), or ``--sigmas``.
- For each image ``i``, draw ``k`` and noise level ``σ``, the Gaussian noise is seeded
  from ``(seed, i, k, σ)`` (:func:`noise_seed`) and every model of the run sees the same
  noisy image (paired comparison). A noise level keeps its draws when the grid changes.
- Noisy inputs are never clipped or quantized; outputs are clamped to [0, 1] for PSNR
  and SSIM (data range 1). Input PSNR is measured on the unclipped noisy image.
- Per σ: mean over images and draws (in dB) of output PSNR, output SSIM
  (as :func:`wne.metrics.ssim`: 11×11 Gaussian window σ = 1.5, data range 1) and input
  PSNR.
- NE defect ``‖f(a·y + b) − (a·f(y) + b)‖ / ‖a·f(y) + b‖`` (unclamped outputs, as
  :func:`wne.ne_defect`) of each model on the noisy images at its own σ_train (draw 0;
  the first ``--defect-images`` images, default 4), for every ``(a, b)`` in
  ``--defect-a × --defect-b`` (default {0.25, 0.5, 2, 4} × {−0.5, 0, 0.5}); mean and max
  over images.

Images: ``.png .jpg .jpeg .tif .tiff .bmp`` files of the folder, sorted by name, loaded
as float32 in [0, 1]. For grayscale (1-channel) models a colour image is converted to
luma with PIL's ``convert("L")`` (ITU-R 601-2) and a log line says so; 3-channel models
get RGB. 16-bit images are scaled by 1/65535.

Outputs in ``--out``: ``psnr.csv`` (long format: one row per model × σ_test),
``defect.csv`` (one row per model × (a, b)), ``summary.json`` (matched-σ numbers,
σ_test 5 and the grid point nearest 50, grid mean, defect, the paper's numbers beside),
``mismatch.png`` (output vs input PSNR, optionally with the paper's published curves
dashed) and ``mismatch_ssim.png``.

``--all`` evaluates every σ_train in 10/25/50 that has checkpoints (keys ending in
``-s10`` etc.) into ``OUT/sigma10`` ...; σ_train values without checkpoints are skipped.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wne import __version__, checkpoints
from wne.degrade import gaussian_noise
from wne.lab import paper
from wne.metrics import psnr, ssim

__all__ = [
    "DEFECT_COLUMNS",
    "PSNR_COLUMNS",
    "EvalModel",
    "RunResult",
    "evaluate",
    "load_images",
    "main",
    "noise_seed",
    "paper_grid",
    "resolve_models",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
PSNR_COLUMNS = ("model", "sigma_test", "input_psnr", "psnr", "ssim", "n")
DEFECT_COLUMNS = ("model", "sigma", "a", "b", "defect_mean", "defect_max", "n")
DEFAULT_DEFECT_A = (0.25, 0.5, 2.0, 4.0)
DEFAULT_DEFECT_B = (-0.5, 0.0, 0.5)
DEFAULT_DEFECT_IMAGES = 4
DEFAULT_PIXEL_BUDGET = 1 << 19  # pixels per forward batch in auto mode (8 × 256², 2 × 512²)
MIN_SIDE = 11  # SSIM window
_SIGMA_KEY_RE = re.compile(r"-s(\d+(?:\.\d+)?)$")


# --------------------------------------------------------------------------- helpers


def paper_grid(sigma_trains: Iterable[float] = ()) -> list[float]:
    """The paper's test grid ``geomspace(5, 100, 20)`` with the training levels added.

    Args:
        sigma_trains: Training noise levels to include (0–255 scale).

    Returns:
        Sorted, duplicate-free noise levels.
    """
    return _merge_sigmas(np.geomspace(5.0, 100.0, 20).tolist(), sigma_trains)


def _merge_sigmas(base: Iterable[float], extra: Iterable[float]) -> list[float]:
    out: list[float] = []
    for s in sorted([float(v) for v in base] + [float(v) for v in extra]):
        if not (math.isfinite(s) and s >= 0):
            raise ValueError(f"noise levels must be finite and >= 0, got {s}")
        if not out or abs(s - out[-1]) > 1e-6:
            out.append(s)
    return out


def noise_seed(seed: int, image: int, draw: int, sigma: float) -> int:
    """Deterministic noise seed of one (image, draw, noise level) of a run.

    Mixes ``(seed, image, draw, round(1000·σ))`` with :class:`numpy.random.SeedSequence`,
    so different cells get independent streams and all models share them.

    Args:
        seed: Run seed (>= 0).
        image: Image index in the sorted folder.
        draw: Draw index.
        sigma: Noise level (0–255 scale).

    Returns:
        A 63-bit seed for :func:`wne.degrade.gaussian_noise`.
    """
    ss = np.random.SeedSequence([int(seed), int(image), int(draw), round(float(sigma) * 1000)])
    lo, hi = ss.generate_state(2, dtype=np.uint32).tolist()
    return ((hi << 32) | lo) & ((1 << 63) - 1)


def load_images(
    folder: str | Path, *, channels: int = 1, max_images: int | None = None
) -> list[tuple[str, torch.Tensor]]:
    """Loads the images of a folder as float32 tensors in [0, 1].

    Args:
        folder: Folder with ``.png/.jpg/.jpeg/.tif/.tiff/.bmp`` files (not recursive).
        channels: 1 (grayscale; colour images are converted to luma, with a log
            line) or 3 (RGB).
        max_images: Keep only the first N images (sorted by file name).

    Returns:
        ``(file name, image [1, channels, H, W])`` pairs, sorted by name.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no image.
        ValueError: On an unreadable image, an unsupported mode or a side < 11 px.
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    if max_images is not None:
        if max_images < 1:
            raise ValueError(f"max_images must be >= 1, got {max_images}")
        files = files[:max_images]
    images: list[tuple[str, torch.Tensor]] = []
    converted: list[str] = []
    for path in files:
        try:
            with Image.open(path) as img:
                img.load()
                arr = _to_array(img, channels, path, converted)
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"cannot read image {path}: {exc}") from exc
        if min(arr.shape[:2]) < MIN_SIDE:
            raise ValueError(
                f"image {path} is {arr.shape[1]}×{arr.shape[0]}: sides must be >= {MIN_SIDE} px"
            )
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        t = t.permute(2, 0, 1).unsqueeze(0) if t.ndim == 3 else t[None, None]
        images.append((path.name, t))
    if converted:
        log.warning(
            "converted %d colour image(s) to grayscale luma (PIL 'L', ITU-R 601-2): %s",
            len(converted),
            ", ".join(converted),
        )
    return images


def _to_array(img: Any, channels: int, path: Path, converted: list[str]) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        if arr.min() < 0 or arr.max() > 65535:
            raise ValueError(f"{path}: integer image outside the 16-bit range")
        arr = arr / 65535.0
        return np.repeat(arr[..., None], 3, axis=2) if channels == 3 else arr
    if img.mode == "F":
        raise ValueError(f"{path}: floating-point images (mode F) are not supported")
    if channels == 1:
        if img.mode not in ("L", "1", "LA"):
            rgb = np.asarray(img.convert("RGB"))
            if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
                converted.append(path.name)
        return np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    return np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0


# --------------------------------------------------------------------------- models


@dataclass
class EvalModel:
    """A model under evaluation.

    Attributes:
        key: Model key (the CSV's ``model`` column).
        model: The module, in eval mode, on the evaluation device.
        sigma_train: Its training noise level (0–255 scale).
        arch: Backbone name (``""`` if unknown).
        wrapper: ``"wne"`` or ``"none"``.
        channels: Image channels it takes.
        folder: Local checkpoint folder (``None`` if it came from the Hub).
        sha256: The weights' sha256 (``""`` if unknown; keys the result cache).
    """

    key: str
    model: nn.Module
    sigma_train: float
    arch: str = ""
    wrapper: str = "none"
    channels: int = 1
    folder: Path | None = None
    sha256: str = ""

    @property
    def paper_column(self) -> str | None:
        """The matching model of the paper's tables, if any."""
        return paper.paper_column(self.key, self.arch or None, self.wrapper)


def _sigma_from_key(key: str) -> float | None:
    m = _SIGMA_KEY_RE.search(key)
    return float(m.group(1)) if m else None


def resolve_models(
    names: Sequence[str],
    *,
    root: str | Path | None = None,
    device: torch.device | str = "cpu",
    sigma_train: float | None = None,
) -> list[EvalModel]:
    """Loads checkpoints by key (:func:`wne.load`) or by folder path.

    Args:
        names: Model keys, or paths of checkpoint folders.
        root: Local checkpoint folder for keys (default: the bundled one).
        device: Evaluation device.
        sigma_train: Fallback σ_train for checkpoints that record none and whose key
            has no ``-s<σ>`` suffix.

    Returns:
        The models, in the given order.

    Raises:
        ValueError: On duplicate keys or an unknown σ_train.
        wne.checkpoints.CheckpointError: If a checkpoint cannot be loaded.
    """
    out: list[EvalModel] = []
    local_root = Path(root) if root is not None else checkpoints.default_root()
    for name in names:
        path = Path(name)
        if (path / checkpoints.CONFIG_NAME).is_file():
            model = checkpoints.load_dir(path, device=device)
            folder: Path | None = path
        else:
            model = checkpoints.load(name, device=device, root=root)
            local = local_root / name
            folder = local if (local / checkpoints.CONFIG_NAME).is_file() else None
        cfg = getattr(model, "wne_config", None)
        key = cfg.key if cfg is not None else path.name
        if any(m.key == key for m in out):
            raise ValueError(f"model {key!r} given twice")
        s_train = cfg.sigma_train if cfg is not None and cfg.sigma_train else None
        s_train = s_train or _sigma_from_key(key) or sigma_train
        if s_train is None:
            raise ValueError(
                f"cannot tell the training σ of {key!r} (no sigma_train in its config, "
                "no -s<σ> suffix): pass --sigma-train"
            )
        model.eval()
        out.append(
            EvalModel(
                key=key,
                model=model,
                sigma_train=float(s_train),
                arch=cfg.arch if cfg is not None else "",
                wrapper=cfg.wrapper if cfg is not None else "none",
                channels=int((cfg.arch_kwargs if cfg is not None else {}).get("channels", 1)),
                folder=folder,
                sha256=cfg.sha256 if cfg is not None else "",
            )
        )
    return out


# --------------------------------------------------------------------------- evaluation


@dataclass
class RunResult:
    """Everything one evaluation run measured.

    Attributes:
        psnr_rows: One dict per model × σ_test (keys :data:`PSNR_COLUMNS`).
        defect_rows: One dict per model × (a, b) (keys :data:`DEFECT_COLUMNS`).
        sigmas: The σ_test grid.
        images: Image file names.
        draws: Noise draws per image and σ.
        seed: Run seed.
        defect_images: Images the defect sweep used (the first ones).
    """

    psnr_rows: list[dict[str, Any]] = field(default_factory=list)
    defect_rows: list[dict[str, Any]] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    draws: int = 1
    seed: int = 0
    defect_images: int = 0


def _batch_size(batch_size: int, h: int, w: int) -> int:
    return batch_size if batch_size > 0 else max(1, DEFAULT_PIXEL_BUDGET // (h * w))


def _metrics_device(device: torch.device) -> torch.device:
    # float64 metrics: MPS has no float64.
    return torch.device("cpu") if device.type == "mps" else device


def _images_fingerprint(images: Sequence[tuple[str, torch.Tensor]]) -> str:
    h = hashlib.sha256()
    for name, x in images:
        h.update(name.encode())
        h.update(str(tuple(x.shape)).encode())
        h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _cache_file(folder: Path, m: EvalModel, protocol: dict[str, Any]) -> Path | None:
    if not m.sha256:
        return None
    ident = {"key": m.key, "sha256": m.sha256, "sigma_train": m.sigma_train, **protocol}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]
    return folder / f"{m.key}-{digest}.json"


def _read_cache(path: Path | None, n_s: int, n_pairs: int) -> dict[str, Any] | None:
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        hit = {
            "out_sum": torch.tensor(data["out_sum"], dtype=torch.float64),
            "ssim_sum": torch.tensor(data["ssim_sum"], dtype=torch.float64),
            "in_sum": torch.tensor(data["in_sum"], dtype=torch.float64),
            "count": torch.tensor(data["count"], dtype=torch.long),
            "defects": [list(map(float, d)) for d in data["defects"]],
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable cache file %s: %s", path, exc)
        return None
    sizes = [hit[k].numel() for k in ("out_sum", "ssim_sum", "in_sum", "count")]
    if sizes != [n_s] * 4 or len(hit["defects"]) != n_pairs:
        log.warning("ignoring cache file %s: it does not fit this run", path)
        return None
    return hit


def _write_cache(
    path: Path,
    out_sum: torch.Tensor,
    ssim_sum: torch.Tensor,
    in_sum: torch.Tensor,
    count: torch.Tensor,
    defects: list[list[float]],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "out_sum": out_sum.tolist(),
        "ssim_sum": ssim_sum.tolist(),
        "in_sum": in_sum.tolist(),
        "count": count.tolist(),
        "defects": defects,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    tmp.replace(path)


@torch.inference_mode()
def _forward(model: nn.Module, y: torch.Tensor, device: torch.device, bs: int) -> torch.Tensor:
    outs = [model(y[i : i + bs].to(device)).float() for i in range(0, y.shape[0], bs)]
    return torch.cat(outs)


def evaluate(
    models: Sequence[EvalModel],
    images: Sequence[tuple[str, torch.Tensor]],
    *,
    sigmas: Sequence[float] | None = None,
    draws: int = 2,
    seed: int = 0,
    defect_a: Sequence[float] = DEFAULT_DEFECT_A,
    defect_b: Sequence[float] = DEFAULT_DEFECT_B,
    defect_images: int | None = DEFAULT_DEFECT_IMAGES,
    device: torch.device | str = "cpu",
    batch_size: int = 0,
    progress: bool = False,
    cache: str | Path | None = None,
) -> RunResult:
    """Runs the mismatch sweep and the NE-defect sweep.

    Args:
        models: Models to compare (they share every noise draw).
        images: ``(name, [1, C, H, W])`` images in [0, 1].
        sigmas: σ_test grid (default: :func:`paper_grid` of the models' σ_train).
        draws: Noise draws per image and σ.
        seed: Run seed.
        defect_a: Contrast factors of the defect sweep (> 0).
        defect_b: Brightness offsets of the defect sweep.
        defect_images: Run the defect sweep on the first N images only (``None`` or 0:
            all).
        device: Where the models run.
        batch_size: Noisy images per forward pass (0: about 2¹⁹ pixels).
        progress: Show a tqdm bar (stderr).
        cache: Folder of per-model results: a model whose weights (sha256) and protocol
            (images, grid, draws, seed, defect sweep, device type) match a stored
            result is not run again. Only models with a recorded sha256 are cached.

    Returns:
        The measured rows.

    Raises:
        ValueError: On empty inputs, bad counts, a non-positive ``a`` or a channel
            mismatch between models and images.
    """
    if not models:
        raise ValueError("no models to evaluate")
    if not images:
        raise ValueError("no images to evaluate on")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    if any(not (math.isfinite(a) and a > 0) for a in defect_a):
        raise ValueError(f"defect contrast factors must be > 0, got {list(defect_a)}")
    for m in models:
        for name, x in images:
            if x.shape[1] != m.channels:
                raise ValueError(
                    f"{m.key} takes {m.channels} channel(s) but {name} has {x.shape[1]}"
                )
    device = torch.device(device)
    mdev = _metrics_device(device)
    grid = (
        _merge_sigmas(sigmas, ())
        if sigmas is not None
        else paper_grid(m.sigma_train for m in models)
    )
    if not grid:
        raise ValueError("empty σ grid")
    pairs = [(float(a), float(b)) for a in defect_a for b in defect_b]
    defect_sigmas = sorted({m.sigma_train for m in models})

    n_s, n_m = len(grid), len(models)
    in_sum = torch.zeros(n_s, dtype=torch.float64)
    out_sum = torch.zeros(n_m, n_s, dtype=torch.float64)
    ssim_sum = torch.zeros(n_m, n_s, dtype=torch.float64)
    count = torch.zeros(n_s, dtype=torch.long)
    defects: list[list[list[float]]] = [[[] for _ in pairs] for _ in models]
    n_def = len(images) if not defect_images else min(defect_images, len(images))

    # Per-model cache: a model's numbers depend only on its weights and the protocol.
    cache_files: list[Path | None] = [None] * n_m
    todo = list(range(n_m))
    if cache is not None:
        fingerprint = _images_fingerprint(images)
        protocol = {
            "images": fingerprint,
            "sigmas": [round(v, 9) for v in grid],
            "draws": draws,
            "seed": seed,
            "pairs": pairs,
            "defect_images": n_def,
            "device": device.type,
        }
        todo = []
        for j, m in enumerate(models):
            cache_files[j] = _cache_file(Path(cache), m, protocol)
            hit = _read_cache(cache_files[j], n_s, len(pairs))
            if hit is None:
                todo.append(j)
                continue
            log.info("%s: cached result reused (%s)", m.key, cache_files[j])
            out_sum[j], ssim_sum[j] = hit["out_sum"], hit["ssim_sum"]
            in_sum, count = hit["in_sum"], hit["count"]
            defects[j] = hit["defects"]

    from tqdm.auto import tqdm

    bar = tqdm(
        total=(len(images) + n_def) * len(todo),
        desc="evaluate",
        unit="step",
        disable=not progress,
    )
    with bar, torch.inference_mode():
        for i, (name, x) in enumerate(images if todo else ()):
            noisy = torch.cat(
                [
                    x + gaussian_noise(x.shape, s, noise_seed(seed, i, k, s))
                    for s in grid
                    for k in range(draws)
                ]
            )
            sig_idx = torch.arange(n_s).repeat_interleave(draws)
            ref = x.to(mdev).expand(noisy.shape[0], *x.shape[1:])
            if i == 0:
                in_sum.zero_()
                count.zero_()
            in_p = psnr(noisy.to(mdev), ref, 1.0).cpu()
            in_sum.index_add_(0, sig_idx, in_p)
            count.index_add_(0, sig_idx, torch.ones_like(sig_idx))
            bs = _batch_size(batch_size, x.shape[-2], x.shape[-1])
            for j in todo:
                m = models[j]
                bar.set_postfix_str(f"{name} {m.key}", refresh=False)
                out = _forward(m.model, noisy, device, bs).to(mdev).clamp_(0.0, 1.0)
                for c in range(0, out.shape[0], bs):
                    sl = slice(c, c + bs)
                    out_sum[j].index_add_(0, sig_idx[sl], psnr(out[sl], ref[sl], 1.0).cpu())
                    ssim_sum[j].index_add_(0, sig_idx[sl], ssim(out[sl], ref[sl], 1.0).cpu())
                del out
                bar.update(1)
            if i >= n_def:
                continue
            # NE-defect sweep on the noisy image at each model's σ_train (draw 0).
            noisy_at = {
                s: x + gaussian_noise(x.shape, s, noise_seed(seed, i, 0, s)) for s in defect_sigmas
            }
            for j in todo:
                m = models[j]
                bar.set_postfix_str(f"{name} {m.key} defect", refresh=False)
                d = _defects(m.model, noisy_at[m.sigma_train], pairs, device, bs)
                for p, v in enumerate(d):
                    defects[j][p].append(v)
                bar.update(1)
    for j in todo:
        if cache_files[j] is not None:
            _write_cache(cache_files[j], out_sum[j], ssim_sum[j], in_sum, count, defects[j])

    result = RunResult(
        sigmas=grid, images=[n for n, _ in images], draws=draws, seed=seed, defect_images=n_def
    )
    in_mean = (in_sum / count).tolist()
    n_per = count.tolist()
    for j, m in enumerate(models):
        for s_i, s in enumerate(grid):
            result.psnr_rows.append(
                {
                    "model": m.key,
                    "sigma_test": s,
                    "input_psnr": in_mean[s_i],
                    "psnr": float(out_sum[j, s_i] / count[s_i]),
                    "ssim": float(ssim_sum[j, s_i] / count[s_i]),
                    "n": int(n_per[s_i]),
                }
            )
        for p, (a, b) in enumerate(pairs):
            vals = defects[j][p]
            result.defect_rows.append(
                {
                    "model": m.key,
                    "sigma": m.sigma_train,
                    "a": a,
                    "b": b,
                    "defect_mean": float(np.mean(vals)),
                    "defect_max": float(np.max(vals)),
                    "n": len(vals),
                }
            )
    return result


@torch.inference_mode()
def _defects(
    model: nn.Module,
    y: torch.Tensor,
    pairs: Sequence[tuple[float, float]],
    device: torch.device,
    bs: int,
) -> list[float]:
    """``‖f(a·y + b) − (a·f(y) + b)‖ / ‖a·f(y) + b‖`` per (a, b), unclamped outputs.

    Same quantity as :func:`wne.ne_defect`, with ``f(y)`` computed once and the shifted
    inputs batched; the comparison runs in float64.
    """
    y = y.to(device)
    fy = model(y).double()
    a_t = torch.tensor([a for a, _ in pairs], dtype=torch.float64, device=device).view(-1, 1, 1, 1)
    b_t = torch.tensor([b for _, b in pairs], dtype=torch.float64, device=device).view(-1, 1, 1, 1)
    shifted = (a_t * y.double() + b_t).to(y.dtype)
    got = _forward(model, shifted, device, bs).double()
    expected = a_t * fy + b_t
    num = (got - expected).flatten(1).norm(dim=1)
    den = expected.flatten(1).norm(dim=1).clamp_min(torch.finfo(torch.float64).tiny)
    return (num / den).cpu().tolist()


# --------------------------------------------------------------------------- summaries


def _nearest(sigmas: Sequence[float], target: float) -> int:
    return min(range(len(sigmas)), key=lambda i: abs(sigmas[i] - target))


def summarize(models: Sequence[EvalModel], result: RunResult) -> dict[str, Any]:
    """Per-model headline numbers (and the paper's beside them, when it has the model).

    Per model: ``matched`` (σ_test = σ_train, or the nearest grid point), ``sigma5`` and
    ``sigma50`` (grid points nearest 5 and 50; the paper grid has 53.22, not 50, unless
    σ_train = 50), ``grid_mean`` (mean over σ_test ≠ σ_train, as the paper's derived
    grid means), ``defect`` (mean and max over the (a, b) sweep and images).

    Args:
        models: The evaluated models.
        result: Their measurements.

    Returns:
        ``{"models": {key: {...}}}``.
    """
    out: dict[str, Any] = {}
    sig = result.sigmas
    for m in models:
        rows = [r for r in result.psnr_rows if r["model"] == m.key]
        drows = [r for r in result.defect_rows if r["model"] == m.key]

        def at(target: float, rows: list[dict[str, Any]] = rows) -> dict[str, float]:
            r = rows[_nearest(sig, target)]
            return {
                "sigma": r["sigma_test"],
                "input_psnr": r["input_psnr"],
                "psnr": r["psnr"],
                "ssim": r["ssim"],
            }

        off = [r for r in rows if abs(r["sigma_test"] - m.sigma_train) > 1e-6]
        entry: dict[str, Any] = {
            "arch": m.arch,
            "wrapper": m.wrapper,
            "sigma_train": m.sigma_train,
            "paper_column": m.paper_column,
            "matched": at(m.sigma_train),
            "sigma5": at(5.0),
            "sigma50": at(50.0),
            "grid_mean": {
                "psnr": float(np.mean([r["psnr"] for r in off])) if off else None,
                "ssim": float(np.mean([r["ssim"] for r in off])) if off else None,
                "n_sigmas": len(off),
            },
            "defect": {
                "sigma": m.sigma_train,
                "mean": float(np.mean([r["defect_mean"] for r in drows])),
                "max": float(np.max([r["defect_max"] for r in drows])),
            },
            "paper": _paper_numbers(m),
        }
        out[m.key] = entry
    return {"models": out}


def _paper_numbers(m: EvalModel) -> dict[str, Any] | None:
    col = m.paper_column
    if col is None or m.sigma_train not in paper.SIGMA_TRAINS:
        return None
    s = int(m.sigma_train)
    s5, p5 = paper.value_at(s, col, 5.0)
    s50, p50 = paper.value_at(s, col, 50.0)
    return {
        "column": col,
        "matched": paper.MATCHED[s][col],
        "sigma5": {"sigma": s5, "psnr": p5},
        "sigma50": {"sigma": s50, "psnr": p50},
        "grid_mean": paper.GRID_MEAN[s][col],
    }


# --------------------------------------------------------------------------- writing


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.10g}" if math.isfinite(v) else str(v)
    return v


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: _fmt(r[c]) for c in columns})


def _curves(models: Sequence[EvalModel], result: RunResult, metric: str) -> list[Any]:
    from wne.lab.plots import Curve

    curves = []
    for m in models:
        rows = [r for r in result.psnr_rows if r["model"] == m.key]
        curves.append(
            Curve(
                label=m.key,
                input_psnr=[r["input_psnr"] for r in rows],
                output=[r[metric] for r in rows],
                paper_column=m.paper_column,
                arch=m.arch,
                wrapper=m.wrapper,
            )
        )
    return curves


def write_outputs(
    models: Sequence[EvalModel],
    result: RunResult,
    out: str | Path,
    *,
    paper_overlay: bool | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes ``psnr.csv``, ``defect.csv``, ``summary.json`` and the plots.

    Args:
        models: The evaluated models.
        result: Their measurements.
        out: Output folder (created).
        paper_overlay: Draw the paper's curves (``None``: when all models share one
            σ_train in 10/25/50).
        meta: Extra run information stored under ``summary["run"]``.

    Returns:
        The summary written to ``summary.json``.
    """
    from wne.lab.plots import mismatch_plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "psnr.csv", PSNR_COLUMNS, result.psnr_rows)
    _write_csv(out / "defect.csv", DEFECT_COLUMNS, result.defect_rows)

    trains = sorted({m.sigma_train for m in models})
    overlay_sigma = trains[0] if len(trains) == 1 and trains[0] in paper.SIGMA_TRAINS else None
    if paper_overlay is None:
        paper_overlay = overlay_sigma is not None
    elif paper_overlay and overlay_sigma is None:
        log.warning(
            "no paper overlay: the paper publishes curves for one σ_train in %s, run has %s",
            paper.SIGMA_TRAINS,
            trains,
        )
        paper_overlay = False
    in_at = {r["sigma_test"]: r["input_psnr"] for r in result.psnr_rows}
    markers = [(s, in_at[result.sigmas[_nearest(result.sigmas, s)]]) for s in trains]
    title = f"σ_train = {', '.join(f'{s:g}' for s in trains)}, {len(result.images)} images"
    plots = {}
    for metric, name in (("psnr", "mismatch.png"), ("ssim", "mismatch_ssim.png")):
        mismatch_plot(
            _curves(models, result, metric),
            out / name,
            sigma_train_markers=markers,
            paper_sigma_train=overlay_sigma if (paper_overlay and metric == "psnr") else None,
            metric=metric,
            title=title,
        )
        plots[metric] = name

    summary = {
        "run": {
            **(meta or {}),
            "images": result.images,
            "n_images": len(result.images),
            "draws": result.draws,
            "seed": result.seed,
            "sigmas": result.sigmas,
            "defect_images": result.defect_images,
            "paper_overlay": bool(paper_overlay),
            "plots": plots,
            "wne_version": __version__,
            "torch_version": torch.__version__,
        },
        **summarize(models, result),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def write_metrics(models: Sequence[EvalModel], summary: dict[str, Any], dataset: str) -> None:
    """Stores each local model's headline numbers in its ``config.json`` metrics.

    Models loaded from the Hub are skipped (logged).

    Args:
        models: The evaluated models.
        summary: What :func:`write_outputs` returned.
        dataset: Name of the evaluation set (the metrics key, e.g. ``"set12"``).
    """
    run = summary["run"]
    for m in models:
        if m.folder is None:
            log.info("%s came from the Hub: metrics not written", m.key)
            continue
        s = summary["models"][m.key]
        metrics = {
            dataset: {
                "sigma_train": m.sigma_train,
                "psnr_matched": round(s["matched"]["psnr"], 4),
                "ssim_matched": round(s["matched"]["ssim"], 5),
                "psnr_sigma5": round(s["sigma5"]["psnr"], 4),
                "sigma50_at": round(s["sigma50"]["sigma"], 4),
                "psnr_sigma50": round(s["sigma50"]["psnr"], 4),
                "psnr_grid_mean": (
                    round(s["grid_mean"]["psnr"], 4) if s["grid_mean"]["psnr"] is not None else None
                ),
                "ne_defect_max": s["defect"]["max"],
                "n_images": run["n_images"],
                "draws": run["draws"],
                "seed": run["seed"],
            }
        }
        checkpoints.update_config(m.folder, metrics=metrics)
        log.info("wrote %s metrics into %s", dataset, m.folder / checkpoints.CONFIG_NAME)


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wne.evaluate",
        description="Noise-mismatch evaluation (output vs input PSNR, SSIM, NE defect) of "
        "denoiser checkpoints on an image folder, with the WNE paper's protocol.",
    )
    sel = p.add_argument_group("models (one of)")
    sel.add_argument("--models", nargs="+", metavar="KEY", help="checkpoint keys or folders")
    sel.add_argument(
        "--sigma-train",
        type=float,
        metavar="SIGMA",
        help="evaluate every checkpoint whose key ends in -s<σ> (with --models: the "
        "fallback σ_train of checkpoints that record none)",
    )
    sel.add_argument(
        "--all",
        action="store_true",
        help="every σ_train in 10/25/50 that has checkpoints, into OUT/sigma<σ>",
    )
    p.add_argument("--root", type=Path, help="checkpoint folder (default: bundled)")
    p.add_argument("--data", type=Path, required=True, help="image folder (e.g. Set12)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--draws", type=int, default=2, metavar="N", help="noise draws per image and σ (2)"
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed (0)")
    p.add_argument(
        "--sigmas",
        type=float,
        nargs="+",
        metavar="SIGMA",
        help="σ_test grid override (default: geomspace(5, 100, 20) ∪ {σ_train})",
    )
    p.add_argument("--max-images", type=int, metavar="N", help="use only the first N images")
    p.add_argument(
        "--defect-a",
        type=float,
        nargs="+",
        default=list(DEFAULT_DEFECT_A),
        metavar="A",
        help="contrasts a of the defect sweep",
    )
    p.add_argument(
        "--defect-b",
        type=float,
        nargs="+",
        default=list(DEFAULT_DEFECT_B),
        metavar="B",
        help="offsets b of the defect sweep",
    )
    p.add_argument(
        "--defect-images",
        type=int,
        metavar="N",
        default=DEFAULT_DEFECT_IMAGES,
        help=f"defect sweep on the first N images ({DEFAULT_DEFECT_IMAGES}; 0: all)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda if any)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument(
        "--batch-size", type=int, default=0, help="noisy images per forward (0: auto by size)"
    )
    p.add_argument(
        "--paper-overlay",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw the paper's curves dashed (default: on for σ_train 10/25/50)",
    )
    p.add_argument(
        "--write-metrics",
        action="store_true",
        help="store the headline numbers in each local checkpoint's config.json",
    )
    p.add_argument(
        "--cache",
        type=Path,
        help="folder of per-model results, reused when weights and protocol match "
        "(e.g. runs/eval-cache: evaluate checkpoints as they appear, then the full set)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available")
    return dev


def _keys_for_sigma(root: Path | None, sigma: float) -> list[str]:
    tag = f"-s{sigma:g}"
    return [k for k in checkpoints.available_checkpoints(root) if k.endswith(tag)]


def _run_one(
    names: Sequence[str], args: argparse.Namespace, device: torch.device, out: Path
) -> dict[str, Any]:
    models = resolve_models(names, root=args.root, device=device, sigma_train=args.sigma_train)
    channels = {m.channels for m in models}
    if len(channels) > 1:
        raise ValueError(f"models take different channel counts {sorted(channels)}")
    images = load_images(args.data, channels=channels.pop(), max_images=args.max_images)
    log.info(
        "evaluating %s on %d image(s) from %s (%d draws, device %s)",
        ", ".join(m.key for m in models),
        len(images),
        args.data,
        args.draws,
        device,
    )
    result = evaluate(
        models,
        images,
        sigmas=paper_grid(m.sigma_train for m in models) if args.sigmas is None else args.sigmas,
        draws=args.draws,
        seed=args.seed,
        defect_a=args.defect_a,
        defect_b=args.defect_b,
        defect_images=args.defect_images,
        device=device,
        batch_size=args.batch_size,
        progress=not args.quiet,
        cache=args.cache,
    )
    meta = {"data": str(args.data), "dataset": args.data.name, "device": str(device)}
    summary = write_outputs(models, result, out, paper_overlay=args.paper_overlay, meta=meta)
    if args.write_metrics:
        write_metrics(models, summary, args.data.name.lower())
    return summary


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    print(f"\nResults in {out}")
    print(
        f"{'model':<24} {'σ_tr':>5} {'matched':>8} {'σ5':>7} {'σ≈50':>7} {'mean':>7} "
        f"{'defect max':>10}  paper (matched/σ5/σ≈50)"
    )
    for key, s in summary["models"].items():
        p = s["paper"]
        ptxt = (
            f"{p['matched']:.2f}/{p['sigma5']['psnr']:.2f}/{p['sigma50']['psnr']:.2f}" if p else "-"
        )
        gm = s["grid_mean"]["psnr"]
        print(
            f"{key:<24} {s['sigma_train']:>5g} {s['matched']['psnr']:>8.2f} "
            f"{s['sigma5']['psnr']:>7.2f} {s['sigma50']['psnr']:>7.2f} "
            f"{gm if gm is not None else float('nan'):>7.2f} {s['defect']['max']:>10.2e}  {ptxt}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status (0 on success, 2 on bad input).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("wne").setLevel(logging.INFO)
    chosen = sum(x for x in (args.models is not None, args.all))
    if chosen > 1:
        parser.error("give either --models or --all")
    if not chosen and args.sigma_train is None:
        parser.error("give --models, --sigma-train or --all")
    if args.draws < 1:
        parser.error("--draws must be >= 1")
    if args.defect_images < 0:
        parser.error("--defect-images must be >= 0")
    if args.max_images is not None and args.max_images < 1:
        parser.error("--max-images must be >= 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    try:
        device = _device(args.device)
        if args.all:
            done = 0
            for s in paper.SIGMA_TRAINS:
                keys = _keys_for_sigma(args.root, s)
                if not keys:
                    log.info("σ_train %d: no checkpoints ending in -s%d, skipped", s, s)
                    continue
                out = args.out / f"sigma{s}"
                _print_summary(_run_one(keys, args, device, out), out)
                done += 1
            if not done:
                root = args.root or checkpoints.default_root()
                raise FileNotFoundError(f"no checkpoints for σ_train 10, 25 or 50 in {root}")
        else:
            names = args.models
            if names is None:
                names = _keys_for_sigma(args.root, args.sigma_train)
                if not names:
                    root = args.root or checkpoints.default_root()
                    raise FileNotFoundError(
                        f"no checkpoints ending in -s{args.sigma_train:g} in {root}"
                    )
            _print_summary(_run_one(names, args, device, args.out), args.out)
    except (ValueError, FileNotFoundError, checkpoints.CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
