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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from wne import catalog
from wne.degrade import gaussian_noise
from wne.demo.settings import ORDERS, Settings
from wne.demo.zoo import ModelUnavailableError, Zoo, run_label
from wne.device import synchronize
from wne.metrics import psnr, ssim
from wne.tiling import TILE_SIZE, apply_tiled, tile_count

__all__ = [
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
    "degrade",
    "equivariance_map",
    "noise_sweep",
]

SWEEP_SIDE = 128
"""Longest side of the image used by the noise sweep (kept small for speed)."""
SWEEP_SIGMAS = (5.0, 10.0, 15.0, 25.0, 35.0, 50.0, 75.0, 100.0)

Progress = Callable[..., Any]
"""``progress(fraction, desc=...)``, e.g. a ``gr.Progress``."""


def _report(progress: Progress | None, fraction: float, desc: str) -> None:
    if progress is not None:
        progress(min(max(fraction, 0.0), 1.0), desc=desc)


def apply_model(model: nn.Module, images: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Runs a grayscale model on ``[N, H, W]`` images (e.g. a colour image's channels)
    in one batch, tiled above :data:`~wne.tiling.TILE_SIZE` (:func:`wne.tiling.apply_tiled`).

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


def degrade(
    clean: np.ndarray, settings: Settings, sigma: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The noisy model input and the target for a clean image.

    ``"shift-then-noise"``: target ``a·x + b``, noisy ``a·x + b + n``;
    ``"noise-then-shift"``: noisy ``a·(x + n) + b`` (noise std ``a·σ``), same
    target. With ``settings.clip`` both are clipped to [0, 1].

    Args:
        clean: ``[H, W, C]`` in [0, 1].
        settings: The request.
        sigma: Noise level overriding ``settings.sigma`` (for the sweep).

    Returns:
        ``(noisy, target)``, each ``[C, H, W]`` float32.
    """
    x = _chw(clean)
    s = settings.sigma if sigma is None else sigma
    noise = gaussian_noise(x.shape, s, settings.seed)
    target = settings.a * x + settings.b
    if settings.order == "shift-then-noise":
        noisy = target + noise
    else:
        noisy = settings.a * (x + noise) + settings.b
    if settings.clip:
        noisy, target = noisy.clamp(0, 1), target.clamp(0, 1)
    return noisy, target


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

    def run(self, backbone: str, variant: str) -> ModelRun | None:
        """The run of that slot, if it was requested."""
        for r in self.runs:
            if r.backbone == backbone and r.variant == variant:
                return r
        return None

    def table(self) -> list[list[Any]]:
        """Rows ``[model, PSNR dB, SSIM, time ms]`` (the noisy input first)."""
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
        return rows

    def summary(self) -> dict[str, Any]:
        """A JSON-ready record of the settings and numbers (for copying or the API)."""
        h, w, c = self.clean.shape
        return {
            "settings": self.settings.to_dict(),
            "image": {"width": w, "height": h, "channels": c},
            "device": self.device,
            "psnr_data_range": self.settings.a,
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
        The comparison.
    """
    noisy, target = degrade(clean, settings)
    a = settings.a
    n_psnr, n_ssim = _scores(noisy, target, a)
    result = Comparison(
        settings=settings,
        clean=clean,
        noisy=_hwc(noisy),
        target=_hwc(target),
        noisy_psnr=n_psnr,
        noisy_ssim=n_ssim,
        device=str(zoo.device),
    )
    slots = _slots(settings)
    for i, (backbone, variant) in enumerate(slots):
        key = catalog.key(backbone, variant, settings.sigma_train)
        run = ModelRun(backbone, variant, key)
        result.runs.append(run)
        try:
            model = zoo.get(backbone, variant, settings.sigma_train)
        except ModelUnavailableError as exc:
            run.message = str(exc)
            result.notes.append(str(exc) + ".")
            continue
        _report(progress, i / len(slots), f"{run.label} (σ_train={settings.sigma_train})")
        synchronize(zoo.device)
        start = time.perf_counter()
        out = apply_model(model, noisy, zoo.device)
        synchronize(zoo.device)
        run.seconds = time.perf_counter() - start
        if settings.clip:
            out = out.clamp(0, 1)
        run.psnr, run.ssim = _scores(out, target, a)
        run.output = _hwc(out)
    _report(progress, 1.0, "done")
    h, w, c = clean.shape
    if tile_count(h, w) > 1:
        result.notes.append(
            f"Denoised in {tile_count(h, w)} overlapping tiles of {TILE_SIZE} px "
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
            if settings.order == "noise-then-shift"
            else "."
        )
    )
    return result


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

    ``y = x + n`` is the noisy image before any shift (σ and seed from the
    settings). With "clip" on, both ``y`` and ``a·y + b`` are clipped to [0, 1]
    before the model, which is where exact equivariance breaks.

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
    y = x + gaussian_noise(x.shape, settings.sigma, settings.seed)
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
    return EquivarianceMap(backbone, settings, runs, vmax, notes)


@dataclass
class Sweep:
    """The result of :func:`noise_sweep`.

    Attributes:
        rows: Long-format records ``{"sigma", "psnr", "model"}``.
        notes: Notes for the user.
    """

    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def noise_sweep(
    zoo: Zoo,
    clean: np.ndarray,
    settings: Settings,
    sigmas: Sequence[float] = SWEEP_SIGMAS,
    progress: Progress | None = None,
) -> Sweep:
    """Output PSNR vs test σ for every selected plain/WNE model on one image.

    Uses the request's ``a``, ``b``, order, clip, seed and σ_train; the image
    should already be small (see :data:`SWEEP_SIDE`).

    Args:
        zoo: The loaded models.
        clean: ``[H, W, C]`` clean image in [0, 1].
        settings: The request.
        sigmas: Test noise levels (0–255 scale).
        progress: Optional progress callback.

    Returns:
        The curves, including one for the noisy input.
    """
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    degraded = [degrade(clean, settings, sigma=float(s)) for s in sigmas]
    for s, (noisy, target) in zip(sigmas, degraded, strict=True):
        rows.append(
            {"sigma": float(s), "psnr": _psnr(noisy, target, settings.a), "model": "noisy input"}
        )
    avail = []
    for b, v in _slots(settings):
        try:
            avail.append((b, v, zoo.get(b, v, settings.sigma_train)))
        except ModelUnavailableError as exc:
            notes.append(str(exc) + ".")
    total = max(1, len(avail) * len(sigmas))
    step = 0
    for b, v, model in avail:
        label = run_label(b, v)
        for s, (noisy, target) in zip(sigmas, degraded, strict=True):
            _report(progress, step / total, f"{label}, σ={s:g}")
            out = apply_model(model, noisy, zoo.device)
            if settings.clip:
                out = out.clamp(0, 1)
            rows.append({"sigma": float(s), "psnr": _psnr(out, target, settings.a), "model": label})
            step += 1
    _report(progress, 1.0, "done")
    return Sweep(rows, notes)
