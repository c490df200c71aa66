"""The GPU run book (``python -m wne.lab.gpu``) dry-run on CPU, and app.py's ZeroGPU path.

The dry run plays the device tool's part: every ``next`` runs on a fresh folder that
holds only the input data plus the state brought back from the previous job's
``$OUT`` (restored from its ``state.tar.part*``), as a GPU machine would receive
it; the files under ``$OUT`` must respect the tool's limits (≤ 8 files, ≤ 16 MiB).

The ZeroGPU test loads ``app.py`` as a separate module with a stand-in ``spaces``
module in ``sys.modules`` that records what ``spaces.GPU`` was given and, on each
call, evaluates the duration function with the call's own arguments, pickles the
arguments and the result (ZeroGPU runs the function in a forked worker and pickles
both ways), and marks the call as "inside the GPU function"; ``torch.cuda``'s
``is_available``/``init``/``_lazy_init`` are patched to record who calls them.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import shutil
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from wne.lab import gpu, train

ROOT = Path(__file__).resolve().parent.parent
FILE_LIMIT = 16 * 2**20
FILES_BACK = 8


def _tiny_data(src: Path) -> Path:
    rng = np.random.default_rng(0)
    for name, n, side in (("train400", 6, 40), ("set12", 2, 32)):
        d = src / name
        d.mkdir(parents=True)
        yy, xx = np.mgrid[0:side, 0:side] / side
        for i in range(n):
            im = 0.5 + 0.3 * np.sin(7 * xx + i) * np.cos(5 * yy + rng.random())
            Image.fromarray((im * 255).astype(np.uint8)).save(d / f"{i:02d}.png")
    return src


def _next(state: Path, out: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    monkeypatch.setenv("OUT", str(out))
    out.mkdir()
    argv = ["next", "--tiny", "--state", str(state), "--device", "cpu", "--max-steps", "4"]
    assert gpu.main(argv) == 0
    files = [p for p in out.rglob("*") if p.is_file()]
    assert 0 < len(files) <= FILES_BACK
    assert all(p.stat().st_size <= FILE_LIMIT for p in files)
    assert (out / "status.txt").is_file()
    return capsys.readouterr().out


def _fresh(tmp: Path, name: str, data: Path, back: Path) -> Path:
    """A new state folder as the next GPU job gets it: the data plus the returned state."""
    state = tmp / name
    shutil.copytree(data, state / "data")
    gpu.restore_state(back, state)
    return state


def test_run_book_dry_run_resumes_from_carried_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "job0"
    gpu.prepare(state, _tiny_data(tmp_path / "src"))
    data = state / "data"
    assert gpu.main(["status", "--state", str(state)]) == 0
    text = capsys.readouterr().out
    assert "not started" in text and "train:swinir-wne-s25" in text and "timing" in text

    outputs: list[str] = []
    for job in range(1, 12):
        out = tmp_path / f"out{job}"
        outputs.append(_next(state, out, monkeypatch, capsys))
        if "all done" in outputs[-1]:
            break
        assert "jobs remaining:" in outputs[-1]
        state = _fresh(tmp_path, f"job{job}", data, out)  # what the next job receives
    else:
        pytest.fail("the run book did not finish in 11 jobs")

    # --max-steps 4 with 6 steps per model: the first model stops mid-run and the
    # second job resumes it from the state that came back through $OUT
    assert "[next] train:dncnn-plain-s25    4/6 steps" in outputs[0]
    assert "[done] train:dncnn-plain-s25" in outputs[1]
    assert "--stop-after 2" in outputs[1]
    assert len(outputs) >= 5
    assert "[done] eval" in outputs[-1] and "[done] timing" in outputs[-1]

    # the final state, once more through $OUT: results and the four checkpoints
    final = _fresh(tmp_path, "back-home", data, tmp_path / f"out{len(outputs)}")
    keys = [u.key for u in gpu.units() if u.kind == "train"]
    assert all((final / "checkpoints" / k / "model.safetensors").is_file() for k in keys)
    assert not (final / "work").exists() or not any((final / "work").iterdir())
    summary = json.loads((final / "results" / "set12" / "summary.json").read_text())
    assert summary
    timing = json.loads((final / "results" / "demo-timing.json").read_text())
    assert sorted(timing["models"]) == sorted(keys) and set(timing["seconds"]) == {"32", "48"}
    assert (final / "results" / "bench" / "bench-cpu.json").is_file()
    assert gpu.main(["status", "--state", str(final)]) == 0
    assert "all done" in capsys.readouterr().out

    # the split run (4 steps, carried state, 2 more) equals an uninterrupted one
    plan = gpu.load_plan(final)
    assert plan is not None
    argv = gpu.train_argv(tmp_path / "solo", plan, "dncnn-plain-s25", "cpu")
    argv[argv.index("--data") + 1] = str(data / "train400")
    train.train(train.parse_args(argv))
    split = load_file(str(final / "checkpoints" / "dncnn-plain-s25" / "model.safetensors"))
    solo = load_file(
        str(tmp_path / "solo" / "checkpoints" / "dncnn-plain-s25" / "model.safetensors")
    )
    assert split.keys() == solo.keys()
    assert all(torch.equal(split[k], solo[k]) for k in split)

    # into the tree: the finished DnCNN twins become the catalog's -gpu entries
    _adopt_into_the_tree(final, tmp_path / "tree", capsys)
    _continue_from_the_tree(tmp_path, data, tmp_path / "tree" / "checkpoints", monkeypatch, capsys)


def _continue_from_the_tree(
    tmp: Path, data: Path, root: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """A second book continues from the adopted -gpu checkpoints (``--init-root``): each twin
    starts from its own checkpoint's weights with another seed, records what it started from
    and its total steps, and ``--no-timing`` leaves the timing unit out."""
    from wne import checkpoints

    state = tmp / "cont0"
    shutil.copytree(data, state / "data")
    monkeypatch.setenv("OUT", str(tmp / "cont-out"))
    argv = ["next", "--tiny", "--families", "dncnn", "--state", str(state), "--device", "cpu"]
    argv += ["--init-root", str(root), "--no-timing", "--channels-last"]
    assert gpu.main(argv) == 0
    out = capsys.readouterr().out
    assert "all done" in out and "timing" not in out.split("all done")[0].split("GPU run book")[-1]
    assert "--init" in out and "--channels-last" in out and "--seed 1" in out
    for variant in ("plain", "wne"):
        start = checkpoints.read_config(root / f"dncnn-{variant}-s25-gpu")
        cfg = checkpoints.read_config(state / "checkpoints" / f"dncnn-{variant}-s25")
        assert cfg.recipe["init"] == {"key": start.key, "sha256": start.sha256, "steps": 6}
        assert cfg.recipe["total_steps"] == 6 + cfg.recipe["steps"] and cfg.recipe["seed"] == 1
        card = (state / "checkpoints" / f"dncnn-{variant}-s25" / "README.md").read_text()
        assert f"Continued from `{start.key}` after 6 steps" in card
    shutil.copytree(data, tmp / "cont1" / "data")
    with pytest.raises(SystemExit, match="no checkpoint"):
        gpu.main([*argv[:5], str(tmp / "cont1"), "--init-root", str(tmp)])


def _adopt_into_the_tree(final: Path, tree: Path, capsys: Any) -> None:
    """`adopt` writes the catalog's GPU entries (verified, same tensors, recipe with the GPU's
    name, Set12 numbers as --write-metrics stores them) and the results under their keys;
    it refuses a family the catalog has no GPU recipe for and a GPU it cannot name."""
    import wne
    from wne.lab.report import headline_metrics

    base = ["adopt", "--state", str(final), "--root", str(tree / "checkpoints")]
    with pytest.raises(SystemExit, match="swinir-plain-s25-gpu"):
        gpu.main([*base, "--gpu-name", "stand-in"])  # no SwinIR GPU recipe in the catalog
    with pytest.raises(SystemExit, match="--gpu-name"):
        gpu.main([*base, "--families", "dncnn"])  # a CPU dry run records no GPU
    results = tree / "assets" / "gpu"
    argv = [*base, "--families", "dncnn", "--gpu-name", "stand-in", "--results", str(results)]
    assert gpu.main(argv) == 0
    capsys.readouterr()
    summary = json.loads((final / "results" / "set12" / "summary.json").read_text())
    for variant in ("plain", "wne"):
        old, new = f"dncnn-{variant}-s25", wne.catalog.key("dncnn", variant, 25, "gpu")
        model = wne.load(new, root=tree / "checkpoints", source="local")
        cfg = model.wne_config
        assert (cfg.key, cfg.wrapper) == (new, "wne" if variant == "wne" else "none")
        assert cfg.recipe["gpu"] == "stand-in" and cfg.recipe["run_book_key"] == old
        assert cfg.metrics["set12"] == headline_metrics(summary, old)
        assert (
            "Set12 (2 images, 1 noise draw)"
            in (tree / "checkpoints" / new / "README.md").read_text()
        )
        before = load_file(str(final / "checkpoints" / old / "model.safetensors"))
        after = load_file(str(tree / "checkpoints" / new / "model.safetensors"))
        assert all(torch.equal(before[k], after[k]) for k in before)
    moved = json.loads((results / "set12" / "summary.json").read_text())
    assert set(moved["models"]) == {
        "dncnn-plain-s25-gpu",
        "dncnn-wne-s25-gpu",
        "swinir-plain-s25",
        "swinir-wne-s25",
    }
    psnr = (results / "set12" / "psnr.csv").read_text()
    assert (
        psnr.replace("-s25-gpu", "-s25") == (final / "results" / "set12" / "psnr.csv").read_text()
    )
    assert (results / "set12" / "mismatch.png").is_file()
    assert (results / "demo-timing.json").is_file() and (results / "bench").is_dir()


def test_state_parts_respect_the_file_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    (state / "work" / "k").mkdir(parents=True)
    (state / "data").mkdir()
    (state / "data" / "big.bin").write_bytes(b"\0" * 1000)  # input data: never packed
    blob = np.random.default_rng(0).bytes(gpu.PART_BYTES + 12345)
    (state / "work" / "k" / "train_state.safetensors").write_bytes(blob)
    (state / "plan.json").write_text("{}")
    parts = gpu.pack_state(state, tmp_path / "out")
    assert [p.name for p in parts] == ["state.tar.part00", "state.tar.part01"]
    assert all(p.stat().st_size <= gpu.PART_BYTES for p in parts)
    back = tmp_path / "back"
    (back / "data").mkdir(parents=True)
    names = gpu.restore_state(tmp_path / "out", back)
    assert "data/big.bin" not in names
    assert (back / "work" / "k" / "train_state.safetensors").read_bytes() == blob
    monkeypatch.setattr(gpu, "PART_BYTES", 1000)
    with pytest.raises(SystemExit, match="parts"):
        gpu.pack_state(state, tmp_path / "out2")


# -- app.py on ZeroGPU, with a stand-in `spaces` ----------------------------------------------


class _StandInSpaces(types.ModuleType):
    """Records ``spaces.GPU`` decorations and calls like ZeroGPU would make them."""

    def __init__(self) -> None:
        super().__init__("spaces")
        self.decorated: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.inside = False

    def GPU(self, fn: Any = None, *, duration: Any = None) -> Any:
        def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
            self.decorated.append({"fn": f, "duration": duration})

            def gpu_call(*args: Any, **kwargs: Any) -> Any:
                seconds = duration(*args, **kwargs) if callable(duration) else duration
                pickle.dumps((args[:4], {k: v for k, v in kwargs.items() if k != "progress"}))
                self.inside = True
                try:
                    result = f(*args, **kwargs)
                finally:
                    self.inside = False
                pickle.dumps(result)  # comes back from the worker process
                self.calls.append({"fn": f, "args": args, "duration": seconds})
                return result

            return gpu_call

        return decorate(fn) if callable(fn) else decorate


def test_app_follows_the_zerogpu_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app_fixtures import make_demo_checkpoints

    from wne.demo import Zoo

    fake = _StandInSpaces()
    monkeypatch.setitem(sys.modules, "spaces", fake)
    cuda_calls: list[tuple[str, bool]] = []

    def recorder(name: str, result: Any) -> Callable[..., Any]:
        def record(*_: Any, **__: Any) -> Any:
            cuda_calls.append((name, fake.inside))
            return result

        return record

    monkeypatch.setattr(torch.cuda, "is_available", recorder("is_available", False))
    monkeypatch.setattr(torch.cuda, "init", recorder("init", None))
    monkeypatch.setattr(torch.cuda, "_lazy_init", recorder("_lazy_init", None))

    spec = importlib.util.spec_from_file_location("app_zerogpu_standin", ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    assert app.spaces is fake
    assert cuda_calls == []  # importing the app touches no CUDA

    zoo = Zoo.discover(make_demo_checkpoints(tmp_path / "ckpt"), device="cpu", hub_repo="")
    handlers = app.make_handlers(zoo)
    assert len(fake.decorated) == 1  # the one compute function, with a duration function
    deco = fake.decorated[0]
    assert deco["fn"] == handlers._compute_impl
    assert deco["duration"] == handlers.gpu_seconds
    at_start = len(cuda_calls)  # the device choice at start (ZeroGPU: models to CUDA there)

    img = tmp_path / "in.png"
    yy, xx = np.mgrid[0:48, 0:64] / 64
    rgb = np.stack([0.5 + 0.3 * np.sin(7 * xx + k) * np.cos(5 * yy) for k in range(3)], -1)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(img)
    handlers.denoise(str(img), max_side=64)
    handlers.equivariance(str(img), max_side=64)
    assert [c["args"][0] for c in fake.calls] == ["compare", "equivariance"]
    for call in fake.calls:
        assert isinstance(call["duration"], int) and 1 <= call["duration"] <= 120
    # the duration grows with the work: a 512² sweep gets at least a 64² compare's time
    settings = handlers.settings()
    small = handlers.gpu_seconds("compare", np.zeros((64, 64, 3), np.float32), settings)
    big = handlers.gpu_seconds("sweep", np.zeros((512, 512, 3), np.float32), settings)
    assert 1 <= small <= big <= 120
    assert not [c for c in cuda_calls if c[0] in ("init", "_lazy_init")]
    assert all(inside for _, inside in cuda_calls[at_start:])  # requests: only inside
