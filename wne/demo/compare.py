"""The demo's computations as plain functions: comparison, equivariance map, noise sweep.

Nothing here imports Gradio; the app only converts results for display.

Conventions: images are ``[H, W, C]`` float32 arrays on the [0, 1] scale with
``C`` = 1 or 3; σ is on the 0–255 scale. The models are grayscale, so a colour
image is denoised channel by channel by the same model in one batched call
(channels become the batch dimension). A shift ``a·y + b`` applied to every
channel therefore stays exactly equivariant for WNE models.

Scores: PSNR and SSIM are computed against the target ``a·x + b`` (the shifted
clean image, unclipped unless "clip" is on) with data range ``a``, so an
equivariant model scores the same at every ``a, b`` when the shift is applied
to the noisy image.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from wne import catalog
from wne.degrade import equivalent_sigma, gaussian_noise, jpeg, low_light, noise
from wne.demo.settings import NOISE_LEVEL, NOISE_TYPES, ORDERS, Settings
from wne.demo.zoo import ModelUnavailableError, Zoo, run_label
from wne.device import synchronize
from wne.metrics import psnr, ssim
from wne.tiling import TILE_SIZE, apply_tiled, tile_count, tile_size

__all__ = [
    "SWEEP_LEVELS",
    "SWEEP_SIDE",
    "SWEEP_SIGMAS",
    "TILE_SIZE",
    "Comparison",
    "EquivarianceMap",
    "EquivarianceRun",
    "ModelRun",
    "Sweep",
    "apply_model",
    "compare",
    "compare_steps",
    "corrupt",
    "degrade",
    "equivariance_map",
    "noise_notes",
    "noise_sweep",
    "side_by_side",
]

SWEEP_SIDE = 128
"""Longest side of the image used by the noise sweep (kept small for speed)."""
SWEEP_SIGMAS = (5.0, 10.0, 15.0, 25.0, 35.0, 50.0, 75.0, 100.0)
SWEEP_LEVELS: dict[str, tuple[float, ...]] = {
    "sigma": SWEEP_SIGMAS,
    "photons": (2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 300.0, 1000.0),
    "quality": (5.0, 10.0, 20.0, 30.0, 50.0, 70.0, 85.0, 95.0),
}
"""The noise sweep's x-axis per level setting (:data:`~wne.demo.settings.NOISE_LEVEL`)."""
SWEEP_JPEG_SIGMA = 25.0
"""The Gaussian σ under the JPEG compression in the noise sweep (the sweep fixes σ)."""

Progress = Callable[..., Any]
"""``progress(fraction, desc=...)``, e.g. a ``gr.Progress``."""


SIDE_BY_SIDE_ENV = "WNE_SIDE_BY_SIDE"
"""Set to ``0`` to run a comparison's models one after the other on the CPU too."""

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_THREADS_LOCK = threading.Lock()


def side_by_side(device: torch.device | str) -> int:
    """How many of a backbone's models a comparison runs at once on ``device``.

    On a CPU with at least two intra-op threads: 2, each model on one thread. A small
    denoiser spends much of its time in memory-bound and per-operator work that two
    threads inside one operator barely share, so two models on one core each finish
    sooner than one after the other on two cores (2-core machine, 256² colour, the
    bundled σ=25 models: 1.84 s against 2.70 s, median of 5 paired runs,
    ``assets/results/fast-paths/cpu_serving.py``). On a GPU,
    one after the other (its kernels are queued on one stream anyway).

    Returns:
        2 (side by side) or 1.
    """
    if os.environ.get(SIDE_BY_SIDE_ENV, "1") == "0":
        return 1
    if torch.device(device).type != "cpu" or torch.get_num_threads() < 2:
        return 1
    return 2


def _groups(slots: Sequence[tuple[str, str]], size: int) -> list[list[tuple[str, str]]]:
    """The slots in display order, a backbone's variants together, ``size`` at most."""
    out: list[list[tuple[str, str]]] = []
    for slot in slots:
        if out and len(out[-1]) < size and out[-1][0][0] == slot[0]:
            out[-1].append(slot)
        else:
            out.append([slot])
    return out


def _model_job(
    run: ModelRun,
    model: nn.Module,
    noisy: torch.Tensor,
    target: torch.Tensor,
    device: torch.device | str,
    clip: bool,
    a: float,
) -> Callable[[], None]:
    """One model's call, scores and output, filled into ``run``."""

    def job() -> None:
        synchronize(device)
        start = time.perf_counter()
        out = apply_model(model, noisy, device)
        synchronize(device)
        run.seconds = time.perf_counter() - start
        if clip:
            out = out.clamp(0, 1)
        run.psnr, run.ssim = _scores(out, target, a)
        run.output = _hwc(out)

    return job


def _run_jobs(jobs: list[Callable[[], None]], parallel: bool) -> None:
    """Runs ``jobs``: one after the other, or each on its own thread with one intra-op
    thread each (the previous thread count is restored; one such group at a time)."""
    global _POOL
    if not parallel or len(jobs) < 2:
        for job in jobs:
            job()
        return
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="wne-side-by-side")
    with _THREADS_LOCK:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            futures = [_POOL.submit(job) for job in jobs]
            for f in futures:
                f.result()
        finally:
            torch.set_num_threads(threads)


def _report(progress: Progress | None, fraction: float, desc: str) -> None:
    if progress is not None:
        progress(min(max(fraction, 0.0), 1.0), desc=desc)


def apply_model(model: nn.Module, images: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Runs a grayscale model on ``[N, H, W]`` images (e.g. a colour image's channels)
    in one batch, tiled above :func:`wne.tiling.tile_size` (:func:`wne.tiling.apply_tiled`).

    Returns:
        ``[N, H, W]`` float32 outputs on CPU, unclipped.
    """
    return apply_tiled(model, images.unsqueeze(1), device=device).squeeze(1)


def _slots(settings: Settings) -> list[tuple[str, str]]:
    """(backbone, variant) of every model a request selects, in display order."""
    return [(b, v) for b in settings.backbones for v in catalog.FAMILIES[b].variants]


def _chw(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(2, 0, 1)


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().permute(1, 2, 0).contiguous().numpy().astype(np.float32)


def corrupt(x: torch.Tensor, settings: Settings, level: float | None = None) -> torch.Tensor:
    """``x`` observed with the request's noise type (:mod:`wne.degrade`, seeded).

    - ``gaussian``, ``uniform``, ``laplace``, ``rayleigh``: ``x + n``, std ``σ/255``
      (Rayleigh is not zero-mean);
    - ``lowlight``: :func:`wne.degrade.low_light` with ``photons`` and ``read_noise``;
    - ``jpeg``: :func:`wne.degrade.jpeg` at ``quality`` of ``x`` plus Gaussian noise σ.

    Args:
        x: ``[C, H, W]`` image.
        settings: The request (type, levels, seed).
        level: Overrides the type's level (σ, photons or quality; for the sweep).

    Returns:
        The noisy image, ``[C, H, W]`` float32, unclipped (except by JPEG).
    """
    kind, seed = settings.noise, settings.seed
    if kind == "lowlight":
        photons = settings.photons if level is None else float(level)
        return low_light(x, photons, seed, read_noise=settings.read_noise)
    if kind == "jpeg":
        quality = settings.quality if level is None else round(level)
        return jpeg(x + gaussian_noise(x.shape, settings.sigma, seed), quality)
    sigma = settings.sigma if level is None else float(level)
    if kind == "gaussian":
        return x + gaussian_noise(x.shape, sigma, seed)
    return x + noise(kind, x.shape, sigma, seed)


def degrade(
    clean: np.ndarray, settings: Settings, sigma: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The noisy model input and the target for a clean image.

    ``"shift-then-noise"``: target ``a·x + b``, noisy = corrupt(``a·x + b``);
    ``"noise-then-shift"``: noisy ``a·corrupt(x) + b`` (for Gaussian noise: std
    ``a·σ``), same target. :func:`corrupt` applies the noise type. With
    ``settings.clip`` both are clipped to [0, 1].

    Args:
        clean: ``[H, W, C]`` in [0, 1].
        settings: The request.
        sigma: The noise type's level overriding the settings' (σ, photons or
            quality; for the sweep).

    Returns:
        ``(noisy, target)``, each ``[C, H, W]`` float32.
    """
    x = _chw(clean)
    target = settings.a * x + settings.b
    if settings.order == "shift-then-noise":
        noisy = corrupt(target, settings, sigma)
    else:
        noisy = settings.a * corrupt(x, settings, sigma) + settings.b
    if settings.clip:
        noisy, target = noisy.clamp(0, 1), target.clamp(0, 1)
    return noisy, target


def noise_notes(settings: Settings, noisy: torch.Tensor, target: torch.Tensor) -> list[str]:
    """What the noise type is, in words, with the equivalent Gaussian σ where it has none."""
    kind = settings.noise
    if kind == "gaussian":
        return []
    eq = equivalent_sigma(noisy, target)
    if kind == "rayleigh":
        return [
            f"Rayleigh noise (σ = {settings.sigma:g}) is not zero-mean: it also brightens the "
            "image by about 1.9·σ/255."
        ]
    if kind == "lowlight":
        return [
            f"Low light: {settings.photons:g} photons per pixel at white, read noise "
            f"{settings.read_noise:g} e⁻, brightened back; equivalent Gaussian σ ≈ {eq:.1f} "
            "(the noise is stronger in bright regions, the signal-to-noise ratio worse in "
            "dark ones)."
        ]
    if kind == "jpeg":
        return [
            f"JPEG at quality {settings.quality} of the noisy image (Gaussian σ = "
            f"{settings.sigma:g}); equivalent Gaussian σ ≈ {eq:.1f}."
        ]
    return [f"{NOISE_TYPES[kind]} noise of std σ = {settings.sigma:g}."]


def _psnr(out: torch.Tensor, target: torch.Tensor, data_range: float) -> float:
    return float(psnr(out[None], target[None], data_range=data_range)[0])


def _scores(out: torch.Tensor, target: torch.Tensor, data_range: float) -> tuple[float, float]:
    """PSNR (dB) and SSIM of ``[C, H, W]`` images against the target."""
    return _psnr(out, target, data_range), float(ssim(out, target, data_range))


@dataclass
class ModelRun:
    """One model's output in a comparison.

    Attributes:
        backbone: Backbone id.
        variant: ``"plain"``, ``"wne"`` or ``"ne"``.
        key: Checkpoint key.
        output: ``[H, W, C]`` output (clipped to [0, 1] only when "clip" is on),
            or None when the model is unavailable.
        psnr: PSNR vs the target in dB (data range ``a``).
        ssim: SSIM vs the target (data range ``a``).
        seconds: Wall time of the model call (device transfers included).
        message: Why the model is unavailable.
    """

    backbone: str
    variant: str
    key: str
    output: np.ndarray | None = None
    psnr: float | None = None
    ssim: float | None = None
    seconds: float | None = None
    message: str | None = None

    @property
    def label(self) -> str:
        """E.g. ``"CNN · WNE"`` (just ``"NE-arch"`` for the NE-arch baseline)."""
        return run_label(self.backbone, self.variant)


@dataclass
class Comparison:
    """The result of :func:`compare`.

    Attributes:
        settings: The request.
        clean: ``[H, W, C]`` working-size clean image.
        noisy: ``[H, W, C]`` model input.
        target: ``[H, W, C]`` target ``a·x + b`` (clipped only with "clip").
        noisy_psnr: PSNR of the noisy input vs the target.
        noisy_ssim: SSIM of the noisy input vs the target.
        runs: One entry per (selected backbone, variant).
        notes: Notes for the user.
        device: Where the models ran.
        equivalent_sigma: The Gaussian σ (0–255) with the noise's mean squared error,
            ``255·RMS(noisy − target)``.
        pending: ``(backbone, variant)`` of the models still to run (a partial
            comparison of :func:`compare_steps`; empty when complete).
    """

    settings: Settings
    clean: np.ndarray
    noisy: np.ndarray
    target: np.ndarray
    noisy_psnr: float
    noisy_ssim: float
    runs: list[ModelRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    device: str = "cpu"
    equivalent_sigma: float | None = None
    pending: tuple[tuple[str, str], ...] = ()

    def snapshot(self) -> Comparison:
        """A copy whose run and note lists later steps do not change."""
        return replace(self, runs=list(self.runs), notes=list(self.notes))

    def run(self, backbone: str, variant: str) -> ModelRun | None:
        """The run of that slot, if it was requested."""
        for r in self.runs:
            if r.backbone == backbone and r.variant == variant:
                return r
        return None

    def table(self) -> list[list[Any]]:
        """Rows ``[model, PSNR dB, SSIM, time ms]`` (the noisy input first; models still
        to run last, marked "computing…")."""
        rows: list[list[Any]] = [
            ["noisy input", round(self.noisy_psnr, 2), round(self.noisy_ssim, 4), None]
        ]
        for r in self.runs:
            if r.output is None:
                rows.append([f"{r.label} (unavailable)", None, None, None])
            else:
                rows.append(
                    [
                        r.label,
                        _round(r.psnr, 2),
                        _round(r.ssim, 4),
                        _round(None if r.seconds is None else 1000 * r.seconds, 1),
                    ]
                )
        rows += [[f"{run_label(b, v)} (computing…)", None, None, None] for b, v in self.pending]
        return rows

    def summary(self) -> dict[str, Any]:
        """A JSON-ready record of the settings and numbers (for copying or the API);
        ``pending`` lists the checkpoint keys still to run (empty when complete)."""
        h, w, c = self.clean.shape
        return {
            "settings": self.settings.to_dict(),
            "image": {"width": w, "height": h, "channels": c},
            "device": self.device,
            "psnr_data_range": self.settings.a,
            "noise": {
                "type": self.settings.noise,
                "equivalent_sigma": _json_float(self.equivalent_sigma),
            },
            "noisy": {"psnr": _json_float(self.noisy_psnr), "ssim": _json_float(self.noisy_ssim)},
            "models": {
                r.key: {
                    "label": r.label,
                    "available": r.output is not None,
                    "psnr": _json_float(r.psnr),
                    "ssim": _json_float(r.ssim),
                    "seconds": _json_float(r.seconds),
                    "message": r.message,
                }
                for r in self.runs
            },
            "pending": [catalog.key(b, v, self.settings.sigma_train) for b, v in self.pending],
            "notes": list(self.notes),
        }


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return value
    return round(value, digits)


def _json_float(value: float | None) -> float | str | None:
    if value is None:
        return None
    return value if math.isfinite(value) else str(value)


def compare(
    zoo: Zoo,
    clean: np.ndarray,
    settings: Settings,
    progress: Progress | None = None,
) -> Comparison:
    """Degrades an image and denoises it with every selected plain/WNE model.

    Missing models are reported in their run's ``message``; they never raise.

    Args:
        zoo: The loaded models.
        clean: ``[H, W, C]`` clean image in [0, 1] at working size.
        settings: The validated request.
        progress: Optional progress callback.

    Returns:
        The comparison (the last of :func:`compare_steps`).
    """
    return deque(compare_steps(zoo, clean, settings, progress), maxlen=1)[0]


def compare_steps(
    zoo: Zoo,
    clean: np.ndarray,
    settings: Settings,
    progress: Progress | None = None,
) -> Iterator[Comparison]:
    """:func:`compare` as it goes: the comparison after each step, for streaming.

    Yields first the noisy input and target with every model ``pending``, then the
    comparison after each model (in display order), and last the complete one
    (notes filled in, nothing pending). Each yielded value is a snapshot: later
    steps never change it.

    Args:
        zoo: The loaded models.
        clean: ``[H, W, C]`` clean image in [0, 1] at working size.
        settings: The validated request.
        progress: Optional progress callback.

    Yields:
        The comparison so far.
    """
    noisy, target = degrade(clean, settings)
    a = settings.a
    n_psnr, n_ssim = _scores(noisy, target, a)
    slots = _slots(settings)
    result = Comparison(
        settings=settings,
        clean=clean,
        noisy=_hwc(noisy),
        target=_hwc(target),
        noisy_psnr=n_psnr,
        noisy_ssim=n_ssim,
        device=str(zoo.device),
        equivalent_sigma=equivalent_sigma(noisy, target),
        pending=tuple(slots),
    )
    yield result.snapshot()
    pairs = side_by_side(zoo.device)
    done = 0
    for group in _groups(slots, pairs):
        runs: list[ModelRun] = []
        jobs: list[Callable[[], None]] = []
        for backbone, variant in group:
            run = ModelRun(backbone, variant, catalog.key(backbone, variant, settings.sigma_train))
            runs.append(run)
            try:
                model = zoo.get(backbone, variant, settings.sigma_train)
            except ModelUnavailableError as exc:
                run.message = str(exc)
                result.notes.append(str(exc) + ".")
            else:
                jobs.append(_model_job(run, model, noisy, target, zoo.device, settings.clip, a))
        labels = " + ".join(r.label for r in runs if r.message is None)
        if labels:
            _report(progress, done / len(slots), f"{labels} (σ_train={settings.sigma_train})")
        _run_jobs(jobs, parallel=pairs > 1)
        result.runs.extend(runs)
        done += len(group)
        result.pending = tuple(slots[done:])
        if result.pending:
            yield result.snapshot()
    if pairs > 1 and len(slots) > 1:
        result.notes.append(
            "On the CPU the models of each backbone ran side by side, one core each "
            "(their times overlap)."
        )
    _report(progress, 1.0, "done")
    h, w, c = clean.shape
    tiles = tile_count(h, w, device=zoo.device)
    if tiles > 1:
        result.notes.append(
            f"Denoised in {tiles} overlapping tiles of {tile_size(zoo.device)} px "
            "(tiling keeps WNE exactly equivariant)."
        )
    if c == 3:
        result.notes.append(
            "Colour image: each channel is denoised by the same grayscale model in one "
            "batched call."
        )
    result.notes.append(
        f"Order: {ORDERS[settings.order]}"
        + (
            f" (the noise std becomes a·σ = {settings.a * settings.sigma:.1f})."
            if settings.order == "noise-then-shift" and NOISE_LEVEL[settings.noise] == "sigma"
            else "."
        )
    )
    result.notes += noise_notes(settings, noisy, target)
    yield result.snapshot()


@dataclass
class EquivarianceRun:
    """The equivariance defect of one model.

    Attributes:
        variant: ``"plain"``, ``"wne"`` or ``"ne"``.
        key: Checkpoint key.
        error: ``[H, W]`` map of ``|f(a·y+b) − (a·f(y)+b)|`` (max over channels),
            or None when unavailable.
        relative: ``‖f(a·y+b) − (a·f(y)+b)‖₂ / ‖a·f(y)+b‖₂``.
        max_abs: Largest absolute defect.
        message: Why the model is unavailable.
    """

    variant: str
    key: str
    error: np.ndarray | None = None
    relative: float | None = None
    max_abs: float | None = None
    message: str | None = None


@dataclass
class EquivarianceMap:
    """The result of :func:`equivariance_map`.

    Attributes:
        backbone: Backbone id.
        settings: The request.
        runs: One entry per variant.
        vmax: Common top of the colour scale (the largest defect shown).
        notes: Notes for the user.
    """

    backbone: str
    settings: Settings
    runs: list[EquivarianceRun]
    vmax: float
    notes: list[str] = field(default_factory=list)


def equivariance_map(
    zoo: Zoo,
    clean: np.ndarray,
    settings: Settings,
    backbone: str,
    progress: Progress | None = None,
) -> EquivarianceMap:
    """Measures ``f(a·y + b)`` against ``a·f(y) + b`` for each variant of a backbone.

    ``y`` is the noisy image before any shift (:func:`corrupt`: the noise type,
    its level and seed from the settings). With "clip" on, both ``y`` and ``a·y + b``
    are clipped to [0, 1] before the model, which is where exact equivariance breaks.

    Args:
        zoo: The loaded models.
        clean: ``[H, W, C]`` clean image in [0, 1].
        settings: The request (``a``, ``b``, σ, seed, σ_train, clip are used).
        backbone: Backbone id.
        progress: Optional progress callback.

    Returns:
        The maps and defects.
    """
    x = _chw(clean)
    y = corrupt(x, settings)
    shifted = settings.a * y + settings.b
    if settings.clip:
        y, shifted = y.clamp(0, 1), shifted.clamp(0, 1)
    c = y.shape[0]
    runs: list[EquivarianceRun] = []
    variants = catalog.FAMILIES[backbone].variants
    for i, variant in enumerate(variants):
        key = catalog.key(backbone, variant, settings.sigma_train)
        try:
            model = zoo.get(backbone, variant, settings.sigma_train)
        except ModelUnavailableError as exc:
            runs.append(EquivarianceRun(variant, key, message=str(exc)))
            continue
        _report(progress, i / len(variants), f"{catalog.VARIANT_LABELS[variant]} model")
        out = apply_model(model, torch.cat([y, shifted]), zoo.device).double()
        expected = settings.a * out[:c] + settings.b
        diff = (out[c:] - expected).abs()
        rel = float(diff.norm() / expected.norm().clamp_min(torch.finfo(torch.float64).tiny))
        runs.append(
            EquivarianceRun(
                variant,
                key,
                error=diff.amax(dim=0).float().numpy(),
                relative=rel,
                max_abs=float(diff.max()),
            )
        )
    _report(progress, 1.0, "done")
    vmax = max((r.max_abs for r in runs if r.max_abs is not None), default=0.0)
    notes = []
    if settings.a == 1.0 and settings.b == 0.0:
        notes.append("a = 1 and b = 0 is the identity shift: every model is trivially exact.")
    if settings.clip:
        notes.append("Clipping to [0, 1] is on: saturated pixels break exact equivariance.")
    notes += noise_notes(settings, y, x)
    return EquivarianceMap(backbone, settings, runs, vmax, notes)


@dataclass
class Sweep:
    """The result of :func:`noise_sweep`.

    Attributes:
        rows: Long-format records ``{"level", "sigma", "psnr", "model"}``: ``level`` is the
            noise type's level (σ, photons or JPEG quality), ``sigma`` the noise's σ
            (the equivalent Gaussian σ for low light and JPEG).
        notes: Notes for the user.
        level: The name of the swept setting (``"sigma"``, ``"photons"``, ``"quality"``).
    """

    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    level: str = "sigma"


def noise_sweep(
    zoo: Zoo,
    clean: np.ndarray,
    settings: Settings,
    sigmas: Sequence[float] | None = None,
    progress: Progress | None = None,
) -> Sweep:
    """Output PSNR vs the noise level for every selected plain/WNE model on one image.

    Uses the request's ``a``, ``b``, order, clip, seed, σ_train and noise type; the
    image should already be small (see :data:`SWEEP_SIDE`). The swept level is the
    type's (:data:`~wne.demo.settings.NOISE_LEVEL`): σ, photons at white or JPEG quality.

    Args:
        zoo: The loaded models.
        clean: ``[H, W, C]`` clean image in [0, 1].
        settings: The request.
        sigmas: The levels (default :data:`SWEEP_LEVELS` of the type; σ on the 0–255 scale).
        progress: Optional progress callback.

    Returns:
        The curves, including one for the noisy input.
    """
    level = NOISE_LEVEL[settings.noise]
    levels = tuple(float(v) for v in (SWEEP_LEVELS[level] if sigmas is None else sigmas))
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    degraded = [degrade(clean, settings, sigma=s) for s in levels]
    eq = {
        s: equivalent_sigma(n, t) if level != "sigma" else s
        for s, (n, t) in zip(levels, degraded, strict=True)
    }

    def row(s: float, value: float, model: str) -> dict[str, Any]:
        return {"level": s, "sigma": eq[s], "psnr": value, "model": model}

    for s, (noisy, target) in zip(levels, degraded, strict=True):
        rows.append(row(s, _psnr(noisy, target, settings.a), "noisy input"))
    avail = []
    for b, v in _slots(settings):
        try:
            avail.append((b, v, zoo.get(b, v, settings.sigma_train)))
        except ModelUnavailableError as exc:
            notes.append(str(exc) + ".")
    total = max(1, len(avail) * len(levels))
    step = 0
    for b, v, model in avail:
        label = run_label(b, v)
        for s, (noisy, target) in zip(levels, degraded, strict=True):
            _report(progress, step / total, f"{label}, {level}={s:g}")
            out = apply_model(model, noisy, zoo.device)
            if settings.clip:
                out = out.clamp(0, 1)
            rows.append(row(s, _psnr(out, target, settings.a), label))
            step += 1
    _report(progress, 1.0, "done")
    if level != "sigma":
        notes.append(
            "The curves' `sigma` column is the equivalent Gaussian σ of each level: "
            + ", ".join(f"{s:g} → {eq[s]:.1f}" for s in levels)
            + "."
        )
    if settings.noise == "rayleigh":
        notes.append("Rayleigh noise is not zero-mean: it also brightens the image.")
    return Sweep(rows, notes, level)
