"""Display-ready views of the demo's results: uint8 images, labels, tables, Markdown.

Plain functions from a computation's result (:mod:`wne.demo.compare`) and the
loaded image to what the page and the API show; no Gradio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wne import catalog
from wne.demo import compare as cmp
from wne.demo.imaging import LoadedImage, heatmap, to_display
from wne.demo.settings import NOISE_LEVEL, NOISE_TYPES, ORDERS, Settings

__all__ = [
    "TABLE_HEADERS",
    "DenoiseView",
    "EquivarianceView",
    "Panel",
    "SweepView",
    "denoise_view",
    "equivariance_view",
    "sweep_view",
]

SWEEP_AXES: dict[str, tuple[str, str]] = {
    "sigma": ("test σ", "test σ (0–255)"),
    "photons": ("photons per pixel", "photons per pixel at white"),
    "quality": ("JPEG quality", "JPEG quality (of σ = 25 noise)"),
}
"""The noise sweep's title words and x-axis title per swept level."""
TABLE_HEADERS = ["model", "PSNR (dB)", "SSIM", "time (ms)"]
"""Columns of the scores table (:meth:`wne.demo.compare.Comparison.table`)."""


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
    """Display-ready result of :meth:`wne.demo.handlers.DemoHandlers.denoise`."""

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
    """Display-ready result of :meth:`wne.demo.handlers.DemoHandlers.equivariance`."""

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
    """Display-ready result of :meth:`wne.demo.handlers.DemoHandlers.sweep`."""

    rows: list[dict[str, Any]]
    title: str
    notes: str
    x_title: str = "test σ (0–255)"
    plot_title: str = "PSNR vs σ"


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


def _noise_words(s: Settings) -> str:
    """E.g. ``σ = 25`` or ``low light, 20 photons at white``."""
    level = NOISE_LEVEL[s.noise]
    if level == "photons":
        return f"low light, {s.photons:g} photons at white, read noise {s.read_noise:g}"
    if level == "quality":
        return f"JPEG quality {s.quality} of σ = {s.sigma:g} noise"
    return f"σ = {s.sigma:g}" + ("" if s.noise == "gaussian" else f", {s.noise}")


def _sizes(runs: list[cmp.ModelRun | None]) -> str:
    """`` · CPU-sized`` or `` · paper-size, GPU-trained``: the size of a backbone's models
    that ran (their keys name the checkpoints that ran)."""
    known = set(catalog.keys())
    sizes = {
        catalog.get(r.key).size
        for r in runs
        if r is not None and r.output is not None and r.key in known
    }
    return "".join(f" · {catalog.SIZE_LABELS[z]}" for z in catalog.SIZES if z in sizes)


def _computing(variants: list[str]) -> str:
    """E.g. ``computing WNE…`` for the variants of a backbone still to run."""
    return "computing " + " and ".join(catalog.VARIANT_LABELS[v] for v in variants) + "…"


def _eq_sigma(res: cmp.Comparison) -> str:
    """`` · equivalent σ ≈ 41.3`` for low light and JPEG (no σ of their own)."""
    if res.settings.noise not in ("lowlight", "jpeg") or res.equivalent_sigma is None:
        return ""
    return f" · equivalent σ ≈ {res.equivalent_sigma:.1f}"


def denoise_view(res: cmp.Comparison, loaded: LoadedImage) -> DenoiseView:
    """The Compare tab's view of a comparison: display images, panels, table, notes."""
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
    for bb in catalog.families(zoo_only=True):
        bid = bb.id
        if bid not in s.backbones:
            panels.append(Panel(bid, False, f"### {bb.label}\nnot selected"))
            continue
        runs = [res.run(bid, v) for v in bb.variants]
        outs = {r.variant: show(r.label, r.output) for r in runs if r and r.output is not None}
        waiting = [v for v in bb.variants if (bid, v) in res.pending]

        def label(r: cmp.ModelRun | None, variant: str, bid: str = bid) -> str:
            if (bid, variant) in res.pending:
                return f"{catalog.VARIANT_LABELS[variant]} · computing…"
            if r is None or r.output is None:
                return f"{catalog.VARIANT_LABELS[variant]} · unavailable"
            name = "output" if r.variant == "ne" else catalog.VARIANT_LABELS[r.variant]
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

        header = [f"### {bb.label} · trained at σ = {s.sigma_train}{_sizes(runs)}"]
        if bb.variants == ("plain", "wne"):
            plain, wne_run = runs
            if plain and wne_run and plain.output is not None and wne_run.output is not None:
                delta = (wne_run.psnr or 0) - (plain.psnr or 0)
                header.append(
                    f"plain **{_fmt_db(plain.psnr)}** → WNE **{_fmt_db(wne_run.psnr)}** "
                    f"(Δ {delta:+.2f} dB)"
                )
            header += [f"⚠ {r.message}" for r in runs if r and r.message]
            header += [f"*{_computing(waiting)}*"] if waiting else []
            if waiting:
                pair, slider_label = None, "computing…"
            elif "plain" in outs and "wne" in outs:
                pair = (outs["plain"], outs["wne"])
                slider_label = "plain ↔ WNE (drag to compare)"
            elif outs:
                only = next(iter(outs))
                pair = (noisy, outs[only])
                slider_label = f"noisy ↔ {catalog.VARIANT_LABELS[only]}"
            else:
                pair, slider_label = None, "no model available"
            panels.append(
                Panel(
                    bid,
                    True,
                    "\n\n".join(header),
                    left=outs.get("plain"),
                    left_label=label(plain, "plain"),
                    right=outs.get("wne"),
                    right_label=label(wne_run, "wne"),
                    slider=pair,
                    slider_label=slider_label,
                )
            )
        else:
            (ne_run,) = runs
            header += [f"⚠ {ne_run.message}"] if ne_run and ne_run.message else []
            header += [f"*{_computing(waiting)}*"] if waiting else []
            out = outs.get("ne")
            panels.append(
                Panel(
                    bid,
                    True,
                    "\n\n".join(header),
                    left=out,
                    left_label=label(ne_run, "ne"),
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
        noisy_label=f"noisy input · PSNR {_fmt_db(res.noisy_psnr)}" + _eq_sigma(res),
        target=target,
        target_label=f"target a·x + b (a = {s.a:g}, b = {s.b:g})",
        panels=panels,
        table=[[_cell(v) for v in row] for row in res.table()],
        notes="\n".join(f"- {n}" for n in notes),
        summary={**res.summary(), "notes": notes},
        gallery=gallery,
        comparison=res,
    )


def equivariance_view(res: cmp.EquivarianceMap, loaded: LoadedImage) -> EquivarianceView:
    """The Equivariance tab's view: heat maps on one colour scale, a table, notes."""
    settings, bid = res.settings, res.backbone
    vmax = res.vmax if res.vmax > 0 else 1.0
    maps: list[np.ndarray | None] = []
    labels: list[str] = []
    lines = [
        f"**{catalog.FAMILIES[bid].label}**, trained at σ = {settings.sigma_train}; "
        f"y = noisy image ({_noise_words(settings)}), a = {settings.a:g}, b = {settings.b:g}.",
        "",
        "| model | relative defect ‖f(a·y+b) − (a·f(y)+b)‖ / ‖a·f(y)+b‖ | max abs. defect |",
        "|---|---|---|",
    ]
    for r in res.runs:
        name = catalog.VARIANT_LABELS[r.variant]
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


def sweep_view(res: cmp.Sweep, loaded: LoadedImage, settings: Settings) -> SweepView:
    """The Noise sweep tab's view: the curves' rows, a title, notes."""
    h, w = loaded.pixels.shape[:2]
    axis = SWEEP_AXES[res.level]
    kind = "" if settings.noise == "gaussian" else f", {NOISE_TYPES[settings.noise]}"
    title = (
        f"Output PSNR vs {axis[0]} ({w}×{h} px, a = {settings.a:g}, b = {settings.b:g}, "
        f"trained at σ = {settings.sigma_train}{kind})"
    )
    notes = [
        *loaded.notes,
        *res.notes,
        f"PSNR against a·x + b with data range a = {settings.a:g}; order: "
        f"{ORDERS[settings.order]}.",
    ]
    return SweepView(
        rows=res.rows,
        title=title,
        notes="\n".join(f"- {n}" for n in notes),
        x_title=axis[1],
        plot_title="PSNR vs σ" if res.level == "sigma" else f"PSNR vs {axis[0]}",
    )
