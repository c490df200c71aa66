"""Statistics and output files of :mod:`wne.lab.bench` (JSON, CSV, log-log PNG, tables)."""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CSV_FIELDS",
    "headline_rows",
    "headline_table",
    "ratio_table",
    "summarize_cell",
    "write_csv",
    "write_json",
    "write_plot",
]

logger = logging.getLogger(__name__)

REFERENCE = "plain"

#: Columns of the CSV (every record key except the raw ``times_s`` list).
CSV_FIELDS: tuple[str, ...] = (
    "device",
    "family",
    "variant",
    "arch",
    "wrapped",
    "arch_kwargs",
    "params",
    "mode",
    "dtype",
    "shape",
    "batch",
    "channels",
    "height",
    "width",
    "pixels",
    "repeats",
    "inner",
    "warmup",
    "median_s",
    "q1_s",
    "q3_s",
    "iqr_s",
    "min_s",
    "mean_s",
    "ratio_of_medians",
    "paired_ratio_median",
    "paired_ratio_q1",
    "paired_ratio_q3",
    "peak_mem_bytes",
    "peak_mem_ratio",
)

#: Headline columns: (key, mode, shape or None for the batch shape, label).
_HEADLINE: tuple[tuple[str, str, tuple[int, int, int, int] | None, str], ...] = (
    ("infer_256", "infer", (1, 1, 256, 256), "infer 256²"),
    ("infer_512", "infer", (1, 1, 512, 512), "infer 512²"),
    ("train_batch", "train", None, "fwd+bwd {batch}"),
    ("train_step_batch", "train-step", None, "train step {batch}"),
)


def summarize_cell(
    *,
    family: str,
    mode: str,
    shape: Sequence[int],
    dtype: str,
    device: str,
    times: dict[str, list[float]],
    inner: int,
    warmup: int,
    memory: dict[str, int | None],
    meta: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """Turns one interleaved cell into one record per variant.

    Ratios are to the ``"plain"`` variant: ``ratio_of_medians`` and quantiles of
    the paired per-repeat ratios (repeat ``r`` of a variant over repeat ``r`` of
    plain). Quantiles use numpy's linear interpolation; IQR = q3 − q1.

    Args:
        family: Family name.
        mode: Benchmark mode.
        shape: Input shape ``[B, C, H, W]``.
        dtype: ``"fp32"`` or ``"bf16"``.
        device: Device string.
        times: Variant → per-call seconds, one per repeat (equal lengths).
        inner: Calls per sample.
        warmup: Warm-up rounds run.
        memory: Variant → peak memory increase in bytes (or ``None``).
        meta: Variant → ``arch``, ``wrapped``, ``arch_kwargs``, ``params``.

    Returns:
        The records, in the order of ``times``.

    Raises:
        ValueError: If there is no ``"plain"`` variant or the repeat counts differ.
    """
    if REFERENCE not in times:
        raise ValueError(f"cell has no {REFERENCE!r} variant: {sorted(times)}")
    lengths = {len(v) for v in times.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"variants have different or zero repeat counts: {lengths}")
    ref = np.asarray(times[REFERENCE], dtype=float)
    ref_median = float(np.median(ref))
    ref_mem = memory.get(REFERENCE)
    b, c, h, w = (int(d) for d in shape)
    records = []
    for name, values in times.items():
        t = np.asarray(values, dtype=float)
        q1, med, q3 = (float(v) for v in np.percentile(t, [25, 50, 75]))
        paired = t / ref
        p1, pm, p3 = (float(v) for v in np.percentile(paired, [25, 50, 75]))
        mem = memory.get(name)
        records.append(
            {
                "device": device,
                "family": family,
                "variant": name,
                **meta[name],
                "mode": mode,
                "dtype": dtype,
                "shape": f"{b}x{c}x{h}x{w}",
                "batch": b,
                "channels": c,
                "height": h,
                "width": w,
                "pixels": b * h * w,
                "repeats": len(t),
                "inner": inner,
                "warmup": warmup,
                "median_s": med,
                "q1_s": q1,
                "q3_s": q3,
                "iqr_s": q3 - q1,
                "min_s": float(t.min()),
                "mean_s": float(t.mean()),
                "ratio_of_medians": med / ref_median,
                "paired_ratio_median": pm,
                "paired_ratio_q1": p1,
                "paired_ratio_q3": p3,
                "peak_mem_bytes": mem,
                "peak_mem_ratio": (mem / ref_mem) if mem is not None and ref_mem else None,
                "times_s": [float(v) for v in t],
            }
        )
    return records


def _batch_shape(records: Sequence[dict[str, Any]]) -> str | None:
    shapes = [r["shape"] for r in records if r["mode"] in ("train", "train-step")]
    batched = [s for s in shapes if not s.startswith("1x")]
    return (batched or shapes or [None])[0]


def headline_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's "done when" numbers, one row per family × variant (fp32).

    Columns (``None`` where not run): median seconds and paired / of-medians ratios
    for 256² and 512² inference, ``train`` (fwd + ``out.mean()`` + bwd) and
    ``train-step`` (fwd + MSE + bwd + Adam step) on the training batch shape.

    Args:
        records: Records from :func:`summarize_cell`.

    Returns:
        The rows.
    """
    batch = _batch_shape(records)
    index = {
        (r["family"], r["variant"], r["mode"], r["shape"]): r
        for r in records
        if r["dtype"] == "fp32"
    }
    rows: list[dict[str, Any]] = []
    seen: list[tuple[str, str]] = []
    for r in records:
        key = (r["family"], r["variant"])
        if key not in seen:
            seen.append(key)
    for family, variant in seen:
        row: dict[str, Any] = {"family": family, "variant": variant, "batch_shape": batch}
        for key, mode, shape, _label in _HEADLINE:
            shape_s = "x".join(map(str, shape)) if shape else batch
            rec = index.get((family, variant, mode, shape_s))
            row["params"] = row.get("params") or (rec["params"] if rec else None)
            row[f"{key}_s"] = rec["median_s"] if rec else None
            row[f"{key}_ratio"] = rec["paired_ratio_median"] if rec else None
            row[f"{key}_ratio_of_medians"] = rec["ratio_of_medians"] if rec else None
        rows.append(row)
    return rows


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1e3:.0f}" if value >= 0.1 else f"{value * 1e3:.1f}"


def _ratio(row: dict[str, Any], key: str) -> str:
    if row.get(f"{key}_ratio") is None:
        return "–"
    return f"{row[f'{key}_ratio']:.3f} / {row[f'{key}_ratio_of_medians']:.3f}"


def headline_table(report: dict[str, Any]) -> str:
    """A Markdown table of :func:`headline_rows` (times in ms; ratios to plain as
    "median of paired ratios / ratio of medians").

    Args:
        report: The document returned by :func:`wne.lab.bench.run_models`.

    Returns:
        The table.
    """
    rows = report["headline"]
    batch = rows[0]["batch_shape"] if rows else None
    batch_label = batch.replace("x", "×") if batch else "batch"
    header = ["family", "variant", "params"]
    for _key, _mode, _shape, label in _HEADLINE:
        label = label.format(batch=batch_label)
        header += [f"{label} (ms)", "× plain"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["family"], row["variant"], f"{row['params']:,}" if row["params"] else "–"]
        for key, *_ in _HEADLINE:
            cells += [_ms(row[f"{key}_s"]), _ratio(row, key)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_table(report: dict[str, Any], mode: str = "infer", dtype: str = "fp32") -> str:
    """Markdown tables of one mode across shapes: median ms per variant, then each
    non-plain variant's median paired ratio to plain with its IQR.

    Args:
        report: The document returned by :func:`wne.lab.bench.run_models`.
        mode: The mode to tabulate.
        dtype: The dtype to tabulate.

    Returns:
        The two tables (empty string when the mode was not run).
    """
    rows = [r for r in report["results"] if r["mode"] == mode and r["dtype"] == dtype]
    if not rows:
        return ""
    shapes = [s for _px, s in sorted({(r["pixels"], r["shape"]) for r in rows})]
    keys: list[tuple[str, str]] = []
    for r in rows:
        if (r["family"], r["variant"]) not in keys:
            keys.append((r["family"], r["variant"]))
    index = {(r["family"], r["variant"], r["shape"]): r for r in rows}
    head = "| | " + " | ".join(s.replace("x", "×") for s in shapes) + " |"
    sep = "|---|" + "---|" * len(shapes)
    reps = [sorted({r["repeats"] for r in rows if r["shape"] == s}) for s in shapes]
    times = [f"**{mode} {dtype}: median ms per call**", "", head, sep]
    times.append("| repeats | " + " | ".join("/".join(map(str, n)) for n in reps) + " |")
    ratios = [f"**{mode} {dtype}: time / plain, median of paired ratios [IQR]**", "", head, sep]
    for family, variant in keys:
        recs = [index.get((family, variant, s)) for s in shapes]
        times.append(
            f"| {family} {variant} | " + " | ".join(_ms(r["median_s"]) if r else "–" for r in recs)
            + " |"
        )  # fmt: skip
        if variant != REFERENCE:
            cells = [
                f"{r['paired_ratio_median']:.3f} [{r['paired_ratio_q1']:.2f}–"
                f"{r['paired_ratio_q3']:.2f}]"
                if r
                else "–"
                for r in recs
            ]
            ratios.append(f"| {family} {variant} | " + " | ".join(cells) + " |")
    return "\n".join(times) + "\n\n" + "\n".join(ratios)


def write_json(report: dict[str, Any], path: Path) -> Path:
    """Writes the report as indented JSON.

    Args:
        report: The report.
        path: Target file.

    Returns:
        ``path``.
    """
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_csv(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Writes one CSV row per record (:data:`CSV_FIELDS`; ``arch_kwargs`` as JSON).

    Args:
        records: Records from :func:`summarize_cell`.
        path: Target file.

    Returns:
        ``path``.
    """
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow({**r, "arch_kwargs": json.dumps(r["arch_kwargs"], sort_keys=True)})
    return path


_COLORS = {"dncnn": "tab:blue", "swinir": "tab:orange", "fdncnn": "tab:green"}
_STYLES = {"plain": ("-", "o"), "wne": ("--", "s"), "ne_arch": (":", "^")}


def write_plot(report: dict[str, Any], path: Path) -> Path | None:
    """Log-log plot of time vs pixels (batch-1 inputs) and of the paired ratios.

    One row of two panels per (mode, dtype) with at least two batch-1 sizes: left,
    median seconds per call (IQR bars) against pixels, with a dotted ∝ pixels
    guide; right, the median paired ratio to plain (IQR bars) with lines at 1 and
    1.02. matplotlib is imported here (optional dependency).

    Args:
        report: The document returned by :func:`wne.lab.bench.run_models`.
        path: Target PNG.

    Returns:
        ``path``, or ``None`` when there is nothing to plot or matplotlib is missing.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        logger.warning("matplotlib is not installed; skipping %s", path)
        return None
    records = [r for r in report["results"] if r["batch"] == 1]
    panels = []
    for r in records:
        key = (r["mode"], r["dtype"])
        if key not in panels:
            panels.append(key)
    panels = [
        k for k in panels if len({r["pixels"] for r in records if (r["mode"], r["dtype"]) == k}) > 1
    ]
    if not panels:
        return None
    fig = Figure(figsize=(12, 4.2 * len(panels)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 2, squeeze=False)
    machine = report["machine"]
    where = machine.get("gpu_name") or (
        f"{machine['cpu_model']}, torch threads={machine['torch_threads']}"
    )
    for (mode, dtype), (ax_t, ax_r) in zip(panels, axes, strict=True):
        rows = [r for r in records if (r["mode"], r["dtype"]) == (mode, dtype)]
        lines: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in rows:
            lines.setdefault((r["family"], r["variant"]), []).append(r)
        for (family, variant), pts in lines.items():
            pts.sort(key=lambda r: r["pixels"])
            px = np.array([r["pixels"] for r in pts], dtype=float)
            ls, marker = _STYLES.get(variant, ("-.", "x"))
            color = _COLORS.get(family)
            med = np.array([r["median_s"] for r in pts])
            err = np.array([[m - r["q1_s"], r["q3_s"] - m] for m, r in zip(med, pts, strict=True)])
            ax_t.errorbar(
                px, med, yerr=err.T, ls=ls, marker=marker, color=color, capsize=2,
                label=f"{family} {variant}",
            )  # fmt: skip
            if variant != REFERENCE:
                rm = np.array([r["paired_ratio_median"] for r in pts])
                rerr = np.array(
                    [
                        [m - r["paired_ratio_q1"], r["paired_ratio_q3"] - m]
                        for m, r in zip(rm, pts, strict=True)
                    ]
                )
                ax_r.errorbar(
                    px, rm, yerr=rerr.T, ls=ls, marker=marker, color=color, capsize=2,
                    label=f"{family} {variant} / plain",
                )  # fmt: skip
        all_px = np.array(sorted({r["pixels"] for r in rows}), dtype=float)
        first = min(rows, key=lambda r: (r["pixels"], r["median_s"]))
        ax_t.plot(
            all_px, first["median_s"] * all_px / all_px[0], ":", color="grey", label="∝ pixels"
        )
        ax_t.set(
            xscale="log",
            yscale="log",
            xlabel="image size (batch 1; log scale in pixels)",
            ylabel="seconds per call (median, IQR bars)",
            title=f"{mode}, {dtype} — {where}",
        )
        ax_t.grid(True, which="both", alpha=0.3)
        ax_t.legend(fontsize=7)
        ax_r.axhline(1.0, color="black", lw=0.8)
        ax_r.axhline(1.02, color="grey", lw=0.8, ls="--", label="1.02")
        ax_r.set(
            xscale="log",
            xlabel="image size (batch 1; log scale in pixels)",
            ylabel="time / plain (median of paired ratios, IQR)",
            title=f"{mode}, {dtype}: overhead vs plain",
        )
        ticks = [f"{math.isqrt(int(p))}²" for p in all_px]
        for ax in (ax_t, ax_r):
            ax.set_xticks(all_px, labels=ticks)
            ax.set_xticks([], minor=True)
        ax_r.grid(True, which="both", alpha=0.3)
        ax_r.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    return path
