"""Tests of the evaluation (wne.lab.protocol, wne.lab.report and the wne-evaluate CLI), the
paper's curve data (wne.lab.paper) and plots."""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import wne
from wne import catalog, models
from wne.checkpoints import read_config
from wne.degrade import gaussian_noise
from wne.lab import evaluate as ev
from wne.lab import paper
from wne.lab import protocol as pr
from wne.metrics import psnr

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = {"depth": 3, "width": 8}
NOTES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper-notes.md"


# --------------------------------------------------------------------------- fixtures


def _save_plain(root: Path, key: str, seed: int = 0) -> None:
    torch.manual_seed(seed)
    net = models.build("dncnn", **TINY)
    # DnCNN's last conv starts near zero (f ≈ identity, which is NE); give it weight
    # and a bias so the plain model is clearly not normalization-equivariant.
    nn.init.normal_(net.body[-1].weight, std=0.2)
    nn.init.constant_(net.body[-1].bias, 0.05)
    wne.save(net, root / key, key=key, arch="dncnn", arch_kwargs=TINY, sigma_train=25)


def _save_wne(root: Path, key: str, seed: int = 1) -> None:
    torch.manual_seed(seed)
    net = models.build("dncnn", **TINY)
    nn.init.normal_(net.body[-1].weight, std=0.2)
    nn.init.constant_(net.body[-1].bias, 0.05)
    wne.save(
        wne.NormEquivariant(net),
        root / key,
        key=key,
        arch="dncnn",
        arch_kwargs=TINY,
        sigma_train=25,
    )


def _write_images(folder: Path, n: int = 2, size: int = 32) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        img = 0.2 + 0.6 * (xx if i % 2 else yy) + 0.05 * rng.standard_normal((size, size))
        arr = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(arr, mode="L").save(folder / f"{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One CLI run: plain, its exact twin and a WNE model, σ_train 25, 2 images."""
    base = tmp_path_factory.mktemp("evaluate")
    root = base / "ckpt"
    _save_plain(root, "dncnn-plain-s25")
    shutil.copytree(root / "dncnn-plain-s25", root / "twin")
    # Same weights under another key (config key must match the folder for load()).
    cfg = json.loads((root / "twin" / "config.json").read_text())
    cfg["key"] = "twin"
    (root / "twin" / "config.json").write_text(json.dumps(cfg))
    _save_wne(root, "dncnn-wne-s25")
    data = _write_images(base / "data")
    out = base / "out"
    code = ev.main(
        [
            "--models",
            "dncnn-plain-s25",
            "twin",
            "dncnn-wne-s25",
            "--root",
            str(root),
            "--data",
            str(data),
            "--out",
            str(out),
            "--draws",
            "2",
            "--device",
            "cpu",
            "--quiet",
            "--write-metrics",
        ]
    )
    return {"code": code, "out": out, "root": root, "data": data}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- CLI outputs


def test_psnr_csv_is_well_formed_with_sigma_train_in_grid(run: dict[str, object]) -> None:
    """psnr.csv: the spec's columns, one finite row per model × σ, grid = paper grid ∪ {25}."""
    assert run["code"] == 0
    path = Path(run["out"]) / "psnr.csv"
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
    assert header == list(pr.PSNR_COLUMNS)
    rows = _read_csv(path)
    grid = pr.paper_grid([25])
    assert len(grid) == 21
    assert len(rows) == 3 * len(grid)
    for key in ("dncnn-plain-s25", "twin", "dncnn-wne-s25"):
        sig = [float(r["sigma_test"]) for r in rows if r["model"] == key]
        assert sig == pytest.approx(grid)
        assert any(abs(s - 25) < 1e-9 for s in sig)
    for r in rows:
        for col in ("sigma_test", "input_psnr", "psnr", "ssim"):
            assert math.isfinite(float(r[col])), (r, col)
        assert -1 <= float(r["ssim"]) <= 1
        assert int(r["n"]) == 2 * 2  # 2 images × 2 draws


def test_input_psnr_follows_sigma_and_is_shared(run: dict[str, object]) -> None:
    """Input PSNR ≈ 20·log10(255/σ) (unclipped noise) and identical for every model."""
    rows = _read_csv(Path(run["out"]) / "psnr.csv")
    by_sigma: dict[str, set[str]] = {}
    for r in rows:
        by_sigma.setdefault(r["sigma_test"], set()).add(r["input_psnr"])
    for s, values in by_sigma.items():
        assert len(values) == 1
        assert float(values.pop()) == pytest.approx(20 * math.log10(255 / float(s)), abs=0.25)


def test_identical_models_get_identical_rows(run: dict[str, object]) -> None:
    """Pairing: the same weights under two keys see the same noise, so rows are equal."""
    rows = _read_csv(Path(run["out"]) / "psnr.csv")
    a = [(r["sigma_test"], r["psnr"], r["ssim"]) for r in rows if r["model"] == "dncnn-plain-s25"]
    b = [(r["sigma_test"], r["psnr"], r["ssim"]) for r in rows if r["model"] == "twin"]
    c = [(r["sigma_test"], r["psnr"], r["ssim"]) for r in rows if r["model"] == "dncnn-wne-s25"]
    assert a == b
    assert a != c


def test_defect_csv_separates_wne_from_plain(run: dict[str, object]) -> None:
    """defect.csv: one row per model × (a, b); WNE is NE to round-off, the plain model is not."""
    rows = _read_csv(Path(run["out"]) / "defect.csv")
    assert list(rows[0]) == list(pr.DEFECT_COLUMNS)
    n_pairs = len(pr.DEFAULT_DEFECT_A) * len(pr.DEFAULT_DEFECT_B)
    assert len(rows) == 3 * n_pairs
    wne_rows = [r for r in rows if r["model"] == "dncnn-wne-s25"]
    plain_rows = [r for r in rows if r["model"] == "dncnn-plain-s25"]
    assert max(float(r["defect_max"]) for r in wne_rows) <= 1e-5
    assert max(float(r["defect_max"]) for r in plain_rows) >= 1e-3
    for r in rows:
        assert float(r["sigma"]) == 25
        assert int(r["n"]) == 2
        assert 0 <= float(r["defect_mean"]) <= float(r["defect_max"])


def test_summary_json(run: dict[str, object]) -> None:
    """summary.json: matched σ, σ 5 / ≈50, grid mean, defect max and the paper's numbers."""
    out = Path(run["out"])
    summary = json.loads((out / "summary.json").read_text())
    rows = _read_csv(out / "psnr.csv")
    assert summary["run"]["n_images"] == 2
    assert summary["run"]["draws"] == 2
    assert len(summary["run"]["sigmas"]) == 21
    s = summary["models"]["dncnn-wne-s25"]
    assert s["sigma_train"] == 25
    assert s["matched"]["sigma"] == pytest.approx(25)
    assert s["sigma5"]["sigma"] == pytest.approx(5)
    assert s["sigma50"]["sigma"] == pytest.approx(np.geomspace(5, 100, 20)[15])  # 53.22
    mine = {float(r["sigma_test"]): float(r["psnr"]) for r in rows if r["model"] == "dncnn-wne-s25"}
    assert s["matched"]["psnr"] == pytest.approx(mine[25.0])
    off = [v for k, v in mine.items() if k != 25.0]
    assert s["grid_mean"]["psnr"] == pytest.approx(np.mean(off))
    assert s["grid_mean"]["n_sigmas"] == 20
    assert s["defect"]["max"] <= 1e-5
    assert summary["models"]["dncnn-plain-s25"]["defect"]["max"] >= 1e-3
    assert s["paper"]["column"] == "wne_dncnn"
    assert s["paper"]["matched"] == paper.MATCHED[25]["wne_dncnn"]
    assert s["paper"]["sigma50"]["psnr"] == paper.value_at(25, "wne_dncnn", 50)[1]
    assert summary["models"]["twin"]["paper"]["column"] == "b_dncnn"  # from arch, not key
    assert summary["run"]["paper_overlay"] is True


def test_plots_are_valid_pngs(run: dict[str, object]) -> None:
    """The mismatch figures exist, are non-empty and start with the PNG signature."""
    for name in ("mismatch.png", "mismatch_ssim.png"):
        data = (Path(run["out"]) / name).read_bytes()
        assert len(data) > 1000
        assert data[:8] == PNG_MAGIC


def test_write_metrics_updates_local_configs(run: dict[str, object]) -> None:
    """--write-metrics merges the headline numbers into each local config.json."""
    summary = json.loads((Path(run["out"]) / "summary.json").read_text())
    cfg = read_config(Path(run["root"]) / "dncnn-wne-s25")
    m = cfg.metrics["data"]  # keyed by the data folder's name
    assert m["psnr_matched"] == pytest.approx(
        summary["models"]["dncnn-wne-s25"]["matched"]["psnr"], abs=1e-4
    )
    assert m["ne_defect_max"] <= 1e-5
    assert m["draws"] == 2
    # The weights are untouched: the checkpoint still loads (sha256 verified).
    wne.load("dncnn-wne-s25", root=run["root"], source="local")


# --------------------------------------------------------------------------- protocol rules


def test_noisy_inputs_unclipped_outputs_clamped() -> None:
    """Mid-grey image, identity model: input PSNR at σ=100 is the unclipped value, output
    PSNR is that of the clamped noisy image (same seeded noise), hence higher."""
    x = torch.full((1, 1, 32, 32), 0.5)
    m = pr.EvalModel(key="identity", model=nn.Identity(), sigma_train=25)
    res = pr.evaluate([m], [("grey", x)], pr.Protocol(sigmas=[100, 50], draws=3, seed=7))
    rows = {r["sigma_test"]: r for r in res.psnr_rows}
    assert rows[100.0]["input_psnr"] == pytest.approx(20 * math.log10(255 / 100), abs=0.3)
    for sigma, r in rows.items():
        noisy = [
            x + gaussian_noise(x.shape, sigma, pr.noise_seed(7, 0, k, sigma)) for k in range(3)
        ]
        clipped = torch.cat(noisy).clamp(0, 1)
        raw = torch.cat(noisy)
        ref = x.expand_as(clipped)
        assert r["input_psnr"] == pytest.approx(float(psnr(raw, ref, 1.0).mean()), abs=1e-9)
        assert r["psnr"] == pytest.approx(float(psnr(clipped, ref, 1.0).mean()), abs=1e-9)
    assert rows[100.0]["psnr"] > rows[100.0]["input_psnr"] + 1.0


def test_noise_seed_is_deterministic_and_distinct() -> None:
    """Seeds depend only on (seed, image, draw, σ) and differ between cells."""
    cells = [(s, i, k, sig) for s in (0, 1) for i in (0, 1) for k in (0, 1) for sig in (5, 25.0)]
    seeds = [pr.noise_seed(*c) for c in cells]
    assert seeds == [pr.noise_seed(*c) for c in cells]
    assert len(set(seeds)) == len(cells)
    assert all(0 <= s < 2**63 for s in seeds)


def test_paper_grid() -> None:
    """geomspace(5, 100, 20) plus σ_train, sorted, without duplicates."""
    g = pr.paper_grid([25])
    assert len(g) == 21 and 25.0 in g and g == sorted(g)
    assert pr.paper_grid([5]) == pytest.approx(np.geomspace(5, 100, 20).tolist())
    assert len(pr.paper_grid([10, 25, 50])) == 23


def test_batched_defect_matches_ne_defect() -> None:
    """The batched defect sweep computes the same quantity as wne.ne_defect."""
    torch.manual_seed(0)
    net = models.build("fdncnn", depth=3, width=8).eval()
    y = torch.rand(1, 1, 24, 24)
    pairs = [(0.5, -0.5), (2.0, 0.5), (4.0, 0.0)]
    got = pr._defects(net, y, pairs, torch.device("cpu"), bs=2)
    want = [float(wne.ne_defect(net, y, a, b)) for a, b in pairs]
    assert got == pytest.approx(want, rel=1e-4)


def test_different_sizes_and_batch_size_do_not_change_results() -> None:
    """Images of different sizes work, the forward batch size does not change numbers, and
    the defect sweep uses the first ``defect_images`` images."""
    torch.manual_seed(0)
    net = models.build("fdncnn", depth=3, width=8).eval()
    m = pr.EvalModel(key="f", model=net, sigma_train=15)
    imgs = [("a", torch.rand(1, 1, 16, 24)), ("b", torch.rand(1, 1, 20, 12))]
    r1 = pr.evaluate([m], imgs, pr.Protocol(sigmas=[10, 30], draws=2), batch_size=1)
    r2 = pr.evaluate(
        [m], imgs, pr.Protocol(sigmas=[10, 30], draws=2, defect_images=1), batch_size=3
    )
    assert {r["n"] for r in r1.defect_rows} == {2} and r1.defect_images == 2
    assert {r["n"] for r in r2.defect_rows} == {1} and r2.defect_images == 1
    for a, b in zip(r1.psnr_rows, r2.psnr_rows, strict=True):
        assert a["psnr"] == pytest.approx(b["psnr"], abs=1e-6)
        assert a["ssim"] == pytest.approx(b["ssim"], abs=1e-6)


class _Counting(nn.Module):
    """A deterministic non-NE model that counts its forward calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return 0.8 * x + 0.1


def test_cache_reuses_matching_results_only(tmp_path: Path) -> None:
    """--cache: a second identical run does not call the model and gives the same numbers;
    another protocol (draws) misses the cache."""
    net = _Counting()
    m = pr.EvalModel(key="c", model=net, sigma_train=25, sha256="ab" * 32)
    imgs = [("a", torch.rand(1, 1, 16, 16)), ("b", torch.rand(1, 1, 16, 16))]
    proto, cache = pr.Protocol(sigmas=[10, 25], draws=2), tmp_path / "cache"
    r1 = pr.evaluate([m], imgs, proto, cache=cache)
    first = net.calls
    assert first > 0
    r2 = pr.evaluate([m], imgs, proto, cache=cache)
    assert net.calls == first
    assert r2.psnr_rows == r1.psnr_rows
    assert r2.defect_rows == r1.defect_rows
    pr.evaluate([m], imgs, pr.Protocol(sigmas=[10, 25], draws=1), cache=cache)
    assert net.calls > first
    m.sha256 = ""  # unknown weights: never cached
    calls = net.calls
    pr.evaluate([m], imgs, proto, cache=cache)
    assert net.calls > calls


# --------------------------------------------------------------------------- CLI selection


def test_all_skips_sigma_trains_without_checkpoints(tmp_path: Path) -> None:
    """--all evaluates σ_train 25 (the only one with checkpoints) and skips 10 and 50."""
    root = tmp_path / "ckpt"
    _save_wne(root, "dncnn-wne-s25")
    data = _write_images(tmp_path / "data", n=1, size=16)
    out = tmp_path / "out"
    args = ["--all", "--root", str(root), "--data", str(data), "--out", str(out)]
    args += ["--sigmas", "10", "40", "--draws", "1", "--device", "cpu", "--quiet"]
    assert ev.main(args) == 0
    assert (out / "sigma25" / "psnr.csv").is_file()
    assert not (out / "sigma10").exists() and not (out / "sigma50").exists()
    rows = _read_csv(out / "sigma25" / "psnr.csv")
    assert [float(r["sigma_test"]) for r in rows] == [10.0, 40.0]


def test_sigma_train_selects_matching_keys(tmp_path: Path) -> None:
    """--sigma-train 25 picks every key ending in -s25 from --root."""
    root = tmp_path / "ckpt"
    _save_wne(root, "dncnn-wne-s25")
    _save_plain(root, "dncnn-plain-s25")
    data = _write_images(tmp_path / "data", n=1, size=16)
    out = tmp_path / "out"
    args = ["--sigma-train", "25", "--root", str(root), "--data", str(data), "--out", str(out)]
    args += ["--sigmas", "20", "--draws", "1", "--device", "cpu", "--quiet", "--no-paper-overlay"]
    assert ev.main(args) == 0
    assert {r["model"] for r in _read_csv(out / "psnr.csv")} == {
        "dncnn-wne-s25",
        "dncnn-plain-s25",
    }


def test_sigma_train_takes_one_checkpoint_size_of_the_catalog(tmp_path: Path) -> None:
    """The CPU-sized catalog checkpoints by default, the GPU-trained ones with --size gpu,
    both with --size all; a key outside the catalog is always taken."""
    root = tmp_path / "ckpt"
    for key in ("dncnn-wne-s25", "dncnn-wne-s25-gpu", "my-own-s25"):
        _save_wne(root, key)
    data = _write_images(tmp_path / "data", n=1, size=16)
    base = ["--sigma-train", "25", "--root", str(root), "--data", str(data), "--sigmas", "20"]
    base += ["--draws", "1", "--device", "cpu", "--quiet", "--no-paper-overlay"]
    for i, (size, want) in enumerate(
        (
            ([], {"dncnn-wne-s25", "my-own-s25"}),
            (["--size", "gpu"], {"dncnn-wne-s25-gpu", "my-own-s25"}),
            (["--size", "all"], {"dncnn-wne-s25", "dncnn-wne-s25-gpu", "my-own-s25"}),
        )
    ):
        out = tmp_path / f"out{i}"
        assert ev.main([*base, "--out", str(out), *size]) == 0
        assert {r["model"] for r in _read_csv(out / "psnr.csv")} == want
    assert json.loads((out / "summary.json").read_text())["run"]["paper_overlay"] is False


def test_sigma_train_comes_from_config_not_key(tmp_path: Path) -> None:
    """σ_train is read from config.json, never parsed from the key: a key saying s25 over a
    config saying 10 is a σ_train = 10 model (and --sigma-train 10 selects it); a config
    without σ_train needs the --sigma-train fallback."""
    root = tmp_path / "ckpt"
    _save_wne(root, "dncnn-wne-s25")
    cfg_path = root / "dncnn-wne-s25" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**cfg, "sigma_train": 10}))
    (m,) = pr.resolve_models(["dncnn-wne-s25"], root=root)
    assert m.sigma_train == 10 and m.paper_column == "wne_dncnn"
    assert pr.checkpoints_for_sigma(root, 10) == ["dncnn-wne-s25"]
    assert pr.checkpoints_for_sigma(root, 25) == []
    cfg_path.write_text(json.dumps({**cfg, "sigma_train": None}))
    with pytest.raises(ValueError, match="--sigma-train"):
        pr.resolve_models(["dncnn-wne-s25"], root=root)
    (m,) = pr.resolve_models(["dncnn-wne-s25"], root=root, sigma_train=15)
    assert m.sigma_train == 15


def test_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Missing checkpoints, folders and images give exit status 2 and a message."""
    monkeypatch.delenv("WNE_HUB_REPO", raising=False)
    data = _write_images(tmp_path / "data", n=1, size=16)
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["--out", str(tmp_path / "o"), "--quiet", "--device", "cpu"]
    assert ev.main(["--all", "--root", str(empty), "--data", str(data), *base]) == 2
    assert "no checkpoints" in capsys.readouterr().err
    assert ev.main(["--models", "nope-s25", "--root", str(empty), "--data", str(data), *base]) == 2
    assert "nope-s25" in capsys.readouterr().err
    root = tmp_path / "ckpt"
    _save_wne(root, "dncnn-wne-s25")
    assert ev.main(["--sigma-train", "25", "--root", str(root), "--data", str(empty), *base]) == 2
    assert "no images" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ev.main(["--data", str(data), *base])  # no model selection


def test_load_images_modes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Colour → luma with a log line, grey-as-RGB silently, 16-bit scaled, tiny refused."""
    d = tmp_path / "imgs"
    d.mkdir()
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb, mode="RGB").save(d / "a_colour.png")
    grey_rgb = np.full((16, 16, 3), 128, np.uint8)
    Image.fromarray(grey_rgb, mode="RGB").save(d / "b_grey.bmp")
    Image.fromarray(np.full((16, 16), 65535, np.uint16)).save(d / "c_16bit.png")
    (d / "notes.txt").write_text("not an image")
    with caplog.at_level("WARNING", logger="wne.lab.protocol"):
        imgs = pr.load_images(d)
    assert [n for n, _ in imgs] == ["a_colour.png", "b_grey.bmp", "c_16bit.png"]
    assert all(t.shape == (1, 1, 16, 16) and t.dtype == torch.float32 for _, t in imgs)
    assert float(imgs[0][1].mean()) == pytest.approx(76 / 255, abs=1 / 255)  # 0.299·255
    assert float(imgs[1][1].mean()) == pytest.approx(128 / 255)
    assert float(imgs[2][1].max()) == pytest.approx(1.0)
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "a_colour.png" in warned and "b_grey.bmp" not in warned
    assert len(pr.load_images(d, max_images=1)) == 1
    assert pr.load_images(d, channels=3)[0][1].shape == (1, 3, 16, 16)
    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(small / "x.png")
    with pytest.raises(ValueError, match="sides"):
        pr.load_images(small)


# --------------------------------------------------------------------------- paper data


@pytest.mark.parametrize("sigma_train", paper.SIGMA_TRAINS)
def test_paper_curves_well_formed(sigma_train: int) -> None:
    """21 points per column with the σ_train row, monotone σ grid, input PSNR = 20·log10(255/σ)."""
    table = paper.MISMATCH[sigma_train]
    assert set(table) == {"sigma_test", "input_psnr", *paper.COLUMNS}
    assert all(len(v) == 21 for v in table.values())
    sig = table["sigma_test"]
    assert all(b > a for a, b in itertools.pairwise(sig))
    assert sigma_train in sig
    assert sig[0] == 5 and sig[-1] == 100
    assert sig == pytest.approx(pr.paper_grid([sigma_train]), abs=0.006)  # rounded to 0.01
    for s, p in zip(sig, table["input_psnr"], strict=True):
        assert p == pytest.approx(20 * math.log10(255 / s), abs=0.03)


@pytest.mark.parametrize("sigma_train", paper.SIGMA_TRAINS)
def test_paper_curves_agree_with_table1_and_grid_means(sigma_train: int) -> None:
    """Transcription cross-check: σ_train rows vs Table 1 (≤ 0.015 dB: the σ10 rows come from
    a newer run) and off-training means vs the derived grid means (rounding ≤ 0.01 dB)."""
    table = paper.MISMATCH[sigma_train]
    j = table["sigma_test"].index(sigma_train)
    for col in paper.COLUMNS:
        assert table[col][j] == pytest.approx(paper.MATCHED[sigma_train][col], abs=0.0151)
        off = [v for i, v in enumerate(table[col]) if i != j]
        assert np.mean(off) == pytest.approx(paper.GRID_MEAN[sigma_train][col], abs=0.011)


def test_paper_headline_values() -> None:
    """A few values the paper states in its text (§4.1, Fig. 4) are in the curves."""
    assert paper.value_at(25, "wne_dncnn", 5) == (5.0, 35.76)
    assert paper.value_at(25, "b_dncnn", 5) == (5.0, 30.32)
    assert paper.value_at(25, "b_dncnn", 50) == (53.22, 16.11)
    assert paper.value_at(25, "wne_dncnn", 50) == (53.22, 26.75)
    assert paper.value_at(50, "wne_dncnn", 5)[1] - paper.value_at(50, "se_fdncnn", 5)[1] == (
        pytest.approx(3.63)
    )
    assert paper.value_at(10, "b_swinir", 100)[1] == 10.41
    assert paper.value_at(10, "wne_swinir", 100)[1] == 23.72


@pytest.mark.skipif(not NOTES.is_file(), reason="project reference notes not present")
def test_paper_data_matches_reference_notes() -> None:
    """Every number equals the §5.2 tables of the project's reference notes."""
    text = NOTES.read_text(encoding="utf-8")
    names = ["sigma_test", "input_psnr", *paper.COLUMNS]
    for s in paper.SIGMA_TRAINS:
        start = text.index(f"**σ_train = {s}** (`eval_logs/Set12/dncnn_sigma{s}")
        block = text[start:].split("\n\n")[1]
        rows = [
            [float(c.strip().strip("*")) for c in line.strip("|").split("|")]
            for line in block.splitlines()
            if re.match(r"\|\s*\**[0-9]", line)
        ]
        assert len(rows) == 21
        for j, name in enumerate(names):
            assert paper.MISMATCH[s][name] == tuple(r[j] for r in rows), (s, name)


def test_paper_column_mapping() -> None:
    """Checkpoints map to the paper's columns by their config's (arch, wrapper), through the
    catalog's families; models the catalog or the paper lacks have no column."""
    assert paper.paper_column("dncnn", "none") == "b_dncnn"
    assert paper.paper_column("dncnn", "wne") == "wne_dncnn"
    assert paper.paper_column("swinir", "wne") == "wne_swinir"
    assert paper.paper_column("fdncnn_ne", "none") == "ne_fdncnn"
    assert paper.paper_column("fdncnn", "none") is None  # benchmarked only, not in the paper
    assert paper.paper_column("mystery") is None
    for fam in catalog.families():
        for variant, col in fam.paper_columns.items():
            assert col in paper.COLUMNS
            wrapper = "wne" if variant == "wne" else "none"
            assert paper.paper_column(fam.arch, wrapper) == col
    with pytest.raises(KeyError):
        paper.curve(15, "b_dncnn")
    with pytest.raises(KeyError):
        paper.curve(25, "nope")


def test_mismatch_plot_with_overlay(tmp_path: Path) -> None:
    """plots.mismatch_plot writes a PNG with measured and paper curves."""
    from wne.lab.plots import Curve, curve_style, mismatch_plot

    px, py = paper.curve(25, "wne_dncnn")
    c = Curve("dncnn-wne-s25", px, [v - 1 for v in py], paper_column="wne_dncnn")
    path = mismatch_plot(
        [c], tmp_path / "p.png", sigma_train_markers=[(25, 20.17)], paper_sigma_train=25
    )
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert curve_style(c)[0] != curve_style(Curve("p", [], [], paper_column="b_dncnn"))[0]
    with pytest.raises(ValueError):
        mismatch_plot([Curve("bad", [1.0], [])], tmp_path / "q.png")


# --------------------------------------------------------------------------- other noise types


class _Linear(nn.Module):
    """A fixed, deterministic non-NE model: 0.8·y + 0.1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.8 * x + 0.1


def _ramp(size: int = 24) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return (0.2 + 0.5 * xx + 0.2 * yy)[None, None]


def test_gaussian_numbers_are_pinned() -> None:
    """The Gaussian protocol (default and ``noise="gaussian"``) gives exactly the numbers
    the protocol gave before the noise types existed (values recorded from that code)."""
    m = pr.EvalModel(key="lin", model=_Linear(), sigma_train=25)
    pinned = {
        10.0: (28.318437969169075, 26.792845982887172, 0.7512823708823888),
        25.0: (20.36244588466897, 21.70351671832335, 0.36702497257674704),
        50.0: (14.144070801970836, 15.877449201258713, 0.10984881523924461),
    }
    for proto in (
        pr.Protocol(sigmas=[10, 25, 50], draws=2, seed=0),
        pr.Protocol(sigmas=[10, 25, 50], draws=2, seed=0, noise="gaussian"),
    ):
        res = pr.evaluate([m], [("g", _ramp())], proto)
        for r in res.psnr_rows:
            want = pinned[r["sigma_test"]]
            assert (r["input_psnr"], r["psnr"], r["ssim"]) == pytest.approx(want, abs=1e-9)
            assert r["noise"] == "gaussian" and r["level"] == r["sigma_test"]
        assert res.defect_rows and res.defect_images == 1


def _expected_noisy(noise: str, x: torch.Tensor, level: float, seed: int, **kw: float):
    from wne import degrade

    if noise in degrade.NOISE_KINDS:
        return x + degrade.noise(noise, x.shape, level, seed)
    if noise == "lowlight":
        return degrade.low_light(x, level, seed, read_noise=kw.get("read_noise", 0.0))
    base = x + gaussian_noise(x.shape, kw["jpeg_sigma"], seed) if kw.get("jpeg_sigma") else x
    return degrade.jpeg(base, int(level))


@pytest.mark.parametrize(
    ("noise", "levels", "kw"),
    [
        ("uniform", [5.0, 30.0], {}),
        ("laplace", [5.0, 30.0], {}),
        ("rayleigh", [5.0, 17.0], {}),
        ("lowlight", [3.0, 100.0], {"read_noise": 2.0}),
        ("jpeg", [10.0, 85.0], {}),
        ("jpeg", [30.0], {"jpeg_sigma": 14.0}),
    ],
)
def test_noise_types_are_seeded_paired_and_reported(
    noise: str, levels: list[float], kw: dict[str, float]
) -> None:
    """Every noise type: the noisy input is the wne.degrade corruption seeded by
    noise_seed(seed, image, draw, level); input PSNR, equivalent σ and the identity model's
    output (its clamped input) follow from it; no defect sweep outside Gaussian noise."""
    x = _ramp()
    ident = pr.EvalModel(key="id", model=nn.Identity(), sigma_train=25)
    proto = pr.Protocol(sigmas=levels, draws=2, seed=5, noise=noise, **kw)
    res = pr.evaluate([ident], [("g", x)], proto)
    assert res.noise == noise and res.defect_rows == [] and res.defect_images == 0
    for r in res.psnr_rows:
        lv = r["level"]
        noisy = torch.cat(
            [_expected_noisy(noise, x, lv, pr.noise_seed(5, 0, k, lv), **kw) for k in range(2)]
        )
        ref = x.expand_as(noisy)
        assert r["noise"] == noise
        assert r["input_psnr"] == pytest.approx(float(psnr(noisy, ref, 1.0).mean()), abs=1e-9)
        eq = np.mean([wne.degrade.equivalent_sigma(noisy[k : k + 1], x) for k in range(2)])
        assert r["equivalent_sigma"] == pytest.approx(eq, rel=1e-6)
        clamped = psnr(noisy.clamp(0, 1), ref, 1.0).mean()
        assert r["psnr"] == pytest.approx(float(clamped), abs=1e-9)
    if noise == "rayleigh":  # not recentred: the equivalent σ includes its mean 1.913·σ
        r5 = res.psnr_rows[0]
        assert r5["equivalent_sigma"] == pytest.approx(5 * math.sqrt(1 + 1.913**2), rel=0.1)


def test_noise_types_draw_different_noise() -> None:
    """Same level and seed, different noise type: different inputs (the type is used)."""
    x = _ramp()
    m = pr.EvalModel(key="id", model=nn.Identity(), sigma_train=25)
    got = {
        n: pr.evaluate([m], [("g", x)], pr.Protocol(sigmas=[20], draws=1, noise=n)).psnr_rows[0]
        for n in ("gaussian", "uniform", "laplace", "rayleigh")
    }
    assert len({round(r["input_psnr"], 9) for r in got.values()}) == 4


def test_cache_key_includes_noise_type(tmp_path: Path) -> None:
    """A cached Gaussian (or uniform) result is not reused for uniform (or Laplace) noise at
    the same levels, nor lowlight results for another read noise; the same noise type hits
    the cache."""
    net = _Counting()
    m = pr.EvalModel(key="c", model=net, sigma_train=25, sha256="cd" * 32)
    imgs = [("a", _ramp(16))]
    cache = tmp_path / "cache"
    pr.evaluate([m], imgs, pr.Protocol(sigmas=[10, 20], draws=1), cache=cache)
    calls = net.calls
    r_u = pr.evaluate(
        [m], imgs, pr.Protocol(sigmas=[10, 20], draws=1, noise="uniform"), cache=cache
    )
    assert net.calls > calls
    calls = net.calls
    r_u2 = pr.evaluate(
        [m], imgs, pr.Protocol(sigmas=[10, 20], draws=1, noise="uniform"), cache=cache
    )
    assert net.calls == calls and r_u2.psnr_rows == r_u.psnr_rows
    # laplace vs uniform: nothing but the noise type differs
    pr.evaluate([m], imgs, pr.Protocol(sigmas=[10, 20], draws=1, noise="laplace"), cache=cache)
    assert net.calls > calls
    pr.evaluate([m], imgs, pr.Protocol(sigmas=[10], draws=1, noise="lowlight"), cache=cache)
    calls = net.calls
    pr.evaluate(
        [m], imgs, pr.Protocol(sigmas=[10], draws=1, noise="lowlight", read_noise=3), cache=cache
    )
    assert net.calls > calls


def test_noise_cli_writes_its_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--noise lowlight: psnr.csv with the noise columns (photons as levels), no defect.csv,
    summary.json with the levels and equivalent σ, both plots; the table is printed."""
    root = tmp_path / "ckpt"
    _save_plain(root, "dncnn-plain-s25")
    _save_wne(root, "dncnn-wne-s25")
    data = _write_images(tmp_path / "data", n=2, size=16)
    out = tmp_path / "out"
    args = ["--models", "dncnn-plain-s25", "dncnn-wne-s25", "--root", str(root)]
    args += ["--data", str(data), "--out", str(out), "--draws", "1", "--device", "cpu"]
    args += ["--quiet", "--noise", "lowlight", "--levels", "10", "3", "--read-noise", "1"]
    assert ev.main(args) == 0
    assert "photons" in capsys.readouterr().out
    with (out / "psnr.csv").open(encoding="utf-8") as fh:
        assert fh.readline().strip().split(",") == list(pr.NOISE_COLUMNS)
    rows = _read_csv(out / "psnr.csv")
    assert [float(r["level"]) for r in rows] == [3.0, 10.0, 3.0, 10.0]
    assert {r["noise"] for r in rows} == {"lowlight"}
    assert not (out / "defect.csv").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["noise"] == "lowlight" and summary["run"]["level_name"] == "photons"
    assert summary["run"]["read_noise"] == 1.0
    lv = summary["models"]["dncnn-wne-s25"]["levels"]
    assert [e["photons"] for e in lv] == [3.0, 10.0]
    assert lv[0]["equivalent_sigma"] > lv[1]["equivalent_sigma"] > 0
    for name in ("mismatch.png", "mismatch_ssim.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    "extra",
    [
        ["--noise", "jpeg", "--levels", "0"],
        ["--noise", "jpeg", "--levels", "50.5"],
        ["--noise", "jpeg", "--levels", "96"],
        ["--noise", "lowlight", "--levels", "0"],
        ["--noise", "lowlight", "--read-noise", "-1"],
        ["--noise", "uniform", "--levels", "-5"],
        ["--noise", "speckle"],
        ["--read-noise", "2"],
        ["--jpeg-sigma", "14"],
        ["--noise", "uniform", "--write-metrics"],
    ],
)
def test_noise_cli_rejects_bad_arguments(tmp_path: Path, extra: list[str]) -> None:
    """Levels a noise type cannot take and options of another type exit with usage (2)."""
    data = _write_images(tmp_path / "data", n=1, size=16)
    args = ["--models", "x", "--data", str(data), "--out", str(tmp_path / "o"), *extra]
    with pytest.raises(SystemExit) as exc:
        ev.main(args)
    assert exc.value.code == 2


def test_jpeg_compresses_the_clean_image_by_default() -> None:
    """As the paper's JPEG transfer (input 37.97 dB at QF 85): the default compresses the
    clean image; --jpeg-sigma adds Gaussian noise first."""
    args = ev._parser().parse_args(["--models", "m", "--data", "d", "--out", "o"])
    assert args.jpeg_sigma == 0 and args.noise == "gaussian"
    assert pr.Protocol(noise="jpeg").jpeg_sigma == 0
    m = pr.EvalModel(key="id", model=nn.Identity(), sigma_train=25)
    clean = pr.evaluate([m], [("g", _ramp(32))], pr.Protocol(sigmas=[85], noise="jpeg"))
    noisy = pr.evaluate(
        [m], [("g", _ramp(32))], pr.Protocol(sigmas=[85], noise="jpeg", jpeg_sigma=14)
    )
    assert clean.psnr_rows[0]["input_psnr"] > 35 > 27 > noisy.psnr_rows[0]["input_psnr"]
