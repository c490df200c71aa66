"""The noise-mismatch protocol of the WNE paper (§4, ``eval.py`` of the paper's code).

- Levels: σ_test ``geomspace(5, 100, 20) ∪ {σ_train}`` (0–255 scale) or a given grid; the
  other noise types of the library's table (:data:`wne.degrade.NOISES`) take their own level.
- Cell (image ``i``, draw ``k``, level ``s``) is seeded by :func:`noise_seed` and every model
  of the run sees the same noisy image (paired). A level keeps its draws when the grid changes.
- Noisy inputs are never clipped (JPEG's 8-bit format excepted); outputs are clamped to [0, 1]
  for PSNR and SSIM (:mod:`wne.metrics`, data range 1). Means are over images and draws.
- NE defect (:func:`wne.ne_defect_map`, in float64) of each model on the Gaussian noisy
  images at its own σ_train (draw 0, the first ``defect_images`` images), for every ``(a, b)``
  of ``defect_a × defect_b``; mean and max over images. Gaussian runs only.

Models are described by their ``config.json`` (σ_train, arch, wrapper), never by their key.
A results cache (one JSON file per model, keyed by the weights' sha256 and the protocol)
lets a run skip models already measured.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import wne
from wne import checkpoints, degrade
from wne.fast import accelerate
from wne.imageio import list_images, read_image, to_channels
from wne.lab import paper
from wne.metrics import psnr, ssim

log = logging.getLogger(__name__)

PSNR_COLUMNS = ("model", "sigma_test", "input_psnr", "psnr", "ssim", "n")
NOISE_COLUMNS = ("model", "noise", "level", "input_psnr", "equivalent_sigma", "psnr", "ssim", "n")
"""Columns of ``psnr.csv`` for a non-Gaussian run (``level``: σ, photons or JPEG quality)."""
DEFECT_COLUMNS = ("model", "sigma", "a", "b", "defect_mean", "defect_max", "n")
_ROW = ("model", "sigma_test", "noise", "level", *NOISE_COLUMNS[3:])
NOISE_TYPES: tuple[str, ...] = tuple(degrade.NOISES)
"""Noise types (:data:`wne.degrade.NOISES`); a level is the type's first parameter: σ on the
0–255 scale, photons at white (``lowlight``) or JPEG quality (``jpeg``)."""
DEFAULT_DEFECT_A = (0.25, 0.5, 2.0, 4.0)
DEFAULT_DEFECT_B = (-0.5, 0.0, 0.5)
DEFAULT_DEFECT_IMAGES = 4
PIXEL_BUDGET = 1 << 19  # pixels per forward batch in auto mode (8 × 256², 2 × 512²)
MIN_SIDE = 11  # SSIM window


def paper_grid(sigma_trains: Iterable[float] = ()) -> list[float]:
    """The paper's test grid ``geomspace(5, 100, 20)`` with the training levels added, sorted,
    without duplicates (0–255 scale)."""
    return _merge(np.geomspace(5.0, 100.0, 20).tolist(), sigma_trains)


def _merge(base: Iterable[float], extra: Iterable[float]) -> list[float]:
    out: list[float] = []
    for s in sorted([float(v) for v in base] + [float(v) for v in extra]):
        if not (math.isfinite(s) and s >= 0):
            raise ValueError(f"noise levels must be finite numbers >= 0, got {s:g}")
        if not out or abs(s - out[-1]) > 1e-6:
            out.append(s)
    return out


def noise_seed(seed: int, image: int, draw: int, level: float) -> int:
    """The 63-bit noise seed of one cell: :class:`numpy.random.SeedSequence` of
    ``(seed, image, draw, round(1000·level))``, so cells get independent streams and every
    model shares them."""
    ss = np.random.SeedSequence([int(seed), int(image), int(draw), round(float(level) * 1000)])
    lo, hi = ss.generate_state(2, dtype=np.uint32).tolist()
    return ((hi << 32) | lo) & ((1 << 63) - 1)


@dataclass(frozen=True)
class Protocol:
    """What one evaluation run measures, shared by its models: the level grid ``sigmas``
    (``None``: :func:`paper_grid` of the models' σ_train, or the noise type's own), noise
    ``draws`` per image and level, the run ``seed``, the defect sweep's contrasts ``defect_a``
    (> 0), offsets ``defect_b`` and first ``defect_images`` images (``None`` or 0: all), the
    ``noise`` type (:data:`NOISE_TYPES`), ``lowlight``'s ``read_noise`` (e⁻) and ``jpeg``'s
    ``jpeg_sigma`` (Gaussian σ added before compression; 0: the clean image).

    Raises:
        ValueError: On fewer than one draw, a contrast factor <= 0, an unknown noise type,
            an option of another noise type, or a level the noise type cannot take.
    """

    sigmas: Sequence[float] | None = None
    draws: int = 2
    seed: int = 0
    defect_a: Sequence[float] = DEFAULT_DEFECT_A
    defect_b: Sequence[float] = DEFAULT_DEFECT_B
    defect_images: int | None = DEFAULT_DEFECT_IMAGES
    noise: str = "gaussian"
    read_noise: float = 0.0
    jpeg_sigma: float = 0.0

    def __post_init__(self) -> None:
        if self.draws < 1:
            raise ValueError(f"draws must be >= 1, got {self.draws}")
        if any(not (math.isfinite(a) and a > 0) for a in self.defect_a):
            raise ValueError(f"defect contrast factors must be > 0, got {list(self.defect_a)}")
        for name, value, owner in (
            ("read noise", self.read_noise, "lowlight"),
            ("jpeg sigma", self.jpeg_sigma, "jpeg"),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value:g}")
            if value and self.noise != owner:
                raise ValueError(f"{name} is for {owner} noise, not {self.noise}")
        for level in _merge(self.sigmas, ()) if self.sigmas is not None else [1.0]:
            self.corrupt(torch.zeros(1, 1, 8, 8), 0, 0, level)  # the noise table's own checks

    def grid(self, models: Sequence[EvalModel]) -> list[float]:
        """The level grid of a run with these models (sorted, duplicate-free)."""
        if self.sigmas is not None:
            return _merge(self.sigmas, ())
        levels = degrade.noise_model(self.noise).levels
        return list(levels) if levels else paper_grid(m.sigma_train for m in models)

    def corrupt(self, x: torch.Tensor, image: int, draw: int, level: float) -> torch.Tensor:
        """The noisy observation of cell (image, draw, level): :data:`wne.degrade.NOISES`
        seeded by :func:`noise_seed` (``jpeg``: of the clean image, as the paper's JPEG
        transfer, or with Gaussian noise of σ ``jpeg_sigma`` first)."""
        noise = degrade.noise_model(self.noise)
        extra = {"lowlight": {"read_noise": self.read_noise}, "jpeg": {"sigma": self.jpeg_sigma}}
        params = {noise.level.name: level, **extra.get(self.noise, {})}
        return noise.apply(x, noise_seed(self.seed, image, draw, level), **params)

    @property
    def pairs(self) -> list[tuple[float, float]]:
        """The ``(a, b)`` pairs of the defect sweep, ``a`` major."""
        return [(float(a), float(b)) for a in self.defect_a for b in self.defect_b]

    def n_defect_images(self, n_images: int) -> int:
        """How many of ``n_images`` images the defect sweep uses (0 for non-Gaussian runs)."""
        return min(self.defect_images or n_images, n_images) if self.noise == "gaussian" else 0

    def identity(self, grid: Sequence[float], n_images: int) -> dict[str, Any]:
        """What a cached result must share with this run (besides weights and images)."""
        ident = {"sigmas": [round(v, 9) for v in grid], "draws": self.draws, "seed": self.seed}
        ident |= {"pairs": self.pairs, "defect_images": self.n_defect_images(n_images)}
        ident |= {"noise": self.noise}
        extra = {"lowlight": "read_noise", "jpeg": "jpeg_sigma"}.get(self.noise)
        return ident | ({extra: getattr(self, extra)} if extra else {})


# --------------------------------------------------------------------------- inputs


def load_images(
    folder: str | Path, *, channels: int = 1, max_images: int | None = None
) -> list[tuple[str, torch.Tensor]]:
    """``(file name, float32 [1, channels, H, W] in [0, 1])`` of a folder's images, sorted by
    name; with one channel, colour images become ITU-R 601-2 luma (with a log line).

    Raises:
        FileNotFoundError: If the folder does not exist or holds no image.
        ValueError: On an unreadable image or a side under 11 px.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images must be >= 1, got {max_images}")
    images, converted = [], []
    for path in list_images(folder)[:max_images]:
        pixels = read_image(path)
        if pixels.shape[-1] == 3 and channels == 1:
            converted.append(path.name)
        pixels = to_channels(pixels, channels)
        if min(pixels.shape[:2]) < MIN_SIDE:
            raise ValueError(
                f"image {path} is {pixels.shape[1]}×{pixels.shape[0]}: sides must be >= 11 px"
            )
        t = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
        images.append((path.name, t.permute(2, 0, 1).unsqueeze(0)))
    if converted:
        log.warning("colour image(s) converted to luma (ITU-R 601-2): %s", ", ".join(converted))
    return images


@dataclass
class EvalModel:
    """A model under evaluation: its ``key`` (the CSVs' ``model`` label, never parsed), the
    module in eval mode on the device, σ_train (0–255), backbone ``arch`` (``""``: unknown),
    ``wrapper``, ``channels``, local checkpoint ``folder`` (``None``: from the Hub), the
    weights' ``sha256`` (``""``: unknown, never cached) and, from ``config.json``, the training
    noise range and augmentation of a rival (``sigma_range``, ``augment``)."""

    key: str
    model: nn.Module
    sigma_train: float
    arch: str = ""
    wrapper: str = "none"
    channels: int = 1
    folder: Path | None = None
    sha256: str = ""
    sigma_range: Sequence[float] | None = None
    augment: dict[str, Any] | None = None

    @property
    def paper_column(self) -> str | None:
        """The matching model of the paper's tables, if any (by catalog family)."""
        if not self.arch:
            return None
        kw = {"augment": self.augment, "sigma_range": self.sigma_range}
        return paper.paper_column(self.arch, self.wrapper, **kw)


def resolve_models(
    names: Sequence[str],
    *,
    root: str | Path | None = None,
    device: torch.device | str = "cpu",
    sigma_train: float | None = None,
) -> list[EvalModel]:
    """Loads checkpoints by key (:func:`wne.load`; ``root``: their folder, default bundled) or
    folder, in order; ``sigma_train``: of checkpoints whose ``config.json`` records none.

    Raises:
        ValueError: On duplicate keys or an unknown σ_train.
        wne.checkpoints.CheckpointError: If a checkpoint cannot be loaded.
    """
    out: list[EvalModel] = []
    local_root = Path(root) if root is not None else checkpoints.default_root()
    for name in names:
        folder: Path | None = Path(name)
        if (folder / checkpoints.CONFIG_NAME).is_file():
            model = checkpoints.load_dir(folder, device=device)
        else:
            model = checkpoints.load(name, device=device, root=root)
            folder = local_root / name
            folder = folder if (folder / checkpoints.CONFIG_NAME).is_file() else None
        cfg: checkpoints.ModelConfig = model.wne_config  # type: ignore[assignment]
        if any(m.key == cfg.key for m in out):
            raise ValueError(f"model {cfg.key!r} given twice")
        s_train = cfg.sigma_train if cfg.sigma_train is not None else sigma_train
        if s_train is None:
            raise ValueError(
                f"{cfg.key!r} records no sigma_train in its config.json: pass --sigma-train"
            )
        fast = accelerate(model.eval())  # equal to eager to float round-off
        channels = int(cfg.arch_kwargs.get("channels", 1))
        args = (cfg.key, fast, float(s_train), cfg.arch, cfg.wrapper, channels, folder, cfg.sha256)
        out.append(EvalModel(*args, sigma_range=cfg.sigma_range, augment=cfg.augment))
    return out


def checkpoints_for_sigma(root: str | Path | None, sigma: float) -> list[str]:
    """Keys (sorted) of the checkpoints in ``root`` (default: bundled) whose ``config.json``
    records ``sigma_train = sigma``; unreadable configs are skipped with a warning."""
    base = Path(root) if root is not None else checkpoints.default_root()
    keys = []
    for key in checkpoints.available_checkpoints(base):
        try:
            cfg = checkpoints.read_config(base / key)
        except checkpoints.CheckpointError as exc:
            log.warning("skipping %s: %s", base / key, exc)
            continue
        if cfg.sigma_train is not None and abs(float(cfg.sigma_train) - sigma) < 1e-9:
            keys.append(key)
    return keys


# --------------------------------------------------------------------------- measurement


@dataclass
class RunResult:
    """Everything one evaluation run measured: ``psnr_rows`` (model × level, keys of
    :data:`PSNR_COLUMNS` and :data:`NOISE_COLUMNS`), ``defect_rows`` (model × (a, b), keys of
    :data:`DEFECT_COLUMNS`; Gaussian runs only), the level grid ``sigmas``, the image names,
    the protocol and the number of images of the defect sweep."""

    psnr_rows: list[dict[str, Any]] = field(default_factory=list)
    defect_rows: list[dict[str, Any]] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    protocol: Protocol = field(default_factory=Protocol)
    defect_images: int = 0

    @property
    def noise(self) -> str:
        """The run's noise type."""
        return self.protocol.noise


_SUMS = ("out_sum", "ssim_sum", "in_sum", "eq_sum", "count")
"""One model's sums per level (the input ones shared by every model), also its cache file's."""


def _cache_path(folder: Path | None, m: EvalModel, ident: dict[str, Any]) -> Path | None:
    if folder is None or not m.sha256:
        return None
    ident = {"key": m.key, "sha256": m.sha256, "sigma_train": m.sigma_train, **ident}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]
    return folder / f"{m.key}-{digest}.json"


def _read_cache(path: Path | None, n_levels: int, n_pairs: int) -> dict[str, Any] | None:
    """A model's sums from its cache file (``None``: none, unreadable or of another shape)."""
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        sums = {k: torch.tensor(data[k], dtype=torch.float64) for k in _SUMS[:4]}
        sums |= {"count": torch.tensor(data["count"], dtype=torch.long)}
        sums["defects"] = [list(map(float, d)) for d in data["defects"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable cache file %s: %s", path, exc)
        return None
    if [sums[k].numel() for k in _SUMS] != [n_levels] * 5 or len(sums["defects"]) != n_pairs:
        log.warning("ignoring cache file %s: it does not fit this run", path)
        return None
    log.info("cached result reused (%s)", path)
    return sums


def _write_cache(path: Path | None, sums: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        data = {k: sums[k].tolist() for k in _SUMS} | {"defects": sums["defects"]}
        tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
        tmp.replace(path)


def _images_fingerprint(images: Sequence[tuple[str, torch.Tensor]]) -> str:
    h = hashlib.sha256()
    for name, x in images:
        h.update(name.encode())
        h.update(str(tuple(x.shape)).encode())
        h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@torch.inference_mode()
def _forward(model: nn.Module, y: torch.Tensor, device: torch.device, bs: int) -> torch.Tensor:
    return torch.cat([model(y[i : i + bs].to(device)).float() for i in range(0, len(y), bs)])


def _defects(
    model: nn.Module,
    y: torch.Tensor,
    pairs: Sequence[tuple[float, float]],
    device: torch.device,
    bs: int,
) -> list[float]:
    """The relative NE defect (:func:`wne.ne_defect_map`) of ``y`` ``[1, C, H, W]`` for every
    ``(a, b)``: ``f(y)`` once, the shifted inputs ``bs`` at a time."""
    ab = torch.tensor(pairs, dtype=torch.float64, device=device).view(-1, 2, 1, 1, 1)
    a, b = ab[:, 0], ab[:, 1]
    y = y.to(device)
    got = _forward(model, (a * y.double() + b).to(y.dtype), device, bs)
    return wne.ne_defect_map(model(y), got, a, b)[1].cpu().tolist()


def evaluate(
    models: Sequence[EvalModel],
    images: Sequence[tuple[str, torch.Tensor]],
    protocol: Protocol | None = None,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 0,
    progress: bool = False,
    cache: str | Path | None = None,
) -> RunResult:
    """The mismatch sweep and (Gaussian runs) the NE-defect sweep of ``models``, sharing every
    noise draw, on ``images`` (``(name, [1, C, H, W])`` in [0, 1]), ``batch_size`` noisy images
    per forward (0: about 2¹⁹ pixels). ``cache``: a folder of per-model results, reused when
    weights (sha256), images and protocol match.

    Raises:
        ValueError: On empty inputs, an empty grid or a channel mismatch.
    """
    from tqdm.auto import tqdm

    p = protocol or Protocol()
    if not models or not images:
        raise ValueError("no models to evaluate" if not models else "no images to evaluate on")
    for m in models:
        for name, x in images:
            if x.shape[1] != m.channels:
                raise ValueError(
                    f"{m.key} takes {m.channels} channel(s) but {name} has {x.shape[1]}"
                )
    device = torch.device(device)
    grid = p.grid(models)
    if not grid:
        raise ValueError("empty level grid")
    n_def, n_pairs = p.n_defect_images(len(images)), len(p.pairs)
    ident = {"images": _images_fingerprint(images), "device": device.type}
    folder = Path(cache) if cache is not None else None
    paths = [_cache_path(folder, m, ident | p.identity(grid, len(images))) for m in models]
    sums = [_read_cache(path, len(grid), n_pairs) for path in paths]
    todo = [j for j, s in enumerate(sums) if s is None]
    if todo:
        for j in todo:
            sums[j] = {k: torch.zeros(len(grid), dtype=torch.float64) for k in _SUMS[:4]}
            sums[j] |= {"count": torch.zeros(len(grid), dtype=torch.long)}
            sums[j] |= {"defects": [[] for _ in range(n_pairs)]}
        bar = tqdm(total=(len(images) + n_def) * len(todo), desc="evaluate", disable=not progress)
        with bar, torch.inference_mode():
            run = [models[j] for j in todo], [sums[j] for j in todo]
            inputs = _sweep(*run, images, p, grid, device, batch_size, bar)
        for j in todo:  # the input sums are this run's, even where a cache hit had them
            sums[j] |= inputs
            _write_cache(paths[j], sums[j])
    result = RunResult(sigmas=grid, images=[n for n, _ in images], protocol=p, defect_images=n_def)
    inputs = sums[todo[0] if todo else 0]
    n = inputs["count"]
    for m, s in zip(models, sums, strict=True):
        means = [inputs["in_sum"] / n, inputs["eq_sum"] / n, s["out_sum"] / n, s["ssim_sum"] / n]
        for k, (lv, *values) in enumerate(zip(grid, *(t.tolist() for t in means), strict=True)):
            row = (m.key, lv, p.noise, lv, *values, int(n[k]))
            result.psnr_rows.append(dict(zip(_ROW, row, strict=True)))
        for (a, b), vals in zip(p.pairs, s["defects"], strict=True):
            if vals:  # Gaussian runs
                stats = (float(np.mean(vals)), float(np.max(vals)), len(vals))
                row = (m.key, m.sigma_train, a, b, *stats)
                result.defect_rows.append(dict(zip(DEFECT_COLUMNS, row, strict=True)))
    return result


def _sweep(
    models: Sequence[EvalModel],
    sums: Sequence[dict[str, Any]],
    images: Sequence[tuple[str, torch.Tensor]],
    p: Protocol,
    grid: list[float],
    device: torch.device,
    batch_size: int,
    bar: Any,
) -> dict[str, torch.Tensor]:
    """Adds every model's PSNR, SSIM and defects to its ``sums``; returns the input sums."""
    mdev = torch.device("cpu") if device.type == "mps" else device  # float64 metrics
    inputs = {k: torch.zeros(len(grid), dtype=torch.float64) for k in ("in_sum", "eq_sum")}
    inputs["count"] = torch.zeros(len(grid), dtype=torch.long)
    level = torch.arange(len(grid)).repeat_interleave(p.draws)
    n_def = p.n_defect_images(len(images))
    for i, (name, x) in enumerate(images):
        noisy = torch.cat([p.corrupt(x, i, k, s) for s in grid for k in range(p.draws)])
        ref = x.to(mdev).expand(noisy.shape[0], *x.shape[1:])
        inputs["in_sum"].index_add_(0, level, psnr(noisy.to(mdev), ref, 1.0).cpu())
        err = (noisy.to(mdev).double() - ref.double()).flatten(1)
        inputs["eq_sum"].index_add_(0, level, (255.0 * err.square().mean(dim=1).sqrt()).cpu())
        inputs["count"].index_add_(0, level, torch.ones_like(level))
        bs = batch_size if batch_size > 0 else max(1, PIXEL_BUDGET // x[0, 0].numel())
        for m, s in zip(models, sums, strict=True):
            bar.set_postfix_str(f"{name} {m.key}", refresh=False)
            out = _forward(m.model, noisy, device, bs).to(mdev).clamp_(0.0, 1.0)
            for c in range(0, out.shape[0], bs):
                sl = slice(c, c + bs)
                s["out_sum"].index_add_(0, level[sl], psnr(out[sl], ref[sl], 1.0).cpu())
                s["ssim_sum"].index_add_(0, level[sl], ssim(out[sl], ref[sl], 1.0).cpu())
            bar.update(1)
        for m, s in zip(models, sums, strict=True) if i < n_def else ():
            bar.set_postfix_str(f"{name} {m.key} defect", refresh=False)
            seed = noise_seed(p.seed, i, 0, m.sigma_train)
            y = x + degrade.gaussian_noise(x.shape, m.sigma_train, seed)
            defects = _defects(m.model, y, p.pairs, device, bs)
            for values, v in zip(s["defects"], defects, strict=True):
                values.append(v)
            bar.update(1)
    return inputs
