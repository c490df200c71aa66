"""The noise-mismatch protocol of the WNE paper (§4, ``eval.py`` of the paper's code).

- Test noise levels ``geomspace(5, 100, 20) ∪ {σ_train}`` (0–255 scale), or a given grid.
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
  the first ``defect_images`` images, default 4), for every ``(a, b)`` in
  ``defect_a × defect_b`` (default {0.25, 0.5, 2, 4} × {−0.5, 0, 0.5}); mean and max
  over images.

Images are read with :func:`wne.imageio.read_image` (float32 in [0, 1]; 16-bit images
scaled by 1/65535); for grayscale (1-channel) models a colour image is converted to
ITU-R 601-2 luma and a log line says so. Models are loaded by key or folder and
described by their ``config.json`` (σ_train, arch, wrapper), never by their key.
A results cache (one JSON file per model, keyed by its weights' sha256 and the
protocol) lets a run skip models already measured.
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

from wne import checkpoints, degrade
from wne.degrade import gaussian_noise
from wne.fast import accelerate
from wne.imageio import list_images, read_image, to_channels
from wne.lab import paper
from wne.metrics import psnr, ssim

__all__ = [
    "DEFAULT_DEFECT_A",
    "DEFAULT_DEFECT_B",
    "DEFAULT_DEFECT_IMAGES",
    "DEFECT_COLUMNS",
    "NOISE_COLUMNS",
    "NOISE_TYPES",
    "PSNR_COLUMNS",
    "EvalModel",
    "Protocol",
    "RunResult",
    "checkpoints_for_sigma",
    "corrupt",
    "default_levels",
    "evaluate",
    "load_images",
    "noise_seed",
    "paper_grid",
    "resolve_models",
]

log = logging.getLogger(__name__)

PSNR_COLUMNS = ("model", "sigma_test", "input_psnr", "psnr", "ssim", "n")
NOISE_COLUMNS = (
    "model",
    "noise",
    "level",
    "input_psnr",
    "equivalent_sigma",
    "psnr",
    "ssim",
    "n",
)
"""Columns of ``psnr.csv`` for a non-Gaussian run (``level``: σ, photons or JPEG quality)."""
NOISE_TYPES: tuple[str, ...] = ("gaussian", "uniform", "laplace", "rayleigh", "lowlight", "jpeg")
"""Noise types of :func:`corrupt`: the four additive kinds of :data:`wne.degrade.NOISE_KINDS`
(level = σ on the 0–255 scale), ``lowlight`` (level = expected photons at white) and
``jpeg`` (level = JPEG quality)."""
LEVEL_NAMES = {"lowlight": "photons", "jpeg": "quality"}
_DEFAULT_LEVELS = {
    "lowlight": (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0),
    "jpeg": (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0),
}
DEFECT_COLUMNS = ("model", "sigma", "a", "b", "defect_mean", "defect_max", "n")
DEFAULT_DEFECT_A = (0.25, 0.5, 2.0, 4.0)
DEFAULT_DEFECT_B = (-0.5, 0.0, 0.5)
DEFAULT_DEFECT_IMAGES = 4
DEFAULT_PIXEL_BUDGET = 1 << 19  # pixels per forward batch in auto mode (8 × 256², 2 × 512²)
MIN_SIDE = 11  # SSIM window


# --------------------------------------------------------------------------- grid and noise


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


def level_name(noise: str) -> str:
    """What the level axis of a noise type measures: ``sigma``, ``photons`` or ``quality``."""
    return LEVEL_NAMES.get(noise, "sigma")


def default_levels(noise: str, sigma_trains: Iterable[float] = ()) -> list[float]:
    """The default level grid of a noise type.

    Args:
        noise: One of :data:`NOISE_TYPES`.
        sigma_trains: Training noise levels, added for the σ-type noises.

    Returns:
        For gaussian/uniform/laplace/rayleigh :func:`paper_grid`; photons
        {1, 3, …, 1000} for ``lowlight``; qualities 10–90 for ``jpeg``.
    """
    if noise in _DEFAULT_LEVELS:
        return list(_DEFAULT_LEVELS[noise])
    return paper_grid(sigma_trains)


def check_level(noise: str, level: float) -> None:
    """Rejects a level that its noise type cannot take.

    Raises:
        ValueError: For an unknown noise type, a non-positive photon count, a JPEG
            quality that is not a whole number in [1, 95], or a negative σ.
    """
    if noise not in NOISE_TYPES:
        raise ValueError(f"unknown noise type {noise!r}; choose from {', '.join(NOISE_TYPES)}")
    if noise == "lowlight" and not level > 0:
        raise ValueError(f"lowlight levels are photons at white and must be > 0, got {level:g}")
    if noise == "jpeg" and (level != round(level) or not 1 <= level <= 95):
        raise ValueError(f"jpeg levels are qualities, whole numbers in [1, 95], got {level:g}")


def corrupt(
    x: torch.Tensor,
    noise: str,
    level: float,
    seed: int,
    *,
    read_noise: float = 0.0,
    jpeg_sigma: float = 0.0,
) -> torch.Tensor:
    """One noisy observation of ``x`` (never clipped, except by JPEG's 8-bit format).

    - ``gaussian``: ``x + gaussian_noise(σ = level)``, exactly the historical protocol;
    - ``uniform``, ``laplace``, ``rayleigh``: ``x`` plus :func:`wne.degrade.noise` of std
      ``level / 255`` (Rayleigh not recentred, as the paper);
    - ``lowlight``: :func:`wne.degrade.low_light` with ``level`` photons at white and
      ``read_noise`` electrons of read noise, not clipped;
    - ``jpeg``: :func:`wne.degrade.jpeg` at quality ``level`` of the clean image (the
      paper's App. P JPEG transfer: its input PSNR at QF 85 is 37.97 dB, a clean image's)
      or, with ``jpeg_sigma > 0``, of ``x`` plus Gaussian noise of that σ.

    Args:
        x: Clean image ``[1, C, H, W]`` in [0, 1].
        noise: One of :data:`NOISE_TYPES`.
        level: σ (0–255), photons at white, or JPEG quality.
        seed: Noise seed (:func:`noise_seed`).
        read_noise: Read noise of ``lowlight`` (photo-electrons).
        jpeg_sigma: Gaussian σ added before JPEG compression (0: none).

    Returns:
        The noisy image, same shape as ``x``.

    Raises:
        ValueError: On an unknown noise type or a level it cannot take.
    """
    check_level(noise, level)
    if noise == "gaussian":
        return x + gaussian_noise(x.shape, level, seed)
    if noise == "lowlight":
        return degrade.low_light(x, level, seed, read_noise=read_noise)
    if noise == "jpeg":
        base = x + gaussian_noise(x.shape, jpeg_sigma, seed) if jpeg_sigma > 0 else x
        return degrade.jpeg(base, round(level))
    return x + degrade.noise(noise, x.shape, level, seed, dtype=x.dtype)


@dataclass(frozen=True)
class Protocol:
    """What one evaluation run measures (every model of the run shares it).

    Attributes:
        sigmas: σ_test grid (``None``: :func:`paper_grid` of the models' σ_train).
        draws: Noise draws per image and σ.
        seed: Run seed.
        defect_a: Contrast factors of the defect sweep (> 0).
        defect_b: Brightness offsets of the defect sweep.
        defect_images: Run the defect sweep on the first N images only (``None`` or 0:
            all). Only Gaussian runs have a defect sweep (it measures the model, not the
            noise; the Gaussian run's numbers stand for the others).
        noise: Noise type (:data:`NOISE_TYPES`); ``sigmas`` are then its levels (σ,
            photons at white or JPEG quality).
        read_noise: ``lowlight`` read noise in photo-electrons.
        jpeg_sigma: ``jpeg``: Gaussian σ added before compression (0: the clean image).

    Raises:
        ValueError: On fewer than one draw, a non-positive contrast factor, an unknown
            noise type or a level it cannot take.
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
        if self.noise not in NOISE_TYPES:
            raise ValueError(
                f"unknown noise type {self.noise!r}; choose from {', '.join(NOISE_TYPES)}"
            )
        if not (math.isfinite(self.read_noise) and self.read_noise >= 0):
            raise ValueError(f"read noise must be a finite number >= 0, got {self.read_noise}")
        if not (math.isfinite(self.jpeg_sigma) and self.jpeg_sigma >= 0):
            raise ValueError(f"jpeg sigma must be a finite number >= 0, got {self.jpeg_sigma}")
        for level in self.sigmas or ():
            check_level(self.noise, float(level))

    @property
    def gaussian(self) -> bool:
        """Whether this is the paper's Gaussian protocol (with its defect sweep)."""
        return self.noise == "gaussian"

    def grid(self, models: Sequence[EvalModel]) -> list[float]:
        """The level grid of a run with these models (sorted, duplicate-free)."""
        if self.sigmas is not None:
            return _merge_sigmas(self.sigmas, ())
        return default_levels(self.noise, (m.sigma_train for m in models))

    def corrupt(self, x: torch.Tensor, image: int, draw: int, level: float) -> torch.Tensor:
        """The noisy observation of cell (image, draw, level), seeded by :func:`noise_seed`."""
        seed = noise_seed(self.seed, image, draw, level)
        return corrupt(
            x,
            self.noise,
            level,
            seed,
            read_noise=self.read_noise,
            jpeg_sigma=self.jpeg_sigma,
        )

    @property
    def pairs(self) -> list[tuple[float, float]]:
        """The ``(a, b)`` pairs of the defect sweep, ``a`` major."""
        return [(float(a), float(b)) for a in self.defect_a for b in self.defect_b]

    def n_defect_images(self, n_images: int) -> int:
        """How many of ``n_images`` images the defect sweep uses (0 for non-Gaussian runs)."""
        if not self.gaussian:
            return 0
        return n_images if not self.defect_images else min(self.defect_images, n_images)


# --------------------------------------------------------------------------- inputs


def load_images(
    folder: str | Path, *, channels: int = 1, max_images: int | None = None
) -> list[tuple[str, torch.Tensor]]:
    """Loads the images of a folder as float32 tensors in [0, 1] (:mod:`wne.imageio`).

    Args:
        folder: Folder of images (:func:`wne.imageio.list_images`, not recursive).
        channels: 1 (grayscale; colour images are converted to luma, with a log
            line) or 3 (RGB; grayscale images are repeated).
        max_images: Keep only the first N images (sorted by file name).

    Returns:
        ``(file name, image [1, channels, H, W])`` pairs, sorted by name.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no image.
        ValueError: On an unreadable image (:class:`wne.imageio.ImageReadError`) or a
            side < 11 px.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    files = list_images(folder)
    if max_images is not None:
        if max_images < 1:
            raise ValueError(f"max_images must be >= 1, got {max_images}")
        files = files[:max_images]
    images: list[tuple[str, torch.Tensor]] = []
    converted: list[str] = []
    for path in files:
        pixels = read_image(path)
        if pixels.shape[-1] == 3 and channels == 1:
            converted.append(path.name)
        pixels = to_channels(pixels, channels)
        if min(pixels.shape[:2]) < MIN_SIDE:
            raise ValueError(
                f"image {path} is {pixels.shape[1]}×{pixels.shape[0]}: "
                f"sides must be >= {MIN_SIDE} px"
            )
        t = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
        images.append((path.name, t.permute(2, 0, 1).unsqueeze(0)))
    if converted:
        log.warning(
            "converted %d colour image(s) to grayscale luma (ITU-R 601-2): %s",
            len(converted),
            ", ".join(converted),
        )
    return images


@dataclass
class EvalModel:
    """A model under evaluation.

    Attributes:
        key: Model key (the CSV's ``model`` column; a label, never parsed).
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
        """The matching model of the paper's tables, if any (by catalog family)."""
        return paper.paper_column(self.arch, self.wrapper) if self.arch else None


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
        sigma_train: σ_train of checkpoints whose ``config.json`` records none.

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
        cfg: checkpoints.ModelConfig = model.wne_config  # type: ignore[assignment]
        if any(m.key == cfg.key for m in out):
            raise ValueError(f"model {cfg.key!r} given twice")
        s_train = cfg.sigma_train if cfg.sigma_train is not None else sigma_train
        if s_train is None:
            raise ValueError(
                f"{cfg.key!r} records no sigma_train in its config.json: pass --sigma-train"
            )
        model = accelerate(model.eval())  # equal to eager to float round-off (wne.fast)
        out.append(
            EvalModel(
                key=cfg.key,
                model=model,
                sigma_train=float(s_train),
                arch=cfg.arch,
                wrapper=cfg.wrapper,
                channels=int(cfg.arch_kwargs.get("channels", 1)),
                folder=folder,
                sha256=cfg.sha256,
            )
        )
    return out


def checkpoints_for_sigma(root: str | Path | None, sigma: float) -> list[str]:
    """Keys of the checkpoints in ``root`` whose ``config.json`` records ``sigma_train = sigma``.

    Args:
        root: Checkpoint folder (default: the bundled one).
        sigma: Training noise level (0–255 scale).

    Returns:
        The keys, sorted; unreadable configs are skipped with a warning.
    """
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


# --------------------------------------------------------------------------- results cache


def _images_fingerprint(images: Sequence[tuple[str, torch.Tensor]]) -> str:
    h = hashlib.sha256()
    for name, x in images:
        h.update(name.encode())
        h.update(str(tuple(x.shape)).encode())
        h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _cache_file(folder: Path, m: EvalModel, ident: dict[str, Any]) -> Path | None:
    if not m.sha256:
        return None
    ident = {"key": m.key, "sha256": m.sha256, "sigma_train": m.sigma_train, **ident}
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
            "eq_sum": torch.tensor(data["eq_sum"], dtype=torch.float64),
            "count": torch.tensor(data["count"], dtype=torch.long),
            "defects": [list(map(float, d)) for d in data["defects"]],
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable cache file %s: %s", path, exc)
        return None
    sizes = [hit[k].numel() for k in ("out_sum", "ssim_sum", "in_sum", "eq_sum", "count")]
    if sizes != [n_s] * 5 or len(hit["defects"]) != n_pairs:
        log.warning("ignoring cache file %s: it does not fit this run", path)
        return None
    return hit


# --------------------------------------------------------------------------- measurement


@dataclass
class RunResult:
    """Everything one evaluation run measured.

    Attributes:
        psnr_rows: One dict per model × level (keys :data:`PSNR_COLUMNS` and
            :data:`NOISE_COLUMNS`; ``sigma_test`` = ``level``).
        defect_rows: One dict per model × (a, b) (keys :data:`DEFECT_COLUMNS`; none
            for a non-Gaussian run).
        sigmas: The σ_test grid (the level grid of a non-Gaussian run).
        images: Image file names.
        draws: Noise draws per image and σ.
        seed: Run seed.
        defect_images: Images the defect sweep used (the first ones).
        noise: Noise type.
        read_noise: ``lowlight`` read noise (photo-electrons).
        jpeg_sigma: ``jpeg``: Gaussian σ added before compression.
    """

    psnr_rows: list[dict[str, Any]] = field(default_factory=list)
    defect_rows: list[dict[str, Any]] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    draws: int = 1
    seed: int = 0
    defect_images: int = 0
    noise: str = "gaussian"
    read_noise: float = 0.0
    jpeg_sigma: float = 0.0


@dataclass
class _Sums:
    """Running sums of a run: per level (input PSNR, equivalent σ, count) and per
    model × level (outputs)."""

    in_sum: torch.Tensor
    eq_sum: torch.Tensor
    count: torch.Tensor
    out_sum: torch.Tensor
    ssim_sum: torch.Tensor
    defects: list[list[list[float]]]  # model -> (a, b) pair -> one value per image

    @classmethod
    def zeros(cls, n_models: int, n_sigmas: int, n_pairs: int) -> _Sums:
        return cls(
            in_sum=torch.zeros(n_sigmas, dtype=torch.float64),
            eq_sum=torch.zeros(n_sigmas, dtype=torch.float64),
            count=torch.zeros(n_sigmas, dtype=torch.long),
            out_sum=torch.zeros(n_models, n_sigmas, dtype=torch.float64),
            ssim_sum=torch.zeros(n_models, n_sigmas, dtype=torch.float64),
            defects=[[[] for _ in range(n_pairs)] for _ in range(n_models)],
        )

    def restore(self, j: int, hit: dict[str, Any]) -> None:
        """Takes model ``j``'s numbers (and the shared input sums) from a cache hit."""
        self.out_sum[j], self.ssim_sum[j] = hit["out_sum"], hit["ssim_sum"]
        self.in_sum, self.eq_sum, self.count = hit["in_sum"], hit["eq_sum"], hit["count"]
        self.defects[j] = hit["defects"]

    def store(self, j: int, path: Path) -> None:
        """Writes model ``j``'s numbers (and the shared input sums) to a cache file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "out_sum": self.out_sum[j].tolist(),
            "ssim_sum": self.ssim_sum[j].tolist(),
            "in_sum": self.in_sum.tolist(),
            "eq_sum": self.eq_sum.tolist(),
            "count": self.count.tolist(),
            "defects": self.defects[j],
        }
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
        tmp.replace(path)


def _batch_size(batch_size: int, h: int, w: int) -> int:
    return batch_size if batch_size > 0 else max(1, DEFAULT_PIXEL_BUDGET // (h * w))


def _metrics_device(device: torch.device) -> torch.device:
    # float64 metrics: MPS has no float64.
    return torch.device("cpu") if device.type == "mps" else device


@torch.inference_mode()
def _forward(model: nn.Module, y: torch.Tensor, device: torch.device, bs: int) -> torch.Tensor:
    outs = [model(y[i : i + bs].to(device)).float() for i in range(0, y.shape[0], bs)]
    return torch.cat(outs)


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


@dataclass
class _Sweep:
    """One run's measurement loop over images: the noisy batch, every model on it,
    and the defect sweep; the numbers go into ``sums``."""

    models: Sequence[EvalModel]
    todo: list[int]  # indices of the models to run (the others came from the cache)
    protocol: Protocol
    grid: list[float]
    n_def: int
    sums: _Sums
    device: torch.device
    batch_size: int
    bar: Any

    def image(self, i: int, name: str, x: torch.Tensor) -> None:
        """Measures every model of ``todo`` on image ``i`` (and its defects, if due)."""
        p, sums, mdev = self.protocol, self.sums, _metrics_device(self.device)
        noisy = torch.cat([p.corrupt(x, i, k, s) for s in self.grid for k in range(p.draws)])
        sig_idx = torch.arange(len(self.grid)).repeat_interleave(p.draws)
        ref = x.to(mdev).expand(noisy.shape[0], *x.shape[1:])
        if i == 0:  # the input sums are recomputed, even where a cache hit set them
            sums.in_sum.zero_()
            sums.eq_sum.zero_()
            sums.count.zero_()
        sums.in_sum.index_add_(0, sig_idx, psnr(noisy.to(mdev), ref, 1.0).cpu())
        err = (noisy.to(mdev).double() - ref.double()).flatten(1)
        sums.eq_sum.index_add_(0, sig_idx, (255.0 * err.square().mean(dim=1).sqrt()).cpu())
        sums.count.index_add_(0, sig_idx, torch.ones_like(sig_idx))
        bs = _batch_size(self.batch_size, x.shape[-2], x.shape[-1])
        for j in self.todo:
            m = self.models[j]
            self.bar.set_postfix_str(f"{name} {m.key}", refresh=False)
            out = _forward(m.model, noisy, self.device, bs).to(mdev).clamp_(0.0, 1.0)
            for c in range(0, out.shape[0], bs):
                sl = slice(c, c + bs)
                sums.out_sum[j].index_add_(0, sig_idx[sl], psnr(out[sl], ref[sl], 1.0).cpu())
                sums.ssim_sum[j].index_add_(0, sig_idx[sl], ssim(out[sl], ref[sl], 1.0).cpu())
            del out
            self.bar.update(1)
        if i < self.n_def:
            self._defect_sweep(i, name, x, bs)

    def _defect_sweep(self, i: int, name: str, x: torch.Tensor, bs: int) -> None:
        """NE-defect sweep on the noisy image at each model's σ_train (draw 0)."""
        seed = self.protocol.seed
        noisy_at = {
            s: x + gaussian_noise(x.shape, s, noise_seed(seed, i, 0, s))
            for s in sorted({m.sigma_train for m in self.models})
        }
        pairs = self.protocol.pairs
        for j in self.todo:
            m = self.models[j]
            self.bar.set_postfix_str(f"{name} {m.key} defect", refresh=False)
            d = _defects(m.model, noisy_at[m.sigma_train], pairs, self.device, bs)
            for p, v in enumerate(d):
                self.sums.defects[j][p].append(v)
            self.bar.update(1)


def _check_inputs(models: Sequence[EvalModel], images: Sequence[tuple[str, torch.Tensor]]) -> None:
    if not models:
        raise ValueError("no models to evaluate")
    if not images:
        raise ValueError("no images to evaluate on")
    for m in models:
        for name, x in images:
            if x.shape[1] != m.channels:
                raise ValueError(
                    f"{m.key} takes {m.channels} channel(s) but {name} has {x.shape[1]}"
                )


def _cache_lookup(
    cache: Path,
    models: Sequence[EvalModel],
    images: Sequence[tuple[str, torch.Tensor]],
    protocol: Protocol,
    grid: list[float],
    device: torch.device,
    sums: _Sums,
) -> tuple[list[int], list[Path | None]]:
    """Restores the cached models into ``sums``; returns the models to run and each
    model's cache file (``None``: not cacheable)."""
    ident = {
        "images": _images_fingerprint(images),
        "sigmas": [round(v, 9) for v in grid],
        "draws": protocol.draws,
        "seed": protocol.seed,
        "pairs": protocol.pairs,
        "defect_images": protocol.n_defect_images(len(images)),
        "device": device.type,
        "noise": protocol.noise,
    }
    if protocol.noise == "lowlight":
        ident["read_noise"] = protocol.read_noise
    if protocol.noise == "jpeg":
        ident["jpeg_sigma"] = protocol.jpeg_sigma
    todo, files = [], []
    for j, m in enumerate(models):
        path = _cache_file(cache, m, ident)
        files.append(path)
        hit = _read_cache(path, len(grid), len(protocol.pairs))
        if hit is None:
            todo.append(j)
            continue
        log.info("%s: cached result reused (%s)", m.key, path)
        sums.restore(j, hit)
    return todo, files


def _rows(
    models: Sequence[EvalModel],
    grid: list[float],
    protocol: Protocol,
    sums: _Sums,
    result: RunResult,
) -> RunResult:
    """Means per model × σ and per model × (a, b), appended to ``result``."""
    in_mean = (sums.in_sum / sums.count).tolist()
    eq_mean = (sums.eq_sum / sums.count).tolist()
    n_per = sums.count.tolist()
    for j, m in enumerate(models):
        for s_i, s in enumerate(grid):
            result.psnr_rows.append(
                {
                    "model": m.key,
                    "sigma_test": s,
                    "noise": protocol.noise,
                    "level": s,
                    "input_psnr": in_mean[s_i],
                    "equivalent_sigma": eq_mean[s_i],
                    "psnr": float(sums.out_sum[j, s_i] / sums.count[s_i]),
                    "ssim": float(sums.ssim_sum[j, s_i] / sums.count[s_i]),
                    "n": int(n_per[s_i]),
                }
            )
        for p, (a, b) in enumerate(protocol.pairs):
            vals = sums.defects[j][p]
            if not vals:  # no defect sweep (non-Gaussian run)
                continue
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
    """Runs the mismatch sweep and the NE-defect sweep.

    Args:
        models: Models to compare (they share every noise draw).
        images: ``(name, [1, C, H, W])`` images in [0, 1].
        protocol: Grid, draws, seed and defect sweep (default: :class:`Protocol`).
        device: Where the models run.
        batch_size: Noisy images per forward pass (0: about 2¹⁹ pixels).
        progress: Show a tqdm bar (stderr).
        cache: Folder of per-model results: a model whose weights (sha256) and protocol
            (images, grid, draws, seed, defect sweep, device type) match a stored
            result is not run again. Only models with a recorded sha256 are cached.

    Returns:
        The measured rows.

    Raises:
        ValueError: On empty inputs, an empty grid or a channel mismatch between
            models and images.
    """
    from tqdm.auto import tqdm

    protocol = protocol or Protocol()
    _check_inputs(models, images)
    device = torch.device(device)
    grid = protocol.grid(models)
    if not grid:
        raise ValueError("empty σ grid" if protocol.gaussian else "empty level grid")
    n_def = protocol.n_defect_images(len(images))
    sums = _Sums.zeros(len(models), len(grid), len(protocol.pairs))
    todo, files = list(range(len(models))), [None] * len(models)
    if cache is not None:
        todo, files = _cache_lookup(Path(cache), models, images, protocol, grid, device, sums)

    bar = tqdm(
        total=(len(images) + n_def) * len(todo), desc="evaluate", unit="step", disable=not progress
    )
    sweep = _Sweep(models, todo, protocol, grid, n_def, sums, device, batch_size, bar)
    with bar, torch.inference_mode():
        for i, (name, x) in enumerate(images if todo else ()):
            sweep.image(i, name, x)
    for j in todo:
        path = files[j]
        if path is not None:
            sums.store(j, path)

    result = RunResult(
        sigmas=grid,
        images=[n for n, _ in images],
        draws=protocol.draws,
        seed=protocol.seed,
        defect_images=n_def,
        noise=protocol.noise,
        read_noise=protocol.read_noise,
        jpeg_sigma=protocol.jpeg_sigma,
    )
    return _rows(models, grid, protocol, sums, result)
