"""The lab's figures (matplotlib, imported inside the functions).

The mismatch figure follows the WNE paper (Figs. 3–4): mean output PSNR against mean input
PSNR over the test levels, a vertical line at the input PSNR of the training level, a dotted
identity line, and optionally the paper's curves (:mod:`wne.lab.paper`) dashed in the
colour of the matching model. Colours: plain reds, WNE blues, NE-arch greens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wne import catalog
from wne.lab import paper

__all__ = ["Curve", "curve_style", "mismatch_plot", "sampler_figure"]

_COLOURS: dict[tuple[str, str], str] = {  # (variant, catalog family id) -> colour
    ("plain", "dncnn"): "#d62728",
    ("plain", "swinir"): "#8c1c13",
    ("plain", "fdncnn"): "#f08080",
    ("wne", "dncnn"): "#1f77b4",
    ("wne", "swinir"): "#08306b",
    ("wne", "fdncnn"): "#6baed6",
    ("ne", "fdncnn-ne"): "#2ca02c",
}
_MARKERS = {"dncnn": "o", "swinir": "s", "fdncnn": "^", "fdncnn-ne": "^"}
_OTHER = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


@dataclass
class Curve:
    """One model's measured curve: its legend ``label``, mean input PSNR (x) and output metric
    (y) per level, its column of :data:`wne.lab.paper.MISMATCH` if any, and the ``arch`` and
    ``wrapper`` that pick its colour."""

    label: str
    input_psnr: Sequence[float]
    output: Sequence[float]
    paper_column: str | None = None
    arch: str = ""
    wrapper: str = "none"


def curve_style(curve: Curve, index: int = 0) -> tuple[str, str]:
    """``(colour, marker)`` of a curve, from its catalog family and variant
    (:func:`wne.catalog.describe`, else its paper column); others by position."""
    found = catalog.describe(curve.arch, curve.wrapper) if curve.arch else None
    if found is not None:
        kind = (found[1], found[0].id)
    else:
        by_column = {
            col: (variant, fam.id)
            for fam in catalog.families()
            for variant, col in fam.paper_columns.items()
        }
        kind = by_column.get(curve.paper_column or "", ("", ""))
    return _COLOURS.get(kind, _OTHER[index % len(_OTHER)]), _MARKERS.get(kind[1], "D")


def mismatch_plot(
    curves: Sequence[Curve],
    path: str | Path,
    *,
    sigma_train_markers: Sequence[tuple[float, float]] = (),
    paper_sigma_train: float | None = None,
    metric: str = "psnr",
    title: str | None = None,
) -> Path:
    """Draws output ``metric`` (``"psnr"`` or ``"ssim"``) vs input PSNR to a PNG at ``path``:
    the curves, a vertical line per ``(σ_train, its input PSNR)`` marker, and for the curves
    with a paper column the paper's curves of ``paper_sigma_train`` (PSNR only).

    Raises:
        ValueError: On an unknown metric or mismatched curve lengths.
    """
    from matplotlib.figure import Figure

    if metric not in ("psnr", "ssim"):
        raise ValueError(f"metric must be 'psnr' or 'ssim', got {metric!r}")
    for c in curves:
        if len(c.input_psnr) != len(c.output):
            raise ValueError(f"curve {c.label!r}: {len(c.input_psnr)} x vs {len(c.output)} y")
    fig = Figure(figsize=(7.0, 5.6), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    xs: list[float] = []
    ys: list[float] = []
    drawn: set[str] = set()
    for i, c in enumerate(curves):
        colour, marker = curve_style(c, i)
        ax.plot(c.input_psnr, c.output, color=colour, marker=marker, ms=4, lw=1.6, label=c.label)
        xs += list(c.input_psnr)
        ys += list(c.output)
    for i, c in enumerate(curves if paper_sigma_train is not None and metric == "psnr" else ()):
        if c.paper_column is None or c.paper_column in drawn:
            continue
        drawn.add(c.paper_column)
        px, py = paper.curve(paper_sigma_train, c.paper_column)
        label = f"paper: {paper.LABELS[c.paper_column]}"
        ax.plot(px, py, color=curve_style(c, i)[0], linestyle="--", lw=1.2, alpha=0.75, label=label)
        xs += list(px)
        ys += list(py)
    for sigma, x in sigma_train_markers:
        ax.axvline(x, color="0.35", linestyle="-.", linewidth=1.0, label=f"σ_train = {sigma:g}")
    fx = [v for v in xs if math.isfinite(v)]
    if metric == "psnr" and fx:
        fy = [v for v in ys if math.isfinite(v)]
        lo, hi = min(min(fx), min(fy, default=min(fx))), max(max(fx), max(fy, default=max(fx)))
        ax.plot([lo, hi], [lo, hi], color="0.6", linestyle=":", lw=1.0, label="output = input")
    ax.set_ylabel("output PSNR (dB)" if metric == "psnr" else "output SSIM")
    ax.set_xlabel("input PSNR (dB)")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def sampler_figure(
    path: Path,
    models: Sequence[Any],
    summary: Mapping[str, Any],
    traj: Mapping[str, Any],
    task: str,
    sigma_stop: float,
    image: str,
) -> Path:
    """The sampler's figure at ``path``: final PSNR and SSIM per model (``summary``'s mean ±
    std, one-pass hatched beside), then σ̂_t (down to ``sigma_stop``) and the state's PSNR
    along the runs ``traj`` (model key → record) of ``image``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 8.0), dpi=110, layout="constrained")
    axs = fig.subplots(2, 2)
    colours = [
        curve_style(Curve(m.key, [], [], None, m.arch, m.wrapper), i)[0]
        for i, m in enumerate(models)
    ]
    for ax, metric, label in ((axs[0, 0], "psnr", "PSNR (dB)"), (axs[0, 1], "ssim", "SSIM")):
        for i, m in enumerate(models):
            s = summary[m.key]
            fin, one = s[f"final_{metric}"], s[f"one_pass_{metric}"]
            if fin is not None:
                ax.bar(i + 0.2, fin["mean"], 0.4, yerr=fin["std"], color=colours[i], capsize=3)
                if s["n_diverged"]:
                    ax.text(
                        i + 0.2, fin["mean"], f"{s['n_diverged']} div.", ha="center", fontsize=7
                    )
            else:
                ax.text(i + 0.2, 0, "diverged", rotation=90, ha="center", va="bottom", fontsize=8)
            if one is not None:
                ax.bar(i - 0.2, one["mean"], 0.4, color=colours[i], alpha=0.35, hatch="//")
        ax.set_xticks(range(len(models)), [m.key for m in models], rotation=15, fontsize=8)
        ax.set_ylabel(label)
        ax.set_title(f"{task}: one-pass (hatched) and final {label.split()[0]}")
        ax.grid(True, axis="y", alpha=0.3)
    for i, m in enumerate(models):
        if (rec := traj.get(m.key)) is not None:
            tag = f"{m.key} ({rec.row['stop']}, {rec.row['steps']} steps)"
            axs[1, 0].semilogy(
                range(1, len(rec.sigmas) + 1), rec.sigmas, color=colours[i], label=tag
            )
            axs[1, 1].plot(range(len(rec.psnrs)), rec.psnrs, color=colours[i], label=m.key)
    axs[1, 0].axhline(sigma_stop, color="0.4", linestyle=":", label="σ_stop")
    axs[1, 0].set_ylabel("σ̂_t = ‖u_t‖/√d ([0, 1] scale)")
    axs[1, 0].set_title(f"effective noise along the trajectory, {image}")
    axs[1, 1].set_ylabel("PSNR of x_c + (I − P)·y_t (dB)")
    axs[1, 1].set_title(f"state PSNR along the trajectory, {image}")
    for ax in axs[1]:
        ax.set_xlabel("step t")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
