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
from torch import nn

import wne
from wne import models
from wne.imageio import list_images, read_image
from wne.lab import train
from wne.lab.data import DevicePatchSampler, PatchSampler, load_folder, step_generator

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


def _val_images(image_dir: Path, n: int = 2) -> list[torch.Tensor]:
    """The held-out images of a run with ``--val-images n`` (the last ``n`` files)."""
    return [
        torch.from_numpy(read_image(p, channels=1)[..., 0])[None, None]
        for p in list_images(image_dir)[-n:]
    ]


def _noisy_input_psnr(image_dir: Path) -> float:
    """Validation PSNR of doing nothing: the (clamped) noisy inputs themselves."""
    return train.validate(nn.Identity(), _val_images(image_dir), 25.0, torch.device("cpu"))


@pytest.mark.parametrize(
    ("arch", "wrapper"), [("dncnn", "none"), ("dncnn", "wne"), ("swinir", "wne")]
)
def test_short_run_learns_and_writes_checkpoint(
    image_dir: Path, tmp_path: Path, arch: str, wrapper: str
) -> None:
    """20 steps on smooth images cut the training loss by at least 20 % (mean of the last
    5 steps vs the first 5), the model beats its noisy input on the held-out images by
    more than 1 dB, and a loadable, verified checkpoint is written."""
    summary = train.train(train.parse_args(_args(image_dir, tmp_path, arch, wrapper, 20)))
    assert summary["loss_end"] <= 0.8 * summary["loss_start"], summary
    assert summary["val_psnr"] > _noisy_input_psnr(image_dir) + 1.0, summary
    model = wne.load("ck", root=tmp_path)
    assert isinstance(model, wne.NormEquivariant) == (wrapper == "wne")
    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert cfg["sigma_train"] == 25 and cfg["recipe"]["steps"] == 20
    assert cfg["recipe"]["loss"] == "mse" and cfg["recipe"]["wall_time_s"] > 0
    assert cfg["metrics"]["train_val_psnr"] == summary["val_psnr"]


def test_zero_learning_rate_changes_nothing(image_dir: Path, tmp_path: Path) -> None:
    """Negative control of the test above: with lr = 0 the same run leaves the weights
    exactly at their seeded initialization, the loss does not improve by the margin and
    the model is no better than its noisy input."""
    summary = train.train(
        train.parse_args(_args(image_dir, tmp_path, "dncnn", "none", 20, "--lr", "0"))
    )
    torch.manual_seed(0)  # the trainer's --seed
    init = models.build("dncnn", **TINY["dncnn"]).state_dict()
    saved = load_file(str(tmp_path / "ck" / "model.safetensors"))
    assert saved.keys() == init.keys()
    for k in init:
        if "running_" in k or "num_batches_tracked" in k:
            continue  # BatchNorm statistics follow the data, not the optimizer
        assert torch.equal(saved[k], init[k]), k
    assert summary["loss_end"] > 0.8 * summary["loss_start"], summary
    assert summary["val_psnr"] < _noisy_input_psnr(image_dir) + 1.0, summary


def test_init_starts_from_a_checkpoint_and_records_it(image_dir: Path, tmp_path: Path) -> None:
    """``--init``: a run with lr = 0 started from a trained checkpoint ends with exactly its
    weights (so they were loaded, not the seeded ones), records the start's key, sha256 and
    steps with the total; a checkpoint of another model is refused by name."""
    first = tmp_path / "a"
    train.train(train.parse_args(_args(image_dir, first, "dncnn", "wne", 20)))
    start = json.loads((first / "ck" / "config.json").read_text())
    second = tmp_path / "b"
    argv = _args(image_dir, second, "dncnn", "wne", 10, "--lr", "0", "--init", str(first / "ck"))
    train.train(train.parse_args([*argv, "--seed", "1"]))
    before = load_file(str(first / "ck" / "model.safetensors"))
    after = load_file(str(second / "ck" / "model.safetensors"))
    for k in before:
        if "running_" in k or "num_batches_tracked" in k:
            continue  # BatchNorm statistics follow the data, not the optimizer
        assert torch.equal(before[k], after[k]), k
    recipe = json.loads((second / "ck" / "config.json").read_text())["recipe"]
    assert recipe["init"] == {"key": "ck", "sha256": start["sha256"], "steps": 20}
    assert recipe["total_steps"] == 30 and recipe["steps"] == 10
    with pytest.raises(SystemExit, match=r"wrapper 'wne'.*wrapper 'none'"):
        train.train(
            train.parse_args(
                _args(image_dir, tmp_path / "c", "dncnn", "none", 5, "--init", str(first / "ck"))
            )
        )
    with pytest.raises(SystemExit, match="--init"):
        train.train(
            train.parse_args(
                _args(image_dir, tmp_path / "d", "dncnn", "wne", 5, "--init", str(tmp_path))
            )
        )


def test_channels_last_trains_the_same_model(image_dir: Path, tmp_path: Path) -> None:
    """``--channels-last`` changes the memory layout only: the same 10 steps end with the same
    weights up to float round-off."""
    for name, extra in (("nchw", ()), ("nhwc", ("--channels-last",))):
        train.train(train.parse_args(_args(image_dir, tmp_path / name, "dncnn", "wne", 10, *extra)))
    a = load_file(str(tmp_path / "nchw" / "ck" / "model.safetensors"))
    b = load_file(str(tmp_path / "nhwc" / "ck" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-4) for k in a)


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


def test_device_sampler_run_records_it_and_resumes_exactly(image_dir: Path, tmp_path: Path) -> None:
    """--sampler device (the GPU path, here on the CPU) trains, records its sampler in the
    recipe, reads the loss back every --sync-every steps without changing the result,
    resumes exactly, and refuses to resume a host-sampled state."""
    a, b = tmp_path / "a", tmp_path / "b"
    extra = ("--sampler", "device", "--sync-every", "7")
    full = train.train(train.parse_args(_args(image_dir, a, "dncnn", "wne", 20, *extra)))
    train.train(
        train.parse_args(_args(image_dir, b, "dncnn", "wne", 20, *extra, "--stop-after", "9"))
    )
    resumed = train.train(train.parse_args(_args(image_dir, b, "dncnn", "wne", 20, *extra)))
    assert resumed["val_psnr"] == full["val_psnr"] and resumed["start_step"] == 9
    cfg = json.loads((a / "ck" / "config.json").read_text())
    assert cfg["recipe"]["sampler"] == "device"
    c = tmp_path / "c"
    train.train(train.parse_args(_args(image_dir, c, "dncnn", "wne", 20, "--stop-after", "5")))
    with pytest.raises(SystemExit, match="sampler"):
        train.train(train.parse_args(_args(image_dir, c, "dncnn", "wne", 20, *extra)))


def test_plain_and_wne_see_identical_batches() -> None:
    """The per-step sampler depends on (seed, step, rank) only, so twins get the same data."""
    imgs = [np.arange(40 * 40, dtype=np.float32).reshape(40, 40) / 1600] * 3
    s = PatchSampler(imgs, 16)
    x1 = s.sample(4, step_generator(0, 7))
    x2 = s.sample(4, step_generator(0, 7))
    x3 = s.sample(4, step_generator(0, 8))
    assert torch.equal(x1, x2) and not torch.equal(x1, x3)


def _dihedral_crops(im: np.ndarray, p: int) -> set[bytes]:
    t = torch.from_numpy(im)
    out = set()
    for top in range(im.shape[0] - p + 1):
        for left in range(im.shape[1] - p + 1):
            crop = t[top : top + p, left : left + p]
            for k in range(4):
                r = torch.rot90(crop, k, dims=(0, 1))
                out |= {r.contiguous().numpy().tobytes(), r.flip(1).contiguous().numpy().tobytes()}
    return out


def test_device_sampler_draws_dihedral_crops_of_each_image() -> None:
    """The GPU sampler (run here on the CPU) gives, per step and seed, a fixed batch of
    patches, each a rotation/flip of a crop lying inside its own image (images of
    different sizes: the padding of the stack is never sampled); all 8 transforms occur."""
    rng = np.random.default_rng(0)
    imgs = [rng.random((14, 19), dtype=np.float32), rng.random((21, 12), dtype=np.float32)]
    s = DevicePatchSampler(imgs, 6, "cpu")
    x1 = s.sample(300, step_generator(0, 5, device="cpu"))
    assert x1.shape == (300, 1, 6, 6) and x1.dtype == torch.float32
    assert torch.equal(x1, s.sample(300, step_generator(0, 5, device="cpu")))
    assert not torch.equal(x1, s.sample(300, step_generator(0, 6, device="cpu")))
    allowed = _dihedral_crops(imgs[0], 6) | _dihedral_crops(imgs[1], 6)
    assert all(x1[k, 0].contiguous().numpy().tobytes() in allowed for k in range(300))
    # each transform of one fixed asymmetric crop shows up somewhere in a large batch
    flat = np.arange(36, dtype=np.float32).reshape(6, 6) / 36
    one = DevicePatchSampler([flat], 6, "cpu").sample(400, step_generator(1, 0))
    assert len({one[k, 0].numpy().tobytes() for k in range(400)}) == 8
    with pytest.raises(ValueError, match="smaller than the patch"):
        DevicePatchSampler([np.zeros((5, 30), np.float32)], 6, "cpu")


def test_patches_are_the_8_bit_values_over_255(image_dir: Path) -> None:
    """Images come from wne.imageio as float32; on 8-bit files every patch value is exactly
    uint8 / 255 in float32, what the sampler gave when it cropped uint8 arrays."""
    imgs = load_folder(image_dir)
    assert all(im.dtype == np.float32 and im.ndim == 2 for im in imgs)
    patches = PatchSampler(imgs, 24).sample(8, step_generator(3, 0))
    levels = torch.arange(256, dtype=torch.uint8).float() / 255.0
    assert torch.isin(patches, levels).all()
    with pytest.raises(ValueError, match="grayscale float"):
        PatchSampler([np.zeros((30, 30), np.uint8)], 24)


@pytest.mark.slow
def test_torchrun_two_processes_gloo(image_dir: Path, tmp_path: Path) -> None:
    """`torchrun --nproc_per_node 2` trains on CPU with gloo and writes one checkpoint; both
    ranks end with identical weights (the digests each rank gathered)."""
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
    rank0, rank1 = cfg["recipe"]["replica_weights_sha256"]
    assert rank0 == rank1
    model = wne.load("ck", root=tmp_path)
    assert train.weights_digest(model) == rank0  # what rank 0 saved is what both trained
