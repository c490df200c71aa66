"""Every bundled checkpoint in checkpoints/ loads verified and really denoises."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import wne
from wne import catalog
from wne.checkpoints import default_root, sha256_file
from wne.degrade import add_gaussian_noise
from wne.lab import train, zoo
from wne.metrics import psnr

ROOT = Path(__file__).resolve().parent.parent
KEYS = catalog.keys()  # the catalog, not whatever folders exist: a missing checkpoint fails
RIVALS = [k for k in catalog.rival_keys() if (ROOT / "checkpoints" / k / "config.json").is_file()]
"""The rivals trained so far (tests/test_rivals.py: each present one is complete)."""


def _test_image() -> torch.Tensor:
    """The first example image, whole (at σ 10 the gain depends on content), grey, [1, 1, H, W]."""
    files = sorted((ROOT / "assets" / "examples").glob("*.png"))
    if not files:
        pytest.skip("no example image in assets/examples")
    with Image.open(files[0]) as im:
        g = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(g.copy())[None, None]


def test_default_root_looks_in_cwd_then_beside_the_package(monkeypatch, tmp_path: Path) -> None:
    """$WNE_CHECKPOINT_DIR wins; else ./checkpoints; else the source checkout's folder."""
    monkeypatch.setenv("WNE_CHECKPOINT_DIR", str(tmp_path / "env"))
    assert default_root() == tmp_path / "env"
    monkeypatch.delenv("WNE_CHECKPOINT_DIR")
    monkeypatch.chdir(ROOT)
    assert default_root().resolve() == (ROOT / "checkpoints").resolve()
    monkeypatch.chdir(tmp_path)  # no checkpoints/ here: the source checkout's
    assert default_root().resolve() == (ROOT / "checkpoints").resolve()
    (tmp_path / "checkpoints").mkdir()
    assert default_root().resolve() == (tmp_path / "checkpoints").resolve()


@pytest.mark.parametrize("key", [*KEYS, *RIVALS])
def test_bundled_checkpoint_loads_and_denoises(key: str) -> None:
    """sha256 matches; the model gains >= 5 dB over the noisy input at its σ_train (a range:
    its matched σ; >= 2 dB for the soft-NE augmented rival, whose harder task 2500 steps leave
    1.5 dB under its plain twin: lab book), except input-only normalization, which the paper
    shows failing (App. O)."""
    folder = ROOT / "checkpoints" / key
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["key"] == key
    assert sha256_file(folder / cfg["weights"]) == cfg["sha256"]
    model = wne.load(key, root=ROOT / "checkpoints", source="local")
    assert isinstance(model, wne.NormEquivariant) == (cfg["wrapper"] == "wne")
    assert isinstance(model, wne.wrapper.InputNormalized) == (cfg["wrapper"] == "input")
    if cfg["wrapper"] == "input":
        return  # its numbers: test_shipped (golden PSNR) and test_rivals
    clean = _test_image()
    noisy = add_gaussian_noise(clean, catalog.get(key).matched_sigma, seed=0)
    with torch.inference_mode():
        out = model(noisy).clamp(0, 1)
    gain = float(psnr(out, clean, 1.0) - psnr(noisy, clean, 1.0))
    bar = 2.0 if cfg.get("augment") else 5.0
    assert gain >= bar, f"{key}: only {gain:.2f} dB over the noisy input"


@pytest.mark.parametrize("key", [*KEYS, *RIVALS])
def test_bundled_checkpoint_was_trained_by_its_zoo_recipe(key: str) -> None:
    """`wne zoo --print KEY` is the exact recipe recorded in the checkpoint."""
    cfg = json.loads((ROOT / "checkpoints" / key / "config.json").read_text())
    recorded = dict(cfg["recipe"])
    if isinstance(recorded["arch_kwargs"], str):
        recorded["arch_kwargs"] = json.loads(recorded["arch_kwargs"])
    expected = train.recipe_fingerprint(train.parse_args(zoo.command(key)))
    recorded.setdefault("sampler", "host")  # trained before --sampler existed: on the host
    recorded.setdefault("init", None)  # trained before --init existed: from scratch
    start = catalog.get(key).recipe().init
    if start is not None:  # continued: from a checkpoint of the first run's total steps
        assert expected.pop("init") is not None
        assert recorded.pop("init")["steps"] == start.total_steps
        assert recorded["total_steps"] == catalog.get(key).recipe().total_steps
    assert {k: recorded[k] for k in expected} == expected


def test_a_continued_recipe_prints_every_run_in_order(capsys: pytest.CaptureFixture) -> None:
    """`wne zoo --print` of a key trained in two runs (the -gpu DnCNN) prints both: the first
    writes `<key>-init` from scratch, the second starts from it (`--init`) with its own
    seed and learning rate; a from-scratch key is one run, the same as `command`."""
    key = catalog.key("dncnn", "wne", 25, "gpu")
    first, second = zoo.stages(key, root="ck")
    a, b = train.parse_args(first), train.parse_args(second)
    assert a.out == f"ck/{key}{zoo.INIT_SUFFIX}" and a.init is None and a.seed == 0
    assert b.out == f"ck/{key}" and b.init == a.out and b.seed == 1 and b.channels_last
    assert (a.steps + b.steps, a.lr, b.lr) == (catalog.get(key).recipe().total_steps, 1e-3, 4e-4)
    assert second == zoo.command(key, root="ck")
    assert zoo.stages("dncnn-wne-s25") == [zoo.command("dncnn-wne-s25")]
    assert zoo.main(["--print", key]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("wne train ") for line in lines)
    assert "--init" in lines[1] and "--init" not in lines[0]
