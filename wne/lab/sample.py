"""Command line of the denoiser-as-prior sampler (``wne-sample``).

``wne-sample --models swinir-plain-s10 swinir-wne-s10 --data DIR --out OUT`` (or
``python -m wne.lab.sample ...``) runs Kadkhodaie & Simoncelli's unified sampler
(:func:`wne.sampler.sample`) with each checkpoint as the prior on every image of a folder,
with the WNE paper's two protocols (App. N, ``denoiser_sampler.py``):

- ``--task denoise`` (Table 11, residual-stopped denoising): ``P = 0``, ``β = 1`` (no
  injected noise), ``h0 = 0.01``, ``y0 = x + (10/255)·z``, stop when ``σ̂ ≤ 1/255``, at most
  1000 steps. Reported: the one-pass denoiser ``D(y0)``, the best state on the trajectory
  (oracle, over ``y_0 … y_T``), the final state, final − best, final − one-pass, the best
  and final steps.
- ``--task inpaint`` (Table 12, random inpainting): a per-pixel Bernoulli mask keeping
  ``--keep`` (10 %) of the pixels, mask seed ``seed + 1,000,003·(idx + 1)``;
  ``y0 = x_c + 0.5·(I − P)·1 + σ0·z``, ``σ0 = 1``, stop at ``σ̂ ≤ σ_L = 0.01``, ``h0 = 0.01``,
  ``β = 0.01``, at most 1000 steps; the final result is projected, ``x_c + (I − P)·y``.
- ``--task center_hole`` (a centred square hiding ``--hole-fraction`` of the area) and
  ``--task superres`` (``--factor``×``--factor`` block means): the inpainting parameters.

Noise levels are given on the 0–255 scale, as the paper's code (``--sigma0`` 10 for
denoising, 255 for the others; ``--sigma-stop`` 1 and 2.55). Each image's generator is
seeded with ``seed + idx`` (``idx``: its position in the sorted folder), so every model sees
the same initial state and injected noise. Metrics are PSNR and SSIM (:mod:`wne.metrics`,
data range 1) of results clamped to [0, 1]; the state itself is never clamped. A run whose
state or denoiser output stops being finite is reported as ``diverged`` (its scores are
left empty and out of the means; never NaN).

Outputs in ``OUT/<task>/``: ``runs.csv`` (one row per image × model), ``trajectory.csv``
(σ̂_t and the state's PSNR per step, every run), ``summary.json`` (means and standard
deviations per model, the paper's table beside), ``sampler.png`` (final PSNR/SSIM per
model; σ̂_t and PSNR along the trajectory of one image) and ``trajectory.gif`` (the
state of one image and model, every few steps).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wne import __version__, checkpoints
from wne.degrade import equivalent_sigma
from wne.device import pick_device
from wne.lab import cli
from wne.lab.protocol import EvalModel, load_images, resolve_models
from wne.lab.report import write_csv
from wne.metrics import psnr, ssim
from wne.sampler import Measurement, injected_variance, paper_parameters, sample, step_size

__all__ = [
    "PAPER",
    "RUN_COLUMNS",
    "TASKS",
    "TRAJECTORY_COLUMNS",
    "RunRecord",
    "TaskSettings",
    "main",
    "measurement_for",
    "predicted_steps",
    "residual_scale",
    "run_one",
    "settings_for",
    "summarize",
]

log = logging.getLogger("wne.lab.sample")

TASKS: tuple[str, ...] = ("denoise", "inpaint", "center_hole", "superres")
MASK_SEED_STRIDE = 1_000_003
GIF_MAX_BYTES = 2_000_000

RUN_COLUMNS = (
    "image",
    "index",
    "model",
    "task",
    "seed",
    "input_psnr",
    "one_pass_psnr",
    "one_pass_ssim",
    "best_psnr",
    "best_step",
    "final_psnr",
    "final_ssim",
    "final_minus_best",
    "final_minus_one_pass",
    "steps",
    "stop",
    "last_sigma_hat",
    "seconds",
)
TRAJECTORY_COLUMNS = ("image", "model", "step", "sigma_hat", "error_rms", "psnr")

PAPER: dict[str, dict[str, Any]] = {
    "denoise": {
        "source": "WNE paper, App. N, Table 11 (SwinIR-lite trained with Noise2Noise at σ = 10; "
        "Set12 means; noisy input 28.16 dB)",
        "models": {
            "none": {
                "label": "Baseline-N2N",
                "one_pass_psnr": 35.07,
                "best_psnr": 34.20,
                "final_psnr": 29.49,
                "final_minus_best": -4.71,
                "final_minus_one_pass": -5.58,
                "best_step": 16.67,
                "steps": 40.08,
            },
            "wne": {
                "label": "WNE-N2N",
                "one_pass_psnr": 34.96,
                "best_psnr": 34.89,
                "final_psnr": 34.79,
                "final_minus_best": -0.10,
                "final_minus_one_pass": -0.16,
                "best_step": 22.75,
                "steps": 25.00,
            },
        },
    },
    "inpaint": {
        "source": "WNE paper, App. N, Table 12 (10 % observed pixels, σ0 = 1; means (std) over "
        "Set12; observed P·x*: 5.92 (0.93) dB, SSIM 0.020 (0.008))",
        "models": {
            "none": {
                "label": "Baseline-N2N",
                "one_pass_psnr": 6.87,
                "final_psnr": 6.08,
                "final_psnr_std": 0.27,
                "final_ssim": 0.009,
                "final_minus_best": -0.91,
                "steps": 96.8,
                "steps_std": 1.3,
            },
            "wne": {
                "label": "WNE-N2N",
                "one_pass_psnr": 14.21,
                "final_psnr": 23.87,
                "final_psnr_std": 2.62,
                "final_ssim": 0.716,
                "final_minus_best": 0.00,
                "steps": 277.6,
                "steps_std": 26.1,
            },
        },
    },
}
"""The paper's sampler numbers (paper-notes §5.6), by wrapper of the SwinIR-lite model."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class TaskSettings:
    """Parameters of one sampler protocol (noise levels on the [0, 1] scale).

    Attributes:
        task: One of :data:`TASKS`.
        h0: Initial step size.
        beta: Noise-injection parameter (1: none).
        sigma0: Initial noise std (denoising: the noise of ``y0 = x + σ0·z``).
        sigma_stop: Stop when σ̂_t falls to this level.
        max_steps: Largest number of steps.
        keep: ``inpaint``: fraction of observed pixels.
        hole_fraction: ``center_hole``: hidden fraction of the area.
        factor: ``superres``: block side.
    """

    task: str
    h0: float
    beta: float
    sigma0: float
    sigma_stop: float
    max_steps: int = 1000
    keep: float = 0.1
    hole_fraction: float = 0.25
    factor: int = 4

    def as_dict(self) -> dict[str, Any]:
        """The settings, with the noise levels also on the 0–255 scale."""
        return {
            "task": self.task,
            "h0": self.h0,
            "beta": self.beta,
            "sigma0": self.sigma0,
            "sigma0_8bit": self.sigma0 * 255,
            "sigma_stop": self.sigma_stop,
            "sigma_stop_8bit": self.sigma_stop * 255,
            "max_steps": self.max_steps,
            **({"keep": self.keep} if self.task == "inpaint" else {}),
            **({"hole_fraction": self.hole_fraction} if self.task == "center_hole" else {}),
            **({"factor": self.factor} if self.task == "superres" else {}),
        }


def settings_for(
    task: str,
    *,
    h0: float | None = None,
    beta: float | None = None,
    sigma0_8bit: float | None = None,
    sigma_stop_8bit: float | None = None,
    max_steps: int = 1000,
    keep: float = 0.1,
    hole_fraction: float = 0.25,
    factor: int = 4,
) -> TaskSettings:
    """The paper's settings of a task, with any given value replacing its default.

    Defaults: :func:`wne.sampler.paper_parameters` (``denoise`` h0 0.01, β 1, σ0 10/255,
    σ_stop 1/255; the other tasks h0 0.01, β 0.01, σ0 1 (255/255), σ_stop 0.01 (2.55/255));
    1000 steps at most.

    Raises:
        ValueError: On an unknown task or a value out of range.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    paper = paper_parameters(task)
    s = TaskSettings(
        task=task,
        h0=paper["h0"] if h0 is None else float(h0),
        beta=paper["beta"] if beta is None else float(beta),
        sigma0=paper["sigma0"] if sigma0_8bit is None else float(sigma0_8bit) / 255,
        sigma_stop=paper["sigma_stop"] if sigma_stop_8bit is None else sigma_stop_8bit / 255,
        max_steps=int(max_steps),
        keep=float(keep),
        hole_fraction=float(hole_fraction),
        factor=int(factor),
    )
    checks = [
        (0 < s.h0 <= 1, f"h0 must be in (0, 1], got {s.h0:g}"),
        (0 <= s.beta <= 1, f"beta must be in [0, 1], got {s.beta:g}"),
        (math.isfinite(s.sigma0) and s.sigma0 >= 0, "sigma0 must be a finite number >= 0"),
        (math.isfinite(s.sigma_stop) and s.sigma_stop > 0, "sigma-stop must be > 0"),
        (s.max_steps >= 1, f"max-steps must be >= 1, got {s.max_steps}"),
        (0 < s.keep <= 1, f"keep must be in (0, 1], got {s.keep:g}"),
        (0 < s.hole_fraction < 1, f"hole fraction must be in (0, 1), got {s.hole_fraction:g}"),
        (s.factor >= 2, f"factor must be >= 2, got {s.factor}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ValueError(msg)
    return s


def measurement_for(
    settings: TaskSettings, x: torch.Tensor, index: int, seed: int
) -> tuple[Measurement, torch.Tensor | None]:
    """The measurement of image ``index`` and, for denoising, its initial state.

    Args:
        settings: The protocol.
        x: Clean image ``[1, C, H, W]``.
        index: The image's position in the folder.
        seed: Run seed.

    Returns:
        ``(measurement, init)``; ``init`` is ``x + σ0·z`` for ``denoise`` (``z`` from the
        image's generator, seeded ``seed + index``) and ``None`` otherwise (the sampler then
        draws ``x_c + 0.5·(I − P)·1 + σ0·z`` from the same seed).

    Raises:
        ValueError: If ``superres``'s factor does not divide the image's sides.
    """
    task = settings.task
    if task == "denoise":
        gen = torch.Generator().manual_seed(seed + index)
        z = torch.randn(tuple(x.shape), generator=gen, dtype=torch.float32).to(x)
        return Measurement.denoise(x.shape), x + settings.sigma0 * z
    if task == "inpaint":
        mask_seed = seed + MASK_SEED_STRIDE * (index + 1)
        return Measurement.inpaint(x, settings.keep, mask_seed), None
    if task == "center_hole":
        return Measurement.center_hole(x, settings.hole_fraction), None
    return Measurement.superres(x, settings.factor), None


# --------------------------------------------------------------------------- one run


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


@dataclass
class RunRecord:
    """One sampler run (an image and a model): its row, trajectory and frames.

    Attributes:
        row: The :data:`RUN_COLUMNS` values (``None`` where not defined, e.g. the
            scores of a diverged run).
        sigmas: σ̂_t per step ([0, 1] scale).
        psnrs: PSNR of the clamped state ``x_c + (I − P)·y_t``, ``t = 0 … T``.
        errors: RMS error of the unclamped state ``x_c + (I − P)·y_t`` over all ``d``
            values ([0, 1] scale; what σ̂_t would be for an oracle prior), ``t = 0 … T``.
        frames: ``(step, result)`` pairs, if asked.
    """

    row: dict[str, Any]
    sigmas: list[float]
    psnrs: list[float]
    errors: list[float] = field(default_factory=list)
    frames: list[tuple[int, torch.Tensor]] = field(default_factory=list)


class _Recorder:
    """Wraps the denoiser: keeps its first output and the PSNR of every state it sees."""

    def __init__(self, model: Any, measurement: Measurement, clean: torch.Tensor) -> None:
        self.model = model
        self.m = measurement
        self.clean = clean
        self.first: torch.Tensor | None = None
        self.psnrs: list[float] = []
        self.errors: list[float] = []

    def result(self, y: torch.Tensor) -> torch.Tensor:
        return self.m.observed + (y - self.m.project(y))

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        out = self.model(y)
        if self.first is None:
            self.first = self.result(out.to(y))
        res = self.result(y)
        self.psnrs.append(_psnr(res, self.clean))
        self.errors.append(_rms(res, self.clean))
        return out


def _psnr(img: torch.Tensor, clean: torch.Tensor) -> float:
    return float(psnr(img.float().clamp(0, 1), clean, 1.0)[0])


def _rms(img: torch.Tensor, clean: torch.Tensor) -> float:
    """RMS error on the [0, 1] scale (:func:`wne.degrade.equivalent_sigma` / 255)."""
    return equivalent_sigma(img, clean) / 255.0


def _ssim(img: torch.Tensor, clean: torch.Tensor) -> float:
    return float(ssim(img.float().clamp(0, 1), clean, 1.0)[0])


@torch.no_grad()
def run_one(
    model: Any,
    x: torch.Tensor,
    index: int,
    settings: TaskSettings,
    *,
    seed: int = 0,
    frame_every: int = 0,
    labels: tuple[str, str] = ("", ""),
) -> RunRecord:
    """Runs the sampler with ``model`` as the prior on one image.

    Args:
        model: Denoiser ``[1, C, H, W] → [1, C, H, W]`` (a model in eval mode).
        x: Clean image ``[1, C, H, W]`` in [0, 1], on the model's device.
        index: The image's position in the folder (seeds its generator and mask).
        settings: The protocol.
        seed: Run seed.
        frame_every: Keep the result every this many steps (0: none).
        labels: ``(image name, model key)`` for the row.

    Returns:
        The record. A diverged run has ``stop = "diverged"`` and no final or best scores.
    """
    meas, init = measurement_for(settings, x, index, seed)
    rec = _Recorder(model, meas, x)
    start = time.perf_counter()
    res = sample(
        rec,
        meas,
        h0=settings.h0,
        beta=settings.beta,
        sigma0=settings.sigma0,
        sigma_stop=settings.sigma_stop,
        max_steps=settings.max_steps,
        seed=seed + index,
        init=init,
        frame_every=frame_every,
    )
    seconds = time.perf_counter() - start
    psnrs, errors = list(rec.psnrs), list(rec.errors)
    if res.stop == "max_steps":  # the last state was not given to the denoiser
        psnrs.append(_psnr(res.image, x))
        errors.append(_rms(res.image, x))
    y0 = init if init is not None else None
    input_psnr = _psnr(y0, x) if y0 is not None else _psnr(meas.observed, x)
    one_pass = rec.first
    one_ok = one_pass is not None and bool(torch.isfinite(one_pass).all())
    row: dict[str, Any] = {
        "image": labels[0],
        "index": index,
        "model": labels[1],
        "task": settings.task,
        "seed": seed + index,
        "input_psnr": input_psnr,
        "one_pass_psnr": _psnr(one_pass, x) if one_ok else None,
        "one_pass_ssim": _ssim(one_pass, x) if one_ok else None,
        "best_psnr": None,
        "best_step": None,
        "final_psnr": None,
        "final_ssim": None,
        "final_minus_best": None,
        "final_minus_one_pass": None,
        "steps": res.steps,
        "stop": res.stop,
        "last_sigma_hat": res.sigmas[-1] if res.sigmas else None,
        "seconds": seconds,
    }
    finite = [p for p in psnrs if math.isfinite(p)]
    if res.stop != "diverged" and finite and bool(torch.isfinite(res.image).all()):
        best = int(np.argmax(psnrs))
        final = _psnr(res.image, x)
        row.update(
            best_psnr=psnrs[best],
            best_step=best,
            final_psnr=final,
            final_ssim=_ssim(res.image, x),
            final_minus_best=final - psnrs[best],
            final_minus_one_pass=(final - row["one_pass_psnr"]) if one_ok else None,
        )
    return RunRecord(row, list(res.sigmas), psnrs, errors, list(res.frames))


# --------------------------------------------------------------------------- residual scale

RESIDUAL_SIGMAS: tuple[float, ...] = (1.0, 2.55, 5.0, 10.0, 25.0, 50.0, 100.0, 255.0)
RESIDUAL_COLUMNS = ("image", "model", "sigma", "sigma_hat", "gain", "removed")


@torch.no_grad()
def residual_scale(
    model: Any, x: torch.Tensor, sigmas: Sequence[float], seed: int = 0
) -> list[dict[str, float]]:
    """How much noise a denoiser's residual reports, against the noise really there.

    For each σ (0–255 scale): ``y = x + (σ/255)·z`` (``z`` seeded ``seed``, shared by all
    σ and models), ``R = D(y) − y``; returns ``sigma_hat = ‖R‖/√d`` (the sampler's σ̂ for
    this state, [0, 1] scale), ``gain = ‖R‖ / ‖(σ/255)·z‖`` (1 for an oracle) and
    ``removed = ⟨R, −n⟩ / ‖n‖²`` with ``n = (σ/255)·z`` (the fraction of the true noise
    the residual removes; 1 for an oracle).

    Args:
        model: Denoiser.
        x: Clean image ``[1, C, H, W]``.
        sigmas: Noise levels (0–255 scale, > 0).
        seed: Seed of ``z``.

    Returns:
        One dict per σ.
    """
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(tuple(x.shape), generator=gen, dtype=torch.float32).to(x)
    d = x.numel()
    out = []
    for s in sigmas:
        n = (s / 255.0) * z
        y = x + n
        r = (model(y).to(y) - y).double()
        nn_ = n.double()
        out.append(
            {
                "sigma": float(s),
                "sigma_hat": float(r.norm()) / math.sqrt(d),
                "gain": float(r.norm() / nn_.norm()),
                "removed": float(-(r * nn_).sum() / nn_.square().sum()),
            }
        )
    return out


def predicted_steps(
    alpha: float,
    *,
    h0: float = 0.01,
    beta: float = 0.01,
    sigma0: float = 1.03,
    sigma_stop: float = 0.01,
    max_steps: int = 1000,
) -> int:
    """Steps to the stop of a scalar model of the sampler whose denoiser under-reports noise.

    Model: the state's effective noise is σ_t; the denoiser's residual removes a fraction
    ``alpha`` of it and reports ``σ̂_t = alpha·σ_t`` (an oracle: ``alpha = 1``). One step
    leaves ``(1 − h_t·alpha)·σ_t`` and injects ``γ_t² = ((1 − β·h_t)² − (1 − h_t)²)·σ̂_t²``,
    so ``σ_{t+1}² = ((1 − h_t·alpha)² + alpha²·((1 − β·h_t)² − (1 − h_t)²))·σ_t²``; the walk
    stops when ``σ̂_t ≤ sigma_stop``. With ``alpha = 1`` the noise shrinks by only
    ``1 − β·h_t`` per step (hundreds of steps at β = 0.01); any ``alpha < 1`` injects less
    than it removes and the walk cools much faster.

    Args:
        alpha: Fraction of the noise the residual reports, in (0, 1].
        h0: Initial step size.
        beta: Noise-injection parameter.
        sigma0: Initial effective noise ([0, 1] scale; 1.03 ≈ the inpainting start).
        sigma_stop: Stopping level of σ̂.
        max_steps: Largest number of steps.

    Returns:
        The number of steps taken before σ̂ ≤ ``sigma_stop`` (``max_steps`` if never).
    """
    sig = sigma0
    for t in range(1, max_steps + 1):
        if alpha * sig <= sigma_stop:
            return t - 1
        h = step_size(t, h0)
        inject = injected_variance(h, beta)
        sig *= math.sqrt((1 - h * alpha) ** 2 + alpha**2 * inject)
    return max_steps


# --------------------------------------------------------------------------- summary

_MEAN_KEYS = tuple(
    c
    for c in RUN_COLUMNS
    if c not in ("image", "index", "model", "task", "seed", "stop", "last_sigma_hat")
)


def summarize(rows: Sequence[dict[str, Any]], models: Sequence[EvalModel]) -> dict[str, Any]:
    """Means and standard deviations (population, over images) per model.

    Diverged runs are counted (``n_diverged``, ``diverged_images``) and left out of every
    mean except ``steps`` (where a run diverged is kept: the step it diverged at).

    Args:
        rows: The runs' rows.
        models: The models, in order.

    Returns:
        ``{key: {"arch", "wrapper", "sigma_train", "n", "n_diverged", "stops", "<metric>":
        {"mean", "std", "n"}}}``; a metric no run has is ``None``.
    """
    out: dict[str, Any] = {}
    for m in models:
        mine = [r for r in rows if r["model"] == m.key]
        entry: dict[str, Any] = {
            "arch": m.arch,
            "wrapper": m.wrapper,
            "sigma_train": m.sigma_train,
            "n": len(mine),
            "n_diverged": sum(r["stop"] == "diverged" for r in mine),
            "diverged_images": [r["image"] for r in mine if r["stop"] == "diverged"],
            "stops": {
                s: sum(r["stop"] == s for r in mine) for s in sorted({r["stop"] for r in mine})
            },
        }
        for k in _MEAN_KEYS:
            vals = [float(r[k]) for r in mine if r.get(k) is not None and math.isfinite(r[k])]
            entry[k] = (
                {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals)}
                if vals
                else None
            )
        out[m.key] = entry
    return out


# --------------------------------------------------------------------------- files


def _fmt(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.8g}" if math.isfinite(v) else ""
    return v


def _model_style(m: EvalModel, i: int) -> tuple[str, str]:
    from wne.lab.plots import Curve, curve_style

    return curve_style(Curve(m.key, [], [], None, m.arch, m.wrapper), i)


def write_figure(
    path: Path,
    models: Sequence[EvalModel],
    summary: dict[str, Any],
    traj: dict[str, RunRecord],
    settings: TaskSettings,
    image: str,
) -> Path:
    """Final PSNR and SSIM per model (mean ± std, one-pass beside); σ̂_t and the state's
    PSNR along the trajectory of ``image`` for every model.

    Args:
        path: Output PNG.
        models: The models.
        summary: :func:`summarize`'s output.
        traj: Model key → record of ``image``.
        settings: The protocol (for the stopping line).
        image: Name of the trajectory image.

    Returns:
        The written path.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 8.0), dpi=110, layout="constrained")
    axs = fig.subplots(2, 2)
    xs = np.arange(len(models))
    for ax, metric, label in (
        (axs[0, 0], "psnr", "PSNR (dB)"),
        (axs[0, 1], "ssim", "SSIM"),
    ):
        for i, m in enumerate(models):
            colour, _ = _model_style(m, i)
            s = summary[m.key]
            fin, one = s[f"final_{metric}"], s[f"one_pass_{metric}"]
            if fin is not None:
                ax.bar(i + 0.2, fin["mean"], 0.4, yerr=fin["std"], color=colour, capsize=3)
            else:
                ax.text(i + 0.2, 0, "diverged", rotation=90, ha="center", va="bottom", fontsize=8)
            if one is not None:
                ax.bar(i - 0.2, one["mean"], 0.4, color=colour, alpha=0.35, hatch="//")
            if s["n_diverged"] and fin is not None:
                ax.text(i + 0.2, fin["mean"], f"{s['n_diverged']} div.", ha="center", fontsize=7)
        ax.set_xticks(xs, [m.key for m in models], rotation=15, fontsize=8)
        ax.set_ylabel(label)
        ax.set_title(f"{settings.task}: one-pass (hatched) and final {label.split()[0]}")
        ax.grid(True, axis="y", alpha=0.3)
    for i, m in enumerate(models):
        rec = traj.get(m.key)
        if rec is None:
            continue
        colour, _ = _model_style(m, i)
        tag = f"{m.key} ({rec.row['stop']}, {rec.row['steps']} steps)"
        axs[1, 0].semilogy(range(1, len(rec.sigmas) + 1), rec.sigmas, color=colour, label=tag)
        axs[1, 1].plot(range(len(rec.psnrs)), rec.psnrs, color=colour, label=m.key)
    axs[1, 0].axhline(settings.sigma_stop, color="0.4", linestyle=":", label="σ_stop")
    axs[1, 0].set_xlabel("step t")
    axs[1, 0].set_ylabel("σ̂_t = ‖u_t‖/√d ([0, 1] scale)")
    axs[1, 0].set_title(f"effective noise along the trajectory, {image}")
    axs[1, 0].legend(fontsize=7)
    axs[1, 1].set_xlabel("step t")
    axs[1, 1].set_ylabel("PSNR of x_c + (I − P)·y_t (dB)")
    axs[1, 1].set_title(f"state PSNR along the trajectory, {image}")
    axs[1, 1].legend(fontsize=7)
    for ax in axs[1]:
        ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def write_gif(
    path: Path,
    frames: Sequence[tuple[int, torch.Tensor]],
    *,
    title: str = "",
    max_frames: int = 40,
    max_bytes: int = GIF_MAX_BYTES,
) -> Path | None:
    """Writes the frames (clamped to [0, 1]) as an animated GIF with Pillow.

    Frames are thinned evenly (first and last kept) to ``max_frames``, and further
    halved until the file is at most ``max_bytes``; the last frame is held 2 s.

    Args:
        path: Output GIF.
        frames: ``(step, image [1, C, H, W])`` pairs.
        title: Text drawn in each frame's corner before the step number.
        max_frames: Most frames.
        max_bytes: Largest file size.

    Returns:
        The path, or ``None`` when there is no frame.
    """
    from PIL import Image, ImageDraw

    if not frames:
        return None
    picks = list(frames)
    while True:
        if len(picks) > max_frames:
            idx = np.unique(np.linspace(0, len(picks) - 1, max_frames).round().astype(int))
            picks = [picks[i] for i in idx]
        images = []
        for step, img in picks:
            a = img[0].detach().float().cpu().nan_to_num(0.0).clamp(0, 1)
            arr = (a.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            pil = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
            pil = pil.convert("RGB")
            draw = ImageDraw.Draw(pil)
            text = f"{title} t={step}".strip()
            draw.rectangle((0, 0, 7 * len(text) + 6, 14), fill=(0, 0, 0))
            draw.text((3, 1), text, fill=(255, 255, 0))
            images.append(pil.quantize(colors=64))
        durations = [80] * (len(images) - 1) + [2000]
        path.parent.mkdir(parents=True, exist_ok=True)
        images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
        if path.stat().st_size <= max_bytes or max_frames <= 2:
            return path
        max_frames = max(2, max_frames // 2)


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wne-sample",
        description="Kadkhodaie & Simoncelli's unified sampler with denoiser checkpoints as "
        "priors (the WNE paper's App. N protocols: residual-stopped denoising, Table 11; "
        "random inpainting, Table 12).",
    )
    p.add_argument("--models", nargs="+", required=True, metavar="KEY", help="keys or folders")
    p.add_argument("--root", type=Path, help="checkpoint folder (default: bundled)")
    p.add_argument("--data", type=Path, required=True, help="image folder (e.g. Set12)")
    p.add_argument("--out", type=Path, required=True, help="output folder (OUT/<task>/)")
    p.add_argument(
        "--task",
        nargs="+",
        choices=(*TASKS, "residual_scale"),
        default=["denoise", "inpaint"],
        help="protocols to run (default: denoise inpaint); residual_scale: no sampling, "
        "measure ‖D(y) − y‖ against the true noise at --residual-sigmas",
    )
    p.add_argument(
        "--residual-sigmas",
        type=float,
        nargs="+",
        default=list(RESIDUAL_SIGMAS),
        metavar="S",
        help="residual_scale: noise levels, 0–255 (1 2.55 5 10 25 50 100 255)",
    )
    p.add_argument("--max-images", type=int, metavar="N", help="use only the first N images")
    p.add_argument(
        "--images",
        nargs="+",
        metavar="NAME",
        help="use only these files of the folder (each keeps its folder index, which seeds it)",
    )
    p.add_argument("--seed", type=int, default=0, help="run seed (0); image idx uses seed + idx")
    p.add_argument("--h0", type=float, help="initial step size (0.01)")
    p.add_argument("--beta", type=float, help="noise injection β (denoise 1, others 0.01)")
    p.add_argument(
        "--sigma0", type=float, metavar="S", help="initial noise, 0–255 (denoise 10, others 255)"
    )
    p.add_argument(
        "--sigma-stop", type=float, metavar="S", help="stop at σ̂ ≤ S/255 (denoise 1, others 2.55)"
    )
    p.add_argument("--max-steps", type=int, default=1000, help="most steps (1000)")
    p.add_argument("--keep", type=float, default=0.1, help="inpaint: observed fraction (0.1)")
    p.add_argument(
        "--hole-fraction", type=float, default=0.25, help="center_hole: hidden area (0.25)"
    )
    p.add_argument("--factor", type=int, default=4, help="superres: block side (4)")
    p.add_argument(
        "--show",
        default="07.png",
        metavar="IMAGE",
        help="image of the trajectory figure and GIF (07.png; the first image if absent)",
    )
    p.add_argument(
        "--gif-model",
        metavar="KEY",
        help="model of the GIF (default: the first WNE model, else the first)",
    )
    p.add_argument("--frame-every", type=int, default=2, help="GIF: a frame every N steps (2)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (cpu; auto: cuda if any)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _settings(args: argparse.Namespace, task: str) -> TaskSettings:
    return settings_for(
        task,
        h0=args.h0,
        beta=args.beta,
        sigma0_8bit=args.sigma0,
        sigma_stop_8bit=args.sigma_stop,
        max_steps=args.max_steps,
        keep=args.keep,
        hole_fraction=args.hole_fraction,
        factor=args.factor,
    )


def _indices(args: argparse.Namespace, images: Sequence[Any]) -> list[int]:
    """Folder index of each image (it seeds the image's generator and mask)."""
    return list(getattr(args, "indices", range(len(images))))


def _run_task(
    args: argparse.Namespace,
    settings: TaskSettings,
    models: Sequence[EvalModel],
    images: Sequence[tuple[str, torch.Tensor]],
    device: torch.device,
) -> dict[str, Any]:
    from tqdm.auto import tqdm

    names = [n for n, _ in images]
    show = args.show if args.show in names else names[0]
    gif_key = args.gif_model or next((m.key for m in models if m.wrapper == "wne"), models[0].key)
    out = args.out / settings.task
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    traj_rows: list[dict[str, Any]] = []
    shown: dict[str, RunRecord] = {}
    gif_frames: list[tuple[int, torch.Tensor]] = []
    bar = tqdm(total=len(images) * len(models), desc=settings.task, disable=args.quiet)
    with bar:
        for idx, (name, x) in zip(_indices(args, images), images, strict=True):
            x = x.to(device)
            for m in models:
                bar.set_postfix_str(f"{name} {m.key}", refresh=False)
                want_gif = name == show and m.key == gif_key
                rec = run_one(
                    m.model,
                    x,
                    idx,
                    settings,
                    seed=args.seed,
                    frame_every=args.frame_every if want_gif else 0,
                    labels=(name, m.key),
                )
                rows.append(rec.row)
                for t, p_t in enumerate(rec.psnrs):
                    sig = rec.sigmas[t] if t < len(rec.sigmas) else None
                    traj_rows.append(
                        {
                            "image": name,
                            "model": m.key,
                            "step": t,
                            "sigma_hat": sig,
                            "error_rms": rec.errors[t],
                            "psnr": p_t,
                        }
                    )
                if name == show:
                    shown[m.key] = rec
                if want_gif:
                    gif_frames = rec.frames
                r = rec.row
                log.info(
                    "%s %s: %s after %d steps, final %s dB",
                    name,
                    m.key,
                    r["stop"],
                    r["steps"],
                    "-" if r["final_psnr"] is None else f"{r['final_psnr']:.2f}",
                )
                bar.update(1)
    write_csv(out / "runs.csv", RUN_COLUMNS, rows, _fmt)
    write_csv(out / "trajectory.csv", TRAJECTORY_COLUMNS, traj_rows, _fmt)
    per_model = summarize(rows, models)
    write_figure(out / "sampler.png", models, per_model, shown, settings, show)
    gif = write_gif(out / "trajectory.gif", gif_frames, title=f"{gif_key} {show}")
    summary = {
        "run": {
            "data": str(args.data),
            "images": names,
            "image_indices": _indices(args, images),
            "n_images": len(names),
            "seed": args.seed,
            "image_seed": "seed + idx",
            "mask_seed": "seed + 1000003·(idx + 1)" if settings.task == "inpaint" else None,
            "settings": settings.as_dict(),
            "device": str(device),
            "metrics": "PSNR and SSIM (wne.metrics: 11×11 Gaussian window σ 1.5) of results "
            "clamped to [0, 1], data range 1",
            "trajectory_image": show,
            "gif": {"model": gif_key, "image": show, "file": gif.name} if gif else None,
            "wne_version": __version__,
            "torch_version": torch.__version__,
        },
        "models": per_model,
        "paper": PAPER.get(settings.task),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(format_table(summary, out))
    return summary


def _run_residual_scale(
    args: argparse.Namespace,
    models: Sequence[EvalModel],
    images: Sequence[tuple[str, torch.Tensor]],
    device: torch.device,
) -> dict[str, Any]:
    out = args.out / "residual_scale"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for idx, (name, x) in zip(_indices(args, images), images, strict=True):
        for m in models:
            for r in residual_scale(m.model, x.to(device), args.residual_sigmas, args.seed + idx):
                rows.append({"image": name, "model": m.key, **r})
    write_csv(out / "residual_scale.csv", RESIDUAL_COLUMNS, rows, _fmt)
    means: dict[str, Any] = {}
    lines = [f"\nresidual scale (mean over {len(images)} images): gain / removed, in {out}"]
    lines.append(f"{'σ (0–255)':<20} " + " ".join(f"{s:>11g}" for s in args.residual_sigmas))
    for m in models:
        per = []
        for s in args.residual_sigmas:
            mine = [r for r in rows if r["model"] == m.key and r["sigma"] == float(s)]
            per.append(
                {
                    "sigma": float(s),
                    **{k: float(np.mean([r[k] for r in mine])) for k in RESIDUAL_COLUMNS[3:]},
                }
            )
        means[m.key] = per
        lines.append(
            f"{m.key:<20} " + " ".join(f"{e['gain']:>5.2f}/{e['removed']:<5.2f}" for e in per)
        )
    summary = {
        "run": {
            "data": str(args.data),
            "images": [n for n, _ in images],
            "seed": args.seed,
            "noise_seed": "seed + idx",
            "definition": "y = x + (σ/255)·z; R = D(y) − y; sigma_hat = ‖R‖/√d; gain = ‖R‖/‖n‖; "
            "removed = ⟨R, −n⟩/‖n‖², n = (σ/255)·z",
        },
        "models": means,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return summary


def format_table(summary: dict[str, Any], out: Path) -> str:
    """The command line's table: one line per model (means over images).

    Args:
        summary: The ``summary.json`` content.
        out: Where the files were written.

    Returns:
        The table.
    """

    def v(s: dict[str, Any], k: str, fmt: str = ".2f") -> str:
        e = s.get(k)
        return "-" if e is None else format(e["mean"], fmt)

    task = summary["run"]["settings"]["task"]
    lines = [
        f"\n{task}: results in {out}",
        f"{'model':<20} {'one-pass':>8} {'best':>7} {'final':>7} {'SSIM':>6} {'fin-best':>8} "
        f"{'steps':>7}  stops",
    ]
    for key, s in summary["models"].items():
        stops = ", ".join(f"{k} {n}" for k, n in s["stops"].items())
        lines.append(
            f"{key:<20} {v(s, 'one_pass_psnr'):>8} {v(s, 'best_psnr'):>7} "
            f"{v(s, 'final_psnr'):>7} {v(s, 'final_ssim', '.3f'):>6} "
            f"{v(s, 'final_minus_best'):>8} {v(s, 'steps', '.1f'):>7}  {stops}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``wne-sample``: exit status 0 on success, 2 on bad arguments (``argv``: default sys.argv)."""
    parser = _parser()
    args = cli.parse(parser, argv)
    if args.max_images is not None and args.max_images < 1:
        parser.error("--max-images must be >= 1")
    if args.frame_every < 1:
        parser.error("--frame-every must be >= 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    if any(not (math.isfinite(v) and v > 0) for v in args.residual_sigmas):
        parser.error("--residual-sigmas must be finite and > 0")
    try:
        tasks = [_settings(args, t) for t in dict.fromkeys(args.task) if t in TASKS]
    except ValueError as exc:
        parser.error(str(exc))
    try:
        device = pick_device(args.device)
        models = resolve_models(args.models, root=args.root, device=device, sigma_train=0.0)
        channels = {m.channels for m in models}
        if len(channels) > 1:
            raise ValueError(f"models take different channel counts {sorted(channels)}")
        images = load_images(args.data, channels=channels.pop(), max_images=args.max_images)
        indices = list(range(len(images)))
        if args.images:
            names = [n for n, _ in images]
            missing = [n for n in args.images if n not in names]
            if missing:
                raise ValueError(f"--images: not in {args.data}: {', '.join(missing)}")
            indices = [i for i, n in enumerate(names) if n in set(args.images)]
            images = [images[i] for i in indices]
        args.indices = indices
        for s in tasks:
            if s.task == "superres":
                for name, x in images:
                    h, w = x.shape[-2:]
                    if h % s.factor or w % s.factor:
                        raise ValueError(f"--factor {s.factor} does not divide {name}'s {h}×{w}")
        if args.gif_model is not None and args.gif_model not in {m.key for m in models}:
            raise ValueError(f"--gif-model {args.gif_model!r} is not one of --models")
        if "residual_scale" in args.task:
            _run_residual_scale(args, models, images, device)
        for s in tasks:
            _run_task(args, s, models, images, device)
    except (ValueError, FileNotFoundError, checkpoints.CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
