"""Why it works: a denoiser's output pixel as an adaptive filter, plain vs WNE, on the noisy
image ``y`` and on its shift ``a·y + b``; and the normalized difficulty Δ of the image's
patches against the training noise level's (paper §4.5 and §5, :mod:`wne.explain`).

A normalization-equivariant model's filters sum to 1, explain its output exactly
(``ρ = ‖f(y) − J_f(y)·y‖ / ‖f(y)‖ = 0``) and are the same at ``y`` and at ``a·y + b``: what a
WNE model does depends only on the normalized image, whose difficulty Δ is what training
covered. A plain model's filters change with the shift, and its output is not only a filter
of its input. The models see the image's luminance (the mean of its channels).
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wne import catalog, explain
from wne.demo.imaging import to_display
from wne.demo.pages import rivals
from wne.demo.pages.compare import BACKBONES, corrupt
from wne.demo.pages.equivariance import Probe
from wne.demo.schema import derive, setting
from wne.demo.zoo import ModelUnavailableError, Zoo

log = logging.getLogger(__name__)

PATCH = 70
"""Side of the patches whose Δ is measured (the paper's Table 3: d = 70² = 4900)."""
ZOOM = 8
"""Each filter weight is shown as a ZOOM × ZOOM block."""
NO_RIVAL = "none"


def _whole(default: int, label: str, lo: int, hi: int, name: str, info: str, **kw: Any) -> Any:
    kw.setdefault("step", 1)
    return setting(default, label, info=info, lo=lo, hi=hi, elem_id=f"why-{name}", **kw)


Filters = derive(
    Probe,
    "Filters",
    replace={
        "backbone": (
            "backbone",
            str,
            setting("dncnn", "backbone", choices=BACKBONES, elem_id="why-backbone"),
        )
    },
    add=[
        ("row", int, _whole(64, "pixel row", 0, 2047, "row", "click the image", widget="number")),
        (
            "col",
            int,
            _whole(64, "pixel column", 0, 2047, "col", "in px", widget="number"),
        ),
        ("radius", int, _whole(7, "filter window radius (px)", 2, 16, "radius", "shown around it")),
        ("crop", int, _whole(64, "crop side (px)", 32, 128, "crop", "the models see it", step=16)),
        (
            "rival",
            str,
            setting(
                NO_RIVAL,
                "beside them, a rival",
                choices=[("none", NO_RIVAL)]
                + [(rivals.model_label(k), k) for k in catalog.rival_keys()],
                info="its filter too (the objections' models, below)",
                widget="dropdown",
                elem_id="why-rival",
            ),
        ),
    ],
    namespace={"scene": Probe.scene},
    doc="The Why page's settings: the scene with one backbone, a pixel, its window and crop.",
)


@dataclass
class ModelFilter:
    """One model's filter at the pixel, on ``y`` and on ``a·y + b``, with ρ of the crop."""

    variant: str
    key: str
    at_y: explain.FilterView | None = None
    at_shift: explain.FilterView | None = None
    rho: float | None = None
    rho_shift: float | None = None
    seconds: float | None = None
    message: str | None = None

    @property
    def label(self) -> str:
        """E.g. ``"CNN · WNE"``."""
        e = catalog.get(self.key)
        return (
            rivals.model_label(self.key)
            if e.role == "rival"
            else catalog.label(e.family.id, self.variant)
        )


@dataclass
class Explanation:
    """The page's result: the noisy working image ``[H, W]``, the pixel and crop used (both
    inside the image), each variant's filters, the Δ of the image's patches and notes."""

    settings: Any
    noisy: np.ndarray
    pixel: tuple[int, int]
    box: tuple[int, int, int]
    runs: list[ModelFilter]
    deltas: np.ndarray
    patch: int
    notes: list[str] = field(default_factory=list)


def _box(h: int, w: int, pixel: tuple[int, int], side: int) -> tuple[int, int, int]:
    """``(top, left, side)``: the square of ``side`` (at most the image's) around ``pixel``."""
    side = min(side, h, w)
    top = min(max(pixel[0] - side // 2, 0), h - side)
    left = min(max(pixel[1] - side // 2, 0), w - side)
    return top, left, side


def _patches(x: np.ndarray, side: int) -> np.ndarray:
    """``[N, side, side]`` patches of ``[H, W]`` ``x``, on a grid of stride ``side // 2``."""
    h, w = x.shape
    step = max(1, side // 2)
    return np.stack(
        [x[i : i + side, j : j + side] for i in range(0, h - side + 1, step)
         for j in range(0, w - side + 1, step)]
    )  # fmt: skip


def run(zoo: Zoo, clean: np.ndarray, s: Any) -> Iterator[Explanation]:
    """The filters of ``s.backbone``'s variants at pixel ``(s.row, s.col)`` of the noisy
    luminance, on a crop around it (float64, so the identities show at round-off), and the Δ of
    the image's patches at the scene's noise."""
    scene, zoo = s.scene(), zoo.select(s.checkpoint)
    gray = torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32).mean(-1))[None]
    y = corrupt(gray, scene)
    shifted = s.a * y + s.b
    if s.clip:
        y, shifted = y.clamp(0, 1), shifted.clamp(0, 1)
    h, w = y.shape[-2:]
    pixel = (min(s.row, h - 1), min(s.col, w - 1))
    top, left, side = _box(h, w, pixel, s.crop)
    at = (pixel[0] - top, pixel[1] - left)
    crops = [t[0, top : top + side, left : left + side] for t in (y, shifted)]
    runs, slots = [], [(v, None) for v in catalog.FAMILIES[s.backbone].variants]
    slots += [(catalog.get(s.rival).variant, s.rival)] if s.rival != NO_RIVAL else []
    for v, rival in slots:
        key = rival or zoo.checkpoint(s.backbone, v, s.sigma_train)
        r = ModelFilter(v, key or catalog.key(s.backbone, v, s.sigma_train))
        runs.append(r)
        try:
            if rival:
                model = zoo.differentiable_key(rival)
            else:
                model = zoo.differentiable(s.backbone, v, s.sigma_train)
        except ModelUnavailableError as exc:
            r.message = str(exc)
            continue
        start, f64 = time.perf_counter(), torch.float64
        r.at_y, r.at_shift = (explain.filter_view(model, c, at, dtype=f64) for c in crops)
        r.rho, r.rho_shift = (explain.rho(model, c, dtype=f64) for c in crops)
        r.seconds = time.perf_counter() - start
    patch = min(PATCH, h, w)
    deltas = explain.delta(_patches(gray[0].numpy(), patch), _patches(y[0].numpy(), patch))
    notes = [] if (pixel[0], pixel[1]) == (s.row, s.col) else [
        f"The pixel ({s.row}, {s.col}) is outside the {h}×{w} working image: "
        f"({pixel[0]}, {pixel[1]}) is shown."
    ]  # fmt: skip
    if patch < PATCH:
        notes.append(f"The image is smaller than {PATCH} px: Δ is of {patch}² patches.")
    notes += zoo.choice_notes([s.backbone], s.sigma_train)
    yield Explanation(s, y[0].numpy(), pixel, (top, left, side), runs, deltas, patch, notes)


def signed_map(weights: np.ndarray, vmax: float) -> np.ndarray:
    """``[h, w]`` signed weights as ``[h·ZOOM, w·ZOOM, 3]`` uint8: red positive, blue
    negative, white zero, on ``[−vmax, vmax]``."""
    from matplotlib import colormaps

    t = np.clip(0.5 + 0.5 * weights / (vmax if vmax > 0 else 1.0), 0.0, 1.0)
    rgb = np.rint(colormaps["RdBu_r"](t)[..., :3] * 255).astype(np.uint8)
    return rgb.repeat(ZOOM, 0).repeat(ZOOM, 1)


def marked(noisy: np.ndarray, pixel: tuple[int, int], box: tuple[int, int, int]) -> np.ndarray:
    """The noisy image as uint8 RGB with the crop's outline (yellow) and the pixel (red)."""
    img = np.repeat(to_display(noisy)[0][..., None], 3, -1)
    top, left, side = box
    for rows, cols in (
        (slice(top, top + 1), slice(left, left + side)),
        (slice(top + side - 1, top + side), slice(left, left + side)),
        (slice(top, top + side), slice(left, left + 1)),
        (slice(top, top + side), slice(left + side - 1, left + side)),
    ):
        img[rows, cols] = (255, 210, 0)
    r, c = pixel
    img[max(r - 2, 0) : r + 3, c] = img[r, max(c - 2, 0) : c + 3] = (255, 0, 0)
    return img


def outputs(
    res: Explanation, notes: list[str], coverage: dict[str, Any] | None = None
) -> tuple[np.ndarray, list[tuple[np.ndarray, str]], dict[str, Any], str]:
    """What ``/filters`` returns and the page shows: the noisy image marked, each model's
    filter windows (on ``y`` and ``a·y + b``, one colour scale) with captions, the summary
    (per model ``filter_sum`` and ``rho``, the Δ of the image's patches against the training
    interval of ``coverage``, :func:`load_coverage`) and the text."""
    s, radius = res.settings, res.settings.radius
    windows = {
        (r.key, which): view.window(radius)
        for r in res.runs
        for which, view in (("y", r.at_y), ("shifted", r.at_shift))
        if view is not None
    }
    vmax = max((float(np.abs(w).max()) for w in windows.values()), default=1.0)
    pictures, models = [], {}
    for r in res.runs:
        m: dict[str, Any] = {"label": r.label, "variant": r.variant, "message": r.message}
        if r.at_y is not None and r.at_shift is not None:
            m |= {
                "filter_sum": r.at_y.filter_sum,
                "filter_sum_shifted": r.at_shift.filter_sum,
                "rho": r.rho,
                "rho_shifted": r.rho_shift,
                "output": r.at_y.output,
                "euler": r.at_y.euler,
                "filter_change": float(np.abs(r.at_y.filter - r.at_shift.filter).max()),
                "seconds": r.seconds,
                "images": [len(pictures), len(pictures) + 1],
            }
            for which, name, view, rho in (
                ("y", "y", r.at_y, r.rho),
                ("shifted", "a·y + b", r.at_shift, r.rho_shift),
            ):
                caption = f"{r.label} at {name} · sum {view.filter_sum:.4f} · ρ {rho:.2e}"
                pictures.append((signed_map(windows[r.key, which], vmax), caption))
        models[r.key] = m
    d = res.deltas
    delta: dict[str, Any] = {
        "patch": res.patch,
        "n": int(d.size),
        "median": float(np.median(d)),
        "q025": float(np.quantile(d, 0.025)),
        "q975": float(np.quantile(d, 0.975)),
    }
    interval = training_interval(coverage, s.sigma_train) if res.patch == PATCH else None
    if interval is not None:
        inside = float(np.mean((d >= interval[0]) & (d <= interval[1])))
        delta |= {"training_interval": list(interval), "inside": inside}
    summary = {
        "settings": s.to_dict(),
        "pixel": list(res.pixel),
        "crop": dict(zip(("top", "left", "side"), res.box, strict=True)),
        "models": models,
        "delta": delta,
        "notes": [*notes, *res.notes],
    }
    return marked(res.noisy, res.pixel, res.box), pictures, summary, text(summary)


def text(summary: dict[str, Any]) -> str:
    """The page's reading of the numbers, one line per model and one for Δ."""
    s, lines = summary["settings"], []
    for m in summary["models"].values():
        if "rho" not in m:
            lines.append(f"- **{m['label']}**: unavailable ({m['message']})")
            continue
        same = "the same filter" if m["filter_change"] < 1e-6 else (
            f"another filter (weights change by up to {m['filter_change']:.2e})"
        )  # fmt: skip
        lines.append(
            f"- **{m['label']}**: weights sum to {m['filter_sum']:.6f} at y and "
            f"{m['filter_sum_shifted']:.6f} at a·y + b; ρ = {m['rho']:.2e} / "
            f"{m['rho_shifted']:.2e}; the shift gives {same}."
        )
    d = summary["delta"]
    line = (
        f"- **Δ** of this image's {d['n']} patches of {d['patch']}² at σ = {s['sigma']:g}: "
        f"median {d['median']:.1f} (95 % in [{d['q025']:.1f}, {d['q975']:.1f}])"
    )
    if "inside" in d:
        lo, hi = d["training_interval"]
        line += (
            f"; {100 * d['inside']:.0f} % of them lie in the interval training at "
            f"σ_train = {s['sigma_train']} covered ([{lo:.1f}, {hi:.1f}])."
        )
    lines.append(line + ("" if "inside" in d else "."))
    return "\n".join([*lines, *(f"- {n}" for n in summary["notes"])])


def load_coverage(folder: str | Path) -> dict[str, Any] | None:
    """The precomputed Table 3 (``coverage.json`` of ``wne explain --coverage``), None if
    absent or unreadable (logged)."""
    try:
        return json.loads((Path(folder) / "coverage.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("no Δ coverage table in %s: %s", folder, exc)
        return None


def training_interval(
    coverage: dict[str, Any] | None, sigma_train: float
) -> tuple[float, float] | None:
    """``[q0.025, q0.975]`` of Δ at ``sigma_train`` in the table, None if it has no such row."""
    if not coverage or float(sigma_train) not in coverage["sigmas_train"]:
        return None
    i = coverage["sigmas_train"].index(float(sigma_train))
    return float(coverage["lower"][i]), float(coverage["upper"][i])


def coverage_rows(coverage: dict[str, Any] | None) -> tuple[list[str], list[list[Any]]]:
    """Table 3 for the page: headers and one row per σ_train (coverage in %)."""
    if not coverage:
        return ["σ_train"], []
    headers = ["σ_train \\ σ_test", *(f"{t:g}" for t in coverage["sigmas_test"])]
    rows = [
        [f"{st:g}", *(f"{100 * m:.0f}" for m in row)]
        for st, row in zip(coverage["sigmas_train"], coverage["coverage"], strict=True)
    ]
    return headers, rows


def load_collapse(folder: str | Path) -> list[dict[str, Any]]:
    """The precomputed Q-vs-Δ curves (``collapse.csv`` of ``wne explain --collapse``) as
    rows ``{"delta", "q", "curve"}`` (bins with at least 20 patches), [] if absent."""
    try:
        with (Path(folder) / "collapse.csv").open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        log.warning("no Q-vs-Δ curves in %s: %s", folder, exc)
        return []
    return [
        {
            "delta": float(r["delta_center"]),
            "q": float(r["q_mean"]),
            "curve": f"{r['model']} · σ_test {float(r['sigma_test']):g}",
        }
        for r in rows
        if int(r["count"]) >= 20
    ]
