"""Restore: a backbone's plain and WNE models as image priors for :func:`wne.sampler.walk`,
walking side by side in lockstep on the same measurement, start and noise (one seed).
Colour images are restored per channel (``color``) or as grayscale (the default).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from wne import catalog
from wne.demo.errors import DemoInputError
from wne.demo.imaging import to_display
from wne.demo.pages.compare import BACKBONES, SIGMA_CHOICES, db, hwc, json_number
from wne.demo.schema import setting, to_dict, typed
from wne.demo.zoo import ModelUnavailableError, Zoo
from wne.metrics import psnr, ssim
from wne.sampler import TASKS, WalkStep, problem

LEVELS: dict[str, str] = {
    "inpaint": "keep",
    "center_hole": "hole",
    "superres": "factor",
    "denoise": "noise_sigma",
}
"""The control that is a task's level (only it is shown for that task)."""


PAIRED = tuple(
    (label, b) for label, b in BACKBONES if catalog.FAMILIES[b].variants == ("plain", "wne")
)
"""The backbones with a plain and a WNE model."""


def _level(default: float, label: str, lo: float, hi: float, name: str, info: str = "") -> Any:
    return setting(default, label, info=info, lo=lo, hi=hi, step=1, elem_id=f"restore-{name}")


@dataclass(frozen=True)
class Walks:
    """One ``/restore`` request (the Restore page's settings): ``task`` (a key of
    :data:`TASKS`) with its parameter (``keep`` or ``hole`` percent, ``factor``,
    ``noise_sigma`` on the 0–255 scale), the ``backbone`` and ``sigma_train``, ``seed``,
    ``max_steps`` per walk, ``max_side`` (px) and ``color``."""

    task: str = setting(
        "inpaint", "task", choices=[(t.label, k) for k, t in TASKS.items()], elem_id="restore-task"
    )
    keep: float = _level(
        10.0, "kept pixels (%)", 1, 100, "keep", "a random mask; the paper keeps 10 %"
    )
    hole: float = _level(25.0, "hole size (%)", 5, 75, "hole")
    factor: int = setting(
        4,
        "super-resolution factor",
        choices=[("×2", 2), ("×4", 4), ("×8", 8)],
        info="each factor × factor block is seen only via its mean",
        elem_id="restore-factor",
    )
    noise_sigma: float = _level(
        10.0,
        "start noise sigma",
        1,
        100,
        "noise-sigma",
        "the walk stops when σ̂ ≤ 1 (the paper starts at 10)",
    )
    backbone: str = setting("dncnn", "backbone", choices=PAIRED)
    sigma_train: int = setting(
        10,
        "training sigma",
        choices=SIGMA_CHOICES,
        info="the sampler's models are trained at σ = 10 in the paper",
    )
    seed: int = setting(
        0,
        "seed",
        info="mask, start and injected noise",
        lo=0,
        hi=2**31 - 1,
        widget="number",
        elem_id="restore-seed",
    )
    max_steps: int = _level(
        150, "step budget", 1, 1000, "max-steps", "each walk stops here if σ̂ has not reached σ_L"
    )
    max_side: int = setting(
        128,
        "working size",
        info="larger images are downscaled",
        lo=32,
        hi=512,
        step=16,
        elem_id="restore-max-side",
    )
    color: bool = setting(
        False,
        "colour",
        info="3× the time; off: the grayscale image, as the paper",
        elem_id="restore-color",
    )

    __post_init__ = typed
    to_dict = to_dict


STREAM_FRAMES = 40
"""About how many snapshots a run streams (one every ``⌈budget / 40⌉`` steps)."""
STOP_REASONS: dict[str, str] = {
    "converged": "σ̂ reached σ_L",
    "max_steps": "step budget used up",
    "diverged": "diverged (the state stopped being finite)",
}
"""Why a walk stopped, in words (:attr:`wne.sampler.WalkStep.stop`)."""
VARIANTS = ("plain", "wne")


@dataclass
class WalkRun:
    """One model's walk so far: updates taken, σ̂ per update ([0, 1] scale), PSNR of the
    clamped state per step, the current result ``[H, W, C]`` (unclamped), why it stopped
    (None: walking or unavailable, see ``message``), seconds, and SSIM once stopped."""

    backbone: str
    variant: str
    label: str
    key: str
    message: str | None = None
    steps: int = 0
    sigmas: list[float] = field(default_factory=list)
    psnrs: list[float] = field(default_factory=list)
    image: np.ndarray | None = None
    stop: str | None = None
    seconds: float = 0.0
    ssim: float | None = None

    @property
    def psnr(self) -> float | None:
        """PSNR of the current state (None: no state, or a diverged walk)."""
        if not self.psnrs or self.stop == "diverged":
            return None
        return self.psnrs[-1]


@dataclass
class RestoreState:
    """A snapshot of :func:`run`: the clean image ``[H, W, C]`` the scores compare with,
    what the walks are given (``x_c``, or the noisy start) and its scores, the two walks,
    the sampler's parameters (0–255 scale), whether both stopped, and notes."""

    settings: Walks
    clean: np.ndarray
    observed: np.ndarray
    observed_psnr: float
    observed_ssim: float
    runs: list[WalkRun]
    sampler: dict[str, float]
    done: bool = False
    notes: list[str] = field(default_factory=list)


def prepare_image(pixels: np.ndarray, settings: Walks) -> tuple[np.ndarray, list[str]]:
    """The image the walks restore (grayscale unless ``color``; cropped to a multiple of the
    super-resolution factor) and notes; DemoInputError if a side falls under 16 pixels."""
    notes = []
    img = np.asarray(pixels, dtype=np.float32)
    if img.shape[-1] == 3 and not settings.color:
        img = (img @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
        notes.append("Restored in grayscale (luma), as the paper; tick “restore in colour”.")
    if settings.task == "superres":
        k = settings.factor
        h, w = img.shape[0] // k * k, img.shape[1] // k * k
        if min(h, w) < 16:
            raise DemoInputError(
                f"at working size {settings.max_side} the image is too small for "
                f"super-resolution ×{k}: raise the working size or lower the factor"
            )
        if (h, w) != img.shape[:2]:
            notes.append(f"Cropped to {w}×{h}, a multiple of the factor {k}.")
            img = img[:h, :w]
    return np.ascontiguousarray(img), notes


def _level(s: Walks) -> float:
    """The sampler's level of the task (:attr:`wne.sampler.Task.level`) from the page's control."""
    level = {"inpaint": s.keep / 100, "center_hole": s.hole / 100, "superres": s.factor}
    return level.get(s.task, s.noise_sigma / 255)


def _prior(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The grayscale model as a denoiser of ``[1, C, H, W]``: the channels in one batch."""
    return lambda y: model(y.transpose(0, 1)).transpose(0, 1)


def _psnr(img: torch.Tensor, clean: torch.Tensor) -> float:
    return float(psnr(img.float().clamp(0, 1), clean, 1.0)[0])


def _ssim(img: torch.Tensor, clean: torch.Tensor) -> float:
    return float(ssim(img.float().clamp(0, 1), clean, 1.0)[0])


@torch.no_grad()
def run(zoo: Zoo, pixels: np.ndarray, settings: Walks) -> Iterator[RestoreState]:
    """Walks plain and WNE in lockstep on ``pixels``, yielding a snapshot every
    ``⌈max_steps / STREAM_FRAMES⌉`` steps, when a walk stops, and the final one (``done``).

    Raises:
        DemoInputError: If neither model of the backbone at that σ_train is installed.
    """
    s, b = settings, settings.backbone
    clean, notes = prepare_image(pixels, s)
    x = torch.from_numpy(clean).permute(2, 0, 1)[None].to(zoo.device)
    task = problem(s.task, x, _level(s), seed=s.seed)
    runs, walks = [], {}
    for variant in VARIANTS:
        run = WalkRun(b, variant, catalog.label(b, variant), catalog.key(b, variant, s.sigma_train))
        try:
            model = zoo.get(b, variant, s.sigma_train)
        except ModelUnavailableError as exc:
            run.message = str(exc)
        else:
            walks[variant] = task.walk(_prior(model), max_steps=s.max_steps)
        runs.append(run)
    if not walks:
        raise DemoInputError(missing_models(zoo, s))
    shown, kw = task.shown, task.params
    sampler = {"h0": kw["h0"], "beta": kw["beta"], "sigma0_8bit": kw["sigma0"] * 255,
               "sigma_stop_8bit": kw["sigma_stop"] * 255, "max_steps": s.max_steps}  # fmt: skip
    state = RestoreState(
        s, clean, hwc(shown[0]), _psnr(shown, x), _ssim(shown, x), runs, sampler, notes=notes
    )
    every = max(1, math.ceil(s.max_steps / STREAM_FRAMES))
    active = [r for r in runs if r.variant in walks]
    latest: dict[str, torch.Tensor] = {}  # each walk's current image, on the device
    while active:
        stopped = False
        for run in list(active):
            start = time.perf_counter()
            item: WalkStep = next(walks[run.variant])
            run.seconds += time.perf_counter() - start
            _advance(run, item, x)
            latest[run.variant] = item.image
            if item.stop is not None:
                active.remove(run)
                stopped = True
        step = max(r.steps for r in runs)
        if not active:
            break
        if stopped or step % every == 0:
            yield _snapshot(state, latest)
    yield replace(_snapshot(state, latest), done=True)


def _snapshot(state: RestoreState, latest: dict[str, torch.Tensor]) -> RestoreState:
    """A copy of ``state`` that later steps leave alone, with the walks' images on the host
    (copied only for the streamed frames, not at every step)."""
    runs = [
        replace(r, sigmas=list(r.sigmas), psnrs=list(r.psnrs), image=hwc(latest[r.variant][0]))
        if r.variant in latest
        else replace(r)
        for r in state.runs
    ]
    return replace(state, runs=runs)


def missing_models(zoo: Zoo, s: Walks) -> str:
    """Why neither model of the request can run ("" when one can)."""
    reasons = [zoo.unavailable_reason(s.backbone, v, s.sigma_train) for v in VARIANTS]
    return "" if None in reasons else " ".join(f"{r}." for r in reasons)


def _advance(run: WalkRun, item: WalkStep, x: torch.Tensor) -> None:
    """Records one item of a walk (a new state, or the last one with its stop reason)."""
    if item.sigma is not None:
        run.sigmas.append(item.sigma)
    if item.stop is None:
        run.steps = item.step
        run.psnrs.append(_psnr(item.image, x))
    else:
        run.stop = item.stop
        if item.stop != "diverged":
            run.ssim = _ssim(item.image, x)


# ----------------------------------------------------------------------------- view


def _observed_caption(s: Walks) -> str:
    return {
        "inpaint": f"{s.keep:g} % of the pixels",
        "center_hole": f"all but a {s.hole:g} % hole",
        "superres": f"{s.factor}×{s.factor} block means",
    }.get(s.task, f"noisy start, σ = {s.noise_sigma:g}")


def _run_caption(run: WalkRun) -> str:
    """The result's caption (short: the image's badge; the backbone is in the table)."""
    name = catalog.VARIANT_LABELS[run.variant]
    if run.message is not None:
        return f"{name} · unavailable"
    if run.stop is None:
        return f"{name} · step {run.steps} · {db(run.psnr)}"
    if run.stop == "diverged":
        return f"{name} · diverged at step {run.steps}"
    return f"{name} · {db(run.psnr)} · {run.steps} steps"


def outputs(
    state: RestoreState, notes: list[str]
) -> tuple[np.ndarray, list[np.ndarray | None], dict[str, Any]]:
    """What ``/restore`` returns for a snapshot: the observed image and the plain and WNE
    results as uint8 (None: unavailable), and the summary (with the page's captions and text)."""
    notes = [*notes, *state.notes]
    summary = _summary(state, notes)
    summary["captions"] = [
        f"{_observed_caption(state.settings)} · {db(state.observed_psnr)}",
        *(_run_caption(r) for r in state.runs),
    ]
    summary["text"] = _results_text(state, notes)
    images = [to_display(r.image)[0] if r.image is not None else None for r in state.runs]
    return to_display(state.observed)[0], images, summary


def plots(summary: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The page's two plots from ``/restore``'s summary: σ̂ per step of each walk (0–255
    scale, with the stopping level σ_L) and PSNR per step."""
    stop, start = summary["sampler"]["sigma_stop_8bit"], summary["sampler"]["sigma0_8bit"]
    sigma_rows, psnr_rows = [], []
    for m in summary["models"].values():
        lg, label = math.log10, m["label"]
        # every walk starts at σ0: each model has a series from the first frame on (Gradio's
        # plot keeps the series of the first data it is sent)
        sigma_rows += [
            {"step": t, "log10_sigma_hat": lg(max(v, 1e-12)), "model": label}
            for t, v in enumerate([start, *m["sigma_hat_8bit"]])
            if isinstance(v, float | int)
        ]
        psnr_rows += [
            {"step": t, "psnr": p, "model": m["label"]}
            for t, p in enumerate(m["psnr_per_step"])
            if isinstance(p, float | int)
        ]
    level = {"log10_sigma_hat": math.log10(stop), "model": "σ_L"}
    budget = summary["settings"]["max_steps"]
    return [{"step": 0, **level}, {"step": budget, **level}, *sigma_rows], psnr_rows


def _results_text(state: RestoreState, notes: list[str]) -> str:
    s = state.settings
    h, w, c = state.clean.shape
    budget = s.max_steps
    if not state.done:
        step = max(r.steps for r in state.runs)
        head = f"**Walking…** step {step} of at most {budget}."
    else:
        head = "**Done.** Scores against the clean image (data range 1)."
    rows = [
        "| | PSNR | SSIM | steps | stopped because | time |",
        "|---|---|---|---|---|---|",
        f"| {'noisy start' if s.task == 'denoise' else 'observed'} | {db(state.observed_psnr)} | "
        f"{state.observed_ssim:.3f} | | | |",
    ]
    for r in state.runs:
        if r.message is not None:
            rows.append(f"| {r.label} | – | – | – | {r.message} | |")
            continue
        why = STOP_REASONS.get(r.stop or "", "walking…")
        ssim_text = f"{r.ssim:.3f}" if r.ssim is not None else "–"
        rows.append(
            f"| {r.label} | {db(r.psnr)} | {ssim_text} | {r.steps} | {why} | {r.seconds:.1f} s |"
        )
    sam = state.sampler
    family = catalog.FAMILIES[s.backbone]
    lines = [
        f"{family.label}, trained at σ = {s.sigma_train}; {TASKS[s.task].label}; {w}×{h} px, "
        f"{'colour' if c == 3 else 'grayscale'}; seed {s.seed}.",
        f"Sampler (paper, App. N): h0 = {sam['h0']:g}, β = {sam['beta']:g}, start σ0 = "
        f"{sam['sigma0_8bit']:g}, stop at σ̂ ≤ σ_L = {sam['sigma_stop_8bit']:g} (0–255 scale), "
        f"at most {budget} steps.",
        *notes,
    ]
    return "\n".join([head, "", *rows, "", *(f"- {n}" for n in lines)])


def _summary(state: RestoreState, notes: list[str]) -> dict[str, Any]:
    h, w, c = state.clean.shape
    models: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for r in state.runs:
        if r.message is not None:
            unavailable[r.key] = r.message
            continue
        models[r.key] = {
            "label": r.label,
            "psnr": json_number(r.psnr, 4),
            "ssim": json_number(r.ssim, 4),
            "steps": r.steps,
            "stop": r.stop,
            "seconds": round(r.seconds, 3),
            "last_sigma_hat_8bit": json_number(r.sigmas[-1] * 255, 4) if r.sigmas else None,
            "sigma_hat_8bit": [json_number(v * 255, 4) for v in r.sigmas],
            "psnr_per_step": [None if math.isnan(p) else json_number(p, 4) for p in r.psnrs],
        }
    return {
        "done": state.done,
        "settings": state.settings.to_dict(),
        "image": {"width": w, "height": h, "channels": c},
        "sampler": state.sampler,
        "observed": {
            "psnr": json_number(state.observed_psnr, 4),
            "ssim": json_number(state.observed_ssim, 4),
        },
        "models": models,
        "unavailable": unavailable,
        "notes": notes,
    }
