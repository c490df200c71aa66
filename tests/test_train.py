"""`wne train` learns, stops under a time budget or a signal and resumes bit for bit, runs
data-parallel and writes checkpoints; `wne <subcommand>` dispatches to the lab's modules."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
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
from wne import catalog, cli, models
from wne.lab import train, zoo
from wne.lab.data import DevicePatchSampler, PatchSampler, load_folder, step_generator
from wne.models.dncnn import DnCNN

TINY = {
    "dncnn": {"depth": 4, "width": 8},
    "swinir": {"embed_dim": 8, "depths": [2], "num_heads": 2, "drop_path_rate": 0.5},
}
BN_STATS = ("running_", "num_batches_tracked")  # follow the data, not the optimizer


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


def _args(image_dir: Path, tmp: Path, arch: str, wrapper: str, steps: int, *extra: str) -> list:
    return [
        "--arch", arch, "--arch-kwargs", json.dumps(TINY[arch]), "--wrapper", wrapper,
        "--sigma", "25", "--data", str(image_dir), "--out", str(tmp / "ck"),
        "--work", str(tmp / "work"), "--steps", str(steps), "--batch", "8", "--patch", "24",
        "--val-images", "2", "--val-every", "10", "--save-every", "5", "--threads", "1",
        "--lr", "3e-3", "--no-progress", *extra,
    ]  # fmt: skip


def _run(image_dir: Path, tmp: Path, arch: str, wrapper: str, steps: int, *extra: str) -> dict:
    return train.train(train.parse_args(_args(image_dir, tmp, arch, wrapper, steps, *extra)))


def _same_weights(a: Path, b: Path, bn_stats: bool = True) -> bool:
    """Bitwise-equal checkpoints (BatchNorm statistics, which follow the data, optional)."""
    wa, wb = (load_file(str(d / "ck" / "model.safetensors")) for d in (a, b))
    keys = [k for k in wa if bn_stats or not any(s in k for s in BN_STATS)]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in keys)


def _config(tmp: Path) -> dict:
    return json.loads((tmp / "ck" / "config.json").read_text())


def _noisy_input_psnr(image_dir: Path) -> float:
    """Validation PSNR of doing nothing: the (clamped) noisy held-out images themselves."""
    val = [torch.from_numpy(im)[None, None] for im in load_folder(image_dir)[-2:]]
    return train.validate(nn.Identity(), val, 25.0, torch.device("cpu"))


@pytest.mark.parametrize(
    ("arch", "wrapper"), [("dncnn", "none"), ("dncnn", "wne"), ("swinir", "wne")]
)
def test_short_run_learns_and_writes_checkpoint(
    image_dir: Path, tmp_path: Path, arch: str, wrapper: str
) -> None:
    """20 steps cut the training loss by at least 20 % (last 5 vs first 5 steps), beat the
    noisy input on held-out images by more than 1 dB, and write a verified checkpoint."""
    summary = _run(image_dir, tmp_path, arch, wrapper, 20)
    assert summary["loss_end"] <= 0.8 * summary["loss_start"], summary
    assert summary["val_psnr"] > _noisy_input_psnr(image_dir) + 1.0, summary
    model = wne.load("ck", root=tmp_path)
    assert isinstance(model, wne.NormEquivariant) == (wrapper == "wne")
    cfg = _config(tmp_path)
    assert cfg["sigma_train"] == 25 and cfg["recipe"]["steps"] == 20
    assert cfg["recipe"]["loss"] == "mse" and cfg["recipe"]["wall_time_s"] > 0
    assert cfg["metrics"]["train_val_psnr"] == summary["val_psnr"]


def test_zero_learning_rate_changes_nothing(image_dir: Path, tmp_path: Path) -> None:
    """Negative control of the test above: with lr = 0 the weights stay exactly at their
    seeded initialization and neither the loss nor the PSNR margin is reached."""
    summary = _run(image_dir, tmp_path, "dncnn", "none", 20, "--lr", "0")
    torch.manual_seed(0)  # the trainer's --seed
    net = models.build("dncnn", **TINY["dncnn"])
    wne.save(net, tmp_path / "init" / "ck", key="ck", arch="dncnn", arch_kwargs=TINY["dncnn"])
    assert _same_weights(tmp_path, tmp_path / "init", bn_stats=False)
    assert summary["loss_end"] > 0.8 * summary["loss_start"], summary
    assert summary["val_psnr"] < _noisy_input_psnr(image_dir) + 1.0, summary


def test_init_starts_from_a_checkpoint_and_records_it(image_dir: Path, tmp_path: Path) -> None:
    """``--init``: a run with lr = 0 from a trained checkpoint ends with its weights and records
    the start's key, sha256, steps and the total (recipe, model card); another model is refused."""
    a, b = tmp_path / "a", tmp_path / "b"
    _run(image_dir, a, "dncnn", "wne", 20)
    _run(image_dir, b, "dncnn", "wne", 10, "--lr", "0", "--init", str(a / "ck"), "--seed", "1")
    assert _same_weights(a, b, bn_stats=False)
    start, recipe = _config(a), _config(b)["recipe"]
    assert recipe["init"] == {"key": "ck", "sha256": start["sha256"], "steps": 20}
    assert recipe["total_steps"] == 30 and recipe["steps"] == 10
    assert "Continued from `ck` after 20 steps" in (b / "ck" / "README.md").read_text()
    with pytest.raises(SystemExit, match=r"wrapper 'wne'.*wrapper 'none'"):
        _run(image_dir, tmp_path / "c", "dncnn", "none", 5, "--init", str(a / "ck"))
    with pytest.raises(SystemExit, match="--init"):
        _run(image_dir, tmp_path / "d", "dncnn", "wne", 5, "--init", str(tmp_path))


def test_channels_last_trains_the_same_model(image_dir: Path, tmp_path: Path) -> None:
    """``--channels-last`` changes the memory layout only: same weights up to round-off."""
    _run(image_dir, tmp_path / "nchw", "dncnn", "wne", 10)
    _run(image_dir, tmp_path / "nhwc", "dncnn", "wne", 10, "--channels-last")
    a, b = (load_file(str(tmp_path / d / "ck" / "model.safetensors")) for d in ("nchw", "nhwc"))
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-4) for k in a)


def test_budget_stops_and_resume_is_bit_identical(
    image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``--budget-s`` (a stand-in clock, 1 s per reading) a SwinIR run with stochastic depth
    stops early, state saved, no checkpoint; rerun, it ends bit for bit as an uninterrupted run
    (weights, validation history), and elsewhere without its random state (the test can fail)."""
    _run(image_dir, tmp_path / "full", "swinir", "wne", 20)
    ticks = iter(range(10**6))
    monkeypatch.setattr(train, "_now", lambda: float(next(ticks)))
    first = _run(image_dir, tmp_path / "cut", "swinir", "wne", 20, "--budget-s", "15")
    assert set(first) == {"stopped_at", "steps"} and 0 < first["stopped_at"] < 20, first
    assert not (tmp_path / "cut" / "ck").exists()
    state = json.loads((tmp_path / "cut" / "work" / "train_state.json").read_text())
    assert state["step"] == first["stopped_at"]
    norng = tmp_path / "norng"
    shutil.copytree(tmp_path / "cut" / "work", norng / "work")
    assert _run(image_dir, tmp_path / "cut", "swinir", "wne", 20)["start_step"] == state["step"]
    assert _same_weights(tmp_path / "full", tmp_path / "cut")
    assert _config(tmp_path / "full")["metrics"] == _config(tmp_path / "cut")["metrics"]
    monkeypatch.setattr(torch, "set_rng_state", lambda _: None)
    _run(image_dir, norng, "swinir", "wne", 20)
    assert not _same_weights(tmp_path / "full", norng)


def test_zoo_run_passes_the_budget_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`wne zoo --run A B --budget-s` with no time left stops A at once with its state saved
    in runs/A, does not start B, and exits with status 75."""
    yy, xx = np.mgrid[0:56, 0:56] / 56.0
    for i in range(9):
        img = (0.5 + 0.4 * np.sin(5 * xx + i) * np.cos(3 * yy)) * 255
        Image.fromarray(img.astype(np.uint8), mode="L").save(tmp_path / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    keys = ["dncnn-plain-s25", "dncnn-wne-s25"]
    argv = ["--run", *keys, "--data", str(tmp_path), "--root", "ck", "--budget-s", "1e-3"]
    assert zoo.main([*argv, "--threads", "1"]) == train.EX_TEMPFAIL
    assert json.loads(Path(f"runs/{keys[0]}/train_state.json").read_text())["step"] == 0
    assert not Path(f"runs/{keys[1]}").exists() and not Path("ck").exists()


def test_signal_stops_the_command_with_status_75(
    image_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGUSR1 during `wne train` stops it at the next step with the state saved and exit
    status 75; the handler is put back afterwards; rerun, it finishes with status 0."""
    calls = iter(range(10**6))

    def clock() -> float:
        if next(calls) == 8:
            signal.raise_signal(signal.SIGUSR1)
        return 0.0

    monkeypatch.setattr(train, "_now", clock)
    before = signal.getsignal(signal.SIGUSR1)
    argv = _args(image_dir, tmp_path, "dncnn", "wne", 20)
    assert train.main(argv) == train.EX_TEMPFAIL
    assert signal.getsignal(signal.SIGUSR1) == before
    step = json.loads((tmp_path / "work" / "train_state.json").read_text())["step"]
    assert 0 < step < 20 and not (tmp_path / "ck").exists()
    monkeypatch.setattr(train, "_now", lambda: 0.0)
    assert train.main(argv) == 0 and (tmp_path / "ck" / "config.json").is_file()


def test_stop_after_and_a_different_recipe(image_dir: Path, tmp_path: Path) -> None:
    """``--stop-after 5`` stops at step 5; resuming the state under another step count or
    wrapper is refused by name, and nothing is written."""
    stopped = _run(image_dir, tmp_path, "dncnn", "none", 20, "--stop-after", "5")
    assert stopped == {"stopped_at": 5, "steps": 20}
    with pytest.raises(SystemExit, match=r"different recipe: steps: state 20 != now 40"):
        _run(image_dir, tmp_path, "dncnn", "none", 40)
    with pytest.raises(SystemExit, match=r"wrapper: state 'none' != now 'wne'"):
        _run(image_dir, tmp_path, "dncnn", "wne", 20)
    assert not (tmp_path / "ck").exists()


def test_device_sampler_records_it_and_resumes_exactly(image_dir: Path, tmp_path: Path) -> None:
    """--sampler device (the GPU path, here on the CPU) with the loss read back every 7 steps
    resumes bit for bit, is recorded in the recipe, and a host-sampled state is refused."""
    extra = ("--sampler", "device", "--sync-every", "7")
    _run(image_dir, tmp_path / "a", "dncnn", "wne", 20, *extra)
    _run(image_dir, tmp_path / "b", "dncnn", "wne", 20, *extra, "--stop-after", "9")
    assert _run(image_dir, tmp_path / "b", "dncnn", "wne", 20, *extra)["start_step"] == 9
    assert _same_weights(tmp_path / "a", tmp_path / "b")
    assert _config(tmp_path / "a")["recipe"]["sampler"] == "device"
    _run(image_dir, tmp_path / "c", "dncnn", "wne", 20, "--stop-after", "5")
    with pytest.raises(SystemExit, match="sampler"):
        _run(image_dir, tmp_path / "c", "dncnn", "wne", 20, *extra)


def _dihedral_crops(im: np.ndarray, p: int) -> set[bytes]:
    crops = torch.from_numpy(im).unfold(0, p, 1).unfold(1, p, 1).reshape(-1, p, p)
    turns = [torch.rot90(crops, k, dims=(1, 2)) for k in range(4)]
    return {c.contiguous().numpy().tobytes() for r in turns for c in (*r, *r.flip(2))}


def test_patch_samplers(image_dir: Path) -> None:
    """The GPU sampler (here on the CPU): a fixed batch per step and seed, each patch a dihedral
    transform of a crop inside its own image (never the padding), all 8 occur; too-small images
    are refused. The host sampler: a batch depends on (seed, step) only (twins get the same data),
    8-bit files give exactly uint8 / 255, integer arrays are refused naming the reader."""
    rng = np.random.default_rng(0)
    imgs = [rng.random((14, 19), dtype=np.float32), rng.random((21, 12), dtype=np.float32)]
    s = DevicePatchSampler(imgs, 6, "cpu")
    x1 = s.sample(300, step_generator(0, 5))
    assert x1.shape == (300, 1, 6, 6) and torch.equal(x1, s.sample(300, step_generator(0, 5)))
    assert not torch.equal(x1, s.sample(300, step_generator(0, 6)))
    allowed = _dihedral_crops(imgs[0], 6) | _dihedral_crops(imgs[1], 6)
    assert all(x1[k, 0].contiguous().numpy().tobytes() in allowed for k in range(300))
    flat = np.arange(36, dtype=np.float32).reshape(6, 6) / 36
    one = DevicePatchSampler([flat], 6, "cpu").sample(400, step_generator(1, 0))
    assert len({one[k, 0].numpy().tobytes() for k in range(400)}) == 8
    with pytest.raises(ValueError, match="smaller than the patch"):
        DevicePatchSampler([np.zeros((5, 30), np.float32)], 6, "cpu")
    s = PatchSampler(load_folder(image_dir), 24)
    patches, again, other = (s.sample(8, step_generator(3, t)) for t in (0, 0, 1))
    assert torch.equal(patches, again) and not torch.equal(patches, other)
    assert torch.isin(patches, torch.arange(256, dtype=torch.uint8).float() / 255.0).all()
    with pytest.raises(ValueError, match="grayscale float"):
        PatchSampler([np.zeros((30, 30), np.uint8)], 24)


@pytest.mark.slow
def test_torchrun_two_processes_gloo(image_dir: Path, tmp_path: Path) -> None:
    """`torchrun --nproc_per_node 2` trains on CPU with gloo and writes one checkpoint; both
    ranks end with identical weights, the ones rank 0 saved."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "wne.lab.train", *_args(image_dir, tmp_path, "dncnn", "wne", 6)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    recipe = _config(tmp_path)["recipe"]
    assert recipe["world_size"] == 2 and recipe["global_batch"] == 16
    rank0, rank1 = recipe["replica_weights_sha256"]
    assert rank0 == rank1 == train.weights_digest(wne.load("ck", root=tmp_path))


def test_wne_command_dispatches_to_the_lab(capsys, monkeypatch) -> None:
    """`wne --help` lists every subcommand; an unknown one or a missing module: status 2, named;
    `wne train --help` is the trainer's help; `python -m wne zoo --list` the catalog's keys."""
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n  {name} " in out for name in cli.COMMANDS)
    assert cli.main(["trian"]) == 2 and "unknown subcommand 'trian'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--help"])
    assert exc.value.code == 0 and "--budget-s" in capsys.readouterr().out
    monkeypatch.setitem(cli.COMMANDS, "denoise", ("wne.lab.no_such_module", "x"))
    assert cli.main(["denoise"]) == 2
    assert "wne.lab.no_such_module is not in this installation" in capsys.readouterr().err
    cmd = [sys.executable, "-m", "wne", "zoo", "--list"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.split() == list(catalog.keys())


# --- the rivals' options: --wrapper input, --sigma-range, --soft-ne -----------------------


def _rival_run(image_dir: Path, tmp: Path, steps: int, *extra: str, sigma: tuple = ()) -> dict:
    """A tiny DnCNN run with the rivals' options: ``sigma`` replaces ``--sigma 25``."""
    argv = _args(image_dir, tmp, "dncnn", "none", steps, *extra)
    if sigma:
        i = argv.index("--sigma")
        argv[i : i + 2] = list(sigma)
    return train.train(train.parse_args(argv))


def _pair_args(*extra: str) -> argparse.Namespace:
    return train.parse_args(["--arch", "dncnn", "--data", "d", "--out", "o", *extra])


def test_sigma_range_and_soft_ne_make_the_pairs_they_say() -> None:
    """``training_pair``: a fixed σ is the trainer's old formula bit for bit; ``--sigma-range``
    gives each patch its own σ inside the range (the residual's spread); ``--soft-ne`` maps
    noisy and target by the same α·t + μ per patch, α and μ inside their ranges and varying."""
    clean = torch.rand(64, 1, 32, 32)
    fixed = train.training_pair(clean, step_generator(0, 3), _pair_args("--sigma", "25"))
    gen = step_generator(0, 3)
    old = clean + torch.randn(clean.shape, generator=gen) * (25 / 255.0)
    assert torch.equal(fixed[0], old) and torch.equal(fixed[1], clean)

    noisy, target = train.training_pair(
        clean, step_generator(0, 3), _pair_args("--sigma-range", "5", "45")
    )
    assert torch.equal(target, clean)
    spread = (noisy - clean).flatten(1).std(dim=1) * 255
    assert float(spread.min()) > 4.0 and float(spread.max()) < 47.0
    assert float(spread.max() - spread.min()) > 20.0  # per patch, not per batch

    args = _pair_args("--sigma", "10", "--soft-ne", "--soft-ne-alpha", "0.5", "2")
    noisy, target = train.training_pair(clean, step_generator(0, 3), args)
    c, t = clean.flatten(1), target.flatten(1)
    alpha = ((c - c.mean(1, keepdim=True)) * (t - t.mean(1, keepdim=True))).sum(1) / (
        (c - c.mean(1, keepdim=True)).square().sum(1)
    )
    mu = t.mean(1) - alpha * c.mean(1)
    assert float(alpha.min()) >= 0.5 and float(alpha.max()) <= 2.0 and float(alpha.std()) > 0.2
    assert float(mu.min()) >= 0.0 and float(mu.max()) <= 1.0 and float(mu.std()) > 0.1
    residual = (noisy - target).flatten(1).std(dim=1) / alpha * 255
    assert torch.allclose(residual, torch.full_like(residual, 10.0), rtol=0.15)


def test_rival_options_are_checked_by_the_parser(capsys: pytest.CaptureFixture) -> None:
    """Either --sigma or --sigma-range; ranges need 0 <= LO <= HI; the soft-NE ranges need
    --soft-ne, whose default is the catalog's (the paper's) α ~ U(0, 1), μ ~ U(0, 1)."""
    for bad in ([], ["--sigma", "5", "--sigma-range", "0", "5"], ["--sigma-range", "9", "2"],
                ["--sigma", "5", "--soft-ne-mu", "0", "1"]):  # fmt: skip
        with pytest.raises(SystemExit):
            _pair_args(*bad)
    capsys.readouterr()
    args = _pair_args("--sigma", "10", "--soft-ne")
    assert (args.soft_ne_alpha, args.soft_ne_mu) == ([0.0, 1.0], [0.0, 1.0])
    assert train.recipe_fingerprint(args)["soft_ne"] == {"alpha": [0.0, 1.0], "mu": [0.0, 1.0]}
    plain = train.recipe_fingerprint(_pair_args("--sigma", "10"))
    assert not set(train.OPTIONAL_RECIPE_FIELDS) & set(plain)  # old fingerprints unchanged
    assert train.validation_sigma(_pair_args("--sigma-range", "0", "55")) == 27.5


@pytest.mark.parametrize(
    ("wrapper", "extra", "sigma"),
    [
        ("input", (), ()),
        ("none", ("--soft-ne",), ()),
        ("wne", (), ("--sigma-range", "0", "55")),
    ],
)
def test_rival_runs_resume_bit_for_bit_and_record_what_they_are(
    image_dir: Path, tmp_path: Path, wrapper: str, extra: tuple, sigma: tuple
) -> None:
    """Each rival option trains deterministically: stopped after 9 steps and rerun, it ends
    with the weights of an uninterrupted run; config.json records the wrapper, the noise range
    (σ_train null) or the augmentation, and the loaded model is the right wrapper."""
    extra = ("--wrapper", wrapper, *extra)
    _rival_run(image_dir, tmp_path / "a", 20, *extra, sigma=sigma)
    _rival_run(image_dir, tmp_path / "b", 20, *extra, "--stop-after", "9", sigma=sigma)
    assert _rival_run(image_dir, tmp_path / "b", 20, *extra, sigma=sigma)["start_step"] == 9
    assert _same_weights(tmp_path / "a", tmp_path / "b")
    cfg = _config(tmp_path / "a")
    assert cfg["wrapper"] == wrapper
    model = wne.load("ck", root=tmp_path / "a")
    kind = {"input": wne.wrapper.InputNormalized, "wne": wne.NormEquivariant}
    assert isinstance(model, kind.get(wrapper, DnCNN))
    if sigma:
        assert cfg["sigma_train"] is None and cfg["sigma_range"] == [0.0, 55.0]
        assert cfg["recipe"]["sigma_range"] == [0.0, 55.0]
        assert "σ ~ U[0, 55] per patch" in (tmp_path / "a" / "ck" / "README.md").read_text()
    else:
        assert cfg["sigma_train"] == 25 and "sigma_range" not in cfg
    if "--soft-ne" in extra:
        assert cfg["augment"] == {"soft_ne": {"alpha": [0.0, 1.0], "mu": [0.0, 1.0]}}
        assert cfg["recipe"]["soft_ne"] == cfg["augment"]["soft_ne"]
    else:
        assert "augment" not in cfg and "soft_ne" not in cfg["recipe"]


def test_a_rival_state_is_not_resumed_without_its_options(image_dir: Path, tmp_path: Path) -> None:
    """A state saved with --soft-ne (or a noise range) is refused by a run without it, and
    the other way round: the optional fields are compared both ways."""
    _rival_run(image_dir, tmp_path, 20, "--soft-ne", "--stop-after", "3")
    with pytest.raises(SystemExit, match="soft_ne"):
        _rival_run(image_dir, tmp_path, 20)
    _rival_run(image_dir, tmp_path / "r", 20, "--stop-after", "3")
    with pytest.raises(SystemExit, match="sigma_range"):
        _rival_run(image_dir, tmp_path / "r", 20, sigma=("--sigma-range", "0", "55"))
