"""Tests of the sampler command (wne.lab.sample, ``wne-sample``): its files, the paper's
protocols (seeds, initial states, one-pass / best / final), determinism, divergence and
argument checks. Tiny images, tiny random models, few steps."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import wne
from wne import models
from wne.lab import sample as sm
from wne.metrics import psnr
from wne.sampler import Measurement

TINY = {"depth": 3, "width": 8}
GIF_MAGIC = (b"GIF87a", b"GIF89a")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_images(folder: Path, n: int = 2, size: int = 16) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        img = 0.25 + 0.5 * (xx if i % 2 else yy) + 0.1 * np.sin(7 * xx * (i + 1))
        arr = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(arr, mode="L").save(folder / f"{i:02d}.png")
    return folder


def _save(root: Path, key: str, *, wrap: bool, seed: int = 0, gain: float = 0.0) -> None:
    torch.manual_seed(seed)
    net = models.build("dncnn", **TINY)
    nn.init.normal_(net.body[-1].weight, std=0.05)
    if gain:  # every conv strongly amplifying: the walk's state explodes within steps
        for mod in net.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.normal_(mod.weight, std=gain)
    model = wne.NormEquivariant(net) if wrap else net
    wne.save(model, root / key, key=key, arch="dncnn", arch_kwargs=TINY, sigma_train=10)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sample")
    root = base / "ckpt"
    _save(root, "tiny-plain", wrap=False)
    _save(root, "tiny-wne", wrap=True, seed=1)
    _save(root, "tiny-boom", wrap=False, seed=2, gain=3.0)
    return {"base": base, "root": root, "data": _write_images(base / "data")}


def _args(setup: dict[str, Path], out: Path, *extra: str, models_: tuple[str, ...] = ()) -> list:
    keys = models_ or ("tiny-plain", "tiny-wne")
    return [
        "--models",
        *keys,
        "--root",
        str(setup["root"]),
        "--data",
        str(setup["data"]),
        "--out",
        str(out),
        "--max-steps",
        "12",
        "--quiet",
        "--show",
        "01.png",
        *extra,
    ]


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def run(setup: dict[str, Path]) -> Path:
    out = setup["base"] / "out"
    assert sm.main(_args(setup, out, "--task", "denoise", "inpaint")) == 0
    return out


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("task", ["denoise", "inpaint"])
def test_cli_writes_its_outputs(run: Path, task: str) -> None:
    """Each task folder has runs.csv (one finite row per image × model), trajectory.csv,
    summary.json (means, std, the paper's table), a PNG figure and an animated GIF."""
    out = run / task
    rows = _csv(out / "runs.csv")
    assert list(rows[0]) == list(sm.RUN_COLUMNS)
    assert [(r["image"], r["model"]) for r in rows] == [
        (i, m) for i in ("00.png", "01.png") for m in ("tiny-plain", "tiny-wne")
    ]
    for r in rows:
        assert r["task"] == task and r["stop"] in ("converged", "max_steps")
        for col in ("input_psnr", "one_pass_psnr", "best_psnr", "final_psnr", "final_ssim"):
            assert math.isfinite(float(r[col])), col
        assert float(r["best_psnr"]) >= float(r["final_psnr"]) - 1e-9
        assert float(r["final_minus_best"]) == pytest.approx(
            float(r["final_psnr"]) - float(r["best_psnr"]), abs=1e-5
        )
        assert 1 <= int(r["steps"]) <= 12 and 0 <= int(r["best_step"]) <= int(r["steps"])
    traj = _csv(out / "trajectory.csv")
    assert list(traj[0]) == list(sm.TRAJECTORY_COLUMNS)
    for r in rows:  # a state per step 0 … T, its best is the run's best
        mine = [t for t in traj if t["image"] == r["image"] and t["model"] == r["model"]]
        assert len(mine) == int(r["steps"]) + 1
        assert max(float(t["psnr"]) for t in mine) == pytest.approx(float(r["best_psnr"]))
    summary = json.loads((out / "summary.json").read_text())
    s = summary["models"]["tiny-wne"]
    finals = [float(r["final_psnr"]) for r in rows if r["model"] == "tiny-wne"]
    assert s["final_psnr"]["mean"] == pytest.approx(np.mean(finals), abs=1e-6)
    assert s["final_psnr"]["std"] == pytest.approx(np.std(finals), abs=1e-6)
    assert s["n"] == 2 and s["n_diverged"] == 0
    assert summary["paper"]["models"]["wne"]["label"] == "WNE-N2N"
    assert summary["run"]["settings"]["task"] == task
    assert (out / "sampler.png").read_bytes()[:8] == PNG_MAGIC
    gif = (out / "trajectory.gif").read_bytes()
    assert gif[:6] in GIF_MAGIC and len(gif) <= sm.GIF_MAX_BYTES
    with Image.open(out / "trajectory.gif") as im:
        assert im.n_frames >= 2
    assert summary["run"]["gif"]["model"] == "tiny-wne"  # the first WNE model


def test_paper_protocol_settings() -> None:
    """Table 11 and 12 parameters are the defaults; 0–255 arguments are divided by 255."""
    d = sm.settings_for("denoise")
    assert (d["h0"], d["beta"], d["max_steps"]) == (0.01, 1.0, 1000)
    assert d["sigma0"] == pytest.approx(10 / 255) and d["sigma_stop"] == pytest.approx(1 / 255)
    i = sm.settings_for("inpaint")
    assert (i["h0"], i["beta"], i["keep"]) == (0.01, 0.01, 0.1)
    assert i["sigma0"] == pytest.approx(1.0) and i["sigma_stop"] == pytest.approx(0.01)
    assert sm.settings_for("superres", sigma_stop_8bit=5.1)["sigma_stop"] == pytest.approx(0.02)


def test_seeds_follow_the_paper() -> None:
    """Denoising starts at x + (10/255)·z with z from a generator seeded seed + idx; the
    inpainting mask is seeded seed + 1,000,003·(idx + 1)."""
    x = torch.rand(1, 1, 16, 16)
    prob = sm.problem_for(sm.settings_for("denoise"), x, 3, 7)
    z = torch.randn((1, 1, 16, 16), generator=torch.Generator().manual_seed(10))
    assert prob.measurement.task == "denoise" and torch.equal(prob.init, x + (10 / 255) * z)
    prob = sm.problem_for(sm.settings_for("inpaint"), x, 3, 7)
    want = Measurement.inpaint(x, 0.1, 7 + 1_000_003 * 4)
    assert prob.init is None and torch.equal(prob.measurement.mask, want.mask)


def test_one_pass_best_and_final_with_an_oracle() -> None:
    """A near-oracle prior D(y) = x + 0.001: the one-pass result is x + 0.001 on the hidden
    pixels (> 60 dB), the walk converges (after hundreds of steps: with β = 0.01 the
    schedule shrinks the noise of an oracle's state by only 1 − β·h_t per step) and its
    final state is its best, σ̂_t then equals the state's RMS error; a shrinking prior
    D(y) = 0.5·y + 0.25 gives the one-pass PSNR of D(y0)."""
    x = torch.rand(1, 1, 16, 16) * 0.8 + 0.1
    s = sm.settings_for("inpaint")
    rec = sm.run_one(lambda y: x + 0.001, x, 0, s)
    assert rec.row["stop"] == "converged" and rec.row["steps"] > 300
    assert rec.sigmas[-1] == pytest.approx(rec.errors[-1], rel=0.15)
    assert rec.row["final_psnr"] == pytest.approx(rec.row["best_psnr"])
    assert rec.row["final_psnr"] > 35 and rec.row["one_pass_psnr"] > 60
    d = sm.settings_for("denoise", max_steps=5)
    rec = sm.run_one(lambda y: 0.5 * y + 0.25, x, 2, d)
    init = sm.problem_for(d, x, 2, 0).init
    want = float(psnr((0.5 * init + 0.25).clamp(0, 1), x, 1.0)[0])
    assert rec.row["one_pass_psnr"] == pytest.approx(want)
    assert rec.row["input_psnr"] == pytest.approx(float(psnr(init.clamp(0, 1), x, 1.0)[0]))
    assert len(rec.psnrs) == rec.row["steps"] + 1


# --------------------------------------------------------------------------- determinism


def _numbers(out: Path) -> list[list[str]]:
    return [[v for k, v in r.items() if k != "seconds"] for r in _csv(out / "runs.csv")]


def test_deterministic_for_a_seed(setup: dict[str, Path], run: Path) -> None:
    """The same seed gives the same runs and trajectories; another seed different ones."""
    again = setup["base"] / "again"
    assert sm.main(_args(setup, again, "--task", "inpaint")) == 0
    assert _numbers(again / "inpaint") == _numbers(run / "inpaint")
    assert (again / "inpaint" / "trajectory.csv").read_bytes() == (
        run / "inpaint" / "trajectory.csv"
    ).read_bytes()
    other = setup["base"] / "other"
    assert sm.main(_args(setup, other, "--task", "inpaint", "--seed", "1")) == 0
    assert _numbers(other / "inpaint") != _numbers(run / "inpaint")


# --------------------------------------------------------------------------- divergence


def test_diverging_model_is_reported_not_crashed(setup: dict[str, Path]) -> None:
    """A model whose state explodes: exit 0, stop = diverged, no scores (empty cells, not
    NaN), out of the means and counted; the other model is unaffected."""
    out = setup["base"] / "boom"
    args = _args(setup, out, "--task", "inpaint", models_=("tiny-boom", "tiny-wne"))
    args[args.index("--max-steps") + 1] = "200"
    assert sm.main(args) == 0
    rows = _csv(out / "inpaint" / "runs.csv")
    boom = [r for r in rows if r["model"] == "tiny-boom"]
    assert boom and all(r["stop"] == "diverged" for r in boom)
    for r in boom:
        assert r["final_psnr"] == r["best_psnr"] == r["final_ssim"] == ""
    assert all(r["stop"] != "diverged" for r in rows if r["model"] == "tiny-wne")
    for name in ("runs.csv", "trajectory.csv", "summary.json"):
        text = (out / "inpaint" / name).read_text().lower()
        assert "nan" not in text and "inf" not in text.replace("inpaint", "")
    summary = json.loads((out / "inpaint" / "summary.json").read_text())
    s = summary["models"]["tiny-boom"]
    assert s["n_diverged"] == 2 and s["final_psnr"] is None
    assert s["stops"] == {"diverged": 2}


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "extra",
    [
        ["--task", "deblur"],
        ["--keep", "0"],
        ["--keep", "1.5"],
        ["--h0", "2"],
        ["--beta", "-0.1"],
        ["--max-steps", "0"],
        ["--sigma-stop", "0"],
        ["--task", "center_hole", "--hole-fraction", "1"],
        ["--task", "superres", "--factor", "1"],
        ["--frame-every", "0"],
        ["--max-images", "0"],
    ],
)
def test_bad_arguments_are_usage_errors(
    setup: dict[str, Path], extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Values out of range exit with status 2 and say so (at parsing, or before any run)."""
    try:
        code = sm.main(_args(setup, setup["base"] / "bad", *extra))
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--task", "superres", "--factor", "3"], "divide 16×16"),
        (["--gif-model", "nope"], "--gif-model"),
        (["--images", "nope.png"], "nope.png"),
        (["--models", "missing-key"], "missing-key"),
    ],
)
def test_bad_inputs_exit_2_with_a_message(
    setup: dict[str, Path],
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WNE_HUB_REPO", raising=False)
    args = _args(setup, setup["base"] / "bad2", *extra)
    if extra[0] == "--models":
        args = args[3:] + extra  # replace the model list
    assert sm.main(args) == 2
    assert message in capsys.readouterr().err


def test_residual_scale_of_an_oracle_and_a_shrinker(setup: dict[str, Path]) -> None:
    """residual_scale: an oracle removes all the noise (gain = removed = 1, σ̂ = σ/255); a
    denoiser removing half of it has gain 0.5; the CLI writes the CSV and summary."""
    x = torch.rand(1, 1, 16, 16)
    for r in sm.residual_scale(lambda y: x.clone(), x, [10, 100]):
        assert r["gain"] == pytest.approx(1, abs=1e-5) and r["removed"] == pytest.approx(1, 1e-5)
        assert r["sigma_hat"] == pytest.approx(r["sigma"] / 255, rel=0.2)
    for r in sm.residual_scale(lambda y: 0.5 * (x + y), x, [10, 100]):
        assert r["gain"] == pytest.approx(0.5, abs=1e-5)
    out = setup["base"] / "rs"
    assert sm.main(_args(setup, out, "--task", "residual_scale")) == 0
    rows = _csv(out / "residual_scale" / "residual_scale.csv")
    assert len(rows) == 2 * 2 * len(sm.RESIDUAL_SIGMAS)
    assert not (out / "denoise").exists()


def test_images_keep_their_folder_index(setup: dict[str, Path], run: Path) -> None:
    """--images 01.png runs that image with its folder index (seed + 1), so its row equals
    the full run's row for it."""
    out = setup["base"] / "one"
    assert sm.main(_args(setup, out, "--task", "denoise", "--images", "01.png")) == 0
    (row,) = _csv(out / "denoise" / "runs.csv")[:1]
    full = next(r for r in _csv(run / "denoise" / "runs.csv") if r["image"] == "01.png")
    assert row["index"] == "1" and row["seed"] == "1"
    assert {k: v for k, v in row.items() if k != "seconds"} == {
        k: v for k, v in full.items() if k != "seconds"
    }


def test_predicted_steps_match_an_oracle_run_and_fall_with_under_reporting() -> None:
    """The scalar model gives the oracle's step count (a real oracle run on a small image,
    paper parameters) within 5 %, and fewer steps the more the residual under-reports."""
    x = torch.rand(1, 1, 32, 32) * 0.8 + 0.1
    rec = sm.run_one(lambda y: x.clone(), x, 0, sm.settings_for("inpaint"))
    start = rec.errors[0]
    assert sm.predicted_steps(1.0, sigma0=start) == pytest.approx(rec.row["steps"], rel=0.05)
    steps = [sm.predicted_steps(a) for a in (1.0, 0.98, 0.9, 0.8)]
    assert steps == sorted(steps, reverse=True) and steps[0] > 2 * steps[1] > 4 * steps[-1] / 2


def test_center_hole_and_superres_tasks_run(setup: dict[str, Path]) -> None:
    """The two extra tasks write their folders; their observed pixels stay exact in the
    final result (center_hole: outside the hole; superres: the block means)."""
    out = setup["base"] / "extra"
    args = _args(setup, out, "--task", "center_hole", "superres", "--factor", "4")
    assert sm.main(args) == 0
    for task in ("center_hole", "superres"):
        rows = _csv(out / task / "runs.csv")
        assert len(rows) == 4 and {r["task"] for r in rows} == {task}
        assert all(math.isfinite(float(r["final_psnr"])) for r in rows)
        s = json.loads((out / task / "summary.json").read_text())
        assert s["run"]["settings"]["task"] == task and s["paper"] is None
    x = torch.rand(1, 1, 16, 16)
    for task in ("center_hole", "superres"):
        st = sm.settings_for(task, max_steps=5)
        meas = sm.problem_for(st, x, 0, 0).measurement
        rec = sm.run_one(lambda y: 0.5 * y + 0.25, x, 0, st, frame_every=1)
        final = rec.frames[-1][1]
        assert torch.allclose(meas.project(final), meas.observed, atol=1e-6)
