"""The "Restore from a few pixels" page: a denoiser as an image prior, plain vs WNE.

The library's sampler (:func:`wne.sampler.walk`, Kadkhodaie & Simoncelli's unified
sampler with the WNE paper's App. N parameters, :func:`wne.sampler.paper_parameters`)
restores the image from a measurement (:class:`wne.sampler.Measurement`: a random
fraction of its pixels, everything but a centred hole, its block means, or a noisy copy)
with a backbone's **plain** and **WNE** models as the prior. The two walks advance in
lockstep, so :func:`restore_walks` can hand out a snapshot every few steps: the current
images, σ̂_t and the PSNR of each walk so far; the page streams them. The last snapshot
has the final images, PSNR/SSIM against the clean image, the steps taken and why each
walk stopped (σ̂ ≤ σ_L, the step budget, or divergence).

Both walks see the same measurement, initial state and injected noise (one seed).
Colour images are restored channel by channel by the grayscale models in one batched
call (``color``), or as their grayscale version (the default, 3× faster).

:class:`Restorer` validates a request (:class:`~wne.demo.settings.RestoreSettings`, with
this hardware's defaults and limits), reads the image and yields display-ready
:class:`RestoreView` snapshots; :mod:`wne.demo.endpoints` turns them into the page's
updates and ``/restore``'s values. No Gradio here.
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
from wne.demo.compare import Progress
from wne.demo.imaging import LoadedImage, load_image, to_display
from wne.demo.settings import (
    RESTORE_TASKS,
    DemoInputError,
    Param,
    RestoreSettings,
    parse_restore_settings,
    restore_params,
)
from wne.demo.zoo import ModelUnavailableError, Zoo, run_label
from wne.metrics import psnr, ssim
from wne.sampler import Measurement, WalkStep, paper_parameters, walk

__all__ = [
    "CPU_RESTORE",
    "GPU_RESTORE",
    "STOP_REASONS",
    "STREAM_FRAMES",
    "RestoreHardware",
    "RestoreState",
    "RestoreView",
    "Restorer",
    "WalkRun",
    "prepare_image",
    "restore_view",
    "restore_walks",
]

STREAM_FRAMES = 40
"""About how many snapshots a run streams (one every ``⌈budget / 40⌉`` steps)."""
STOP_REASONS: dict[str, str] = {
    "converged": "σ̂ reached σ_L",
    "max_steps": "step budget used up",
    "diverged": "diverged (the state stopped being finite)",
}
"""Why a walk stopped, in words (:attr:`wne.sampler.WalkStep.stop`)."""
VARIANTS = ("plain", "wne")


@dataclass(frozen=True)
class RestoreHardware:
    """The page's defaults and limits on one kind of hardware.

    Attributes:
        max_side: Default working size (longest side, px).
        max_side_limit: Largest working size accepted.
        max_steps: Default step budget of each walk.
    """

    max_side: int
    max_side_limit: int
    max_steps: int


CPU_RESTORE = RestoreHardware(max_side=128, max_side_limit=256, max_steps=150)
"""On CPU: 128 px and 150 steps, so plain + WNE finish in about 30 s on 2 cores (README)."""
GPU_RESTORE = RestoreHardware(max_side=256, max_side_limit=512, max_steps=1000)
"""On a GPU: 256 px and the paper's 1000 steps."""


# ----------------------------------------------------------------------------- computation


@dataclass
class WalkRun:
    """One model's walk, as far as it has gone.

    Attributes:
        backbone: Backbone id.
        variant: ``"plain"`` or ``"wne"``.
        label: Display name (``"CNN · WNE"``).
        key: Checkpoint key.
        message: Why the model is unavailable (None: it runs).
        steps: Updates so far.
        sigmas: σ̂ per update ([0, 1] scale), the stopping one last.
        psnrs: PSNR of the clamped state per step (``0 … steps``).
        image: The current result ``x_c + (I − P)·y``, ``[H, W, C]`` float32, unclamped.
        stop: Why it stopped (None: still walking or unavailable).
        seconds: Time spent in the walk.
        ssim: SSIM of the final clamped image (None until it stops, or if it diverged).
    """

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
    """A snapshot of :func:`restore_walks`.

    Attributes:
        settings: The request.
        clean: ``[H, W, C]`` clean image in [0, 1] (what the scores compare with).
        observed: ``[H, W, C]`` what the walks are given: ``x_c = P·x*`` (unobserved
            pixels 0), or the noisy start for denoising.
        observed_psnr: PSNR of ``observed`` (clamped) against ``clean``.
        observed_ssim: SSIM of the same.
        runs: The plain and WNE walks.
        sampler: The sampler's parameters (h0, β, σ0 and σ_L on the 0–255 scale, budget).
        done: Whether every walk has stopped.
    """

    settings: RestoreSettings
    clean: np.ndarray
    observed: np.ndarray
    observed_psnr: float
    observed_ssim: float
    runs: list[WalkRun]
    sampler: dict[str, float]
    done: bool = False


def prepare_image(pixels: np.ndarray, settings: RestoreSettings) -> tuple[np.ndarray, list[str]]:
    """The image the walks restore: grayscale unless ``color``, and for super-resolution
    cropped to a multiple of the factor.

    Args:
        pixels: ``[H, W, C]`` in [0, 1] (C = 1 or 3).
        settings: The request.

    Returns:
        ``([H', W', C'], notes)``.

    Raises:
        DemoInputError: If the crop leaves a side under 16 pixels.
    """
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


def _measurement(
    settings: RestoreSettings, x: torch.Tensor
) -> tuple[Measurement, torch.Tensor | None, dict[str, float]]:
    """The task's measurement of ``x`` ``[1, C, H, W]``, the initial state (denoising
    only) and the sampler's keyword arguments (:func:`wne.sampler.paper_parameters`)."""
    s = settings
    kw = paper_parameters(s.task)
    if s.task == "denoise":
        kw["sigma0"] = s.noise_sigma / 255
        gen = torch.Generator().manual_seed(s.seed)
        z = torch.randn(tuple(x.shape), generator=gen, dtype=torch.float32).to(x)
        return Measurement.denoise(x.shape), x + kw["sigma0"] * z, kw
    if s.task == "inpaint":
        return Measurement.inpaint(x, s.keep / 100, s.seed), None, kw
    if s.task == "center_hole":
        return Measurement.center_hole(x, s.hole / 100), None, kw
    return Measurement.superres(x, s.factor), None, kw


def _prior(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The grayscale model as a denoiser of ``[1, C, H, W]``: the channels in one batch."""

    def denoise(y: torch.Tensor) -> torch.Tensor:
        return model(y.transpose(0, 1)).transpose(0, 1)

    return denoise


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].detach().float().cpu().permute(1, 2, 0).contiguous().numpy()


def _psnr(img: torch.Tensor, clean: torch.Tensor) -> float:
    return float(psnr(img.float().clamp(0, 1), clean, 1.0)[0])


def _ssim(img: torch.Tensor, clean: torch.Tensor) -> float:
    return float(ssim(img.float().clamp(0, 1), clean, 1.0)[0])


@torch.no_grad()
def restore_walks(zoo: Zoo, clean: np.ndarray, settings: RestoreSettings) -> Iterator[RestoreState]:
    """Runs the plain and WNE walks in lockstep and yields snapshots.

    Args:
        zoo: The loaded models.
        clean: ``[H, W, C]`` image in [0, 1] (:func:`prepare_image`).
        settings: The request.

    Yields:
        The start, a snapshot every ``⌈max_steps / STREAM_FRAMES⌉`` steps and whenever a
        walk stops, and the final state (``done``; scores of the final images). The same
        object, updated in place.

    Raises:
        DemoInputError: If neither model of the backbone at that σ_train is installed.
    """
    s = settings
    device = zoo.device
    x = torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32)).permute(2, 0, 1)[None]
    x = x.to(device)
    meas, init, kw = _measurement(s, x)
    runs, walks = [], {}
    for variant in VARIANTS:
        run = WalkRun(
            s.backbone,
            variant,
            run_label(s.backbone, variant),
            catalog.key(s.backbone, variant, s.sigma_train),
        )
        try:
            model = zoo.get(s.backbone, variant, s.sigma_train)
        except ModelUnavailableError as exc:
            run.message = str(exc)
        else:
            walks[variant] = walk(
                _prior(model), meas, **kw, max_steps=s.max_steps, seed=s.seed, init=init
            )
        runs.append(run)
    if not walks:
        raise DemoInputError(_no_models(zoo, s))
    shown = init if init is not None else meas.observed
    sampler = {
        "h0": kw["h0"],
        "beta": kw["beta"],
        "sigma0_8bit": kw["sigma0"] * 255,
        "sigma_stop_8bit": kw["sigma_stop"] * 255,
        "max_steps": s.max_steps,
    }
    state = RestoreState(s, clean, _hwc(shown), _psnr(shown, x), _ssim(shown, x), runs, sampler)
    every = max(1, math.ceil(s.max_steps / STREAM_FRAMES))
    active = [r for r in runs if r.variant in walks]
    while active:
        stopped = False
        for run in list(active):
            start = time.perf_counter()
            item: WalkStep = next(walks[run.variant])
            run.seconds += time.perf_counter() - start
            _advance(run, item, x)
            if item.stop is not None:
                active.remove(run)
                stopped = True
        step = max(r.steps for r in runs)
        if not active:
            break
        if stopped or step % every == 0:
            yield state
    state.done = True
    yield state


def _no_models(zoo: Zoo, s: RestoreSettings) -> str:
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
    run.image = _hwc(item.image)


# ----------------------------------------------------------------------------- view


@dataclass
class RestoreView:
    """A display-ready snapshot of :meth:`Restorer.restore`.

    Attributes:
        observed: What the walks are given, uint8 (``[H, W]`` or ``[H, W, 3]``).
        observed_label: Its caption (with PSNR).
        images: The plain and WNE results, uint8 (None: unavailable).
        labels: Their captions (step, PSNR; the stop reason once stopped).
        sigma_rows: σ̂_t per walk (``step``, ``sigma_hat`` on the 0–255 scale,
            ``log10_sigma_hat``, ``model``) and the stopping level σ_L.
        psnr_rows: PSNR of each walk's state per step (``step``, ``psnr``, ``model``).
        text: The results (Markdown).
        summary: The numbers (JSON-ready).
        done: Whether every walk has stopped.
    """

    observed: np.ndarray
    observed_label: str
    images: list[np.ndarray | None]
    labels: list[str]
    sigma_rows: list[dict[str, Any]]
    psnr_rows: list[dict[str, Any]]
    text: str
    summary: dict[str, Any]
    done: bool


def _db(value: float | None) -> str:
    if value is None:
        return "–"
    return "∞ dB" if math.isinf(value) else f"{value:.2f} dB"


def _num(value: float | None, digits: int = 4) -> float | str | None:
    """A JSON-safe rounded number (``"inf"`` for an infinite PSNR)."""
    if value is None:
        return None
    return "inf" if math.isinf(value) else round(value, digits)


def _observed_caption(s: RestoreSettings) -> str:
    if s.task == "inpaint":
        return f"{s.keep:g} % of the pixels"
    if s.task == "center_hole":
        return f"all but a {s.hole:g} % hole"
    if s.task == "superres":
        return f"{s.factor}×{s.factor} block means"
    return f"noisy start, σ = {s.noise_sigma:g}"


def _run_caption(run: WalkRun) -> str:
    """The result's caption (short: the image's badge; the backbone is in the table)."""
    name = catalog.VARIANT_LABELS[run.variant]
    if run.message is not None:
        return f"{name} · unavailable"
    if run.stop is None:
        return f"{name} · step {run.steps} · {_db(run.psnr)}"
    if run.stop == "diverged":
        return f"{name} · diverged at step {run.steps}"
    return f"{name} · {_db(run.psnr)} · {run.steps} steps"


def restore_view(state: RestoreState, notes: list[str]) -> RestoreView:
    """The page's and the API's form of a snapshot.

    Args:
        state: The snapshot.
        notes: Notes on the image (downscaling, grayscale, crop).

    Returns:
        The view.
    """
    s = state.settings
    stop_8bit = state.sampler["sigma_stop_8bit"]
    sigma_rows: list[dict[str, Any]] = []
    psnr_rows: list[dict[str, Any]] = []
    for run in state.runs:
        for t, sig in enumerate(run.sigmas, start=1):
            v = sig * 255
            row = {"step": t, "sigma_hat": v, "log10_sigma_hat": math.log10(max(v, 1e-12))}
            sigma_rows.append({**row, "model": run.label})
        psnr_rows += [
            {"step": t, "psnr": p, "model": run.label}
            for t, p in enumerate(run.psnrs)
            if math.isfinite(p)
        ]
    level = {"sigma_hat": stop_8bit, "log10_sigma_hat": math.log10(stop_8bit), "model": "σ_L"}
    sigma_rows += [{"step": 0, **level}, {"step": s.max_steps, **level}]
    observed_label = f"{_observed_caption(s)} · {_db(state.observed_psnr)}"
    images = [to_display(r.image)[0] if r.image is not None else None for r in state.runs]
    return RestoreView(
        observed=to_display(state.observed)[0],
        observed_label=observed_label,
        images=images,
        labels=[_run_caption(r) for r in state.runs],
        sigma_rows=sigma_rows,
        psnr_rows=psnr_rows,
        text=_results_text(state, notes),
        summary=_summary(state, notes),
        done=state.done,
    )


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
        f"| {'noisy start' if s.task == 'denoise' else 'observed'} | {_db(state.observed_psnr)} | "
        f"{state.observed_ssim:.3f} | | | |",
    ]
    for r in state.runs:
        if r.message is not None:
            rows.append(f"| {r.label} | – | – | – | {r.message} | |")
            continue
        why = STOP_REASONS.get(r.stop or "", "walking…")
        ssim_text = f"{r.ssim:.3f}" if r.ssim is not None else "–"
        rows.append(
            f"| {r.label} | {_db(r.psnr)} | {ssim_text} | {r.steps} | {why} | {r.seconds:.1f} s |"
        )
    sam = state.sampler
    family = catalog.FAMILIES[s.backbone]
    lines = [
        f"{family.label}, trained at σ = {s.sigma_train}; {RESTORE_TASKS[s.task]}; {w}×{h} px, "
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
            "psnr": _num(r.psnr),
            "ssim": _num(r.ssim),
            "steps": r.steps,
            "stop": r.stop,
            "seconds": round(r.seconds, 3),
            "last_sigma_hat_8bit": _num(r.sigmas[-1] * 255) if r.sigmas else None,
            "sigma_hat_8bit": [_num(v * 255) for v in r.sigmas],
            "psnr_per_step": [None if math.isnan(p) else _num(p) for p in r.psnrs],
        }
    return {
        "done": state.done,
        "settings": state.settings.to_dict(),
        "image": {"width": w, "height": h, "channels": c},
        "sampler": state.sampler,
        "observed": {"psnr": _num(state.observed_psnr), "ssim": _num(state.observed_ssim)},
        "models": models,
        "unavailable": unavailable,
        "notes": notes,
    }


# ----------------------------------------------------------------------------- handler

GpuHook = Callable[..., Callable[..., Any]]


class Restorer:
    """The page's handler around one loaded :class:`~wne.demo.zoo.Zoo`.

    Args:
        zoo: The models.
        gpu: A hook applied to the walks (``spaces.GPU`` on ZeroGPU, called as
            ``gpu(fn, duration=estimate)``); identity by default.
    """

    def __init__(self, zoo: Zoo, gpu: GpuHook | None = None) -> None:
        self.zoo = zoo
        self.hardware = GPU_RESTORE if zoo.device.type == "cuda" else CPU_RESTORE
        hook = gpu or (lambda fn, duration=None: fn)
        self._walks = hook(self._walks_impl, duration=self.gpu_seconds)

    def _walks_impl(self, clean: np.ndarray, settings: RestoreSettings) -> Iterator[RestoreState]:
        """:func:`restore_walks` on this zoo (on ZeroGPU: in the GPU worker, whose snapshots
        come back pickled; the zoo stays with the worker's copy of ``self``)."""
        yield from restore_walks(self.zoo, clean, settings)

    def gpu_seconds(self, clean: np.ndarray, settings: RestoreSettings) -> int:
        """A generous GPU time budget for one run (ZeroGPU's ``duration``)."""
        h, w, c = clean.shape
        return int(min(120, 15 + 2 * settings.max_steps * h * w * c / 1e7))

    def _pair_sigmas(self, backbone: str) -> list[int]:
        return [
            s for s in catalog.SIGMA_TRAINS if all(self.zoo.has(backbone, v, s) for v in VARIANTS)
        ]

    def params(self) -> dict[str, Param]:
        """Every ``/restore`` argument's :class:`~wne.demo.settings.Param` on this hardware
        with these models: the page's controls and the API's defaults.

        The backbone defaults to the first with a plain and WNE pair installed; σ_train to
        10 (the paper's, and our lab's, choice) when that pair exists, else the smallest
        σ_train with a pair; choices without models are marked. The working size and the
        step budget get the hardware's defaults (:data:`CPU_RESTORE`, :data:`GPU_RESTORE`).
        """
        spec = restore_params()
        bb = spec["backbone"]
        paired = [b for b in bb.values if self._pair_sigmas(b)]
        backbone = bb.default if bb.default in paired or not paired else paired[0]
        sigmas = self._pair_sigmas(backbone)
        st = spec["sigma_train"]
        sigma = st.default if st.default in sigmas or not sigmas else sigmas[0]
        have = self.zoo.sigmas([backbone])
        spec["backbone"] = replace(bb, default=backbone)
        spec["sigma_train"] = replace(
            st,
            default=sigma,
            choices=tuple(
                (label + ("" if value in have else " (no models)"), value)
                for label, value in st.choices
            ),
        )
        hw = self.hardware
        spec["max_side"] = replace(spec["max_side"], default=hw.max_side, hi=hw.max_side_limit)
        spec["max_steps"] = replace(spec["max_steps"], default=hw.max_steps)
        return spec

    def defaults(self) -> dict[str, Any]:
        """The page's default value of every ``/restore`` argument."""
        return {name: p.default for name, p in self.params().items()}

    def settings(self, **raw: Any) -> RestoreSettings:
        """Validates a request's raw values (those left out: the page's defaults).

        Raises:
            DemoInputError: Naming the first invalid (or unknown) argument.
        """
        return parse_restore_settings(
            max_side_limit=self.hardware.max_side_limit, defaults=self.defaults(), **raw
        )

    def restore(
        self, image: Any, progress: Progress | None = None, **raw: Any
    ) -> Iterator[RestoreView]:
        """Validates a request, reads the image and streams the two walks.

        Args:
            image: The image (path, file payload, bytes, PIL image or array).
            progress: Optional progress callback.
            **raw: Raw values of :data:`~wne.demo.settings.RESTORE_PARAMS` (left out: the
                page's defaults).

        Yields:
            A view per snapshot of :func:`restore_walks`; the last one is ``done``.

        Raises:
            DemoInputError: On invalid arguments or image, or when neither model exists.
        """
        settings = self.settings(**raw)
        missing = _no_models(self.zoo, settings)  # said here, before any GPU is asked for
        if missing:
            raise DemoInputError(missing)
        loaded: LoadedImage = load_image(image, max_side=settings.max_side)
        clean, notes = prepare_image(loaded.pixels, settings)
        notes = [*loaded.notes, *notes]
        for state in self._walks(clean, settings):
            if progress is not None:
                step = max(r.steps for r in state.runs)
                fraction = 1.0 if state.done else step / settings.max_steps
                progress(fraction, desc=f"step {step} of at most {settings.max_steps}")
            yield restore_view(state, notes)
