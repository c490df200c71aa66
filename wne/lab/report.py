"""Reports of an evaluation run: ``psnr.csv``, ``defect.csv``, ``summary.json``, the plots,
the command line's table, and the headline numbers written back into checkpoints.

A Gaussian run's summary has per model the matched σ, σ_test 5 and ≈ 50, the grid mean and
the NE defect, with the paper's numbers beside (:mod:`wne.lab.paper`, by catalog family);
another noise type's summary has every level per model (input PSNR, equivalent σ, PSNR, SSIM).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wne import __version__, checkpoints, degrade
from wne.lab import paper
from wne.lab.protocol import DEFECT_COLUMNS, NOISE_COLUMNS, PSNR_COLUMNS, EvalModel, RunResult

log = logging.getLogger(__name__)


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.10g}" if math.isfinite(v) else str(v)
    return v


def write_csv(
    path: Path,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    fmt: Callable[[Any], Any] = _fmt,
) -> None:
    """Writes ``rows`` as CSV with the given columns (a missing value: ``fmt(None)``)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        w.writerows({c: fmt(r.get(c)) for c in columns} for r in rows)


def write_json(path: Path, data: Any) -> None:
    """Writes ``data`` as indented JSON with a final newline."""
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _level_name(noise: str) -> str:
    return degrade.noise_model(noise).level.name


def _nearest(values: Sequence[float], target: float) -> int:
    return min(range(len(values)), key=lambda i: abs(values[i] - target))


def _kind(m: EvalModel, keys: Sequence[str] = ("arch", "wrapper", "sigma_train", "paper_column")):
    return {k: getattr(m, k) for k in keys}


def summarize(models: Sequence[EvalModel], result: RunResult) -> dict[str, Any]:
    """Per-model numbers of a run, ``{"models": {key: {...}}}``: Gaussian runs ``matched``
    (σ_test = σ_train, or the nearest grid point), ``sigma5`` and ``sigma50`` (grid points
    nearest 5 and 50), ``grid_mean`` (over σ_test ≠ σ_train, as the paper's derived grid
    means), ``defect`` (mean and max over the sweep), ``paper``; other noise types ``levels``."""
    out: dict[str, Any] = {}
    name = _level_name(result.noise)
    for m in models:
        rows = [r for r in result.psnr_rows if r["model"] == m.key]
        if result.noise != "gaussian":
            keys = ("input_psnr", "equivalent_sigma", "psnr", "ssim")
            levels = [{name: r["level"], **{k: r[k] for k in keys}} for r in rows]
            out[m.key] = _kind(m, ("arch", "wrapper", "sigma_train")) | {"levels": levels}
            continue

        def at(target: float, rows: list[dict[str, Any]] = rows) -> dict[str, float]:
            r = rows[_nearest(result.sigmas, target)]
            return {"sigma": r["sigma_test"], **{k: r[k] for k in ("input_psnr", "psnr", "ssim")}}

        off = [r for r in rows if abs(r["sigma_test"] - m.sigma_train) > 1e-6]
        drows = [r for r in result.defect_rows if r["model"] == m.key]
        out[m.key] = {
            **_kind(m),
            "matched": at(m.sigma_train),
            "sigma5": at(5.0),
            "sigma50": at(50.0),
            "grid_mean": {
                "psnr": float(np.mean([r["psnr"] for r in off])) if off else None,
                "ssim": float(np.mean([r["ssim"] for r in off])) if off else None,
                "n_sigmas": len(off),
            },
            "defect": {
                "sigma": m.sigma_train,
                "mean": float(np.mean([r["defect_mean"] for r in drows])),
                "max": float(np.max([r["defect_max"] for r in drows])),
            },
            "paper": _paper_numbers(m),
        }
    return {"models": out}


def _paper_numbers(m: EvalModel) -> dict[str, Any] | None:
    col = m.paper_column
    if col is None or m.sigma_train not in paper.SIGMA_TRAINS:
        return None
    s = int(m.sigma_train)
    at = {k: paper.value_at(s, col, v) for k, v in (("sigma5", 5.0), ("sigma50", 50.0))}
    return {
        "column": col,
        "matched": paper.MATCHED[s][col],
        **{k: {"sigma": v[0], "psnr": v[1]} for k, v in at.items()},
        "grid_mean": paper.GRID_MEAN[s][col],
    }


def _draw_plots(
    out: Path,
    models: Sequence[EvalModel],
    result: RunResult,
    run: Mapping[str, Any],
    paper_overlay: bool | None,
) -> tuple[dict[str, str], bool]:
    """Draws ``mismatch.png`` and ``mismatch_ssim.png``; returns the file per metric and
    whether the paper's curves were drawn."""
    from wne.lab.plots import Curve, mismatch_plot

    gaussian, levels = result.noise == "gaussian", result.sigmas
    trains = sorted({m.sigma_train for m in models})
    one = trains[0] if len(trains) == 1 and trains[0] in paper.SIGMA_TRAINS else None
    if paper_overlay and (one is None or not gaussian):
        log.warning("no paper overlay: it has Gaussian curves for one σ_train in 10, 25, 50")
    overlay = one is not None and gaussian and paper_overlay is not False
    in_at = {r["level"]: r["input_psnr"] for r in result.psnr_rows}
    markers = []
    for s in trains if _level_name(result.noise) == "sigma" else ():
        near = levels[_nearest(levels, s)]
        if gaussian or abs(near - s) < 1e-6:
            markers.append((s, in_at[near]))
    title = f"σ_train = {', '.join(f'{s:g}' for s in trains)}, {len(result.images)} images"
    title = title if gaussian else f"{_noise_description(run)}; {title}"
    plots = {}
    for metric, name in (("psnr", "mismatch.png"), ("ssim", "mismatch_ssim.png")):
        curves = []
        for m in models:
            mine = [r for r in result.psnr_rows if r["model"] == m.key]
            xy = [r["input_psnr"] for r in mine], [r[metric] for r in mine]
            curves.append(Curve(m.key, *xy, m.paper_column, m.arch, m.wrapper))
        paper_sigma = one if overlay and metric == "psnr" else None
        kw = {"sigma_train_markers": markers, "paper_sigma_train": paper_sigma, "title": title}
        mismatch_plot(curves, out / name, metric=metric, **kw)
        plots[metric] = name
    return plots, overlay


def _noise_description(run: Mapping[str, Any]) -> str:
    if run["noise"] == "lowlight":
        return f"low light (Poisson–Gaussian, read noise {run['read_noise']:g} e⁻)"
    if run["noise"] == "jpeg":
        sigma = run["jpeg_sigma"]
        return (f"Gaussian σ = {sigma:g} + " if sigma > 0 else "clean + ") + "JPEG"
    return f"{run['noise']} noise"


def write_outputs(
    models: Sequence[EvalModel],
    result: RunResult,
    out: str | Path,
    *,
    paper_overlay: bool | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes ``psnr.csv``, ``defect.csv`` (Gaussian runs), ``summary.json`` and the plots
    into ``out``; returns the summary. ``paper_overlay``: draw the paper's curves (``None``:
    when the run is Gaussian and its models share one σ_train in 10/25/50); ``meta``: extra
    entries of ``summary["run"]``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    p, gaussian = result.protocol, result.noise == "gaussian"
    run: dict[str, Any] = dict(meta or {})
    if not gaussian:
        run |= {"noise": p.noise, "level_name": _level_name(p.noise), "levels": result.sigmas}
        run |= {"read_noise": p.read_noise if p.noise == "lowlight" else None}
        run |= {"jpeg_sigma": p.jpeg_sigma if p.noise == "jpeg" else None}
    run |= {"images": result.images, "n_images": len(result.images)}
    run |= {"draws": p.draws, "seed": p.seed}
    if gaussian:
        run |= {"sigmas": result.sigmas, "defect_images": result.defect_images}
        write_csv(out / "defect.csv", DEFECT_COLUMNS, result.defect_rows)
    write_csv(out / "psnr.csv", PSNR_COLUMNS if gaussian else NOISE_COLUMNS, result.psnr_rows)
    plots, overlay = _draw_plots(out, models, result, run, paper_overlay)
    run |= {"paper_overlay": overlay} if gaussian else {}
    run |= {"plots": plots, "wne_version": __version__, "torch_version": torch.__version__}
    summary = {"run": run, **summarize(models, result)}
    write_json(out / "summary.json", summary)
    return summary


def write_metrics(models: Sequence[EvalModel], summary: dict[str, Any], dataset: str) -> None:
    """Stores each local model's headline numbers (σ_train, PSNR/SSIM at the matched σ, PSNR at
    σ 5 and ≈ 50, the grid mean, the largest NE defect, the protocol) in its ``config.json``
    under ``metrics.<dataset>`` (models from the Hub are skipped, with a log line)."""
    run = summary["run"]
    for m in models:
        if m.folder is None:
            log.info("%s came from the Hub: metrics not written", m.key)
            continue
        s, grid_mean = summary["models"][m.key], summary["models"][m.key]["grid_mean"]["psnr"]
        headline = {
            "sigma_train": s["sigma_train"],
            "psnr_matched": round(s["matched"]["psnr"], 4),
            "ssim_matched": round(s["matched"]["ssim"], 5),
            "psnr_sigma5": round(s["sigma5"]["psnr"], 4),
            "sigma50_at": round(s["sigma50"]["sigma"], 4),
            "psnr_sigma50": round(s["sigma50"]["psnr"], 4),
            "psnr_grid_mean": round(grid_mean, 4) if grid_mean is not None else None,
            "ne_defect_max": s["defect"]["max"],
            **{k: run[k] for k in ("n_images", "draws", "seed")},
        }
        checkpoints.update_config(m.folder, metrics={dataset: headline})
        log.info("wrote %s metrics into %s", dataset, m.folder / checkpoints.CONFIG_NAME)


def format_summary(summary: dict[str, Any], out: Path) -> str:
    """The command line's table: per model the headline numbers and the paper's (Gaussian
    runs), or the output PSNR per level (other noise types)."""
    run = summary["run"]
    if run.get("noise", "gaussian") != "gaussian":
        first = next(iter(summary["models"].values()))["levels"]
        lines = [
            f"\nResults in {out} ({run['noise']}, output PSNR in dB)",
            f"{run['level_name']:<24} " + " ".join(f"{v:>7g}" for v in run["levels"]),
            f"{'input PSNR':<24} " + " ".join(f"{e['input_psnr']:>7.2f}" for e in first),
            f"{'equivalent σ':<24} " + " ".join(f"{e['equivalent_sigma']:>7.2f}" for e in first),
        ]
        for key, s in summary["models"].items():
            lines.append(f"{key:<24} " + " ".join(f"{e['psnr']:>7.2f}" for e in s["levels"]))
        return "\n".join(lines)
    lines = [
        f"\nResults in {out}",
        f"{'model':<24} {'σ_tr':>5} {'matched':>8} {'σ5':>7} {'σ≈50':>7} {'mean':>7} "
        f"{'defect max':>10}  paper (matched/σ5/σ≈50)",
    ]
    for key, s in summary["models"].items():
        p = s["paper"]
        vals = (p["matched"], p["sigma5"]["psnr"], p["sigma50"]["psnr"]) if p else ()
        ptxt = "/".join(f"{v:.2f}" for v in vals) or "-"
        gm = s["grid_mean"]["psnr"]
        lines.append(
            f"{key:<24} {s['sigma_train']:>5g} {s['matched']['psnr']:>8.2f} "
            f"{s['sigma5']['psnr']:>7.2f} {s['sigma50']['psnr']:>7.2f} "
            f"{gm if gm is not None else float('nan'):>7.2f} {s['defect']['max']:>10.2e}  {ptxt}"
        )
    return "\n".join(lines)
