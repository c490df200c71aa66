"""``wne sample`` (wne.lab.sample): its files, the paper's protocols (seeds, starts, one-pass /
best / final), determinism, divergence and argument checks. Tiny images and models, few steps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_evaluate import PNG_MAGIC, _csv, save_tiny, write_images

from wne.lab import sample as sm
from wne.metrics import psnr
from wne.sampler import Measurement


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sample")
    root = base / "ckpt"
    save_tiny(root, "tiny-plain", wrap=False, sigma=10)
    save_tiny(root, "tiny-wne", wrap=True, seed=1, sigma=10)
    save_tiny(root, "tiny-boom", wrap=False, seed=2, sigma=10, gain=3.0)
    return {"base": base, "root": root, "data": write_images(base / "data", size=16)}


def _args(setup: dict, out: Path, *extra: str, keys: tuple = ("tiny-plain", "tiny-wne")) -> list:
    paths = ["--root", str(setup["root"]), "--data", str(setup["data"]), "--out", str(out)]
    return ["--models", *keys, *paths, "--max-steps", "12", "--quiet", "--show", "01.png", *extra]


def _numbers(out: Path) -> list[list[str]]:
    return [[v for k, v in r.items() if k != "seconds"] for r in _csv(out / "runs.csv")]


@pytest.fixture(scope="module")
def run(setup: dict[str, Path]) -> Path:
    out = setup["base"] / "out"
    assert sm.main(_args(setup, out, "--task", "denoise", "inpaint")) == 0
    return out


@pytest.mark.parametrize("task", ["denoise", "inpaint"])
def test_cli_writes_its_outputs(run: Path, task: str) -> None:
    """Each task folder has runs.csv (one finite row per image × model; best >= final),
    trajectory.csv (a state per step 0 … T, its best the run's best), summary.json (means,
    std, the paper's table), the PNG figure and an animated GIF of the first WNE model."""
    out = run / task
    rows, traj = _csv(out / "runs.csv"), _csv(out / "trajectory.csv")
    assert (list(rows[0]), list(traj[0])) == (list(sm.RUN_COLUMNS), list(sm.TRAJECTORY_COLUMNS))
    pairs = [(i, m) for i in ("00.png", "01.png") for m in ("tiny-plain", "tiny-wne")]
    assert [(r["image"], r["model"]) for r in rows] == pairs
    for r in rows:
        assert r["task"] == task and r["stop"] in ("converged", "max_steps")
        assert math.isfinite(float(r["input_psnr"]) + float(r["one_pass_psnr"]))
        best, final, steps = float(r["best_psnr"]), float(r["final_psnr"]), int(r["steps"])
        assert best >= final - 1e-9 and float(r["final_minus_best"]) == pytest.approx(final - best)
        assert 1 <= steps <= 12 and 0 <= int(r["best_step"]) <= steps
        key = (r["image"], r["model"])
        mine = [float(t["psnr"]) for t in traj if (t["image"], t["model"]) == key]
        assert len(mine) == steps + 1 and max(mine) == pytest.approx(best)
    summary = json.loads((out / "summary.json").read_text())
    s = summary["models"]["tiny-wne"]
    finals = [float(r["final_psnr"]) for r in rows if r["model"] == "tiny-wne"]
    assert s["final_psnr"]["mean"] == pytest.approx(np.mean(finals), abs=1e-6)
    assert s["final_psnr"]["std"] == pytest.approx(np.std(finals), abs=1e-6)
    assert (s["n"], s["n_diverged"], summary["run"]["settings"]["task"]) == (2, 0, task)
    assert summary["paper"]["models"]["wne"]["label"] == "WNE-N2N"
    assert (out / "sampler.png").read_bytes()[:8] == PNG_MAGIC
    assert len((out / "trajectory.gif").read_bytes()) <= sm.GIF_MAX_BYTES
    with Image.open(out / "trajectory.gif") as im:
        assert im.format == "GIF" and im.n_frames >= 2
    assert summary["run"]["gif"]["model"] == "tiny-wne"


def test_paper_settings_and_seeds() -> None:
    """Tables 11 and 12's parameters are the defaults (0–255 arguments divided by 255);
    denoising starts at x + (10/255)·z with z seeded seed + idx; the inpainting mask is
    seeded seed + 1,000,003·(idx + 1)."""
    d, i = sm.settings_for("denoise"), sm.settings_for("inpaint")
    assert (d["h0"], d["beta"], d["max_steps"]) == (0.01, 1.0, 1000)
    assert (i["h0"], i["beta"], i["keep"]) == (0.01, 0.01, 0.1)
    assert (d["sigma0"], d["sigma_stop"]) == pytest.approx((10 / 255, 1 / 255))
    assert (i["sigma0"], i["sigma_stop"]) == pytest.approx((1.0, 0.01))
    assert sm.settings_for("superres", sigma_stop_8bit=5.1)["sigma_stop"] == pytest.approx(0.02)
    x = torch.rand(1, 1, 16, 16)
    prob = sm.problem_for(d, x, 3, 7)
    z = torch.randn((1, 1, 16, 16), generator=torch.Generator().manual_seed(10))
    assert prob.measurement.task == "denoise" and torch.equal(prob.init, x + (10 / 255) * z)
    prob = sm.problem_for(i, x, 3, 7)
    want = Measurement.inpaint(x, 0.1, 7 + 1_000_003 * 4).mask
    assert prob.init is None and torch.equal(prob.measurement.mask, want)


def test_one_pass_best_final_and_the_step_model() -> None:
    """A near-oracle prior D(y) = x + 0.001: one pass > 60 dB, the walk converges after hundreds
    of steps (β = 0.01 shrinks an oracle's noise by 1 − β·h_t a step), its final state is its best
    and σ̂_t its RMS error; predicted_steps: an oracle's count within 5 %, fewer steps the more
    the residual under-reports; a shrinking prior gives the one-pass PSNR of D(y0)."""
    x = torch.rand(1, 1, 32, 32) * 0.8 + 0.1
    rec = sm.run_one(lambda y: x + 0.001, x, 0, sm.settings_for("inpaint"))
    assert rec.row["stop"] == "converged" and rec.row["steps"] > 300
    assert rec.sigmas[-1] == pytest.approx(rec.errors[-1], rel=0.15)
    assert rec.row["final_psnr"] == pytest.approx(rec.row["best_psnr"])
    assert rec.row["one_pass_psnr"] > 60
    oracle = sm.predicted_steps(1.0, sigma0=rec.errors[0])
    assert oracle == pytest.approx(rec.row["steps"], rel=0.05)
    steps = [sm.predicted_steps(a) for a in (1.0, 0.98, 0.9, 0.8)]
    assert steps == sorted(steps, reverse=True) and steps[0] > 2 * steps[1] > 2 * steps[-1]
    d = sm.settings_for("denoise", max_steps=5)
    rec = sm.run_one(lambda y: 0.5 * y + 0.25, x, 2, d)
    init = sm.problem_for(d, x, 2, 0).init
    for got, img in ((rec.row["one_pass_psnr"], 0.5 * init + 0.25), (rec.row["input_psnr"], init)):
        assert got == pytest.approx(float(psnr(img.clamp(0, 1), x, 1.0)[0]))
    assert len(rec.psnrs) == rec.row["steps"] + 1


def test_deterministic_and_images_keep_their_index(setup: dict[str, Path], run: Path) -> None:
    """The same seed gives the same runs and trajectories, another seed others; --images
    01.png runs that image with its folder index (seed + 1), as in the full run."""
    again, other, one = (setup["base"] / n for n in ("again", "other", "one"))
    assert sm.main(_args(setup, again, "--task", "inpaint")) == 0
    assert _numbers(again / "inpaint") == _numbers(run / "inpaint")
    traj = [d / "inpaint" / "trajectory.csv" for d in (again, run)]
    assert traj[0].read_bytes() == traj[1].read_bytes()
    assert sm.main(_args(setup, other, "--task", "inpaint", "--seed", "1")) == 0
    assert _numbers(other / "inpaint") != _numbers(run / "inpaint")
    assert sm.main(_args(setup, one, "--task", "denoise", "--images", "01.png")) == 0
    row = _numbers(one / "denoise")[0]
    assert row[1:5:3] == ["1", "1"] and row in _numbers(run / "denoise")  # index, seed


def test_diverging_model_is_reported_not_crashed(setup: dict[str, Path]) -> None:
    """A model whose state explodes: exit 0, stop = diverged, no scores (empty cells, never
    NaN), out of the means and counted; the other model is unaffected."""
    out = setup["base"] / "boom"
    args = _args(setup, out, "--task", "inpaint", keys=("tiny-boom", "tiny-wne"))
    assert sm.main([*args, "--max-steps", "40"]) == 0
    rows = _csv(out / "inpaint" / "runs.csv")
    for r in rows:
        boom = r["model"] == "tiny-boom"
        assert (r["stop"] == "diverged") == boom
        assert not boom or r["final_psnr"] == r["best_psnr"] == r["final_ssim"] == ""
    for name in ("runs.csv", "trajectory.csv", "summary.json"):
        text = (out / "inpaint" / name).read_text().lower()
        assert "nan" not in text and "inf" not in text.replace("inpaint", "")
    s = json.loads((out / "inpaint" / "summary.json").read_text())["models"]["tiny-boom"]
    assert (s["n_diverged"], s["final_psnr"], s["stops"]) == (2, None, {"diverged": 2})


BAD_INPUT = """
--task deblur: invalid choice
--task inpaint --keep 0: keep fraction
--keep 1.5: keep fraction
--h0 2: h0
--beta -0.1: beta
--max-steps 0: must be >= 1
--sigma-stop 0: sigma_stop
--task center_hole --hole-fraction 1: hole fraction
--task superres --factor 1: factor
--task superres --factor 3: divide 16×16
--frame-every 0: must be >= 1
--max-images 0: must be >= 1
--gif-model nope: --gif-model
--images nope.png: nope.png
--models missing-key: missing-key
"""


@pytest.mark.parametrize("case", BAD_INPUT.strip().splitlines())
def test_bad_input_exits_2_with_a_message(setup: dict, case: str, capsys, monkeypatch) -> None:
    """Values out of range, unknown names and missing models exit with status 2 and say
    what is wrong (at parsing, or before any run)."""
    monkeypatch.delenv("WNE_HUB_REPO", raising=False)
    extra, message = case.split(": ")
    try:
        code = sm.main(_args(setup, setup["base"] / "bad", *extra.split()))
    except SystemExit as exc:
        code = exc.code
    assert code == 2 and message in capsys.readouterr().err
    assert not (setup["base"] / "bad").exists()


def test_residual_scale_of_an_oracle_and_a_shrinker(setup: dict[str, Path]) -> None:
    """residual_scale: an oracle removes all the noise (gain = removed = 1, σ̂ ≈ σ/255); a
    denoiser removing half of it has gain 0.5; the CLI writes the CSV and only that."""
    x = torch.rand(1, 1, 16, 16)
    for r in sm.residual_scale(lambda y: x.clone(), x, [10, 100]):
        assert (r["gain"], r["removed"]) == pytest.approx((1, 1), abs=1e-5)
        assert r["sigma_hat"] == pytest.approx(r["sigma"] / 255, rel=0.2)
    (half,) = sm.residual_scale(lambda y: 0.5 * (x + y), x, [10])
    assert half["gain"] == pytest.approx(0.5, abs=1e-5)
    out = setup["base"] / "rs"
    assert sm.main(_args(setup, out, "--task", "residual_scale")) == 0
    rows = _csv(out / "residual_scale" / "residual_scale.csv")
    assert len(rows) == 2 * 2 * len(sm.RESIDUAL_SIGMAS)  # images × models × σ
    assert sorted(p.name for p in out.iterdir()) == ["residual_scale"]


def test_center_hole_and_superres_tasks_run(setup: dict[str, Path]) -> None:
    """The two extra tasks write their folders; their observed pixels stay exact in the
    final result (center_hole: outside the hole; superres: the block means)."""
    out = setup["base"] / "extra"
    assert sm.main(_args(setup, out, "--task", "center_hole", "superres", "--factor", "4")) == 0
    x = torch.rand(1, 1, 16, 16)
    for task in ("center_hole", "superres"):
        rows = _csv(out / task / "runs.csv")
        assert len(rows) == 4 and all(math.isfinite(float(r["final_psnr"])) for r in rows)
        assert json.loads((out / task / "summary.json").read_text())["paper"] is None
        st = sm.settings_for(task, max_steps=5)
        rec = sm.run_one(lambda y: 0.5 * y + 0.25, x, 0, st, frame_every=1)
        meas = sm.problem_for(st, x, 0, 0).measurement
        assert torch.allclose(meas.project(rec.frames[-1][1]), meas.observed, atol=1e-6)
