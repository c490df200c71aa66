"""The evaluation (wne.lab.protocol, wne.lab.report, ``wne evaluate``), the paper's numbers
(wne.lab.paper) and the mismatch plot. Tiny random checkpoints and images."""

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
from wne import catalog, degrade, models
from wne.checkpoints import read_config
from wne.lab import evaluate as ev
from wne.lab import paper
from wne.lab import protocol as pr
from wne.metrics import psnr

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = {"depth": 3, "width": 8}
NOTES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper-notes.md"


def save_tiny(
    root: Path, key: str, *, wrap: bool, seed: int = 0, sigma: float = 25, gain: float = 0
) -> None:
    """A tiny DnCNN checkpoint, wrapped or not, its last layer far from the identity (plain: not
    NE); ``gain``: every conv drawn with this std (a strongly amplifying model)."""
    torch.manual_seed(seed)
    net = models.build("dncnn", **TINY)
    nn.init.normal_(net.body[-1].weight, std=0.2)
    nn.init.constant_(net.body[-1].bias, 0.05)
    for conv in (c for c in net.modules() if gain and isinstance(c, nn.Conv2d)):
        nn.init.normal_(conv.weight, std=gain)
    model = wne.NormEquivariant(net) if wrap else net
    wne.save(model, root / key, key=key, arch="dncnn", arch_kwargs=TINY, sigma_train=sigma)


def write_images(folder: Path, n: int = 2, size: int = 32) -> Path:
    """``n`` grey ramps with a little texture, ``00.png``, ``01.png``, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        img = 0.2 + 0.6 * (xx if i % 2 else yy) + 0.05 * np.sin(9 * xx * (i + 1))
        pixels = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")
    return folder


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


def _cli(root: Path, data: Path, out: Path, *extra: str) -> int:
    base = ["--root", str(root), "--data", str(data), "--out", str(out), "--device", "cpu"]
    return ev.main([*base, "--quiet", *extra])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One CLI run: a plain model, its exact twin under another key and a WNE model."""
    base = tmp_path_factory.mktemp("evaluate")
    root = base / "ckpt"
    save_tiny(root, "dncnn-plain-s25", wrap=False)
    shutil.copytree(root / "dncnn-plain-s25", root / "twin")
    cfg = json.loads((root / "twin" / "config.json").read_text())
    (root / "twin" / "config.json").write_text(json.dumps({**cfg, "key": "twin"}))
    save_tiny(root, "dncnn-wne-s25", wrap=True, seed=1)
    data, out = write_images(base / "data"), base / "out"
    keys = ["--models", "dncnn-plain-s25", "twin", "dncnn-wne-s25"]
    assert _cli(root, data, out, *keys, "--draws", "2", "--write-metrics") == 0
    return {"out": out, "root": root}


def test_psnr_csv_has_the_paper_grid_paired_noise_and_unclipped_input(run: dict) -> None:
    """psnr.csv: a finite row per model × σ of geomspace(5, 100, 20) ∪ {25}; input PSNR of the
    unclipped noise (≈ 20·log10(255/σ)), alike for every model; the same weights under two keys
    give the same rows (paired noise), another model other rows."""
    path = run["out"] / "psnr.csv"
    assert path.read_text().splitlines()[0].split(",") == list(pr.PSNR_COLUMNS)
    rows, grid = _csv(path), pr.paper_grid([25])
    assert len(grid) == 21 and len(rows) == 3 * 21
    by_model = {k: [r for r in rows if r["model"] == k] for k in ("dncnn-plain-s25", "twin")}
    wne_rows = [r for r in rows if r["model"] == "dncnn-wne-s25"]
    for r in rows:
        s = float(r["sigma_test"])
        assert float(r["input_psnr"]) == pytest.approx(20 * math.log10(255 / s), abs=0.25)
        assert -1 <= float(r["ssim"]) <= 1 and math.isfinite(float(r["psnr"]))
        assert int(r["n"]) == 2 * 2  # images × draws
    assert [float(r["sigma_test"]) for r in wne_rows] == pytest.approx(grid)
    twin = [{**r, "model": "dncnn-plain-s25"} for r in by_model["twin"]]
    assert by_model["dncnn-plain-s25"] == twin
    assert [r["psnr"] for r in wne_rows] != [r["psnr"] for r in by_model["twin"]]
    assert len({r["input_psnr"] for r in rows if r["sigma_test"] == rows[0]["sigma_test"]}) == 1


def test_defects_summary_plots_and_metrics(run: dict) -> None:
    """defect.csv: a row per model × (a, b), WNE NE to round-off, plain not; summary.json: matched
    σ, σ 5 and ≈ 50, grid mean, defect, the paper's numbers (by arch, not key); two PNG plots;
    --write-metrics stored the headline numbers in config.json, the weights untouched."""
    out = run["out"]
    rows = _csv(out / "defect.csv")
    assert list(rows[0]) == list(pr.DEFECT_COLUMNS) and len(rows) == 3 * 12
    assert max(float(r["defect_max"]) for r in rows if r["model"] == "dncnn-wne-s25") <= 1e-5
    assert max(float(r["defect_max"]) for r in rows if r["model"] == "twin") >= 1e-3
    assert all(int(r["n"]) == 2 and float(r["defect_mean"]) <= float(r["defect_max"]) for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    s = summary["models"]["dncnn-wne-s25"]
    psnrs = [(float(r["sigma_test"]), float(r["psnr"])) for r in _csv(out / "psnr.csv")]
    mine = dict(psnrs[-21:])  # the last model's
    assert (s["matched"]["sigma"], s["sigma5"]["sigma"]) == (25, 5)
    assert s["sigma50"]["sigma"] == pytest.approx(np.geomspace(5, 100, 20)[15])  # 53.22
    assert s["matched"]["psnr"] == pytest.approx(mine[25.0])
    assert s["grid_mean"]["psnr"] == pytest.approx(np.mean([v for k, v in mine.items() if k != 25]))
    assert s["defect"]["max"] <= 1e-5 and summary["models"]["twin"]["defect"]["max"] >= 1e-3
    want = ("wne_dncnn", paper.MATCHED[25]["wne_dncnn"])
    assert (s["paper"]["column"], s["paper"]["matched"]) == want
    assert s["paper"]["sigma50"]["psnr"] == paper.value_at(25, "wne_dncnn", 50)[1]
    assert summary["models"]["twin"]["paper"]["column"] == "b_dncnn"
    assert summary["run"]["paper_overlay"] is True and summary["run"]["draws"] == 2
    for name in ("mismatch.png", "mismatch_ssim.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    m = read_config(run["root"] / "dncnn-wne-s25").metrics["data"]  # the data folder's name
    assert m["psnr_matched"] == pytest.approx(s["matched"]["psnr"], abs=1e-4) and m["draws"] == 2
    wne.load("dncnn-wne-s25", root=run["root"], source="local")  # sha256 still verifies


# --------------------------------------------------------------------------- protocol rules


class _Linear(nn.Module):
    """A fixed non-NE model, 0.8·y + 0.1, that counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return 0.8 * x + 0.1


def _ramp(size: int = 24) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return (0.2 + 0.5 * xx + 0.2 * yy)[None, None]


def test_gaussian_numbers_are_pinned() -> None:
    """The Gaussian protocol gives exactly the numbers recorded from the original code (its
    seeds, noise and metrics are what the published tables rest on)."""
    m = pr.EvalModel(key="lin", model=_Linear(), sigma_train=25)
    pinned = {
        10.0: (28.318437969169075, 26.792845982887172, 0.7512823708823888),
        25.0: (20.36244588466897, 21.70351671832335, 0.36702497257674704),
        50.0: (14.144070801970836, 15.877449201258713, 0.10984881523924461),
    }
    res = pr.evaluate([m], [("g", _ramp())], pr.Protocol(sigmas=[10, 25, 50], draws=2, seed=0))
    for r in res.psnr_rows:
        got = (r["input_psnr"], r["psnr"], r["ssim"])
        assert got == pytest.approx(pinned[r["level"]], abs=1e-9)
    assert res.defect_rows and res.defect_images == 1


def test_seeds_grid_defect_and_batching() -> None:
    """noise_seed depends only on its cell and differs between cells; the paper grid is
    geomspace(5, 100, 20) ∪ σ_train; the batched defect sweep equals wne.ne_defect; images of
    different sizes work, the batch size changes no number, the defect sweep takes the first N."""
    cells = list(itertools.product((0, 1), (0, 1), (0, 1), (5, 25.0)))
    seeds = [pr.noise_seed(*c) for c in cells]
    assert seeds == [pr.noise_seed(*c) for c in cells] and len(set(seeds)) == len(cells)
    assert all(0 <= s < 2**63 for s in seeds)
    assert pr.paper_grid([5]) == pytest.approx(np.geomspace(5, 100, 20).tolist())
    assert len(pr.paper_grid([10, 25, 50])) == 23 and 25.0 in pr.paper_grid([25])
    torch.manual_seed(0)
    net = models.build("fdncnn", depth=3, width=8).eval()
    y, pairs = torch.rand(1, 1, 24, 24), [(0.5, -0.5), (2.0, 0.5), (4.0, 0.0)]
    got = pr._defects(net, y, pairs, torch.device("cpu"), bs=2)
    assert got == pytest.approx([float(wne.ne_defect(net, y, a, b)) for a, b in pairs], rel=1e-4)
    m = pr.EvalModel(key="f", model=net, sigma_train=15)
    imgs = [("a", torch.rand(1, 1, 16, 24)), ("b", torch.rand(1, 1, 20, 12))]
    r1 = pr.evaluate([m], imgs, pr.Protocol(sigmas=[10, 30]), batch_size=1)
    r2 = pr.evaluate([m], imgs, pr.Protocol(sigmas=[10, 30], defect_images=1), batch_size=3)
    assert {r["n"] for r in r1.defect_rows} == {2} and {r["n"] for r in r2.defect_rows} == {1}
    for a, b in zip(r1.psnr_rows, r2.psnr_rows, strict=True):
        assert (a["psnr"], a["ssim"]) == pytest.approx((b["psnr"], b["ssim"]), abs=1e-6)


def test_cache_reuses_only_matching_results(tmp_path: Path) -> None:
    """--cache: an identical run does not call the model and gives the same rows; another
    draw count, noise type or read noise misses; unknown weights are never cached."""
    net = _Linear()
    m = pr.EvalModel(key="c", model=net, sigma_train=25, sha256="ab" * 32)
    imgs, cache = [("a", _ramp(16)), ("b", _ramp(16).flip(-1))], tmp_path / "cache"

    def calls(**kw: object) -> tuple[int, pr.RunResult]:
        before = net.calls
        res = pr.evaluate([m], imgs, pr.Protocol(sigmas=[10, 20], **kw), cache=cache)
        return net.calls - before, res

    (first, r1), (again, r2) = calls(draws=2), calls(draws=2)
    assert first > 0 and again == 0
    assert (r2.psnr_rows, r2.defect_rows) == (r1.psnr_rows, r1.defect_rows)
    runs = [{"draws": 1}, {"noise": "uniform"}, {"noise": "uniform"}, {"noise": "laplace"}]
    runs += [{"noise": "lowlight"}, {"noise": "lowlight", "read_noise": 3}]
    assert [bool(calls(**kw)[0]) for kw in runs] == [True, True, False, True, True, True]
    m.sha256 = ""  # unknown weights
    assert calls(draws=2)[0] > 0


# --------------------------------------------------------------------------- other noise types


def _expected_noisy(
    noise: str, x: torch.Tensor, level: float, seed: int, **kw: float
) -> torch.Tensor:
    """The corruption from the primitives of wne.degrade (not through its table)."""
    if noise in degrade.NOISE_KINDS:
        return x + degrade.noise(noise, x.shape, level, seed)
    if noise == "lowlight":
        return degrade.low_light(x, level, seed, read_noise=kw.get("read_noise", 0.0))
    if kw.get("jpeg_sigma"):
        x = x + degrade.gaussian_noise(x.shape, kw["jpeg_sigma"], seed)
    return degrade.jpeg(x, int(level))


NOISE_CASES = [
    ("gaussian", [50.0, 100.0], {}), ("uniform", [5.0, 30.0], {}), ("laplace", [5.0, 30.0], {}),
    ("rayleigh", [5.0, 17.0], {}), ("lowlight", [3.0, 100.0], {"read_noise": 2.0}),
    ("jpeg", [10.0, 85.0], {}), ("jpeg", [30.0], {"jpeg_sigma": 14.0}),
]  # fmt: skip


@pytest.mark.parametrize(("noise", "levels", "kw"), NOISE_CASES)
def test_noise_types_are_seeded_paired_and_reported(noise: str, levels: list, kw: dict) -> None:
    """Every noise type: the noisy input is wne.degrade's, seeded by noise_seed(seed, image,
    draw, level), never clipped (but JPEG); input PSNR, equivalent σ and the identity's output
    (its input clamped to [0, 1]) follow from it; no defect sweep outside Gaussian noise."""
    x = _ramp()
    protocol = pr.Protocol(sigmas=levels, draws=2, seed=5, noise=noise, **kw)
    res = pr.evaluate([pr.EvalModel("id", nn.Identity(), 25)], [("g", x)], protocol)
    assert res.noise == noise and (res.defect_images == 0) == (noise != "gaussian")
    for r in res.psnr_rows:
        lv = r["level"]
        seeds = [pr.noise_seed(5, 0, k, lv) for k in range(2)]
        noisy = torch.cat([_expected_noisy(noise, x, lv, seed, **kw) for seed in seeds])
        ref = x.expand_as(noisy)
        assert r["input_psnr"] == pytest.approx(float(psnr(noisy, ref, 1.0).mean()), abs=1e-9)
        eq = np.mean([degrade.equivalent_sigma(noisy[k : k + 1], x) for k in range(2)])
        assert r["equivalent_sigma"] == pytest.approx(eq, rel=1e-6)
        assert r["psnr"] == pytest.approx(float(psnr(noisy.clamp(0, 1), ref, 1.0).mean()), abs=1e-9)
    if noise == "rayleigh":  # not recentred: the equivalent σ includes its mean 1.913·σ
        want = 5 * math.sqrt(1 + 1.913**2)
        assert res.psnr_rows[0]["equivalent_sigma"] == pytest.approx(want, rel=0.1)
    if noise == "jpeg" and not kw:  # the clean image compressed, as the paper's JPEG transfer
        assert res.psnr_rows[1]["input_psnr"] > 35


def test_noise_cli_writes_its_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--noise lowlight: psnr.csv with the noise columns (photons as levels), no defect.csv,
    summary.json with the levels and equivalent σ, both plots; the table is printed."""
    root, data, out = tmp_path / "ckpt", write_images(tmp_path / "data", size=16), tmp_path / "out"
    save_tiny(root, "dncnn-plain-s25", wrap=False)
    save_tiny(root, "dncnn-wne-s25", wrap=True, seed=1)
    extra = ["--noise", "lowlight", "--levels", "10", "3", "--read-noise", "1", "--draws", "1"]
    assert _cli(root, data, out, "--models", "dncnn-plain-s25", "dncnn-wne-s25", *extra) == 0
    assert "photons" in capsys.readouterr().out
    assert (out / "psnr.csv").read_text().splitlines()[0].split(",") == list(pr.NOISE_COLUMNS)
    rows = _csv(out / "psnr.csv")
    assert [float(r["level"]) for r in rows] == [3.0, 10.0] * 2
    assert {r["noise"] for r in rows} == {"lowlight"}
    assert not (out / "defect.csv").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["run"]["level_name"], summary["run"]["read_noise"]) == ("photons", 1.0)
    lv = summary["models"]["dncnn-wne-s25"]["levels"]
    assert [e["photons"] for e in lv] == [3.0, 10.0]
    assert lv[0]["equivalent_sigma"] > lv[1]["equivalent_sigma"] > 0
    for name in ("mismatch.png", "mismatch_ssim.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


BAD_ARGS = [
    "--noise jpeg --levels 0", "--noise jpeg --levels 50.5", "--noise jpeg --levels 96",
    "--noise lowlight --levels 0", "--noise lowlight --read-noise -1", "--noise speckle",
    "--noise uniform --levels -5", "--read-noise 2", "--jpeg-sigma 14", "--draws 0",
    "--noise uniform --write-metrics",
]  # fmt: skip


@pytest.mark.parametrize("extra", BAD_ARGS)
def test_cli_rejects_bad_arguments(tmp_path: Path, extra: str) -> None:
    """Levels a noise type cannot take and options of another type exit with usage (2)."""
    args = ["--models", "x", "--data", str(tmp_path), "--out", str(tmp_path / "o"), *extra.split()]
    with pytest.raises(SystemExit) as exc:
        ev.main(args)
    assert exc.value.code == 2


# --------------------------------------------------------------------------- model selection


def test_checkpoint_selection_and_sigma_train(tmp_path: Path) -> None:
    """--all evaluates the σ_train with checkpoints (25), skips 10 and 50; --sigma-train takes the
    catalog's CPU-sized checkpoints (--size gpu: GPU-trained, all: both) and every key outside
    it; σ_train comes from config.json, not the key (none recorded: the --sigma-train fallback)."""
    root, data = tmp_path / "ckpt", write_images(tmp_path / "data", n=1, size=16)
    for key in ("dncnn-wne-s25", "dncnn-wne-s25-gpu", "my-own-s25"):
        save_tiny(root, key, wrap=True)
    args = ["--sigmas", "20", "--draws", "1", "--no-paper-overlay"]
    assert _cli(root, data, tmp_path / "all", "--all", *args) == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["sigma25"]
    for size, want in (
        ("cpu", {"dncnn-wne-s25", "my-own-s25"}),
        ("gpu", {"dncnn-wne-s25-gpu", "my-own-s25"}),
        ("all", {"dncnn-wne-s25", "dncnn-wne-s25-gpu", "my-own-s25"}),
    ):
        out = tmp_path / size
        assert _cli(root, data, out, "--sigma-train", "25", "--size", size, *args) == 0
        assert {r["model"] for r in _csv(out / "psnr.csv")} == want
    assert json.loads((out / "summary.json").read_text())["run"]["paper_overlay"] is False
    root = tmp_path / "ckpt10"  # a key saying s25 over a config saying 10: σ_train = 10
    save_tiny(root, "dncnn-wne-s25", wrap=True, sigma=10)
    (m,) = pr.resolve_models(["dncnn-wne-s25"], root=root)
    assert m.sigma_train == 10 and m.paper_column == "wne_dncnn"
    assert [pr.checkpoints_for_sigma(root, s) for s in (10, 25)] == [["dncnn-wne-s25"], []]
    cfg_path = root / "dncnn-wne-s25" / "config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "sigma_train": None}))
    with pytest.raises(ValueError, match="--sigma-train"):
        pr.resolve_models(["dncnn-wne-s25"], root=root)
    assert pr.resolve_models(["dncnn-wne-s25"], root=root, sigma_train=15)[0].sigma_train == 15


def test_clear_errors(tmp_path: Path, capsys, monkeypatch) -> None:
    """Missing checkpoints, folders and images give exit status 2 and a message."""
    monkeypatch.delenv("WNE_HUB_REPO", raising=False)
    data, root = write_images(tmp_path / "data", n=1, size=16), tmp_path / "ckpt"
    (empty := tmp_path / "empty").mkdir()
    save_tiny(root, "dncnn-wne-s25", wrap=True)
    for folder, data_, args, message in (
        (empty, data, ["--all"], "no checkpoints"),
        (empty, data, ["--models", "nope-s25"], "nope-s25"),
        (root, empty, ["--sigma-train", "25"], "no image"),
    ):
        assert _cli(folder, data_, tmp_path / "o", *args) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _cli(root, data, tmp_path / "o")  # no model selection


def test_load_images_modes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Images only, sorted; colour → luma with a log line naming it, grey-as-RGB silently;
    three channels on request; the first N; sides under 11 px refused."""
    d = write_images(tmp_path / "imgs", n=1, size=16)
    Image.fromarray(np.uint8([[[255, 0, 0]] * 16] * 16)).save(d / "a_colour.png")
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(d / "b_grey.bmp")
    (d / "notes.txt").write_text("not an image")
    with caplog.at_level("WARNING", logger="wne.lab.protocol"):
        imgs = pr.load_images(d)
    assert [n for n, _ in imgs] == ["00.png", "a_colour.png", "b_grey.bmp"]
    assert all(t.shape == (1, 1, 16, 16) and t.dtype == torch.float32 for _, t in imgs)
    assert float(imgs[1][1].mean()) == pytest.approx(76 / 255, abs=1 / 255)  # 0.299·255
    assert "a_colour.png" in caplog.text and "b_grey.bmp" not in caplog.text
    assert len(pr.load_images(d, max_images=1)) == 1
    assert pr.load_images(d, channels=3)[0][1].shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="sides"):
        pr.load_images(write_images(tmp_path / "small", n=1, size=8))


# --------------------------------------------------------------------------- the paper's numbers


@pytest.mark.parametrize("sigma_train", paper.SIGMA_TRAINS)
def test_paper_curves_are_consistent(sigma_train: int) -> None:
    """21 points per column on the paper's grid with the σ_train row, input PSNR =
    20·log10(255/σ); σ_train rows agree with Table 1 (≤ 0.015 dB: the σ10 rows come from a
    newer run) and off-training means with the derived grid means (rounding ≤ 0.01 dB)."""
    table = paper.MISMATCH[sigma_train]
    assert set(table) == {"sigma_test", "input_psnr", *paper.COLUMNS}
    sig = table["sigma_test"]
    assert all(len(v) == 21 for v in table.values())
    assert all(b > a for a, b in itertools.pairwise(sig))
    assert sig == pytest.approx(pr.paper_grid([sigma_train]), abs=0.006)  # rounded to 0.01
    for s, p in zip(sig, table["input_psnr"], strict=True):
        assert p == pytest.approx(20 * math.log10(255 / s), abs=0.03)
    j = sig.index(sigma_train)
    for col in paper.COLUMNS:
        assert table[col][j] == pytest.approx(paper.MATCHED[sigma_train][col], abs=0.0151)
        off = [v for i, v in enumerate(table[col]) if i != j]
        assert np.mean(off) == pytest.approx(paper.GRID_MEAN[sigma_train][col], abs=0.011)


def test_paper_values_columns_and_plot(tmp_path: Path) -> None:
    """Values the paper states in its text (§4.1, Fig. 4, App. N) are in the data; checkpoints
    map to its columns by (arch, wrapper) through the catalog; the mismatch plot draws the
    measured and the paper's curves to a PNG, in different colours for plain and WNE."""
    from wne.lab.plots import Curve, curve_style, mismatch_plot

    assert paper.value_at(25, "wne_dncnn", 5) == (5.0, 35.76)
    assert paper.value_at(25, "b_dncnn", 50) == (53.22, 16.11)
    assert paper.SAMPLER["inpaint"]["models"]["wne"]["final_psnr"] == 23.87
    keys = [("dncnn", "none"), ("fdncnn_ne", "none"), ("fdncnn", "none"), ("x", "wne")]
    assert [paper.paper_column(*k) for k in keys] == ["b_dncnn", "ne_fdncnn", None, None]
    for fam in catalog.families():
        for variant, col in fam.paper_columns.items():
            assert paper.paper_column(fam.arch, "wne" if variant == "wne" else "none") == col
    for bad in ((15, "b_dncnn"), (25, "nope")):
        with pytest.raises(KeyError):
            paper.curve(*bad)
    px, py = paper.curve(25, "wne_dncnn")
    c = Curve("dncnn-wne-s25", px, [v - 1 for v in py], paper_column="wne_dncnn")
    marks = [(25, 20.17)]
    path = mismatch_plot([c], tmp_path / "p.png", sigma_train_markers=marks, paper_sigma_train=25)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert curve_style(c)[0] != curve_style(Curve("p", [], [], paper_column="b_dncnn"))[0]
    with pytest.raises(ValueError):
        mismatch_plot([Curve("bad", [1.0], [])], tmp_path / "q.png")


@pytest.mark.skipif(not NOTES.is_file(), reason="project reference notes not present")
def test_paper_data_matches_reference_notes() -> None:
    """Every number equals the §5.2 tables of the project's reference notes."""
    text = NOTES.read_text(encoding="utf-8")
    names = ["sigma_test", "input_psnr", *paper.COLUMNS]
    for s in paper.SIGMA_TRAINS:
        block = text[text.index(f"**σ_train = {s}** (`eval_logs/Set12/dncnn_sigma{s}") :]
        lines = [ln for ln in block.split("\n\n")[1].splitlines() if re.match(r"\|\s*\**[0-9]", ln)]
        rows = [[float(c.strip().strip("*")) for c in ln.strip("|").split("|")] for ln in lines]
        assert len(rows) == 21
        for j, name in enumerate(names):
            assert paper.MISMATCH[s][name] == tuple(r[j] for r in rows), (s, name)
