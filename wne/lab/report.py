"""Reports of an evaluation run: summaries, files, the paper beside, metrics in checkpoints.

:func:`summarize` reduces the rows of :func:`wne.lab.protocol.evaluate` to each
model's headline numbers (matched σ, σ_test 5 and ≈ 50, grid mean, NE defect) with
the paper's numbers beside (:mod:`wne.lab.paper`, matched by the model's catalog
family, never by its key); :func:`write_outputs` writes ``psnr.csv``,
``defect.csv``, ``summary.json`` and the mismatch figures; :func:`write_metrics`
stores the headline numbers in each local checkpoint's ``config.json``
(:func:`headline_metrics`); :func:`rename_models` copies a run's folder under new model
keys;
:func:`format_summary` is the command line's table. A run under another noise type
(uniform, Laplace, Rayleigh, low light, JPEG) gets its own files
(:func:`write_outputs` dispatches to them): ``psnr.csv`` with :data:`NOISE_COLUMNS`,
no defect sweep, ``summary.json`` with every level per model, and the mismatch plots.
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

from wne import __version__, checkpoints
from wne.lab import paper
from wne.lab.protocol import (
    DEFECT_COLUMNS,
    NOISE_COLUMNS,
    PSNR_COLUMNS,
    EvalModel,
    RunResult,
    level_name,
)

__all__ = [
    "format_noise_summary",
    "format_summary",
    "headline_metrics",
    "rename_models",
    "summarize",
    "summarize_noise",
    "write_metrics",
    "write_outputs",
]

log = logging.getLogger(__name__)


def _nearest(sigmas: Sequence[float], target: float) -> int:
    return min(range(len(sigmas)), key=lambda i: abs(sigmas[i] - target))


def summarize(models: Sequence[EvalModel], result: RunResult) -> dict[str, Any]:
    """Per-model headline numbers (and the paper's beside them, when it has the model).

    Per model: ``matched`` (σ_test = σ_train, or the nearest grid point), ``sigma5`` and
    ``sigma50`` (grid points nearest 5 and 50; the paper grid has 53.22, not 50, unless
    σ_train = 50), ``grid_mean`` (mean over σ_test ≠ σ_train, as the paper's derived
    grid means), ``defect`` (mean and max over the (a, b) sweep and images).

    Args:
        models: The evaluated models.
        result: Their measurements.

    Returns:
        ``{"models": {key: {...}}}``.
    """
    out: dict[str, Any] = {}
    sig = result.sigmas
    for m in models:
        rows = [r for r in result.psnr_rows if r["model"] == m.key]
        drows = [r for r in result.defect_rows if r["model"] == m.key]

        def at(target: float, rows: list[dict[str, Any]] = rows) -> dict[str, float]:
            r = rows[_nearest(sig, target)]
            return {
                "sigma": r["sigma_test"],
                "input_psnr": r["input_psnr"],
                "psnr": r["psnr"],
                "ssim": r["ssim"],
            }

        off = [r for r in rows if abs(r["sigma_test"] - m.sigma_train) > 1e-6]
        entry: dict[str, Any] = {
            "arch": m.arch,
            "wrapper": m.wrapper,
            "sigma_train": m.sigma_train,
            "paper_column": m.paper_column,
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
        out[m.key] = entry
    return {"models": out}


def _paper_numbers(m: EvalModel) -> dict[str, Any] | None:
    col = m.paper_column
    if col is None or m.sigma_train not in paper.SIGMA_TRAINS:
        return None
    s = int(m.sigma_train)
    s5, p5 = paper.value_at(s, col, 5.0)
    s50, p50 = paper.value_at(s, col, 50.0)
    return {
        "column": col,
        "matched": paper.MATCHED[s][col],
        "sigma5": {"sigma": s5, "psnr": p5},
        "sigma50": {"sigma": s50, "psnr": p50},
        "grid_mean": paper.GRID_MEAN[s][col],
    }


# --------------------------------------------------------------------------- writing


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.10g}" if math.isfinite(v) else str(v)
    return v


def write_csv(
    path: Path,
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
    fmt: Callable[[Any], Any] = _fmt,
) -> None:
    """Writes ``rows`` as CSV with the given columns (a missing value: ``fmt(None)``)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: fmt(r.get(c)) for c in columns})


def _kinds(models: Sequence[EvalModel]) -> dict[str, dict[str, Any]]:
    """Model key → what its curve needs: ``sigma_train``, ``arch``, ``wrapper``,
    ``paper_column``."""
    return {
        m.key: {
            "sigma_train": m.sigma_train,
            "arch": m.arch,
            "wrapper": m.wrapper,
            "paper_column": m.paper_column,
        }
        for m in models
    }


def _curves(
    rows: Sequence[dict[str, Any]], kinds: dict[str, dict[str, Any]], metric: str
) -> list[Any]:
    """One curve per model of ``kinds`` (key → ``arch``, ``wrapper``, ``paper_column``)."""
    from wne.lab.plots import Curve

    curves = []
    for key, kind in kinds.items():
        mine = [r for r in rows if r["model"] == key]
        curves.append(
            Curve(
                label=key,
                input_psnr=[float(r["input_psnr"]) for r in mine],
                output=[float(r[metric]) for r in mine],
                paper_column=kind.get("paper_column"),
                arch=kind.get("arch", ""),
                wrapper=kind.get("wrapper", "none"),
            )
        )
    return curves


def _draw_plots(
    out: Path,
    rows: Sequence[dict[str, Any]],
    kinds: dict[str, dict[str, Any]],
    sigmas: Sequence[float],
    n_images: int,
    paper_overlay: bool | None,
) -> tuple[dict[str, str], bool]:
    """Draws ``mismatch.png`` and ``mismatch_ssim.png`` from the PSNR rows.

    Args:
        out: Output folder.
        rows: ``psnr.csv``'s rows.
        kinds: Model key → ``sigma_train``, ``arch``, ``wrapper``, ``paper_column``.
        sigmas: The σ_test grid.
        n_images: Images evaluated (for the title).
        paper_overlay: Draw the paper's curves (``None``: when all models share one
            σ_train in 10/25/50).

    Returns:
        The plot file per metric, and whether the paper's curves were drawn.
    """
    from wne.lab.plots import mismatch_plot

    trains = sorted({float(k["sigma_train"]) for k in kinds.values()})
    overlay_sigma = trains[0] if len(trains) == 1 and trains[0] in paper.SIGMA_TRAINS else None
    if paper_overlay is None:
        paper_overlay = overlay_sigma is not None
    elif paper_overlay and overlay_sigma is None:
        log.warning(
            "no paper overlay: the paper publishes curves for one σ_train in %s, run has %s",
            paper.SIGMA_TRAINS,
            trains,
        )
        paper_overlay = False
    in_at = {float(r["sigma_test"]): float(r["input_psnr"]) for r in rows}
    markers = [(s, in_at[float(sigmas[_nearest(sigmas, s)])]) for s in trains]
    title = f"σ_train = {', '.join(f'{s:g}' for s in trains)}, {n_images} images"
    plots = {}
    for metric, name in (("psnr", "mismatch.png"), ("ssim", "mismatch_ssim.png")):
        mismatch_plot(
            _curves(rows, kinds, metric),
            out / name,
            sigma_train_markers=markers,
            paper_sigma_train=overlay_sigma if (paper_overlay and metric == "psnr") else None,
            metric=metric,
            title=title,
        )
        plots[metric] = name
    return plots, bool(paper_overlay)


def write_outputs(
    models: Sequence[EvalModel],
    result: RunResult,
    out: str | Path,
    *,
    paper_overlay: bool | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes ``psnr.csv``, ``defect.csv``, ``summary.json`` and the plots.

    Args:
        models: The evaluated models.
        result: Their measurements.
        out: Output folder (created).
        paper_overlay: Draw the paper's curves (``None``: when all models share one
            σ_train in 10/25/50).
        meta: Extra run information stored under ``summary["run"]``.

    Returns:
        The summary written to ``summary.json``.
    """
    if result.noise != "gaussian":
        return _write_noise_outputs(models, result, out, meta=meta)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "psnr.csv", PSNR_COLUMNS, result.psnr_rows)
    write_csv(out / "defect.csv", DEFECT_COLUMNS, result.defect_rows)
    plots, paper_overlay = _draw_plots(
        out, result.psnr_rows, _kinds(models), result.sigmas, len(result.images), paper_overlay
    )

    summary = {
        "run": {
            **(meta or {}),
            "images": result.images,
            "n_images": len(result.images),
            "draws": result.draws,
            "seed": result.seed,
            "sigmas": result.sigmas,
            "defect_images": result.defect_images,
            "paper_overlay": paper_overlay,
            "plots": plots,
            "wne_version": __version__,
            "torch_version": torch.__version__,
        },
        **summarize(models, result),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def rename_models(src: str | Path, dst: str | Path, names: Mapping[str, str]) -> dict[str, Any]:
    """Copies a Gaussian evaluation folder with models renamed, and draws its plots again.

    The GPU run book evaluates its checkpoints under its own keys; when they join the
    catalog under other keys, their results follow them with this. The numbers are
    copied as written (the CSVs keep their text), only the model ids change; the plots'
    legends (the keys) are redrawn from ``psnr.csv``.

    Args:
        src: Folder with ``psnr.csv``, ``defect.csv`` and ``summary.json``.
        dst: Folder to write (created; may be ``src``).
        names: Old key → new key (models not in it keep theirs).

    Returns:
        The new summary (``run.renamed`` records new key → old key).

    Raises:
        ValueError: For a run under another noise type than Gaussian.
    """
    src, dst = Path(src), Path(dst)
    summary = json.loads((src / "summary.json").read_text(encoding="utf-8"))
    run = summary["run"]
    if run.get("noise", "gaussian") != "gaussian":
        raise ValueError(f"{src}: only Gaussian evaluation folders can be renamed")
    rows = {
        name: [{**r, "model": names.get(r["model"], r["model"])} for r in _read_csv(src / name)]
        for name in ("psnr.csv", "defect.csv")
    }
    dst.mkdir(parents=True, exist_ok=True)
    write_csv(dst / "psnr.csv", PSNR_COLUMNS, rows["psnr.csv"])
    write_csv(dst / "defect.csv", DEFECT_COLUMNS, rows["defect.csv"])
    summary["models"] = {names.get(k, k): v for k, v in summary["models"].items()}
    run["renamed"] = {**run.get("renamed", {}), **{new: old for old, new in names.items()}}
    run["plots"], _ = _draw_plots(
        dst,
        rows["psnr.csv"],
        summary["models"],
        run["sigmas"],
        run["n_images"],
        run["paper_overlay"],
    )
    (dst / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def write_metrics(models: Sequence[EvalModel], summary: dict[str, Any], dataset: str) -> None:
    """Stores each local model's headline numbers in its ``config.json`` metrics.

    Models loaded from the Hub are skipped (logged).

    Args:
        models: The evaluated models.
        summary: What :func:`write_outputs` returned.
        dataset: Name of the evaluation set (the metrics key, e.g. ``"set12"``).
    """
    for m in models:
        if m.folder is None:
            log.info("%s came from the Hub: metrics not written", m.key)
            continue
        metrics = {dataset: headline_metrics(summary, m.key)}
        checkpoints.update_config(m.folder, metrics=metrics)
        log.info("wrote %s metrics into %s", dataset, m.folder / checkpoints.CONFIG_NAME)


def headline_metrics(summary: dict[str, Any], key: str) -> dict[str, Any]:
    """One model's headline numbers as stored in its ``config.json`` (``metrics.<dataset>``).

    Args:
        summary: A run's ``summary.json`` (what :func:`write_outputs` returned).
        key: The model's key in it.

    Returns:
        σ_train, PSNR/SSIM at the matched σ, PSNR at σ 5 and ≈ 50, the grid mean, the
        largest NE defect, and the protocol (images, draws, seed).
    """
    run, s = summary["run"], summary["models"][key]
    grid_mean = s["grid_mean"]["psnr"]
    return {
        "sigma_train": s["sigma_train"],
        "psnr_matched": round(s["matched"]["psnr"], 4),
        "ssim_matched": round(s["matched"]["ssim"], 5),
        "psnr_sigma5": round(s["sigma5"]["psnr"], 4),
        "sigma50_at": round(s["sigma50"]["sigma"], 4),
        "psnr_sigma50": round(s["sigma50"]["psnr"], 4),
        "psnr_grid_mean": round(grid_mean, 4) if grid_mean is not None else None,
        "ne_defect_max": s["defect"]["max"],
        "n_images": run["n_images"],
        "draws": run["draws"],
        "seed": run["seed"],
    }


def format_summary(summary: dict[str, Any], out: Path) -> str:
    """The command line's table of a run's headline numbers (and the paper's).

    Args:
        summary: What :func:`write_outputs` returned.
        out: Where the files were written (named in the first line).

    Returns:
        The table, one line per model.
    """
    lines = [
        f"\nResults in {out}",
        f"{'model':<24} {'σ_tr':>5} {'matched':>8} {'σ5':>7} {'σ≈50':>7} {'mean':>7} "
        f"{'defect max':>10}  paper (matched/σ5/σ≈50)",
    ]
    for key, s in summary["models"].items():
        p = s["paper"]
        ptxt = (
            f"{p['matched']:.2f}/{p['sigma5']['psnr']:.2f}/{p['sigma50']['psnr']:.2f}" if p else "-"
        )
        gm = s["grid_mean"]["psnr"]
        lines.append(
            f"{key:<24} {s['sigma_train']:>5g} {s['matched']['psnr']:>8.2f} "
            f"{s['sigma5']['psnr']:>7.2f} {s['sigma50']['psnr']:>7.2f} "
            f"{gm if gm is not None else float('nan'):>7.2f} {s['defect']['max']:>10.2e}  {ptxt}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- other noise types


def _noise_description(result: RunResult) -> str:
    if result.noise == "lowlight":
        return f"low light (Poisson–Gaussian, read noise {result.read_noise:g} e⁻)"
    if result.noise == "jpeg":
        base = f"Gaussian σ = {result.jpeg_sigma:g} + " if result.jpeg_sigma > 0 else "clean + "
        return base + "JPEG"
    return f"{result.noise} noise"


def summarize_noise(models: Sequence[EvalModel], result: RunResult) -> dict[str, Any]:
    """Per model and level of a non-Gaussian run: input PSNR, equivalent σ, PSNR, SSIM.

    Args:
        models: The evaluated models.
        result: Their measurements.

    Returns:
        ``{"models": {key: {"arch", "wrapper", "sigma_train", "levels": [...]}}}``.
    """
    name = level_name(result.noise)
    out: dict[str, Any] = {}
    for m in models:
        rows = [r for r in result.psnr_rows if r["model"] == m.key]
        out[m.key] = {
            "arch": m.arch,
            "wrapper": m.wrapper,
            "sigma_train": m.sigma_train,
            "levels": [
                {
                    name: r["level"],
                    "input_psnr": r["input_psnr"],
                    "equivalent_sigma": r["equivalent_sigma"],
                    "psnr": r["psnr"],
                    "ssim": r["ssim"],
                }
                for r in rows
            ],
        }
    return {"models": out}


def _write_noise_outputs(
    models: Sequence[EvalModel],
    result: RunResult,
    out: str | Path,
    *,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from wne.lab.plots import mismatch_plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "psnr.csv", NOISE_COLUMNS, result.psnr_rows)
    name = level_name(result.noise)
    markers: list[tuple[float, float]] = []
    if name == "sigma":
        in_at = {r["level"]: r["input_psnr"] for r in result.psnr_rows}
        for s in sorted({m.sigma_train for m in models}):
            near = result.sigmas[_nearest(result.sigmas, s)]
            if abs(near - s) < 1e-6:
                markers.append((s, in_at[near]))
    trains = ", ".join(f"{s:g}" for s in sorted({m.sigma_train for m in models}))
    title = f"{_noise_description(result)}; σ_train = {trains}, {len(result.images)} images"
    plots = {}
    for metric, fname in (("psnr", "mismatch.png"), ("ssim", "mismatch_ssim.png")):
        mismatch_plot(
            _curves(result.psnr_rows, _kinds(models), metric),
            out / fname,
            sigma_train_markers=markers,
            metric=metric,
            title=title,
        )
        plots[metric] = fname
    summary = {
        "run": {
            **(meta or {}),
            "noise": result.noise,
            "level_name": name,
            "levels": result.sigmas,
            "read_noise": result.read_noise if result.noise == "lowlight" else None,
            "jpeg_sigma": result.jpeg_sigma if result.noise == "jpeg" else None,
            "images": result.images,
            "n_images": len(result.images),
            "draws": result.draws,
            "seed": result.seed,
            "plots": plots,
            "wne_version": __version__,
            "torch_version": torch.__version__,
        },
        **summarize_noise(models, result),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def format_noise_summary(summary: dict[str, Any], out: Path) -> str:
    """The command line's table of a non-Gaussian run: output PSNR per model and level.

    Args:
        summary: What :func:`write_outputs` returned for the run.
        out: Where the files were written (named in the first line).

    Returns:
        The table: a header with the levels, input PSNR and equivalent σ, one line per model.
    """
    run = summary["run"]
    name = run["level_name"]
    levels = run["levels"]
    first = next(iter(summary["models"].values()))["levels"]
    lines = [
        f"\nResults in {out} ({run['noise']}, output PSNR in dB)",
        f"{name:<24} " + " ".join(f"{v:>7g}" for v in levels),
        f"{'input PSNR':<24} " + " ".join(f"{e['input_psnr']:>7.2f}" for e in first),
        f"{'equivalent σ':<24} " + " ".join(f"{e['equivalent_sigma']:>7.2f}" for e in first),
    ]
    for key, s in summary["models"].items():
        lines.append(f"{key:<24} " + " ".join(f"{e['psnr']:>7.2f}" for e in s["levels"]))
    return "\n".join(lines)
