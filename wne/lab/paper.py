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

Column names follow the paper's run names: ``b_`` = Baseline (plain), ``se_`` /
``ne_`` = scale- / normalization-equivariant architecture (FDnCNN-based),
``wne_`` = the WNE wrapper. σ is on the 0–255 scale.
"""

from __future__ import annotations

import json
from pathlib import Path

from wne import catalog

__all__ = [
    "COLUMNS",
    "GRID_MEAN",
    "LABELS",
    "MATCHED",
    "MISMATCH",
    "SIGMA_TRAINS",
    "curve",
    "paper_column",
    "value_at",
]

#: The model columns of each mismatch table.
COLUMNS: tuple[str, ...] = (
    "b_dncnn",
    "se_fdncnn",
    "ne_fdncnn",
    "wne_dncnn",
    "b_swinir",
    "wne_swinir",
)

#: Human-readable names of the columns.
LABELS: dict[str, str] = {
    "b_dncnn": "DnCNN (plain)",
    "se_fdncnn": "FDnCNN SE-arch",
    "ne_fdncnn": "FDnCNN NE-arch",
    "wne_dncnn": "DnCNN-WNE",
    "b_swinir": "SwinIR (plain)",
    "wne_swinir": "SwinIR-WNE",
}

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


def _check_sigma_train(sigma_train: float) -> int:
    s = round(float(sigma_train))
    if s not in MISMATCH or abs(float(sigma_train) - s) > 1e-9:
        raise KeyError(
            f"the paper publishes curves for σ_train in {SIGMA_TRAINS}, not {sigma_train}"
        )
    return s


def curve(sigma_train: float, column: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The paper's mismatch curve of one model: (input PSNR, output PSNR), 21 points.

    Args:
        sigma_train: 10, 25 or 50.
        column: One of :data:`COLUMNS`.

    Returns:
        ``(input_psnr, output_psnr)``, in ascending σ_test order.

    Raises:
        KeyError: For another σ_train or an unknown column.
    """
    table = MISMATCH[_check_sigma_train(sigma_train)]
    if column not in COLUMNS:
        raise KeyError(f"unknown paper column {column!r}; known: {', '.join(COLUMNS)}")
    return table["input_psnr"], table[column]


def value_at(sigma_train: float, column: str, sigma_test: float) -> tuple[float, float]:
    """The paper's output PSNR at the grid point nearest to ``sigma_test``.

    Args:
        sigma_train: 10, 25 or 50.
        column: One of :data:`COLUMNS`.
        sigma_test: Wanted test noise level (0–255 scale).

    Returns:
        ``(sigma_test_of_that_row, psnr)``.

    Raises:
        KeyError: For another σ_train or an unknown column.
    """
    _, values = curve(sigma_train, column)
    sigmas = MISMATCH[_check_sigma_train(sigma_train)]["sigma_test"]
    j = min(range(len(sigmas)), key=lambda i: abs(sigmas[i] - sigma_test))
    return sigmas[j], values[j]


def paper_column(arch: str, wrapper: str = "none") -> str | None:
    """The paper column matching a checkpoint, from its ``config.json`` fields.

    The model is identified by :func:`wne.catalog.describe` (never by its key); the
    column is its family's ``paper_columns[variant]``.

    Args:
        arch: Registered backbone name from the checkpoint's config.
        wrapper: ``"wne"`` or ``"none"``.

    Returns:
        A name from :data:`COLUMNS`, or ``None`` when the catalog does not know the
        model or the paper has no such model.
    """
    found = catalog.describe(arch, wrapper)
    if found is None:
        return None
    family, variant = found
    return family.paper_columns.get(variant)
