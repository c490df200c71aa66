"""The demo's request handlers, independent of Gradio.

:class:`DemoHandlers` validates raw UI/API values (:func:`wne.demo.settings.parse_settings`,
with this hardware's limits), reads the image (:mod:`wne.demo.imaging`), runs the
computation (:mod:`wne.demo.compare`) through an optional GPU hook (``@spaces.GPU`` on
ZeroGPU) and returns display-ready views (:mod:`wne.demo.views`).
:mod:`wne.demo.endpoints` turns those views into the page's and the API's values.

Every computation goes through one :class:`~wne.demo.cache.ModelQueue` (one model
call at a time, first come first served) and one :class:`~wne.demo.cache.ResultCache`
(identical requests computed once; a request identical to one in flight follows it).
The comparison also streams: :meth:`DemoHandlers.denoise_stream` yields the noisy
input and target first, then the view after each model.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from wne import catalog
from wne.demo import compare as cmp
from wne.demo.cache import BACKGROUND, Flight, ModelQueue, ResultCache, cache_from_env, request_key
from wne.demo.imaging import LoadedImage, load_image
from wne.demo.inside import InsidePipeline, InsideView, inside_pipeline, inside_view
from wne.demo.settings import (
    BEST,
    COMPARE_PARAMS,
    DEFAULT_BACKBONES,
    EQUIVARIANCE_PARAMS,
    INSIDE_BACKBONE,
    INSIDE_PARAMS,
    SWEEP_PARAMS,
    DemoInputError,
    Param,
    Settings,
    params,
    parse_param,
    parse_settings,
)
from wne.demo.views import (
    DenoiseView,
    EquivarianceView,
    SweepView,
    denoise_view,
    equivariance_view,
    sweep_view,
)
from wne.demo.zoo import Zoo

__all__ = [
    "CPU_MAX_SIDE_LIMIT",
    "CPU_MIN_DEFAULT_SIDE",
    "GPU_MAX_SIDE",
    "DemoConfig",
    "DemoHandlers",
    "calibrate_max_side",
    "default_backbones",
    "latency_fit",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
GpuHook = Callable[..., Callable[..., Any]]
"""``hook(fn, duration=callable) -> fn'`` (``spaces.GPU`` or identity)."""
_SIDE = params()["max_side"]
CPU_MAX_SIDE_LIMIT = 1024
"""Largest working size on CPU (the GPU accepts :class:`Settings`' whole range)."""
GPU_MAX_SIDE = 512
"""Default working size on a GPU (on CPU: :class:`Settings`' default, or calibrated)."""
CPU_MIN_DEFAULT_SIDE = 256
"""The CPU calibration never picks a default working size below this (issue 13: a loaded
machine at start-up must not shrink the page to thumbnails; the streamed comparison and
the result cache keep a class served)."""


@dataclass(frozen=True)
class DemoConfig:
    """Size limits that depend on the hardware, and the asset folders.

    Attributes:
        default_max_side: Default working size (longest side, px).
        max_side_limit: Largest working size accepted.
        results_dir: Folder of precomputed Set12 curves (None: none).
        examples_dir: Folder of example images and ``examples.json`` (None: none).
        default_checkpoint: The ``checkpoint`` setting's default (a key of
            :data:`~wne.demo.settings.CHECKPOINTS`).
        notes: Start-up notes on these choices, for the page.
    """

    default_max_side: int = _SIDE.default
    max_side_limit: int = CPU_MAX_SIDE_LIMIT
    results_dir: Path | None = None
    examples_dir: Path | None = None
    default_checkpoint: str = BEST
    notes: tuple[str, ...] = ()

    @classmethod
    def for_device(cls, device: torch.device, **folders: Path | None) -> DemoConfig:
        """CPU: the default working size of :class:`Settings`, up to 1024; GPU: 512 px, up to
        the whole range. ``$WNE_DEMO_MAX_SIDE`` overrides the default working size.

        Args:
            device: Where the models run.
            **folders: ``results_dir`` / ``examples_dir``.
        """
        gpu = device.type == "cuda"
        limit = int(_SIDE.hi or CPU_MAX_SIDE_LIMIT) if gpu else CPU_MAX_SIDE_LIMIT
        default = _env_side(limit) or (GPU_MAX_SIDE if gpu else _SIDE.default)
        return cls(default_max_side=default, max_side_limit=limit, **folders)

    @classmethod
    def for_zoo(
        cls, zoo: Zoo, target_seconds: float | None = None, **folders: Path | None
    ) -> DemoConfig:
        """Like :meth:`for_device`, with the CPU default sized for a latency target.

        On CPU the default comparison is timed on small colour probes
        (:func:`latency_fit`), which also warms the models up, and the default working
        size is the largest multiple of 16 in [256, 512] whose estimated model time stays
        within ``target_seconds`` (default ``$WNE_LATENCY_TARGET`` or 1.8 s, which leaves
        room for I/O within a 3 s answer); ``$WNE_DEMO_MAX_SIDE`` fixes it instead. When
        the best available checkpoints of the default comparison are not the CPU-sized
        ones and miss the target at that size (at least 256 px; paper-size models on a
        small CPU), the default becomes the CPU-sized checkpoints, with a note; the best
        ones stay one click away.
        """
        base = cls.for_device(zoo.device, **folders)
        if zoo.device.type == "cuda" or not zoo.models:
            return base
        env = _env_side(base.max_side_limit)  # a fixed working size: only the checkpoints
        if target_seconds is None:
            try:
                target_seconds = float(os.environ.get("WNE_LATENCY_TARGET", "1.8"))
            except ValueError:
                target_seconds = 1.8
        settings = _default_settings(zoo)
        best_is_cpu = _keys(zoo, BEST, settings) == _keys(zoo, "cpu", settings)
        if env and best_is_cpu:  # nothing to size and no checkpoints to choose: no probes
            return base
        lo, hi = CPU_MIN_DEFAULT_SIDE, 512
        check = env or lo
        fit = latency_fit(zoo.select(BEST), settings)
        if _model_seconds(fit, check) > target_seconds and not best_is_cpu:
            slow = _model_seconds(fit, check)
            fit = latency_fit(zoo.select("cpu"), settings)
            note = (
                f"On this CPU the best available checkpoints would take {slow:.1f} s for the "
                f"default comparison at {check} px (target {target_seconds:g} s): the default "
                "is the CPU-sized checkpoints; choose 'best available' under 'checkpoints' for "
                "the others."
            )
            log.info(note)
            side = env or _side_for(fit, target_seconds, lo, hi)
            return replace(base, default_max_side=side, default_checkpoint="cpu", notes=(note,))
        return replace(base, default_max_side=env or _side_for(fit, target_seconds, lo, hi))


def _env_side(limit: int) -> int | None:
    env = os.environ.get("WNE_DEMO_MAX_SIDE")
    if not env:
        return None
    try:
        return max(int(_SIDE.lo or 32), min(limit, int(env)))
    except ValueError:
        log.warning("ignoring WNE_DEMO_MAX_SIDE=%r (not an integer)", env)
        return None


def _last(items: Iterable[T]) -> T:
    """The last item of a stream of partial results (the final one)."""
    last = deque(items, maxlen=1)
    if not last:
        raise RuntimeError("the computation produced no result")
    return last[0]


def default_backbones(zoo: Zoo) -> tuple[str, ...]:
    """The default comparison's backbones that have models (else the first that has)."""
    have = zoo.backbones()
    return tuple(b for b in DEFAULT_BACKBONES if b in have) or tuple(have[:1])


def _default_settings(zoo: Zoo) -> Settings:
    """The default comparison's settings (CNN + transformer, plain + WNE, default σ_train)."""
    return Settings(sigma_train=zoo.default_sigma(), backbones=default_backbones(zoo))


def _keys(zoo: Zoo, choice: str, settings: Settings) -> list[str | None]:
    """The checkpoints a request's comparison runs under a checkpoint choice."""
    view = zoo.select(choice)
    return [
        view.checkpoint(b, v, settings.sigma_train)
        for b in settings.backbones
        for v in catalog.FAMILIES[b].variants
    ]


def latency_fit(
    zoo: Zoo, settings: Settings, probes: tuple[int, int] = (64, 128)
) -> tuple[float, float]:
    """Times a comparison on two square colour probes (after a warm-up) and fits
    ``time = overhead + cost · pixels`` (convolutions and windowed attention scale with the
    pixel count).

    Args:
        zoo: The loaded models (under the checkpoint choice to time).
        settings: The comparison.
        probes: Sides of the two timing images.

    Returns:
        ``(overhead seconds, seconds per pixel of the square side²)``.
    """

    def probe(side: int) -> float:
        yy, xx = np.mgrid[0:side, 0:side] / side
        img = np.stack([0.5 + 0.3 * np.sin(7 * xx + k) * np.cos(5 * yy) for k in range(3)], -1)
        start = time.perf_counter()
        cmp.compare(zoo, img.astype(np.float32), settings)
        return time.perf_counter() - start

    small, big = probes
    probe(small)  # warm-up (first-call allocations)
    t_small, t_big = probe(small), probe(big)
    cost = max(t_big - t_small, 1e-6) / (big * big - small * small)
    overhead = max(t_small - cost * small * small, 0.0)
    log.info(
        "CPU calibration (%s checkpoints): default comparison %.2f s at %d px, %.2f s at %d px",
        zoo.choice,
        t_small,
        small,
        t_big,
        big,
    )
    return overhead, cost


def _model_seconds(fit: tuple[float, float], side: int) -> float:
    overhead, cost = fit
    return overhead + cost * side * side


def _side_for(fit: tuple[float, float], target_seconds: float, lo: int, hi: int) -> int:
    """The largest multiple of 16 in ``[lo, hi]`` whose fitted model time meets the target."""
    overhead, cost = fit
    budget = max(target_seconds - overhead, 0.0)
    side = int(math.sqrt(budget / cost)) // 16 * 16
    chosen = max(lo, min(hi, side))
    log.info("CPU calibration: working size %d px", chosen)
    return chosen


def calibrate_max_side(
    zoo: Zoo,
    target_seconds: float,
    *,
    probes: tuple[int, int] = (64, 128),
    lo: int = 128,
    hi: int = 512,
) -> int:
    """The largest working size (multiple of 16 in ``[lo, hi]``) meeting a model-time target.

    Times the default comparison (CNN + transformer, plain + WNE, the zoo's checkpoint
    choice) with :func:`latency_fit`.

    Args:
        zoo: The loaded models.
        target_seconds: Model time allowed for a square colour image.
        probes: Sides of the two timing images.
        lo: Smallest result.
        hi: Largest result.

    Returns:
        The working size in pixels.
    """
    fit = latency_fit(zoo, _default_settings(zoo), probes)
    return _side_for(fit, target_seconds, lo, hi)


def _name_checkpoints(res: Any, zoo: Zoo, settings: Settings, backbone: str) -> Any:
    """Names the checkpoints that ran in a computation's result: each run's ``key`` becomes
    the key of the checkpoint the zoo's choice took (a slot without one keeps the catalog's
    key), and the notes say which checkpoints ran where a backbone has several sizes."""
    sigma = settings.sigma_train
    if isinstance(res, cmp.Comparison):
        for r in res.runs:
            r.key = zoo.checkpoint(r.backbone, r.variant, sigma) or r.key
    if isinstance(res, cmp.EquivarianceMap):
        for e in res.runs:
            e.key = zoo.checkpoint(res.backbone, e.variant, sigma) or e.key
    shown = [backbone] if isinstance(res, cmp.EquivarianceMap | InsidePipeline) else None
    res.notes += zoo.choice_notes(shown or settings.backbones, sigma)
    return res


class DemoHandlers:
    """The demo's handlers around one loaded :class:`~wne.demo.zoo.Zoo`.

    Args:
        zoo: The models.
        config: Size limits and asset folders (default: for the zoo's device).
        gpu: A hook applied to the compute function, e.g. ``spaces.GPU``
            (called as ``gpu(fn, duration=estimate)``); identity by default. Partial
            results stream only when the hook returns the function itself (a
            wrapped function may run in another process).
        cache: The result cache (default: :func:`~wne.demo.cache.cache_from_env`);
            may be shared by several handlers (the keys hold the checkpoints' hashes).
        queue: Where the computations run, one at a time (default: a new one).

    Attributes:
        in_process: Whether the computations run in this process (the GPU hook is the
            identity): then partial results stream, and warming the cache is possible.
    """

    def __init__(
        self,
        zoo: Zoo,
        config: DemoConfig | None = None,
        gpu: GpuHook | None = None,
        cache: ResultCache | None = None,
        queue: ModelQueue | None = None,
    ) -> None:
        self.zoo = zoo
        self.config = config or DemoConfig.for_device(zoo.device)
        hook = gpu or (lambda fn, duration=None: fn)
        self.gpu_hook: GpuHook = hook
        self._compute = hook(self._compute_impl, duration=self.gpu_seconds)
        self.in_process = self._compute == self._compute_impl
        self.cache = cache if cache is not None else cache_from_env()
        self.queue = queue if queue is not None else ModelQueue()

    # -- plumbing ---------------------------------------------------------------------------

    def gpu_seconds(
        self, kind: str, clean: np.ndarray, settings: Settings, *_: Any, **__: Any
    ) -> int:
        """A generous GPU time budget for one call (ZeroGPU's ``duration``)."""
        h, w, c = clean.shape
        models = sum(len(catalog.FAMILIES[b].variants) for b in settings.backbones)
        work = h * w * c * max(models, 1) * (len(cmp.SWEEP_SIGMAS) if kind == "sweep" else 2)
        return int(min(120, 15 + work / 2e6))

    def _compute_impl(
        self,
        kind: str,
        clean: np.ndarray,
        settings: Settings,
        backbone: str | None = None,
        progress: cmp.Progress | None = None,
        publish: Callable[[Any], None] | None = None,
    ) -> Any:
        zoo = self.zoo.select(settings.checkpoint)
        bid = backbone or settings.backbones[0]
        res: Any
        if kind == "compare":
            res = None
            for res in cmp.compare_steps(zoo, clean, settings, progress):
                if publish is not None and res.pending:
                    for r in res.runs:  # the checkpoints that ran (the notes come at the end)
                        r.key = zoo.checkpoint(r.backbone, r.variant, settings.sigma_train) or r.key
                    publish(res)
        elif kind == "equivariance":
            res = cmp.equivariance_map(zoo, clean, settings, bid, progress)
        elif kind == "sweep":
            res = cmp.noise_sweep(zoo, clean, settings, progress=progress)
        elif kind == "inside":
            res = inside_pipeline(zoo, clean, settings, bid, progress)
        else:
            raise ValueError(f"unknown computation {kind!r}")
        return _name_checkpoints(res, zoo, settings, bid)

    def params(self) -> dict[str, Param]:
        """Every request argument's :class:`~wne.demo.settings.Param` for this hardware and
        these models: the page's controls and the API's defaults.

        The working size gets the hardware's default and upper limit; σ_train the
        zoo's default (choices without models are marked); the backbones default to
        the default comparison's that have models.
        """
        spec = params()
        have = self.zoo.sigmas()
        st = spec["sigma_train"]
        spec["sigma_train"] = replace(
            st,
            default=self.zoo.default_sigma(),
            choices=tuple(
                (label + ("" if value in have else " (no models)"), value)
                for label, value in st.choices
            ),
        )
        have_sizes = self.zoo.sizes()
        ck = spec["checkpoint"]
        spec["checkpoint"] = replace(
            ck,
            default=self.config.default_checkpoint,
            choices=tuple(
                (label + ("" if value == BEST or value in have_sizes else " (no models)"), value)
                for label, value in ck.choices
            ),
        )
        backbones = default_backbones(self.zoo) or DEFAULT_BACKBONES
        spec["backbones"] = replace(spec["backbones"], default=backbones)
        spec["backbone"] = replace(spec["backbone"], default=backbones[0])
        spec["max_side"] = replace(
            spec["max_side"],
            default=self.config.default_max_side,
            hi=self.config.max_side_limit,
            info=f"larger images are downscaled; above {cmp.TILE_SIZE} px the models run in tiles",
        )
        return spec

    def models_markdown(self) -> str:
        """The page's "Available models": the zoo's table and this configuration's notes."""
        notes = "".join(f"\n- {n}" for n in self.config.notes)
        return self.zoo.summary_markdown() + ("\n" + notes if notes else "")

    def inside_backbone(self) -> Param:
        """The Inside WNE tab's ``backbone`` (wrapped backbones only), defaulting to the
        first default backbone that has a WNE variant."""
        wrapped = INSIDE_BACKBONE.values
        chosen = default_backbones(self.zoo) or DEFAULT_BACKBONES
        default = next((b for b in chosen if b in wrapped), wrapped[0])
        return replace(INSIDE_BACKBONE, default=default)

    def defaults(self) -> dict[str, Any]:
        """The page's default value of every request argument (lists for multiple choices)."""
        return {
            name: list(p.default) if isinstance(p.default, tuple) else p.default
            for name, p in self.params().items()
        }

    def settings(self, *args: Any, **raw: Any) -> Settings:
        """:func:`~wne.demo.settings.parse_settings` with this hardware's limits and the
        page's defaults (:meth:`params`) for arguments left out."""
        return parse_settings(
            *args, max_side_limit=self.config.max_side_limit, defaults=self.defaults(), **raw
        )

    def _request(self, allowed: Sequence[str], raw: dict[str, Any], **fixed: Any) -> Settings:
        """The settings of a request that takes the arguments ``allowed`` (others are
        fixed by the computation)."""
        unknown = sorted(set(raw) - set(allowed))
        if unknown:
            raise DemoInputError(f"unknown argument(s) {unknown}; expected some of {list(allowed)}")
        return self.settings(**raw, **fixed)

    def cache_key(
        self, kind: str, pixels: np.ndarray, settings: Settings, backbone: str | None = None
    ) -> str:
        """The result cache's key of a computation: its kind, the pixels at working size,
        the validated settings, the backbone, the device and the sha256 of every
        checkpoint it uses (:func:`wne.demo.cache.request_key`)."""
        st = settings.sigma_train
        bids = [backbone] if backbone else list(settings.backbones)
        zoo = self.zoo.select(settings.checkpoint)  # the checkpoints this request runs
        models = [
            (zoo.checkpoint(b, v, st) or catalog.key(b, v, st), zoo.fingerprint(b, v, st))
            for b in bids
            for v in catalog.FAMILIES[b].variants
        ]
        extra = {"backbone": backbone, "device": str(self.zoo.device)}
        return request_key(kind, pixels, settings.to_dict(), models, **extra)

    def _run(
        self,
        kind: str,
        loaded: LoadedImage,
        settings: Settings,
        backbone: str | None,
        progress: cmp.Progress | None,
        priority: int = 0,
    ) -> Iterator[Any]:
        """A computation through the cache and the model queue: its results, partial
        ones first. Identical requests get identical answers, whether computed, shared
        or cached (the cache's counters are in its log)."""
        key = self.cache_key(kind, loaded.pixels, settings, backbone)

        def job(publish: Callable[[Any], None]) -> Any:
            extra = [publish] if self.in_process else []
            return self._compute(kind, loaded.pixels, settings, backbone, progress, *extra)

        def idle(flight: Flight, source: str) -> None:
            if progress is None:
                return
            if not flight.started.is_set() and isinstance(flight.ticket, int):
                ahead = self.queue.ahead(flight.ticket)
                progress(0.0, desc=f"waiting for the models: {ahead} computation(s) ahead")
            elif source == "joined":
                progress(0.0, desc="an identical request is being computed: sharing its result")

        stream = self.cache.stream(
            key,
            job,
            lambda fn: self.queue.submit(fn, priority),
            label=kind,
            idle=idle,
        )
        for result, _ in stream:
            yield result

    def warm(self, requests: Sequence[tuple[Any, dict[str, Any]]]) -> int:
        """Computes default comparisons into the cache, in the background of the queue.

        For the bundled examples (as their buttons send them): a class clicking one is
        answered from the cache. Each runs only when no request waits.

        Args:
            requests: ``(image, raw arguments of /denoise)`` pairs.

        Returns:
            How many were computed (a failing one is logged and skipped).
        """
        done = 0
        for image, raw in requests:
            try:
                settings = self._request(COMPARE_PARAMS, dict(raw))
                self._require_models()
                loaded = load_image(image, max_side=settings.max_side)
                _last(self._run("compare", loaded, settings, None, None, BACKGROUND))
                done += 1
            except Exception as exc:  # warming is best effort
                log.warning("could not warm the cache with %s: %s", image, exc)
        log.info("result cache warmed with %d example(s): %s", done, self.cache.stats().line())
        return done

    def _require_models(self) -> None:
        if not self.zoo.models:
            raise DemoInputError(
                "no model checkpoints are installed: put them in checkpoints/ (or set "
                "WNE_CHECKPOINT_DIR or WNE_HUB_REPO) and restart the app"
            )

    # -- compare ----------------------------------------------------------------------------

    def denoise(self, image: Any, progress: cmp.Progress | None = None, **raw: Any) -> DenoiseView:
        """Validates a request, runs the comparison and prepares it for display.

        Args:
            image: The image (path, file payload, bytes, PIL image or array).
            progress: Optional progress callback.
            **raw: Raw values of :data:`~wne.demo.settings.COMPARE_PARAMS` (left out:
                the page's defaults).

        Raises:
            DemoInputError: On invalid arguments or image, or when no model exists.
        """
        return _last(self.denoise_stream(image, progress, **raw))

    def denoise_stream(
        self, image: Any, progress: cmp.Progress | None = None, **raw: Any
    ) -> Iterator[DenoiseView]:
        """:meth:`denoise` as it goes: the view with the noisy input and target first
        (every model "computing…"), then after each model; the complete view last.

        A repeated request is answered from the cache (one view), a request identical
        to one in flight follows it. Arguments and errors as :meth:`denoise` (raised
        when the first view is asked for).
        """
        settings = self._request(COMPARE_PARAMS, raw)
        self._require_models()
        loaded = load_image(image, max_side=settings.max_side)
        for result in self._run("compare", loaded, settings, None, progress):
            yield self._denoise_view(result, loaded)

    def _denoise_view(self, res: cmp.Comparison, loaded: LoadedImage) -> DenoiseView:
        """:func:`wne.demo.views.denoise_view` (kept for ``wne.lab.loadtest``'s stage timing)."""
        return denoise_view(res, loaded)

    # -- equivariance -----------------------------------------------------------------------

    def equivariance(
        self, image: Any, progress: cmp.Progress | None = None, **raw: Any
    ) -> EquivarianceView:
        """Heat maps of ``|f(a·y+b) − (a·f(y)+b)|`` for a backbone's variants.

        Args:
            image: The image (path, file payload, bytes, PIL image or array).
            progress: Optional progress callback.
            **raw: Raw values of :data:`~wne.demo.settings.EQUIVARIANCE_PARAMS` (left
                out: the page's defaults).

        Raises:
            DemoInputError: On invalid arguments or image, or when no model exists.
        """
        spec = self.params()["backbone"]
        bid = parse_param(spec, raw.pop("backbone", spec.default))
        allowed = [p for p in EQUIVARIANCE_PARAMS if p != "backbone"]
        settings = self._request(allowed, raw, backbones=[bid], order="noise-then-shift")
        self._require_models()
        loaded = load_image(image, max_side=settings.max_side)
        res = _last(self._run("equivariance", loaded, settings, bid, progress))
        return equivariance_view(res, loaded)

    # -- noise sweep ------------------------------------------------------------------------

    def sweep(self, image: Any, progress: cmp.Progress | None = None, **raw: Any) -> SweepView:
        """Output PSNR vs σ on the user's image (downscaled to :data:`~compare.SWEEP_SIDE`).

        Args:
            image: The image (path, file payload, bytes, PIL image or array).
            progress: Optional progress callback.
            **raw: Raw values of :data:`~wne.demo.settings.SWEEP_PARAMS` (left out: the
                page's defaults).

        Raises:
            DemoInputError: On invalid arguments or image, or when no model exists.
        """
        settings = self._request(
            SWEEP_PARAMS, raw, sigma=cmp.SWEEP_JPEG_SIGMA, max_side=cmp.SWEEP_SIDE
        )
        self._require_models()
        loaded = load_image(image, max_side=cmp.SWEEP_SIDE)
        res = _last(self._run("sweep", loaded, settings, None, progress))
        return sweep_view(res, loaded, settings)

    # -- inside WNE -------------------------------------------------------------------------

    def inside(self, image: Any, progress: cmp.Progress | None = None, **raw: Any) -> InsideView:
        """The WNE pipeline on ``y`` and ``a·y + b``, step by step, and the plain twin.

        The image is processed in one piece (working size at most
        :data:`~wne.demo.compare.TILE_SIZE`), so every step is the model's own.

        Args:
            image: The image (path, file payload, bytes, PIL image or array).
            progress: Optional progress callback.
            **raw: Raw values of :data:`~wne.demo.settings.INSIDE_PARAMS` (left out: the
                page's defaults); ``backbone`` must have a WNE wrapper.

        Raises:
            DemoInputError: On invalid arguments or image, or when the WNE model is missing.
        """
        spec = self.inside_backbone()
        bid = parse_param(spec, raw.pop("backbone", spec.default))
        allowed = [p for p in INSIDE_PARAMS if p != "backbone"]
        settings = self._request(allowed, raw, backbones=[bid], order="noise-then-shift")
        self._require_models()
        side = min(settings.max_side, cmp.TILE_SIZE)
        loaded = load_image(image, max_side=side)
        res = _last(self._run("inside", loaded, settings, bid, progress))
        return inside_view(res, loaded)
