"""The shipped weights against the published numbers.

- The bundled checkpoints are exactly the catalog's (a deleted checkpoint fails here
  instead of silently deleting its tests).
- Each checkpoint reproduces a golden PSNR on a fixed image, seed and σ to ±0.02 dB
  (a checkpoint with shuffled, perturbed or swapped weights moves it by far more).
- The claim the project exists for, on the real weights: WNE beats its plain twin by
  several dB away from σ_train, and is equivariant where the plain model is not.
- The numbers written in three places (each ``config.json``'s ``metrics.set12``,
  ``assets/results/sigma*/summary.json`` or, for the GPU-trained checkpoints,
  ``assets/results/gpu-h200/set12/summary.json``, the lab book ``assets/results/README.md``)
  agree with each other, and (slow) with a fresh Set12 evaluation computed here
  independently of the lab's code.

The rivals (:func:`wne.catalog.rivals`) join every check here once their checkpoint is in
``checkpoints/`` (``KEYS``: the zoo's keys, then the rivals present); their Set12 numbers live
in ``assets/results/rivals/<key>/summary.json`` and the lab book's "rivals" section.

Regenerate the golden file after retraining a checkpoint:
``python tests/test_shipped.py`` (writes ``tests/golden/shipped.json``), or
``python tests/test_shipped.py KEY ...`` (only those keys' entries).
"""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

import wne
from wne import catalog
from wne.degrade import gaussian_noise
from wne.imageio import list_images, read_image
from wne.metrics import psnr

ROOT = Path(__file__).resolve().parent.parent
CKPT = ROOT / "checkpoints"
RESULTS = ROOT / "assets" / "results"
GOLDEN = Path(__file__).resolve().parent / "golden" / "shipped.json"
IMAGE = ROOT / "assets" / "examples" / "caps.png"
SEED = 1234
SET12 = ROOT.parent / "shared" / "data" / "set12"
PAIRS_25 = [
    ("dncnn-plain-s25", "dncnn-wne-s25"),
    ("swinir-plain-s25", "swinir-wne-s25"),
    ("dncnn-plain-s25-gpu", "dncnn-wne-s25-gpu"),
]
GPU_RESULTS = RESULTS / "gpu-h200" / "set12"
"""The Set12 evaluation of the GPU-trained checkpoints (run on the GPU that trained them)."""
RIVAL_RESULTS = RESULTS / "rivals"
"""The Set12 evaluation of each rival, one folder per key."""
RIVALS = [k for k in catalog.rival_keys() if (CKPT / k / "config.json").is_file()]
"""The rivals trained so far (the others are not in checkpoints/ yet: nothing to check)."""
KEYS = [*catalog.keys(), *RIVALS]


@cache
def _model(key: str) -> torch.nn.Module:
    return wne.load(key, root=CKPT, source="local").eval()


@cache
def _clean() -> torch.Tensor:
    """The fixed test image: the bundled Kodak 'caps' example, luma, [1, 1, H, W]."""
    return torch.from_numpy(read_image(IMAGE, channels=1)).permute(2, 0, 1)[None]


def _psnr_at(key: str, sigma: float) -> float:
    clean = _clean()
    noisy = clean + gaussian_noise(clean.shape, sigma, SEED)
    with torch.inference_mode():
        out = _model(key)(noisy).clamp(0, 1)
    return float(psnr(out, clean, 1.0))


def _golden() -> dict[str, dict[str, float]]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))["psnr"]


def test_bundled_checkpoints_are_exactly_the_catalog() -> None:
    """Every zoo key has its checkpoint; the only others are rivals; golden PSNRs: the same."""
    assert sorted(wne.available_checkpoints(CKPT)) == sorted(KEYS)
    assert sorted(_golden()) == sorted(KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_checkpoint_config_matches_its_catalog_entry(key: str) -> None:
    entry = catalog.get(key)
    cfg = json.loads((CKPT / key / "config.json").read_text())
    assert (cfg["key"], cfg["arch"], cfg["wrapper"]) == (key, entry.arch, entry.wrapper)
    assert cfg["sigma_train"] == entry.sigma_train
    assert cfg.get("sigma_range") == (list(entry.sigma_range) if entry.sigma_range else None)
    assert cfg.get("augment") == entry.augment
    assert cfg["recipe"]["steps"] == entry.recipe().steps
    assert cfg["recipe"].get("total_steps", cfg["recipe"]["steps"]) == entry.recipe().total_steps
    found = catalog.describe(cfg["arch"], cfg["wrapper"], augment=cfg.get("augment"))
    assert found == (entry.family, entry.variant)


@pytest.mark.parametrize("key", KEYS)
def test_checkpoint_reproduces_its_golden_psnr(key: str) -> None:
    """Fixed image, seed and σ = σ_train (a range: its matched σ): pinned to ±0.02 dB."""
    sigma = catalog.get(key).matched_sigma
    expected = _golden()[key][f"{sigma:g}"]
    got = _psnr_at(key, sigma)
    assert got == pytest.approx(expected, abs=0.02), f"{key}: {got:.3f} dB, golden {expected}"


@pytest.mark.parametrize(("plain", "wrapped"), PAIRS_25)
@pytest.mark.parametrize("sigma", [5.0, 50.0])
def test_wne_beats_its_plain_twin_away_from_sigma_train(
    plain: str, wrapped: str, sigma: float
) -> None:
    """Trained at σ = 25, tested at σ = 5 and 50: WNE wins by several dB."""
    got = {key: _psnr_at(key, sigma) for key in (plain, wrapped)}
    gain = got[wrapped] - got[plain]
    assert gain >= 3.0, f"{wrapped} vs {plain} at σ={sigma:g}: {gain:+.2f} dB"
    for key, value in got.items():
        assert value == pytest.approx(_golden()[key][f"{sigma:g}"], abs=0.02)


@pytest.mark.parametrize("key", KEYS)
def test_shipped_models_defect_wne_exact_plain_not(key: str) -> None:
    """ε_NE on the real weights: WNE and NE-arch at round-off, plain models far from it (the
    soft-NE rival, trained towards NE, near it but not at round-off)."""
    y = _clean()[..., :96, :96] + gaussian_noise((1, 1, 96, 96), 25.0, SEED)
    d = float(wne.ne_defect(_model(key), y, a=0.4, b=0.3).max())
    variant = catalog.get(key).variant
    if variant == "wne":
        assert d <= 1e-5, f"{key}: defect {d:.2e}"
    elif variant == "ne":
        assert d <= 1e-4, f"{key}: defect {d:.2e}"
    elif variant == "softne":
        assert d >= 1e-4, f"{key}: defect {d:.2e} (soft-NE is not exact)"
    else:
        assert d >= 1e-2, f"{key}: defect {d:.2e} (a plain model should not be equivariant)"


# --- the same numbers in three places ----------------------------------------------------


def _summary(key: str) -> dict:
    entry = catalog.get(key)
    if entry.role == "rival":
        folder = RIVAL_RESULTS / key
    elif entry.size == "gpu":
        folder = GPU_RESULTS
    else:
        folder = RESULTS / f"sigma{entry.sigma_train:g}"
    return json.loads((folder / "summary.json").read_text())["models"][key]


@pytest.mark.parametrize("key", KEYS)
def test_recorded_numbers_agree_across_config_summary_and_lab_book(key: str) -> None:
    cfg = json.loads((CKPT / key / "config.json").read_text())["metrics"]["set12"]
    s = _summary(key)
    assert cfg["psnr_matched"] == pytest.approx(s["matched"]["psnr"], abs=1e-4)
    assert cfg["ssim_matched"] == pytest.approx(s["matched"]["ssim"], abs=1e-5)
    assert cfg["psnr_sigma5"] == pytest.approx(s["sigma5"]["psnr"], abs=1e-4)
    assert cfg["psnr_sigma50"] == pytest.approx(s["sigma50"]["psnr"], abs=1e-4)
    assert cfg["ne_defect_max"] == pytest.approx(s["defect"]["max"], rel=1e-6)
    # The lab book's row for this key shows the same numbers, rounded.
    book = (RESULTS / "README.md").read_text(encoding="utf-8")
    rows = [line for line in book.splitlines() if f"(`{key}`)" in line and line.startswith("|")]
    assert rows, f"no results row for {key} in assets/results/README.md"
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    matched = f"**{s['matched']['psnr']:.2f}**"
    assert any(c.startswith(matched) for c in cells), f"{key}: {matched} not in {cells}"
    assert f"{s['sigma5']['psnr']:.2f}" in " ".join(cells)
    assert cells[-1] == f"{s['defect']['max']:.1e}".replace("e-0", "e-")


def _noise_seed(seed: int, image: int, draw: int, sigma: float) -> int:
    """The evaluation protocol's noise seed, written out independently of the lab."""
    ss = np.random.SeedSequence([seed, image, draw, round(sigma * 1000)])
    lo, hi = ss.generate_state(2, dtype=np.uint32).tolist()
    return ((hi << 32) | lo) & ((1 << 63) - 1)


@pytest.mark.slow
@pytest.mark.parametrize("key", KEYS)
def test_set12_at_sigma_train_matches_the_recorded_psnr(key: str) -> None:
    """Re-evaluates Set12 at σ_train (a range: its matched σ; draw 0, seed 0, outputs
    clamped): ±0.01 dB."""
    if not SET12.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the Set12 images at {SET12}")
        pytest.skip(f"no Set12 at {SET12}")
    sigma = float(catalog.get(key).matched_sigma)
    values = []
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the slowest test of the suite: both cores (CI runs nothing else)
    try:
        for i, path in enumerate(list_images(SET12)):
            x = torch.from_numpy(read_image(path, channels=1)).permute(2, 0, 1)[None]
            y = x + gaussian_noise(x.shape, sigma, _noise_seed(0, i, 0, sigma))
            with torch.inference_mode():
                values.append(float(psnr(_model(key)(y).clamp(0, 1), x, 1.0)))
    finally:
        torch.set_num_threads(threads)
    recorded = json.loads((CKPT / key / "config.json").read_text())["metrics"]["set12"]
    got = sum(values) / len(values)
    assert got == pytest.approx(recorded["psnr_matched"], abs=0.01)


def _regenerate(keys: list[str] | None = None) -> None:
    """Writes the golden PSNRs (σ_train, and 5 / 50 at σ_train = 25) of ``keys``, the others
    kept; None: every zoo key and rival present, anew."""
    out: dict[str, dict[str, float]] = {} if keys is None else _golden()
    for key in KEYS if keys is None else keys:
        sigma = catalog.get(key).matched_sigma
        sigmas = sorted({float(sigma), *((5.0, 50.0) if sigma == 25 else ())})
        out[key] = {f"{s:g}": round(_psnr_at(key, s), 4) for s in sigmas}
    out = {k: out[k] for k in KEYS if k in out}
    GOLDEN.parent.mkdir(exist_ok=True)
    meta = {
        "what": "PSNR (dB) of each bundled checkpoint on assets/examples/caps.png (luma), "
        f"noise seed {SEED}, outputs clamped; regenerate: python tests/test_shipped.py",
        "psnr": out,
    }
    GOLDEN.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    _regenerate(sys.argv[1:] or None)
