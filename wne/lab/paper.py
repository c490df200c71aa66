"""The WNE paper's published Set12 numbers, as data (for overlays and comparisons).

Source: Y. Saied, F. Fleuret, "Normalization Equivariance for Arbitrary
Backbones, with Application to Image Denoising", ICML 2026 (PMLR 306),
arXiv 2605.08193; code and evaluation logs in
``YoussefSaied/normalization_equivariance`` @ ``959231b``.

The numbers live in ``paper_numbers.json`` beside this module.

- :data:`MISMATCH`: the mismatch curves of §4.1 / Figs. 3–4, i.e. the released
  CSVs ``eval_logs/Set12/dncnn_sigma{10,25,50}_psnr.csv`` and
  ``eval_logs/Set12/swinir_sigma{10,25,50}_psnr.csv``: mean output PSNR (dB,
  outputs clamped to [0, 1]) on Set12 for each test noise level
  ``geomspace(5, 100, 20) ∪ {σ_train}``, rounded to 0.01 dB. The input-PSNR
  column is the DnCNN CSV's (the SwinIR CSV differs by ≤ 0.022 dB). In the
  σ_train = 10 curves the DnCNN-family σ_test = 10 row is the newer run, which
  differs from Table 1 by ≤ 0.01 dB.
- :data:`MATCHED`: PDF Table 1, matched-noise PSNR.
- :data:`GRID_MEAN`: mean output PSNR over the 20 off-training grid points
  (derived from the CSVs, not stated in the paper).
- :data:`SAMPLER`: App. N's sampler tables (Table 11, residual-stopped denoising;
  Table 12, random inpainting) by task and wrapper of the SwinIR-lite model.

Column names follow the paper's run names: ``b_`` = Baseline (plain), ``se_`` /
``ne_`` = scale- / normalization-equivariant architecture (FDnCNN-based),
``wne_`` = the WNE wrapper. σ is on the 0–255 scale.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wne import catalog

#: Human-readable names of the columns.
LABELS: dict[str, str] = {
    "b_dncnn": "DnCNN (plain)",
    "se_fdncnn": "FDnCNN SE-arch",
    "ne_fdncnn": "FDnCNN NE-arch",
    "wne_dncnn": "DnCNN-WNE",
    "b_swinir": "SwinIR (plain)",
    "wne_swinir": "SwinIR-WNE",
}
COLUMNS: tuple[str, ...] = tuple(LABELS)
"""The model columns of each mismatch table."""

#: Training noise levels with published curves.
SIGMA_TRAINS: tuple[int, ...] = (10, 25, 50)

_DATA = json.loads((Path(__file__).with_name("paper_numbers.json")).read_text(encoding="utf-8"))
MISMATCH: dict[int, dict[str, tuple[float, ...]]] = {
    int(s): {c: tuple(v) for c, v in t.items()} for s, t in _DATA["mismatch"].items()
}
"""σ_train → column → 21 values (``sigma_test``, ``input_psnr`` and the model columns)."""
MATCHED: dict[int, dict[str, float]] = {int(s): t for s, t in _DATA["matched"].items()}
"""σ_train → column → matched-noise PSNR (PDF Table 1)."""
GRID_MEAN: dict[int, dict[str, float]] = {int(s): t for s, t in _DATA["grid_mean"].items()}
"""σ_train → column → mean over the 20 off-training grid points."""
SAMPLER: dict[str, dict] = _DATA["sampler"]
"""Task → ``source`` and ``models`` (wrapper → label and means)."""


def curve(sigma_train: float, column: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The paper's mismatch curve of one model: (input PSNR, output PSNR), 21 points in
    ascending σ_test order (KeyError for a σ_train other than 10, 25, 50 or an unknown column)."""
    s = round(float(sigma_train))
    if s not in MISMATCH or abs(float(sigma_train) - s) > 1e-9:
        raise KeyError(
            f"the paper publishes curves for σ_train in {SIGMA_TRAINS}, not {sigma_train}"
        )
    if column not in COLUMNS:
        raise KeyError(f"unknown paper column {column!r}; known: {', '.join(COLUMNS)}")
    return MISMATCH[s]["input_psnr"], MISMATCH[s][column]


def value_at(sigma_train: float, column: str, sigma_test: float) -> tuple[float, float]:
    """``(σ_test, output PSNR)`` of the paper's grid point nearest ``sigma_test`` (KeyError as
    :func:`curve`)."""
    _, values = curve(sigma_train, column)
    sigmas = MISMATCH[round(float(sigma_train))]["sigma_test"]
    j = min(range(len(sigmas)), key=lambda i: abs(sigmas[i] - sigma_test))
    return sigmas[j], values[j]


def paper_column(
    arch: str,
    wrapper: str = "none",
    *,
    augment: Mapping[str, Any] | None = None,
    sigma_range: Sequence[float] | None = None,
) -> str | None:
    """The paper column of a checkpoint's ``(arch, wrapper, augment)``: its catalog family's
    ``paper_columns[variant]`` (:func:`wne.catalog.describe`), or ``None`` (also for a model
    trained on a noise range: the columns are single-σ runs)."""
    found = None if sigma_range is not None else catalog.describe(arch, wrapper, augment=augment)
    return None if found is None else found[0].paper_columns.get(found[1])
