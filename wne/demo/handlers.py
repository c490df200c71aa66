"""The demo's request handlers, independent of Gradio.

:class:`DemoHandlers` validates raw UI/API values (:mod:`wne.demo.validation`),
reads the image (:mod:`wne.demo.imaging`), runs the computation
(:mod:`wne.demo.compare`) through an optional GPU hook (``@spaces.GPU`` on
ZeroGPU) and returns display-ready views: uint8 images, labels, tables and
Markdown. ``app.py`` only maps these views onto components.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wne.demo import compare as cmp
from wne.demo.imaging import LoadedImage, heatmap, load_image, to_display
from wne.demo.validation import (
    BACKBONE_IDS,
    ORDERS,
    DemoInputError,
    Settings,
    parse_choice,
    parse_settings,
)
from wne.demo.zoo import BACKBONES, VARIANT_LABELS, Zoo

__all__ = [
    "ASSETS_DIR",
    "SCENARIOS",
    "DemoConfig",
    "DemoHandlers",
    "DenoiseView",
    "EquivarianceView",
    "Example",
    "Panel",
    "SweepView",
    "calibrate_max_side",
    "load_examples",
    "precomputed_results",
    "scenario",
]

log = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
"""The repository's ``assets/`` folder (examples and precomputed results)."""
TABLE_HEADERS = ["model", "PSNR (dB)", "SSIM", "time (ms)"]
GpuHook = Callable[..., Callable[..., Any]]
"""``hook(fn, duration=callable) -> fn'`` (``spaces.GPU`` or identity)."""


@dataclass(frozen=True)
class DemoConfig:
    """Size limits that depend on the hardware.

    Attributes:
        default_max_side: Default working size (longest side, px).
        max_side_limit: Largest working size accepted.
        results_dir: Folder of precomputed Set12 curves.
        examples_dir: Folder of example images and ``examples.json``.
    """

    default_max_side: int = 256
    max_side_limit: int = 1024
    results_dir: Path = ASSETS_DIR / "results"
    examples_dir: Path = ASSETS_DIR / "examples"

    @classmethod
    def for_device(cls, device: torch.device) -> DemoConfig:
        """CPU: 256 px default, up to 1024; GPU: 512 px, up to 2048.

        ``$WNE_DEMO_MAX_SIDE`` overrides the default working size.
        """
        gpu = device.type == "cuda"
        limit = 2048 if gpu else 1024
        default = _env_side(limit) or (512 if gpu else 256)
        return cls(default_max_side=default, max_side_limit=limit)

    @classmethod
    def for_zoo(cls, zoo: Zoo, target_seconds: float | None = None) -> DemoConfig:
        """Like :meth:`for_device`, with the CPU default sized for a latency target.

        On CPU (unless ``$WNE_DEMO_MAX_SIDE`` is set) the default comparison is
        timed on small colour probes (:func:`calibrate_max_side`) and the default
        working size is the largest multiple of 16 in [128, 512] whose estimated
        model time stays within ``target_seconds`` (default ``$WNE_LATENCY_TARGET``
        or 1.8 s, which leaves room for I/O within a 3 s answer). This also warms
        the models up.
        """
        base = cls.for_device(zoo.device)
        if zoo.device.type == "cuda" or _env_side(base.max_side_limit) or not zoo.models:
            return base
        if target_seconds is None:
            try:
                target_seconds = float(os.environ.get("WNE_LATENCY_TARGET", "1.8"))
            except ValueError:
                target_seconds = 1.8
        side = calibrate_max_side(zoo, target_seconds)
        return cls(default_max_side=side, max_side_limit=base.max_side_limit)


def _env_side(limit: int) -> int | None:
    env = os.environ.get("WNE_DEMO_MAX_SIDE")
    if not env:
        return None
    try:
        return max(32, min(limit, int(env)))
    except ValueError:
        log.warning("ignoring WNE_DEMO_MAX_SIDE=%r (not an integer)", env)
        return None


def calibrate_max_side(
    zoo: Zoo,
    target_seconds: float,
    *,
    probes: tuple[int, int] = (64, 128),
    lo: int = 128,
    hi: int = 512,
) -> int:
    """The largest working size (multiple of 16 in ``[lo, hi]``) meeting a model-time target.

    Times the default comparison (CNN + transformer, plain + WNE) on two square
    colour probes (after a warm-up) and fits ``time = overhead + cost · pixels``
    (convolutions and windowed attention scale with the pixel count).

    Args:
        zoo: The loaded models.
        target_seconds: Model time allowed for a square colour image.
        probes: Sides of the two timing images.
        lo: Smallest result.
        hi: Largest result.

    Returns:
        The working size in pixels.
    """
    backbones = tuple(b for b in ("dncnn", "swinir") if b in zoo.backbones()) or tuple(
        zoo.backbones()[:1]
    )
    settings = Settings(sigma_train=zoo.default_sigma(), backbones=backbones)

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
    budget = max(target_seconds - overhead, 0.0)
    side = int(math.sqrt(budget / cost)) // 16 * 16
    chosen = max(lo, min(hi, side))
    log.info(
        "CPU calibration: default comparison %.2f s at %d px, %.2f s at %d px; working size %d px",
        t_small,
        small,
        t_big,
        big,
        chosen,
    )
    return chosen


@dataclass
class Panel:
    """What one backbone's result group shows.

    For plain/WNE backbones ``left`` is the plain output and ``right`` the WNE
    output; for the NE-arch baseline ``left`` is its output and ``right`` is
    not shown. The slider pair compares plain↔WNE (or noisy↔output when only
    one model is available).
    """

    backbone: str
    visible: bool
    header: str
    left: np.ndarray | None = None
    left_label: str = ""
    right: np.ndarray | None = None
    right_label: str = ""
    right_visible: bool = True
    slider: tuple[np.ndarray, np.ndarray] | None = None
    slider_label: str = ""


@dataclass
class DenoiseView:
    """Display-ready result of :meth:`DemoHandlers.denoise`."""

    noisy: np.ndarray
    noisy_label: str
    target: np.ndarray
    target_label: str
    panels: list[Panel]
    table: list[list[Any]]
    notes: str
    summary: dict[str, Any]
    gallery: list[tuple[np.ndarray, str]] = field(default_factory=list, repr=False)
    comparison: cmp.Comparison | None = field(default=None, repr=False)


@dataclass
class EquivarianceView:
    """Display-ready result of :meth:`DemoHandlers.equivariance`."""

    left: np.ndarray | None
    left_label: str
    right: np.ndarray | None
    right_label: str
    right_visible: bool
    text: str
    summary: dict[str, Any]
    gallery: list[tuple[np.ndarray, str]] = field(default_factory=list, repr=False)


@dataclass
class SweepView:
    """Display-ready result of :meth:`DemoHandlers.sweep`."""

    rows: list[dict[str, Any]]
    title: str
    notes: str


@dataclass(frozen=True)
class Example:
    """An example image with its label and suggested settings."""

    path: Path
    label: str
    settings: dict[str, Any]


SCENARIOS: dict[str, str] = {
    "noise higher than training": (
        "The test noise is more than twice the training noise: plain models leave noise "
        "behind, WNE models adapt because they see the image normalized by its own std."
    ),
    "dim the lights": (
        "A noisy photo darkened to 30% contrast (a = 0.3, shift applied to the noisy image): "
        "WNE scores exactly as at a = 1, plain models do not."
    ),
    "brighten the scene": (
        "A noisy photo brightened (a = 1.5, b = +0.3; values above 1 stay unclipped): "
        "WNE is unaffected, plain models see inputs outside their training range."
    ),
}


def scenario(name: str, sigma_train: int) -> dict[str, Any]:
    """Control values of a classroom scenario.

    Args:
        name: A key of :data:`SCENARIOS`.
        sigma_train: The training σ to keep (the noise level is set relative to it).

    Returns:
        Values for ``a``, ``b``, ``sigma``, ``order`` and ``clip``.
    """
    name = parse_choice(name, "scenario", SCENARIOS)
    if name == "noise higher than training":
        return {
            "a": 1.0,
            "b": 0.0,
            "sigma": float(min(100, max(2.4 * sigma_train, 40))),
            "order": "shift-then-noise",
            "clip": False,
        }
    if name == "dim the lights":
        return {
            "a": 0.3,
            "b": 0.0,
            "sigma": float(sigma_train),
            "order": "noise-then-shift",
            "clip": False,
        }
    return {
        "a": 1.5,
        "b": 0.3,
        "sigma": float(sigma_train),
        "order": "noise-then-shift",
        "clip": False,
    }


def load_examples(folder: str | Path) -> list[Example]:
    """Reads ``examples.json`` (``[{"file", "label", "settings"}]``) from ``folder``.

    Entries whose file is missing are skipped; a missing or invalid index gives
    no examples (logged), never an exception.
    """
    folder = Path(folder)
    index = folder / "examples.json"
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("no usable example index %s: %s", index, exc)
        return []
    out = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            path = folder / str(entry["file"])
            if path.is_file():
                out.append(Example(path, str(entry["label"]), dict(entry.get("settings", {}))))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("skipping malformed example entry %r: %s", entry, exc)
    return out


def precomputed_results(folder: str | Path) -> tuple[list[Path], list[Path], str]:
    """The precomputed Set12 curves written by ``python -m wne.evaluate --out <folder>``.

    Looks (recursively, e.g. ``sigma25/``) for its ``mismatch*.png`` figures and its
    ``psnr.csv`` / ``defect.csv`` tables; other files in the folder are ignored.

    Returns:
        ``(figures, tables, note)``; the note says what was found or that nothing
        is there yet.
    """
    folder = Path(folder)
    if folder.is_dir():
        pngs = sorted(folder.rglob("mismatch*.png"))
        csvs = sorted([*folder.rglob("psnr.csv"), *folder.rglob("defect.csv")])
    else:
        pngs, csvs = [], []
    if not pngs and not csvs:
        note = (
            f"No precomputed Set12 curves yet: `{folder.name}/` holds no `mismatch*.png` or "
            "`psnr.csv` from `python -m wne.evaluate` (see the README)."
        )
    else:
        note = (
            f"Precomputed on Set12 by `python -m wne.evaluate` ({len(pngs)} figure(s), "
            f"{len(csvs)} table(s)): output PSNR vs test σ for models trained at one σ."
        )
    return pngs, csvs, note


def _fmt_db(value: float | None) -> str:
    if value is None:
        return "–"
    return "∞ dB" if math.isinf(value) else f"{value:.2f} dB"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "∞" if math.isinf(value) else f"{value:g}"
    return str(value)


def _sci(value: float | None) -> str:
    return "–" if value is None else f"{value:.2e}"


class DemoHandlers:
    """The demo's handlers around one loaded :class:`~wne.demo.zoo.Zoo`.

    Args:
        zoo: The models.
        config: Size limits and asset folders (default: for the zoo's device).
        gpu: A hook applied to the compute function, e.g. ``spaces.GPU``
            (called as ``gpu(fn, duration=estimate)``); identity by default.
    """

    def __init__(
        self,
        zoo: Zoo,
        config: DemoConfig | None = None,
        gpu: GpuHook | None = None,
    ) -> None:
        self.zoo = zoo
        self.config = config or DemoConfig.for_device(zoo.device)
        hook = gpu or (lambda fn, duration=None: fn)
        self._compute = hook(self._compute_impl, duration=self.gpu_seconds)

    # -- plumbing ---------------------------------------------------------------------------

    def gpu_seconds(
        self, kind: str, clean: np.ndarray, settings: Settings, *_: Any, **__: Any
    ) -> int:
        """A generous GPU time budget for one call (ZeroGPU's ``duration``)."""
        h, w, c = clean.shape
        models = sum(len(BACKBONES[b].variants) for b in settings.backbones)
        work = h * w * c * max(models, 1) * (len(cmp.SWEEP_SIGMAS) if kind == "sweep" else 2)
        return int(min(120, 15 + work / 2e6))

    def _compute_impl(
        self,
        kind: str,
        clean: np.ndarray,
        settings: Settings,
        backbone: str | None = None,
        progress: cmp.Progress | None = None,
    ) -> Any:
        if kind == "compare":
            return cmp.compare(self.zoo, clean, settings, progress)
        if kind == "equivariance":
            return cmp.equivariance_map(self.zoo, clean, settings, backbone or "dncnn", progress)
        if kind == "sweep":
            return cmp.noise_sweep(self.zoo, clean, settings, progress=progress)
        raise ValueError(f"unknown computation {kind!r}")

    def settings(self, *args: Any, **kwargs: Any) -> Settings:
        """:func:`~wne.demo.validation.parse_settings` with this hardware's size limit."""
        return parse_settings(*args, max_side_limit=self.config.max_side_limit, **kwargs)

    def _require_models(self) -> None:
        if not self.zoo.models:
            raise DemoInputError(
                "no model checkpoints are installed: put them in checkpoints/ (or set "
                "WNE_CHECKPOINT_DIR or WNE_HUB_REPO) and restart the app"
            )

    # -- compare ----------------------------------------------------------------------------

    def denoise(
        self,
        image: Any,
        a: Any = 1.0,
        b: Any = 0.0,
        sigma: Any = 25.0,
        seed: Any = 0,
        sigma_train: Any = 25,
        backbones: Any = ("dncnn", "swinir"),
        order: Any = "shift-then-noise",
        max_side: Any = 256,
        clip: Any = False,
        progress: cmp.Progress | None = None,
    ) -> DenoiseView:
        """Validates a request, runs the comparison and prepares it for display.

        Raises:
            DemoInputError: On invalid arguments or image, or when no model exists.
        """
        settings = self.settings(a, b, sigma, seed, sigma_train, backbones, order, max_side, clip)
        self._require_models()
        loaded = load_image(image, max_side=settings.max_side)
        result = self._compute("compare", loaded.pixels, settings, None, progress)
        return self._denoise_view(result, loaded)

    def _denoise_view(self, res: cmp.Comparison, loaded: LoadedImage) -> DenoiseView:
        s = res.settings
        clipped: list[str] = []

        def show(name: str, pixels: np.ndarray) -> np.ndarray:
            img, frac = to_display(pixels)
            if frac > 0:
                clipped.append(f"{name} ({100 * frac:.1f}%)")
            return img

        noisy = show("noisy input", res.noisy)
        target = show("target", res.target)
        gallery: list[tuple[np.ndarray, str]] = []
        panels = []
        for bid, bb in BACKBONES.items():
            if bid not in s.backbones:
                panels.append(Panel(bid, False, f"### {bb.label}\nnot selected"))
                continue
            runs = [res.run(bid, v) for v in bb.variants]
            outs = {r.variant: show(r.label, r.output) for r in runs if r and r.output is not None}

            def label(r: cmp.ModelRun | None) -> str:
                if r is None or r.output is None:
                    return f"{VARIANT_LABELS[r.variant] if r else ''} · unavailable"
                name = "output" if r.variant == "ne" else VARIANT_LABELS[r.variant]
                return f"{name} · {_fmt_db(r.psnr)}"

            gallery += [
                (
                    outs[r.variant],
                    f"{r.label} · PSNR {_fmt_db(r.psnr)} · SSIM {r.ssim:.3f} · "
                    f"{1000 * (r.seconds or 0):.0f} ms",
                )
                for r in runs
                if r and r.variant in outs
            ]

            header = [f"### {bb.label} · trained at σ = {s.sigma_train}"]
            if bb.variants == ("plain", "wne"):
                plain, wne_run = runs
                if plain and wne_run and plain.output is not None and wne_run.output is not None:
                    delta = (wne_run.psnr or 0) - (plain.psnr or 0)
                    header.append(
                        f"plain **{_fmt_db(plain.psnr)}** → WNE **{_fmt_db(wne_run.psnr)}** "
                        f"(Δ {delta:+.2f} dB)"
                    )
                header += [f"⚠ {r.message}" for r in runs if r and r.message]
                if "plain" in outs and "wne" in outs:
                    pair = (outs["plain"], outs["wne"])
                    slider_label = "plain ↔ WNE (drag to compare)"
                elif outs:
                    only = next(iter(outs))
                    pair = (noisy, outs[only])
                    slider_label = f"noisy ↔ {VARIANT_LABELS[only]}"
                else:
                    pair, slider_label = None, "no model available"
                panels.append(
                    Panel(
                        bid,
                        True,
                        "\n\n".join(header),
                        left=outs.get("plain"),
                        left_label=label(plain),
                        right=outs.get("wne"),
                        right_label=label(wne_run),
                        slider=pair,
                        slider_label=slider_label,
                    )
                )
            else:
                (ne_run,) = runs
                header += [f"⚠ {ne_run.message}"] if ne_run and ne_run.message else []
                out = outs.get("ne")
                panels.append(
                    Panel(
                        bid,
                        True,
                        "\n\n".join(header),
                        left=out,
                        left_label=label(ne_run),
                        right_visible=False,
                        slider=(noisy, out) if out is not None else None,
                        slider_label="noisy ↔ NE-arch (drag to compare)",
                    )
                )

        notes = [*loaded.notes, *res.notes]
        if clipped:
            notes.append(
                "Display only: values outside [0, 1] are shown clipped in "
                + ", ".join(clipped)
                + ("; the scores use the unclipped values." if not s.clip else ".")
            )
        notes.append(
            f"PSNR and SSIM are measured against the target a·x + b with data range a = {s.a:g}: "
            "with the shift applied to the noisy image, an equivariant model gets the same PSNR "
            "at every a, b (SSIM depends on b through its luminance term)."
        )
        return DenoiseView(
            noisy=noisy,
            noisy_label=f"noisy input · PSNR {_fmt_db(res.noisy_psnr)}",
            target=target,
            target_label=f"target a·x + b (a = {s.a:g}, b = {s.b:g})",
            panels=panels,
            table=[[_cell(v) for v in row] for row in res.table()],
            notes="\n".join(f"- {n}" for n in notes),
            summary={**res.summary(), "notes": notes},
            gallery=gallery,
            comparison=res,
        )

    # -- equivariance -----------------------------------------------------------------------

    def equivariance(
        self,
        image: Any,
        a: Any = 0.5,
        b: Any = 0.2,
        sigma: Any = 25.0,
        seed: Any = 0,
        sigma_train: Any = 25,
        backbone: Any = "dncnn",
        max_side: Any = 256,
        clip: Any = False,
        progress: cmp.Progress | None = None,
    ) -> EquivarianceView:
        """Heat maps of ``|f(a·y+b) − (a·f(y)+b)|`` for a backbone's variants.

        Raises:
            DemoInputError: On invalid arguments or image, or when no model exists.
        """
        bid = parse_choice(backbone, "backbone", BACKBONE_IDS)
        settings = self.settings(
            a, b, sigma, seed, sigma_train, [bid], "noise-then-shift", max_side, clip
        )
        self._require_models()
        loaded = load_image(image, max_side=settings.max_side)
        res: cmp.EquivarianceMap = self._compute(
            "equivariance", loaded.pixels, settings, bid, progress
        )
        vmax = res.vmax if res.vmax > 0 else 1.0
        maps: list[np.ndarray | None] = []
        labels: list[str] = []
        lines = [
            f"**{BACKBONES[bid].label}**, trained at σ = {settings.sigma_train}; "
            f"y = noisy image (σ = {settings.sigma:g}), a = {settings.a:g}, b = {settings.b:g}.",
            "",
            "| model | relative defect ‖f(a·y+b) − (a·f(y)+b)‖ / ‖a·f(y)+b‖ | max abs. defect |",
            "|---|---|---|",
        ]
        for r in res.runs:
            name = VARIANT_LABELS[r.variant]
            if r.error is None:
                maps.append(None)
                labels.append(f"{name} · unavailable")
                lines.append(f"| {name} | unavailable | {r.message} |")
                continue
            maps.append(heatmap(r.error, vmax))
            labels.append(f"{name} · relative defect {_sci(r.relative)}")
            lines.append(f"| {name} | {_sci(r.relative)} | {_sci(r.max_abs)} |")
        lines += [
            "",
            *(
                ["**⚠ a = 1, b = 0 is the identity: move the contrast or brightness slider.**", ""]
                if settings.a == 1.0 and settings.b == 0.0
                else []
            ),
            f"Colour scale shared by both maps: black = 0 … yellow = {vmax:.3g} "
            "(in [0, 1] image units). WNE defects are float round-off (~1e-7).",
            *[f"- {n}" for n in [*loaded.notes, *res.notes]],
        ]
        summary = {
            "backbone": bid,
            "settings": settings.to_dict(),
            "defects": {
                r.key: {"relative": r.relative, "max_abs": r.max_abs, "message": r.message}
                for r in res.runs
            },
        }
        two = len(res.runs) == 2
        return EquivarianceView(
            left=maps[0],
            left_label=labels[0],
            right=maps[1] if two else None,
            right_label=labels[1] if two else "",
            right_visible=two,
            text="\n".join(lines),
            summary=summary,
            gallery=[(m, lab) for m, lab in zip(maps, labels, strict=True) if m is not None],
        )

    # -- noise sweep ------------------------------------------------------------------------

    def sweep(
        self,
        image: Any,
        a: Any = 1.0,
        b: Any = 0.0,
        seed: Any = 0,
        sigma_train: Any = 25,
        backbones: Any = ("dncnn", "swinir"),
        order: Any = "shift-then-noise",
        clip: Any = False,
        progress: cmp.Progress | None = None,
    ) -> SweepView:
        """Output PSNR vs σ on the user's image (downscaled to :data:`~compare.SWEEP_SIDE`).

        Raises:
            DemoInputError: On invalid arguments or image, or when no model exists.
        """
        settings = self.settings(
            a, b, 25.0, seed, sigma_train, backbones, order, cmp.SWEEP_SIDE, clip
        )
        self._require_models()
        loaded = load_image(image, max_side=cmp.SWEEP_SIDE)
        res: cmp.Sweep = self._compute("sweep", loaded.pixels, settings, None, progress)
        h, w = loaded.pixels.shape[:2]
        title = (
            f"Output PSNR vs test σ ({w}×{h} px, a = {settings.a:g}, b = {settings.b:g}, "
            f"trained at σ = {settings.sigma_train})"
        )
        notes = [
            *loaded.notes,
            *res.notes,
            f"PSNR against a·x + b with data range a = {settings.a:g}; order: "
            f"{ORDERS[settings.order]}.",
        ]
        return SweepView(rows=res.rows, title=title, notes="\n".join(f"- {n}" for n in notes))
