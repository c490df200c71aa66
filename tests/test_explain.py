"""wne.explain and ``wne explain``: adaptive filters, literalness ρ, Δ overlap, Q vs Δ."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

import wne
from wne import NormEquivariant, explain, models
from wne.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "checkpoints"
F64 = torch.float64


def _image(side: int = 24, seed: int = 0, sigma: float = 25.0) -> np.ndarray:
    """A smooth synthetic image in [0, 1] plus Gaussian noise of level ``sigma``."""
    u, v = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side))
    clean = 0.3 + 0.4 * np.sin(6 * u) * np.cos(4 * v) ** 2
    return clean + sigma / 255 * np.random.default_rng(seed).standard_normal(clean.shape)


class Smooth(nn.Module):
    """A tiny smooth (tanh) conv net with biases: not equivariant, exact derivatives."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.a = nn.Conv2d(1, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(torch.tanh(self.a(x)))


class _Cube(torch.autograd.Function):
    """``x³`` with a backward but no forward-mode derivative."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return 3 * x**2 * g


class NoForwardAD(Smooth):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Cube.apply(super().forward(x))


@pytest.fixture(scope="module")
def bundled() -> dict[str, nn.Module]:
    return {
        k: wne.load(k, device="cpu", root=CHECKPOINTS) for k in ("dncnn-wne-s25", "dncnn-plain-s25")
    }


# ------------------------------------------------------------------ adaptive filters


@settings(max_examples=8, deadline=None)
@given(
    arch=st.sampled_from(["dncnn", "swinir"]),
    seed=st.integers(0, 2**16),
    side=st.integers(8, 13),
    a=st.floats(0.05, 20.0),
    b=st.floats(-5.0, 5.0),
)
def test_wne_filters_sum_to_one_and_rho_vanishes(
    arch: str, seed: int, side: int, a: float, b: float
) -> None:
    torch.manual_seed(seed)
    kwargs = {"depth": 3, "width": 4} if arch == "dncnn" else {
        "embed_dim": 4, "depths": [1], "num_heads": 2, "window_size": 4
    }  # fmt: skip
    model = NormEquivariant(models.build(arch, **kwargs)).eval()
    y = a * np.random.default_rng(seed).random((side, side)) + b
    r, c = seed % side, (seed // side) % side
    view = explain.filter_view(model, y, (r, c), dtype=F64)
    assert view.filter.shape == (side, side)
    assert view.filter_sum == pytest.approx(1.0, abs=1e-9)
    assert view.euler == pytest.approx(view.output, abs=1e-9 * (abs(a) + abs(b)))
    assert np.allclose(explain.filter_sum_map(model, y, dtype=F64), 1.0, atol=1e-9)
    assert explain.rho(model, y, dtype=F64) < 1e-9


def test_bundled_wne_checkpoint_is_its_filters(bundled: dict[str, nn.Module]) -> None:
    model = bundled["dncnn-wne-s25"]
    y = _image()
    assert explain.rho(model, y, dtype=F64) < 1e-12
    assert explain.rho(model, y) < 1e-5  # float32: round-off of the model's own dtype
    sums = explain.filter_sum_map(model, 3.0 * y - 1.0, dtype=F64)
    assert np.abs(sums - 1).max() < 1e-10
    view = explain.filter_view(model, y, (5, 17), dtype=F64)
    assert view.filter_sum == pytest.approx(1.0, abs=1e-12)
    assert view.euler_gap == pytest.approx(0.0, abs=1e-12)
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is untouched


def test_bundled_plain_checkpoint_is_not(bundled: dict[str, nn.Module]) -> None:
    model = bundled["dncnn-plain-s25"]
    y = _image()
    assert explain.rho(model, y, dtype=F64) > 1e-3
    shifted = explain.filter_sum_map(model, y + 0.5, dtype=F64)
    assert np.abs(shifted - 1).max() > 0.05
    view = explain.filter_view(model, y + 0.5, (12, 12), dtype=F64)
    assert abs(view.euler_gap) > 1e-4


def test_autograd_row_matches_finite_differences() -> None:
    model = Smooth().to(F64).eval()
    y = _image(8, seed=3)
    pixel = (3, 5)
    view = explain.filter_view(model, y, pixel)
    h = 1e-6
    fd = np.zeros_like(y)
    with torch.no_grad():
        for i in range(8):
            for j in range(8):
                e = np.zeros_like(y)
                e[i, j] = h
                plus = model(torch.from_numpy(y + e)[None, None])[0, 0, 3, 5]
                minus = model(torch.from_numpy(y - e)[None, None])[0, 0, 3, 5]
                fd[i, j] = float(plus - minus) / (2 * h)
    assert np.abs(view.filter - fd).max() < 1e-7
    assert view.filter_sum == pytest.approx(fd.sum(), abs=1e-6)
    win = view.window(2)
    assert win.shape == (5, 5) and np.allclose(win, fd[1:6, 3:8], atol=1e-7)
    corner = explain.filter_view(model, y, (0, 0)).window(2)
    assert corner.shape == (5, 5) and not corner[:2].any() and not corner[:, :2].any()
    # J·y by forward mode against a central difference along y
    f_y, jy = explain.euler_terms(model, y)
    with torch.no_grad():
        t = torch.from_numpy(y)[None, None]
        fd_jy = (model(t * (1 + h)) - model(t * (1 - h)))[0, 0].numpy() / (2 * h)
    assert np.abs(jy - fd_jy).max() < 1e-6
    assert explain.rho(model, y) == pytest.approx(
        np.linalg.norm(f_y - fd_jy) / np.linalg.norm(f_y), rel=1e-5
    )


def test_jvp_falls_back_to_double_backward() -> None:
    y = _image(10, seed=1)
    base, odd = Smooth(1).to(F64).eval(), NoForwardAD(1).to(F64).eval()
    _, jy = explain.euler_terms(odd, y)
    s, js = explain.euler_terms(base, y)
    assert np.allclose(jy, 3 * s**2 * js, atol=1e-10)  # (s³)' = 3 s² s'
    assert explain.rho(odd, y) > 1e-3


def test_filter_inputs_are_checked(bundled: dict[str, nn.Module]) -> None:
    model = bundled["dncnn-wne-s25"]
    with pytest.raises(ValueError, match="outside"):
        explain.filter_view(model, _image(), (24, 0))
    with pytest.raises(ValueError, match=">= 8"):
        explain.rho(model, np.zeros((4, 9)))
    with pytest.raises(ValueError, match="NaN"):
        explain.rho(model, np.full((9, 9), np.nan))
    img = np.arange(200.0).reshape(10, 20)
    assert np.array_equal(explain.crop(img, 4, (2, 3)), img[2:6, 3:7])
    with pytest.raises(ValueError, match="does not fit"):
        explain.crop(img, 12)


# ------------------------------------------------------------------ Δ overlap


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 5),
    c=st.integers(1, 3),
    h=st.integers(2, 9),
    sigma=st.floats(1.0, 100.0),
    seed=st.integers(0, 1000),
)
def test_delta_matches_direct_numpy(n: int, c: int, h: int, sigma: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    clean = rng.random((n, c, h, h + 1))
    noisy = clean + sigma / 255 * rng.standard_normal(clean.shape)
    expected = []
    for x, y in zip(clean, noisy, strict=True):
        flat = y.ravel()
        m = flat.sum() / flat.size
        s = max(np.sqrt(((flat - m) ** 2).sum() / (flat.size - 1)), 1e-6)
        expected.append(np.sqrt((((y - m) / s - (x - m) / s) ** 2).sum()))
    got = explain.delta(clean, noisy)
    assert got.shape == (n,)
    assert np.allclose(got, expected, rtol=1e-12)
    y_t, _ = explain.normalized_coordinates(torch.from_numpy(clean), torch.from_numpy(noisy))
    assert np.allclose(y_t.reshape(n, -1).mean(1), 0, atol=1e-12)
    assert np.allclose(y_t.reshape(n, -1).std(1, ddof=1), 1, atol=1e-12)


def test_delta_tends_to_sqrt_d_and_is_reproducible() -> None:
    flat = np.full((200, 16, 16), 0.5)
    d = explain.delta_at_sigma(flat, 30.0, seed=1)
    assert abs(d.mean() / 16 - 1) < 0.01  # a constant patch: Δ ≈ √d whatever σ
    assert np.array_equal(d, explain.delta_at_sigma(flat, 30.0, seed=1, batch_size=7))
    assert not np.array_equal(d, explain.delta_at_sigma(flat, 30.0, seed=1, stream=1))


def _synthetic_patches(n: int = 1500, side: int = 16) -> np.ndarray:
    """Textured patches of random contrast and brightness (a spread of SNRs)."""
    rng = np.random.default_rng(7)
    u, v = np.meshgrid(np.arange(side), np.arange(side))
    freq = rng.uniform(0.1, 1.5, (n, 2, 1, 1))
    phase = rng.uniform(0, 6.3, (n, 1, 1))
    contrast = rng.uniform(0.0, 0.4, (n, 1, 1))
    texture = np.sin(freq[:, 0] * u + freq[:, 1] * v + phase)
    return rng.uniform(0.2, 0.8, (n, 1, 1)) + contrast * texture


def test_coverage_diagonal_is_nominal_and_low_sigma_covers_high() -> None:
    patches = _synthetic_patches()
    sigmas = [10, 25, 50]
    cov = explain.coverage_table(patches, sigmas, sigmas, seed=3)
    assert cov.coverage.shape == (3, 3) and cov.held_out
    assert np.all(np.abs(np.diag(cov.coverage) - 0.95) < 0.025)  # a fresh draw: ± sampling
    assert np.all(np.diff(cov.lower) > 0) and np.all(cov.lower < cov.upper)
    # a low σ_train interval covers more of high σ_test than the reverse (paper §5.5)
    assert cov.coverage[0, 2] > cov.coverage[2, 0]
    same = explain.coverage_table(patches, sigmas, [25], seed=3, held_out=False)
    assert same.coverage[1, 0] == pytest.approx(0.95, abs=2 / len(patches))
    d25 = explain.delta_at_sigma(patches, 25, seed=3)
    assert same.lower[1] == pytest.approx(np.quantile(d25, 0.025))
    json.dumps(cov.to_dict())
    with pytest.raises(ValueError, match="quantiles"):
        explain.coverage_from_deltas({1: d25}, {1: d25}, quantiles=(0.9, 0.1))


def test_q_vs_delta_and_binning() -> None:
    rng = np.random.default_rng(0)
    clean = rng.random((12, 1, 9, 9))
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    d, q = explain.q_vs_delta(nn.Identity(), clean, noisy, batch_size=5)
    assert np.allclose(q, -10 * np.log10(d**2))  # f(y) = y: x̂_n = ỹ, so Q = −20·log10 Δ
    # the normalized error is the raw error over std(y): a better output, a higher Q
    half = explain.q_vs_delta(_Towards(torch.from_numpy(clean)), clean, noisy)[1]
    assert np.allclose(half, q + 20 * np.log10(2))
    b = explain.bin_q(d, q, bins=4, value_range=(d.min(), d.max()))
    assert b.count.sum() == len(d) and len(b.edges) == 5
    for c, m, s in zip(b.centers, b.mean, b.std, strict=True):
        k = np.searchsorted(b.edges, c) - 1
        sel = (d >= b.edges[k]) & ((d < b.edges[k + 1]) | (k == 3))
        assert m == pytest.approx(q[sel].mean()) and s == pytest.approx(q[sel].std(), abs=1e-6)
    assert explain.curve_spread({1.0: b, 2.0: b}, min_count=1) == 0.0
    other = explain.bin_q(d, q + 1.0, bins=4, value_range=(d.min(), d.max()))
    assert explain.curve_spread({1.0: b, 2.0: other}, min_count=1) == pytest.approx(0.5)


class _Towards(nn.Module):
    """Halfway from the input to the clean batch it was built with."""

    def __init__(self, clean: torch.Tensor) -> None:
        super().__init__()
        self.clean = clean

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * (y + self.clean[: len(y)].to(y.dtype))


# ------------------------------------------------------------------ the command


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "train"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        pixels = (rng.random((40, 44)) * 120 + 60 * k).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{k}.png")
    return folder


def test_cli_coverage_writes_csv_and_json(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["explain", "--coverage", "--data", str(image_folder), "--patches", "300"]
    args += ["--patch", "20", "--sigmas", "10", "30", "--out", str(out), "--quiet"]
    assert cli_main(args) == 0
    rows = list(csv.DictReader((out / "coverage.csv").open()))
    assert [r["sigma_train"] for r in rows] == ["10", "30"]
    assert 0.9 < float(rows[0]["10"]) <= 1.0
    data = json.loads((out / "coverage.json").read_text())
    assert np.array(data["coverage"]).shape == (2, 2) and data["patches"] == 300
    assert data["cpu"] and data["held_out"] is True
    # the images at twice their resolution: smoother patches, a higher Δ tail
    assert cli_main([*args, "--zoom", "2", "--out", str(tmp_path / "zoom")]) == 0
    zoomed = json.loads((tmp_path / "zoom" / "coverage.json").read_text())
    assert zoomed["zoom"] == 2.0 and zoomed["upper"][0] > data["upper"][0]


def test_cli_filters_and_collapse(tiny_checkpoint_dir: Path, image_folder: Path, tmp_path: Path):
    pair = ["--models", "dncnn-plain-s25", "dncnn-wne-s25", "--root", str(CHECKPOINTS)]
    out = tmp_path / "filters"
    args = ["explain", "--filters", "--image", str(image_folder / "1.png"), "--crop", "16"]
    args += ["--offset", "3", "5", "--sigma", "25", "--radius", "2", "--out", str(out)]
    assert cli_main(args + pair) == 0
    data = json.loads((out / "filters.json").read_text())
    rho = {r["model"]: r["rho"] for r in data["rows"]}
    assert rho["dncnn-wne-s25"] < 1e-12 and rho["dncnn-plain-s25"] > 1e-3
    assert np.array(data["windows"]["dncnn-wne-s25@25"]).shape == (5, 5)
    assert data["pixel"] == [8, 8] and (out / "filters.csv").is_file()
    # Q vs Δ with the tiny random-init checkpoints
    keys = ["dncnn-plain-tiny", "dncnn-wne-tiny"]
    tiny = ["--root", str(tiny_checkpoint_dir), "--models", *keys, "--quiet", "--min-count", "1"]
    out = tmp_path / "collapse"
    args = ["explain", "--collapse", "--data", str(image_folder), "--patches", "6"]
    args += ["--patch", "16", "--sigmas", "10", "40", "--bins", "5", "--out", str(out)]
    assert cli_main(args + tiny) == 0
    rows = list(csv.DictReader((out / "collapse_patches.csv").open()))
    assert len(rows) == 2 * 2 * 6
    summary = json.loads((out / "collapse.json").read_text())
    assert set(summary["models"]) == set(keys)
    with pytest.raises(SystemExit):
        cli_main(["explain", "--collapse"])  # --data is required
