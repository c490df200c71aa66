"""Statistics and outputs of :mod:`wne.lab.bench`: JSON, CSV, a log-log PNG, Markdown tables."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["headline_table", "ratio_table", "summarize_cell", "write_outputs"]

REFERENCE = "plain"
_HEADLINE = (  # key, mode, shape (None: the training batch), label
    ("infer_256", "infer", "1x1x256x256", "infer 256²"),
    ("infer_512", "infer", "1x1x512x512", "infer 512²"),
    ("train_batch", "train", None, "fwd+bwd {batch}"),
    ("train_step_batch", "train-step", None, "train step {batch}"),
)


def summarize_cell(
    cell: dict[str, Any],
    times: dict[str, list[float]],
    inner: dict[str, int],
    memory: dict[str, int | None],
    meta: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """One record per variant of an interleaved cell (``family``, ``mode``, ``shape``, ``dtype``,
    ``device``, ``warmup``) from each variant's seconds per call (one per repeat), calls per
    block, peak memory and ``meta`` (``arch``, ``wrapped``, ``arch_kwargs``, ``params``).
    Ratios are to ``"plain"``: the ratio of medians and the quartiles of the paired ratios
    (repeat ``r`` over repeat ``r`` of plain), with numpy's linear interpolation. ValueError
    without a ``"plain"`` variant or with unequal repeat counts."""
    if REFERENCE not in times:
        raise ValueError(f"cell has no {REFERENCE!r} variant: {sorted(times)}")
    if len({len(v) for v in times.values()} - {0}) != 1 or not all(times.values()):
        raise ValueError("variants have different or zero repeat counts")
    ref = np.asarray(times[REFERENCE], dtype=float)
    b, c, h, w = (int(d) for d in cell["shape"])
    records = []
    for name, values in times.items():
        t = np.asarray(values, dtype=float)
        q1, med, q3 = np.percentile(t, [25, 50, 75]).tolist()
        p1, pm, p3 = np.percentile(t / ref, [25, 50, 75]).tolist()
        mem, ref_mem = memory.get(name), memory.get(REFERENCE)
        records.append({
            **{k: cell[k] for k in ("device", "family")}, "variant": name, **meta[name],
            **{k: cell[k] for k in ("mode", "dtype")}, "shape": f"{b}x{c}x{h}x{w}", "batch": b,
            "channels": c, "height": h, "width": w, "pixels": b * h * w, "repeats": len(t),
            "inner": inner[name], "warmup": cell["warmup"], "median_s": med, "q1_s": q1,
            "q3_s": q3, "iqr_s": q3 - q1, "min_s": float(t.min()), "mean_s": float(t.mean()),
            "ratio_of_medians": med / float(np.median(ref)), "paired_ratio_median": pm,
            "paired_ratio_q1": p1, "paired_ratio_q3": p3, "peak_mem_bytes": mem,
            "peak_mem_ratio": mem / ref_mem if mem is not None and ref_mem else None,
            "times_s": t.tolist(),
        })  # fmt: skip
    return records


def _pairs(records: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["family"], r["variant"]) for r in records))


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1e3:.{0 if value >= 0.1 else 1}f}"


def headline_table(records: Sequence[dict[str, Any]]) -> str:
    """A Markdown table per family × variant (fp32): ms and × plain ("median of paired ratios /
    ratio of medians") of 256² and 512² inference and of ``train`` and ``train-step`` on the
    training batch (the first batch > 1 of the train modes); "–" where not run."""
    shapes = [r["shape"] for r in records if r["mode"] != "infer"]
    batch = ([s for s in shapes if not s.startswith("1x")] or shapes or ["batch"])[0]
    index = {(r["family"], r["variant"], r["mode"], r["shape"]): r for r in records
             if r["dtype"] == "fp32"}  # fmt: skip
    head = ["family", "variant", "params"]
    for *_, label in _HEADLINE:
        head += [f"{label.format(batch=batch.replace('x', '×'))} (ms)", "× plain"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for family, variant in _pairs(records):
        recs = [
            index.get((family, variant, mode, shape or batch)) for _, mode, shape, _ in _HEADLINE
        ]
        params = next((r["params"] for r in recs if r), None)
        cells = [family, variant, f"{params:,}" if params else "–"]
        for r in recs:
            ratios = f"{r['paired_ratio_median']:.3f} / {r['ratio_of_medians']:.3f}" if r else "–"
            cells += [_ms(r["median_s"] if r else None), ratios]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_table(doc: dict[str, Any], mode: str = "infer", dtype: str = "fp32") -> str:
    """A Markdown table of one mode across shapes: each variant's median paired ratio to plain
    with its IQR (empty when the mode was not run)."""
    rows = [r for r in doc["results"] if r["mode"] == mode and r["dtype"] == dtype]
    shapes = [s for _, s in sorted({(r["pixels"], r["shape"]) for r in rows})]
    index = {(r["family"], r["variant"], r["shape"]): r for r in rows}
    lines = [
        f"**{mode} {dtype}: time / plain, median of paired ratios [IQR]**",
        "| | " + " | ".join(s.replace("x", "×") for s in shapes) + " |",
        "|---|" + "---|" * len(shapes),
    ]
    for family, variant in _pairs(rows):
        recs = [index.get((family, variant, s)) for s in shapes]
        cells = [f"{r['paired_ratio_median']:.3f} [{r['paired_ratio_q1']:.2f}–"
                 f"{r['paired_ratio_q3']:.2f}]" if r else "–" for r in recs]  # fmt: skip
        if variant != REFERENCE:
            lines.append(f"| {family} {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if rows else ""


def write_outputs(doc: dict[str, Any], stem: Path, plot: bool = True) -> list[Path]:
    """Writes ``stem.json`` (everything), ``stem.csv`` (a record per row, without the raw times;
    ``arch_kwargs`` as JSON) and, with ``plot``, ``stem.png`` (:func:`write_plot`)."""
    paths = [stem.with_suffix(".json"), stem.with_suffix(".csv")]
    paths[0].write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with paths[1].open("w", newline="", encoding="utf-8") as fh:
        fields = [k for k in doc["results"][0] if k != "times_s"]
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in doc["results"]:
            writer.writerow({**r, "arch_kwargs": json.dumps(r["arch_kwargs"], sort_keys=True)})
    if plot and write_plot(doc, stem.with_suffix(".png")):
        paths.append(stem.with_suffix(".png"))
    return paths


_COLORS = {"dncnn": "tab:blue", "swinir": "tab:orange", "fdncnn": "tab:green"}
_STYLES = {"plain": ("-", "o"), "wne": ("--", "s"), "ne_arch": (":", "^")}
_KEYS = (
    ("median_s", "q1_s", "q3_s"),
    ("paired_ratio_median", "paired_ratio_q1", "paired_ratio_q3"),
)


def write_plot(doc: dict[str, Any], path: Path) -> bool:
    """Log-log plot per (mode, dtype) with two or more batch-1 sizes: left, median seconds per
    call (IQR bars) against pixels with a ∝ pixels guide; right, the median paired ratio to
    plain (IQR bars) with lines at 1 and 1.02. Returns whether a PNG was written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in sorted((r for r in doc["results"] if r["batch"] == 1), key=lambda r: r["pixels"]):
        groups.setdefault((r["mode"], r["dtype"]), []).append(r)
    panels = {k: rows for k, rows in groups.items() if len({r["pixels"] for r in rows}) > 1}
    if not panels:
        return False
    fig = Figure(figsize=(12, 4.2 * len(panels)), layout="constrained")
    FigureCanvasAgg(fig)
    where = doc["machine"].get("gpu_name") or doc["machine"]["cpu_model"]
    axes = fig.subplots(len(panels), 2, squeeze=False)
    for ((mode, dtype), rows), (ax_t, ax_r) in zip(panels.items(), axes, strict=True):
        for family, variant in _pairs(rows):
            pts = [r for r in rows if (r["family"], r["variant"]) == (family, variant)]
            px = [r["pixels"] for r in pts]
            ls, marker = _STYLES.get(variant, ("-.", "x"))
            style = {"ls": ls, "marker": marker, "color": _COLORS.get(family), "capsize": 2}
            for ax, (key, lo, hi) in zip((ax_t, ax_r), _KEYS, strict=True):
                if ax is ax_t or variant != REFERENCE:
                    med = np.array([r[key] for r in pts])
                    err = [med - [r[lo] for r in pts], [r[hi] for r in pts] - med]
                    ax.errorbar(px, med, yerr=err, label=f"{family} {variant}", **style)
        all_px = np.array(sorted({r["pixels"] for r in rows}), dtype=float)
        first = min(rows, key=lambda r: (r["pixels"], r["median_s"]))["median_s"]
        ax_t.plot(all_px, first * all_px / all_px[0], ":", color="grey", label="∝ pixels")
        ax_t.set(yscale="log", ylabel="seconds per call (median, IQR)",
                 title=f"{mode}, {dtype}: {where}")  # fmt: skip
        ax_r.axhline(1.0, color="black", lw=0.8)
        ax_r.axhline(1.02, color="grey", lw=0.8, ls="--", label="1.02")
        ax_r.set(ylabel="time / plain (median of paired ratios, IQR)", title="overhead vs plain")
        for ax in (ax_t, ax_r):
            ax.set(xscale="log", xlabel="image size (batch 1, log pixels)")
            ax.set_xticks(all_px, labels=[f"{math.isqrt(int(p))}²" for p in all_px])
            ax.set_xticks([], minor=True)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    return True
