"""The training CLI: it learns, resumes exactly, runs data-parallel, and writes checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import wne
from wne.lab import train

TINY = {
    "dncnn": {"depth": 4, "width": 8},
    "swinir": {"embed_dim": 8, "depths": [1], "num_heads": 2},
}


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six small structured grayscale images (smooth gradients + edges)."""
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40] / 40.0
    for i in range(6):
        img = 0.5 + 0.3 * np.sin(6 * xx + i) * np.cos(4 * yy - i) + 0.2 * (xx > rng.random())
        Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8), mode="L").save(d / f"{i}.png")
    return d


def _args(
    image_dir: Path, tmp: Path, arch: str, wrapper: str, steps: int, *extra: str
) -> list[str]:
    return [
        "--arch", arch, "--arch-kwargs", json.dumps(TINY[arch]), "--wrapper", wrapper,
        "--sigma", "25", "--data", str(image_dir), "--out", str(tmp / "ck"),
        "--work", str(tmp / "work"), "--steps", str(steps), "--batch", "8", "--patch", "24",
        "--val-images", "2", "--val-every", "10", "--save-every", "5", "--threads", "1",
        "--lr", "3e-3", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("arch", "wrapper"), [("dncnn", "none"), ("dncnn", "wne"), ("swinir", "wne")]
)
def test_short_run_lowers_loss_and_writes_checkpoint(
    image_dir: Path, tmp_path: Path, arch: str, wrapper: str
) -> None:
    """20 steps lower the training loss and leave a loadable, verified checkpoint."""
    summary = train.train(train.parse_args(_args(image_dir, tmp_path, arch, wrapper, 20)))
    assert summary["loss_end"] < summary["loss_start"]
    model = wne.load("ck", root=tmp_path)
    assert isinstance(model, wne.NormEquivariant) == (wrapper == "wne")
    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert cfg["sigma_train"] == 25 and cfg["recipe"]["steps"] == 20
    assert cfg["recipe"]["loss"] == "mse" and cfg["recipe"]["wall_time_s"] > 0
    assert np.isfinite(cfg["metrics"]["train_val_psnr"])


def test_resume_continues_exactly(image_dir: Path, tmp_path: Path) -> None:
    """Stopping at step 10 and resuming gives the same weights as one uninterrupted run."""
    a, b = tmp_path / "a", tmp_path / "b"
    train.train(train.parse_args(_args(image_dir, a, "dncnn", "wne", 20)))
    first = train.train(
        train.parse_args(_args(image_dir, b, "dncnn", "wne", 20, "--stop-after", "10"))
    )
    assert first == {"stopped_at": 10, "steps": 20}
    assert not (b / "ck").exists()
    assert json.loads((b / "work" / "train_state.json").read_text())["step"] == 10
    second = train.train(train.parse_args(_args(image_dir, b, "dncnn", "wne", 20)))
    assert second["start_step"] == 10
    wa, wb = (
        load_file(str(a / "ck" / "model.safetensors")),
        load_file(str(b / "ck" / "model.safetensors")),
    )
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6, msg=k)


def test_resume_with_a_different_recipe_is_refused(image_dir: Path, tmp_path: Path) -> None:
    """A state saved under one step budget is not silently continued under another."""
    first = train.train(
        train.parse_args(_args(image_dir, tmp_path, "dncnn", "none", 20, "--stop-after", "5"))
    )
    assert first == {"stopped_at": 5, "steps": 20}
    state = json.loads((tmp_path / "work" / "train_state.json").read_text())
    assert state["recipe"]["steps"] == 20 and state["recipe"]["wrapper"] == "none"
    with pytest.raises(SystemExit, match=r"different recipe: steps: state 20 != now 40"):
        train.train(train.parse_args(_args(image_dir, tmp_path, "dncnn", "none", 40)))
    with pytest.raises(SystemExit, match=r"wrapper: state 'none' != now 'wne'"):
        train.train(train.parse_args(_args(image_dir, tmp_path, "dncnn", "wne", 20)))
    assert not (tmp_path / "ck").exists()


def test_plain_and_wne_see_identical_batches() -> None:
    """The per-step sampler depends on (seed, step, rank) only, so twins get the same data."""
    imgs = [np.arange(40 * 40, dtype=np.uint8).reshape(40, 40)] * 3
    from wne.lab.data import PatchSampler, step_generator

    s = PatchSampler(imgs, 16)
    x1 = s.sample(4, step_generator(0, 7))
    x2 = s.sample(4, step_generator(0, 7))
    x3 = s.sample(4, step_generator(0, 8))
    assert torch.equal(x1, x2) and not torch.equal(x1, x3)


@pytest.mark.slow
def test_torchrun_two_processes_gloo(image_dir: Path, tmp_path: Path) -> None:
    """`torchrun --nproc_per_node 2` trains on CPU with gloo and writes one checkpoint."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "wne.lab.train",
        *_args(image_dir, tmp_path, "dncnn", "wne", 6),
    ]  # fmt: skip
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert cfg["recipe"]["world_size"] == 2 and cfg["recipe"]["global_batch"] == 16
    wne.load("ck", root=tmp_path)
