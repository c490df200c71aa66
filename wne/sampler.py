"""A denoiser as an image prior: Kadkhodaie & Simoncelli's unified sampler.

Given any denoiser ``D`` (a callable image → image), its residual ``R(y) = D(y) − y``
points towards the image manifold with a length proportional to the noise left in
``y``. The sampler walks from noise towards an image consistent with a linear
measurement ``x_c = P·x*`` (``P`` an orthogonal projector onto the observed
coordinates; ``P = 0`` for plain denoising). One step ``t = 1, 2, …``:

1. direction ``u_t = (I − P)·R(y_{t−1}) + x_c − P·y_{t−1}``;
2. effective noise ``σ̂_t = ‖u_t‖₂ / √d`` (``d`` = number of pixel values);
3. stop when ``σ̂_t ≤ σ_L`` (or after ``max_steps``, or when the state stops being finite);
4. step size ``h_t = h0·t / (1 + h0·(t − 1))``;
5. injected noise ``γ_t = √(max(0, ((1 − β·h_t)² − (1 − h_t)²)·σ̂_t²))``;
6. ``y_t = y_{t−1} + h_t·u_t + γ_t·z``, ``z ~ N(0, I)``.

The output is ``x̂ = x_c + (I − P)·y``. The state is never clamped. Because the walk
starts far above any training noise level (σ0 = 1 is 255 on the 0–255 scale), only a
denoiser that works at every noise level survives it: a normalization-equivariant one
(Saied & Fleuret 2026, App. N).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "TASKS",
    "Measurement",
    "Problem",
    "SampleResult",
    "Task",
    "WalkStep",
    "injected_variance",
    "paper_parameters",
    "problem",
    "sample",
    "step_size",
    "walk",
]

Denoiser = Callable[[torch.Tensor], torch.Tensor]


def step_size(t: int, h0: float) -> float:
    """Step ``t``'s size, ``h_t = h0·t / (1 + h0·(t − 1))`` (step 4 of the module docstring)."""
    return h0 * t / (1 + h0 * (t - 1))


def injected_variance(h: float, beta: float) -> float:
    """``γ_t² / σ̂_t² = max(0, (1 − β·h)² − (1 − h)²)`` (step 5): the injected noise's share."""
    return max(0.0, (1 - beta * h) ** 2 - (1 - h) ** 2)


def paper_parameters(task: str) -> dict[str, float]:
    """The WNE paper's sampler parameters of a task (App. N, Tables 11 and 12), as the
    keyword arguments ``h0, beta, sigma0, sigma_stop`` of :func:`walk` ([0, 1] scale)."""
    if task == "denoise":
        return {"h0": 0.01, "beta": 1.0, "sigma0": 10.0 / 255, "sigma_stop": 1.0 / 255}
    return {"h0": 0.01, "beta": 0.01, "sigma0": 255.0 / 255, "sigma_stop": 2.55 / 255}


@dataclass(frozen=True)
class Measurement:
    """A linear measurement ``x_c = P·x*``, ``P`` an orthogonal projector (built by
    :meth:`denoise`, :meth:`inpaint`, :meth:`center_hole`, :meth:`superres`).

    Attributes:
        task: ``"denoise"``, ``"inpaint"``, ``"center_hole"`` or ``"superres"``.
        observed: ``x_c = P·x*``, ``[1, C, H, W]``.
        mask: For masking tasks, 1 where a pixel is observed (``P = diag(mask)``).
        factor: For ``superres``, the block side (``P`` = replace each block by its mean).
    """

    task: str
    observed: torch.Tensor
    mask: torch.Tensor | None = None
    factor: int = 0

    def project(self, y: torch.Tensor) -> torch.Tensor:
        """``P·y``."""
        if self.task == "denoise":
            return torch.zeros_like(y)
        if self.task == "superres":
            k = self.factor
            return F.interpolate(F.avg_pool2d(y, k), scale_factor=k, mode="nearest")
        assert self.mask is not None
        return y * self.mask

    def complete(self, y: torch.Tensor) -> torch.Tensor:
        """The result of a state: ``x_c + (I − P)·y``."""
        return self.observed + (y - self.project(y))

    @classmethod
    def denoise(cls, shape: tuple[int, ...] | torch.Size) -> Measurement:
        """No measurement (``P = 0``): residual-stopped denoising of the initial state."""
        return cls("denoise", torch.zeros(_check_shape(shape)))

    @classmethod
    def inpaint(cls, clean: torch.Tensor, keep: float, seed: int) -> Measurement:
        """Keeps a random fraction ``keep`` in (0, 1] of the pixels (all channels together)."""
        _check_shape(clean.shape)
        if not 0 < keep <= 1:
            raise ValueError(f"keep fraction must be in (0, 1], got {keep}")
        gen = torch.Generator().manual_seed(int(seed))
        h, w = clean.shape[-2:]
        mask = (torch.rand((1, 1, h, w), generator=gen) < keep).to(clean.dtype).to(clean.device)
        return cls("inpaint", clean * mask, mask=mask)

    @classmethod
    def center_hole(cls, clean: torch.Tensor, fraction: float = 0.25) -> Measurement:
        """Hides a centred square covering ``fraction`` in (0, 1) of the image's area."""
        _check_shape(clean.shape)
        if not 0 < fraction < 1:
            raise ValueError(f"hole fraction must be in (0, 1), got {fraction}")
        h, w = clean.shape[-2:]
        side_h, side_w = round(h * math.sqrt(fraction)), round(w * math.sqrt(fraction))
        mask = torch.ones((1, 1, h, w), dtype=clean.dtype, device=clean.device)
        top, left = (h - side_h) // 2, (w - side_w) // 2
        mask[..., top : top + side_h, left : left + side_w] = 0
        return cls("center_hole", clean * mask, mask=mask)

    @classmethod
    def superres(cls, clean: torch.Tensor, factor: int = 4) -> Measurement:
        """Observes the means of ``factor × factor`` blocks (``factor`` >= 2 dividing both
        sides): average-pooling super-resolution."""
        _check_shape(clean.shape)
        h, w = clean.shape[-2:]
        if factor < 2 or h % factor or w % factor:
            raise ValueError(f"factor must be >= 2 and divide {h}×{w}, got {factor}")
        m = cls("superres", torch.zeros_like(clean), factor=factor)
        return cls("superres", m.project(clean), factor=factor)


def _check_shape(shape: tuple[int, ...] | torch.Size) -> tuple[int, ...]:
    if len(shape) != 4 or shape[0] != 1:
        raise ValueError(f"the sampler takes one image [1, C, H, W], got {tuple(shape)}")
    return tuple(shape)


@dataclass
class SampleResult:
    """What :func:`sample` returns.

    Attributes:
        image: The result ``x_c + (I − P)·y`` (unclamped), ``[1, C, H, W]``.
        sigmas: ``σ̂_t`` per step (the last one is the one that stopped the walk).
        steps: Steps taken (updates of the state).
        stop: ``"converged"`` (σ̂ ≤ σ_L), ``"max_steps"`` or ``"diverged"`` (not finite
            any more; ``image`` is the last finite state's result).
        frames: ``(step, image)`` every ``frame_every`` steps (and the start), if asked.
    """

    image: torch.Tensor
    sigmas: list[float]
    steps: int
    stop: str
    frames: list[tuple[int, torch.Tensor]] = field(default_factory=list)


@dataclass(frozen=True)
class WalkStep:
    """One state of the walk, as :func:`walk` yields it.

    Attributes:
        step: Updates of the state so far (0: the initial state).
        sigma: The σ̂ that drove the update into this state; on the last item, the one
            that stopped the walk (None: the initial state, or no finite σ̂).
        image: The state's result ``x_c + (I − P)·y`` (unclamped), ``[1, C, H, W]``.
        stop: None while walking; on the last item, as :attr:`SampleResult.stop`.
    """

    step: int
    sigma: float | None
    image: torch.Tensor
    stop: str | None = None


def _check_parameters(h0: float, beta: float, sigma0: float, sigma_stop: float, steps: int) -> None:
    if not 0 < h0 <= 1:
        raise ValueError(f"h0 must be in (0, 1], got {h0}")
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if sigma_stop <= 0 or sigma0 < 0 or steps < 1:
        raise ValueError("need sigma_stop > 0, sigma0 >= 0 and max_steps >= 1")


@torch.no_grad()
def walk(
    denoiser: Denoiser,
    measurement: Measurement,
    *,
    h0: float = 0.01,
    beta: float = 0.01,
    sigma0: float = 1.0,
    sigma_stop: float = 0.01,
    max_steps: int = 1000,
    seed: int = 0,
    init: torch.Tensor | None = None,
) -> Iterator[WalkStep]:
    """The sampler (see the module docstring), one state at a time: the initial state (step
    0), the state after every update, then once more the final state with its ``stop``
    reason (and the σ̂ that stopped the walk). A caller may stop iterating at any time.

    Args:
        denoiser: ``[1, C, H, W] → [1, C, H, W]`` on the [0, 1] scale (e.g. a model in
            eval mode).
        measurement: What is observed (:class:`Measurement`).
        h0: Initial step size, in (0, 1].
        beta: Noise-injection parameter, in [0, 1] (1: no injected noise).
        sigma0: Initial noise std on the [0, 1] scale (ignored when ``init`` is given).
        sigma_stop: Stop when the effective noise σ̂_t falls to this level.
        max_steps: Largest number of steps.
        seed: Seed of the initial and injected noise.
        init: Initial state ``y0`` (default: ``x_c + 0.5·(I − P)·1 + sigma0·z``).

    Raises:
        ValueError: On parameters out of range or an ``init`` of another shape (when
            the first item is asked for).
    """
    _check_parameters(h0, beta, sigma0, sigma_stop, max_steps)
    xc, result = measurement.observed, measurement.complete
    gen = torch.Generator().manual_seed(int(seed))

    def randn() -> torch.Tensor:
        return torch.randn(xc.shape, generator=gen, dtype=xc.dtype).to(xc.device)

    if init is None:
        ones = torch.ones_like(xc)
        y = xc + 0.5 * (ones - measurement.project(ones)) + sigma0 * randn()
    elif init.shape != xc.shape:
        raise ValueError(f"init has shape {tuple(init.shape)}, expected {tuple(xc.shape)}")
    else:
        y = init.to(xc)
    d = xc.numel()
    yield WalkStep(0, None, result(y))
    stop, t, last = "max_steps", 0, None
    while t < max_steps:
        r = denoiser(y).to(y) - y
        u = r - measurement.project(r) + xc - measurement.project(y)
        sig = float(u.norm()) / math.sqrt(d)
        if not math.isfinite(sig):
            stop, last = "diverged", None
            break
        last = sig
        if sig <= sigma_stop:
            stop = "converged"
            break
        t += 1
        h = step_size(t, h0)
        gamma = math.sqrt(injected_variance(h, beta) * sig**2)
        y_next = y + h * u + (gamma * randn() if gamma > 0 else 0)
        if not bool(torch.isfinite(y_next).all()):
            stop = "diverged"
            break
        y = y_next
        yield WalkStep(t, sig, result(y))
        last = None
    yield WalkStep(t, last, result(y), stop)


def sample(
    denoiser: Denoiser, measurement: Measurement, *, frame_every: int = 0, **walk_args: Any
) -> SampleResult:
    """Runs :func:`walk` (with ``walk_args``, its keywords) to its end: the result, the σ̂
    trajectory, why it stopped, and the result every ``frame_every`` steps (0: none).

    Raises:
        ValueError: On parameters out of range or an ``init`` of another shape.
    """
    sigmas: list[float] = []
    frames: list[tuple[int, torch.Tensor]] = []
    for item in walk(denoiser, measurement, **walk_args):
        if item.sigma is not None:
            sigmas.append(item.sigma)
        if item.stop is not None:
            return SampleResult(item.image, sigmas, item.step, item.stop, frames)
        if frame_every and item.step % frame_every == 0:
            frames.append((item.step, item.image))
    raise AssertionError("walk() ends with a stop reason")  # pragma: no cover


@dataclass(frozen=True)
class Task:
    """One restoration task of the sampler: a measurement of a clean image, set by a level.

    Attributes:
        name: Key in :data:`TASKS`.
        label: Its name on a page.
        level: What its level is: ``"sigma0"`` (denoise: the noise std of the start
            ``y0 = x + σ0·z``, [0, 1] scale), ``"keep"`` (inpaint: the observed fraction of
            the pixels), ``"hole"`` (center_hole: the hidden fraction of the area) or
            ``"factor"`` (superres: the block side).
        default: The paper's level (App. N), or the default where the paper has none.
    """

    name: str
    label: str
    level: str
    default: float


TASKS: Mapping[str, Task] = MappingProxyType(
    {
        t.name: t
        for t in (
            Task("inpaint", "inpainting: keep a random fraction of the pixels", "keep", 0.1),
            Task("center_hole", "fill a hole in the centre", "hole", 0.25),
            Task("superres", "super-resolution from block means", "factor", 4),
            Task("denoise", "denoising, stopped by the residual", "sigma0", 10 / 255),
        )
    }
)
"""Every sampler task by name, in display order."""


@dataclass(frozen=True)
class Problem:
    """A task set up on one clean image: what :func:`walk` and :func:`sample` need.

    Attributes:
        measurement: The observation.
        init: The initial state (denoise: ``x + σ0·z``); None: the sampler's default.
        params: The paper's sampler parameters (:func:`paper_parameters`; denoise's
            ``sigma0`` is its level).
        seed: Seed of the start and the injected noise.
    """

    measurement: Measurement
    init: torch.Tensor | None
    params: dict[str, float]
    seed: int

    @property
    def shown(self) -> torch.Tensor:
        """What is seen before restoring: the noisy start (denoise) or the observation."""
        return self.init if self.init is not None else self.measurement.observed

    def walk(self, denoiser: Denoiser, **overrides: Any) -> Iterator[WalkStep]:
        """:func:`walk` on this problem; ``overrides`` replace its parameters."""
        return walk(denoiser, self.measurement, **{**self._kw, **overrides})

    def sample(self, denoiser: Denoiser, **overrides: Any) -> SampleResult:
        """:func:`sample` on this problem; ``overrides`` replace its parameters."""
        return sample(denoiser, self.measurement, **{**self._kw, **overrides})

    @property
    def _kw(self) -> dict[str, Any]:
        return {**self.params, "seed": self.seed, "init": self.init}


def problem(
    task: str,
    clean: torch.Tensor,
    level: float | None = None,
    *,
    seed: int = 0,
    mask_seed: int | None = None,
) -> Problem:
    """Sets a task up on a clean image: its measurement, start and the paper's parameters.

    Args:
        task: A key of :data:`TASKS`.
        clean: The clean image ``[1, C, H, W]``.
        level: The task's level (:attr:`Task.level`; None: its default).
        seed: Seed of the start (denoise: ``z`` of ``x + σ0·z``) and of the walk.
        mask_seed: Seed of the inpainting mask (None: ``seed``).

    Raises:
        ValueError: For an unknown task, or a level or image it cannot take.
    """
    if task not in TASKS:
        raise ValueError(f"unknown sampler task {task!r}; choose from {', '.join(TASKS)}")
    _check_shape(clean.shape)
    level = float(TASKS[task].default if level is None else level)
    params = paper_parameters(task)
    init = None
    if task == "denoise":
        if not (math.isfinite(level) and level >= 0):
            raise ValueError(f"the start's noise sigma0 must be a finite number >= 0, got {level}")
        params["sigma0"] = level
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(tuple(clean.shape), generator=gen, dtype=torch.float32).to(clean)
        m, init = Measurement.denoise(clean.shape), clean + level * z
    elif task == "inpaint":
        m = Measurement.inpaint(clean, level, seed if mask_seed is None else mask_seed)
    elif task == "center_hole":
        m = Measurement.center_hole(clean, level)
    else:
        if level != round(level):
            raise ValueError(f"the super-resolution factor must be a whole number, got {level:g}")
        m = Measurement.superres(clean, round(level))
    return Problem(m, init, params, int(seed))
