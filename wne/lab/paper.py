"""The WNE paper's published Set12 numbers, as data (for overlays and comparisons).

Source: Y. Saied, F. Fleuret, "Normalization Equivariance for Arbitrary
Backbones, with Application to Image Denoising", ICML 2026 (PMLR 306),
arXiv 2605.08193; code and evaluation logs in
``YoussefSaied/normalization_equivariance`` @ ``959231b``.

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

# fmt: off
#: σ_train -> column -> 21 values, one per σ_test (ascending; the σ_train row included).
MISMATCH: dict[int, dict[str, tuple[float, ...]]] = {
    10: {
        "sigma_test": (5.00, 5.85, 6.85, 8.02, 9.39, 10.00, 11.00, 12.88, 15.08, 17.65, 20.67,
                       24.19, 28.33, 33.16, 38.83, 45.46, 53.22, 62.31, 72.95, 85.41, 100.00),
        "input_psnr": (34.15, 32.78, 31.42, 30.04, 28.67, 28.13, 27.29, 25.93, 24.56, 23.21, 21.83,
                       20.46, 19.08, 17.72, 16.35, 14.97, 13.61, 12.24, 10.86, 9.50, 8.14),
        "b_dncnn": (35.25, 35.27, 35.28, 35.23, 35.08, 34.92, 34.15, 31.34, 28.41, 25.95, 23.84,
                    21.99, 20.30, 18.74, 17.27, 15.89, 14.61, 13.41, 12.28, 11.20, 10.03),
        "se_fdncnn": (36.76, 36.39, 35.93, 35.35, 34.69, 34.42, 33.95, 33.24, 32.48, 31.73, 30.96,
                      30.19, 29.45, 28.66, 27.92, 27.12, 26.40, 25.69, 24.90, 24.18, 23.38),
        "ne_fdncnn": (37.79, 37.14, 36.45, 35.71, 34.97, 34.66, 34.17, 33.43, 32.64, 31.85, 31.05,
                      30.25, 29.46, 28.64, 27.83, 27.00, 26.23, 25.48, 24.66, 23.92, 23.14),
        "wne_dncnn": (37.78, 37.18, 36.52, 35.81, 35.08, 34.78, 34.29, 33.57, 32.78, 32.00, 31.20,
                      30.42, 29.62, 28.78, 27.97, 27.09, 26.30, 25.53, 24.68, 23.96, 23.18),
        "b_swinir": (35.53, 35.53, 35.53, 35.49, 35.31, 35.08, 34.02, 31.09, 28.34, 25.96, 23.86,
                     21.99, 20.27, 18.69, 17.22, 15.83, 14.54, 13.35, 12.26, 11.28, 10.41),
        "wne_swinir": (38.18, 37.50, 36.78, 36.03, 35.26, 34.95, 34.51, 33.71, 32.97, 32.20, 31.45,
                       30.68, 29.92, 29.13, 28.37, 27.57, 26.81, 26.04, 25.24, 24.46, 23.72),
    },
    25: {
        "sigma_test": (5.00, 5.85, 6.85, 8.02, 9.39, 11.00, 12.88, 15.08, 17.65, 20.67, 24.19,
                       25.00, 28.33, 33.16, 38.83, 45.46, 53.22, 62.31, 72.95, 85.41, 100.00),
        "input_psnr": (34.15, 32.78, 31.41, 30.04, 28.66, 27.31, 25.93, 24.57, 23.20, 21.83, 20.45,
                       20.17, 19.08, 17.72, 16.34, 14.99, 13.61, 12.25, 10.87, 9.49, 8.12),
        "b_dncnn": (30.32, 30.33, 30.33, 30.35, 30.37, 30.39, 30.43, 30.47, 30.52, 30.62, 30.57,
                    30.50, 29.03, 24.30, 20.68, 18.15, 16.11, 14.44, 13.05, 11.93, 11.08),
        "se_fdncnn": (33.26, 33.22, 33.18, 33.13, 33.02, 32.87, 32.66, 32.30, 31.85, 31.28, 30.57,
                      30.42, 29.84, 29.10, 28.33, 27.58, 26.84, 26.12, 25.33, 24.60, 23.86),
        "ne_fdncnn": (36.14, 35.77, 35.37, 34.94, 34.43, 33.88, 33.29, 32.63, 31.96, 31.26, 30.51,
                      30.37, 29.78, 29.02, 28.24, 27.47, 26.71, 25.99, 25.16, 24.44, 23.66),
        "wne_dncnn": (35.76, 35.48, 35.16, 34.79, 34.35, 33.84, 33.31, 32.66, 32.01, 31.32, 30.58,
                      30.43, 29.84, 29.07, 28.30, 27.53, 26.75, 26.00, 25.17, 24.44, 23.68),
        "b_swinir": (30.97, 30.96, 30.95, 30.98, 30.99, 31.01, 30.99, 31.01, 31.03, 31.02, 30.90,
                     30.79, 28.22, 23.89, 20.66, 18.14, 16.08, 14.35, 12.85, 11.61, 10.57),
        "wne_swinir": (35.72, 35.54, 35.33, 35.00, 34.64, 34.15, 33.55, 32.91, 32.24, 31.52, 30.81,
                       30.65, 30.04, 29.34, 28.62, 27.86, 27.14, 26.39, 25.68, 24.92, 24.15),
    },
    50: {
        "sigma_test": (5.00, 5.85, 6.85, 8.02, 9.39, 11.00, 12.88, 15.08, 17.65, 20.67, 24.19,
                       28.33, 33.16, 38.83, 45.46, 50.00, 53.22, 62.31, 72.95, 85.41, 100.00),
        "input_psnr": (34.15, 32.78, 31.41, 30.05, 28.67, 27.30, 25.94, 24.57, 23.20, 21.82, 20.46,
                       19.08, 17.73, 16.34, 14.98, 14.15, 13.61, 12.24, 10.86, 9.51, 8.12),
        "b_dncnn": (26.98, 26.98, 26.98, 26.98, 26.99, 27.01, 27.01, 27.02, 27.05, 27.08, 27.11,
                    27.17, 27.20, 27.28, 27.33, 27.17, 26.64, 21.09, 16.51, 13.87, 12.18),
        "se_fdncnn": (29.40, 29.41, 29.41, 29.41, 29.42, 29.43, 29.44, 29.42, 29.43, 29.38, 29.26,
                      29.10, 28.75, 28.24, 27.62, 27.19, 26.89, 26.19, 25.44, 24.70, 24.01),
        "ne_fdncnn": (33.28, 33.18, 33.02, 32.86, 32.62, 32.37, 32.05, 31.69, 31.29, 30.80, 30.23,
                      29.66, 29.03, 28.34, 27.65, 27.20, 26.88, 26.18, 25.45, 24.68, 23.97),
        "wne_dncnn": (33.03, 32.93, 32.78, 32.62, 32.42, 32.19, 31.93, 31.60, 31.26, 30.79, 30.24,
                      29.69, 29.05, 28.37, 27.67, 27.22, 26.91, 26.19, 25.45, 24.68, 23.96),
        "b_swinir": (27.69, 27.69, 27.69, 27.70, 27.70, 27.69, 27.73, 27.72, 27.73, 27.74, 27.75,
                     27.80, 27.76, 27.85, 27.81, 27.61, 26.29, 20.30, 16.39, 13.68, 11.72),
        "wne_swinir": (32.24, 32.24, 32.19, 32.15, 32.07, 31.97, 31.81, 31.62, 31.34, 30.96, 30.46,
                       29.93, 29.26, 28.64, 27.91, 27.47, 27.21, 26.52, 25.76, 25.10, 24.30),
    },
}

#: PDF Table 1: matched-noise PSNR (σ_test = σ_train), σ_train -> column -> dB.
MATCHED: dict[int, dict[str, float]] = {
    10: {"b_dncnn": 34.92, "se_fdncnn": 34.41, "ne_fdncnn": 34.65, "wne_dncnn": 34.77,
         "b_swinir": 35.08, "wne_swinir": 34.95},
    25: {"b_dncnn": 30.50, "se_fdncnn": 30.42, "ne_fdncnn": 30.37, "wne_dncnn": 30.43,
         "b_swinir": 30.79, "wne_swinir": 30.65},
    50: {"b_dncnn": 27.17, "se_fdncnn": 27.19, "ne_fdncnn": 27.20, "wne_dncnn": 27.22,
         "b_swinir": 27.61, "wne_swinir": 27.47},
}

#: Mean output PSNR over the 20 off-training grid points (derived from the CSVs).
GRID_MEAN: dict[int, dict[str, float]] = {
    10: {"b_dncnn": 23.78, "se_fdncnn": 30.47, "ne_fdncnn": 30.59, "wne_dncnn": 30.69,
         "b_swinir": 23.82, "wne_swinir": 31.03},
    25: {"b_dncnn": 24.67, "se_fdncnn": 29.95, "ne_fdncnn": 30.53, "wne_dncnn": 30.50,
         "b_swinir": 24.86, "wne_swinir": 30.78},
    50: {"b_dncnn": 24.82, "se_fdncnn": 28.22, "ne_fdncnn": 29.76, "wne_dncnn": 29.69,
         "b_swinir": 25.22, "wne_swinir": 29.68},
}
# fmt: on


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
