"""Plots of evaluation results (matplotlib is imported inside the functions).

The mismatch figure follows the WNE paper (Figs. 3–4): mean output PSNR against mean
input PSNR over the test noise levels, a vertical line at the input PSNR of the
training noise level, a dotted identity line, and optionally the paper's published
curves (:mod:`wne.lab.paper`) dashed in the colour of the matching model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wne import catalog
from wne.lab import paper

__all__ = ["Curve", "curve_style", "mismatch_plot"]

# Colours per (variant, family id of wne.catalog): plain = reds, WNE = blues,
# NE-arch = greens; markers per family.
_COLOURS: dict[tuple[str, str], str] = {
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


def _by_paper_column() -> dict[str, tuple[str, str]]:
    """Paper column -> (variant, family id), from the catalog's ``paper_columns``."""
    return {
        col: (variant, fam.id)
        for fam in catalog.families()
        for variant, col in fam.paper_columns.items()
    }


@dataclass
class Curve:
    """One model's measured curve.

    Attributes:
        label: Legend label (the model key).
        input_psnr: Mean input PSNR per σ_test (x axis).
        output: Mean output metric per σ_test (y axis).
        paper_column: The matching column of :data:`wne.lab.paper.MISMATCH`, if any.
        arch: Registered backbone name (with ``wrapper``: the colour family).
        wrapper: ``"wne"`` or ``"none"``.
    """

    label: str
    input_psnr: Sequence[float]
    output: Sequence[float]
    paper_column: str | None = None
    arch: str = ""
    wrapper: str = "none"


def curve_style(curve: Curve, index: int = 0) -> tuple[str, str]:
    """Colour and marker of a curve: plain reds, WNE blues, NE-arch greens.

    The model's family and variant come from :func:`wne.catalog.describe` of its
    ``arch`` and ``wrapper`` (else from its paper column); models the catalog does
    not know get a colour by position.

    Args:
        curve: The curve.
        index: Its position (picks a colour for models outside the catalog).

    Returns:
        ``(colour, marker)``.
    """
    found = catalog.describe(curve.arch, curve.wrapper) if curve.arch else None
    if found is not None:
        kind = (found[1], found[0].id)
    else:
        kind = _by_paper_column().get(curve.paper_column or "", ("", ""))
    colour = _COLOURS.get(kind, _OTHER[index % len(_OTHER)])
    return colour, _MARKERS.get(kind[1], "D")


def mismatch_plot(
    curves: Sequence[Curve],
    path: str | Path,
    *,
    sigma_train_markers: Sequence[tuple[float, float]] = (),
    paper_sigma_train: float | None = None,
    metric: str = "psnr",
    title: str | None = None,
) -> Path:
    """Draws output quality vs input PSNR (the paper's mismatch figure) to a PNG.

    Args:
        curves: Measured curves.
        path: Output PNG path.
        sigma_train_markers: ``(σ_train, its input PSNR)`` pairs, drawn as vertical lines.
        paper_sigma_train: Overlay the paper's published curves of this σ_train
            (10, 25 or 50) for the curves that have a paper column (PSNR only).
        metric: ``"psnr"`` or ``"ssim"`` (y axis).
        title: Figure title.

    Returns:
        The written path.

    Raises:
        ValueError: On an unknown metric or mismatched curve lengths.
    """
    from matplotlib.figure import Figure

    if metric not in ("psnr", "ssim"):
        raise ValueError(f"metric must be 'psnr' or 'ssim', got {metric!r}")
    for c in curves:
        if len(c.input_psnr) != len(c.output):
            raise ValueError(f"curve {c.label!r}: {len(c.input_psnr)} x vs {len(c.output)} y")
    path = Path(path)
    fig = Figure(figsize=(7.0, 5.6), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    xs: list[float] = []
    ys: list[float] = []
    for i, c in enumerate(curves):
        colour, marker = curve_style(c, i)
        ax.plot(
            c.input_psnr,
            c.output,
            color=colour,
            marker=marker,
            markersize=4,
            linewidth=1.6,
            label=c.label,
        )
        xs += list(c.input_psnr)
        ys += list(c.output)
    if paper_sigma_train is not None and metric == "psnr":
        drawn: set[str] = set()
        for i, c in enumerate(curves):
            col = c.paper_column
            if col is None or col in drawn:
                continue
            drawn.add(col)
            px, py = paper.curve(paper_sigma_train, col)
            colour, _ = curve_style(c, i)
            ax.plot(
                px,
                py,
                color=colour,
                linestyle="--",
                linewidth=1.2,
                alpha=0.75,
                label=f"paper: {paper.LABELS[col]}",
            )
            xs += list(px)
            ys += list(py)
    for sigma, x in sigma_train_markers:
        ax.axvline(x, color="0.35", linestyle="-.", linewidth=1.0, label=f"σ_train = {sigma:g}")
    finite_x = [v for v in xs if v == v and abs(v) != float("inf")]
    if metric == "psnr" and finite_x:
        finite_y = [v for v in ys if v == v and abs(v) != float("inf")]
        lo = min(min(finite_x), min(finite_y, default=min(finite_x)))
        hi = max(max(finite_x), max(finite_y, default=max(finite_x)))
        ax.plot(
            [lo, hi], [lo, hi], color="0.6", linestyle=":", linewidth=1.0, label="output = input"
        )
        ax.set_ylabel("output PSNR (dB)")
    else:
        ax.set_ylabel("output SSIM")
    ax.set_xlabel("input PSNR (dB)")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
