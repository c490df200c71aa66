"""The "Restore from a few pixels" page's logic (no Gradio): settings, the two streamed walks,
their stop reasons and scores, determinism, and bad requests.

Tiny random-init checkpoints (:mod:`app_fixtures`): plain and WNE at σ_train 25 for both
backbones, only the plain CNN at 10, nothing at 50. Tiny images and step budgets.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from app_fixtures import PARROTS, make_demo_checkpoints

from wne.demo.endpoints import restore_page_updates
from wne.demo.restore import (
    CPU_RESTORE,
    GPU_RESTORE,
    STREAM_FRAMES,
    Restorer,
    RestoreState,
    RestoreView,
    prepare_image,
    restore_view,
    restore_walks,
)
from wne.demo.settings import (
    RESTORE_PARAMS,
    DemoInputError,
    RestoreSettings,
    parse_restore_settings,
    shown_restore_controls,
)
from wne.demo.zoo import Zoo
from wne.sampler import Measurement

SMALL = {"max_side": 32, "max_steps": 6, "sigma_train": 25}
"""A request that runs in well under a second with the tiny models."""


@pytest.fixture(scope="module")
def restorer(tmp_path_factory: pytest.TempPathFactory) -> Restorer:
    root = make_demo_checkpoints(tmp_path_factory.mktemp("ckpt"), broken=False)
    return Restorer(Zoo.discover(root, device="cpu", hub_repo=""))


def _run(restorer: Restorer, **raw: object) -> list[RestoreView]:
    return list(restorer.restore(str(PARROTS), **{**SMALL, **raw}))


def test_settings_are_defined_once_with_clear_errors() -> None:
    s = parse_restore_settings()
    assert (s.task, s.keep, s.factor, s.backbone, s.sigma_train) == (
        "inpaint",
        10.0,
        4,
        "dncnn",
        10,
    )
    assert list(RESTORE_PARAMS) == list(s.to_dict())
    assert parse_restore_settings(task="superres", factor="8").factor == 8
    bad = [
        ({"task": "deblur"}, "task must be one of"),
        ({"keep": 0}, r"kept pixels \(%\) must be in \[1, 100\], got 0"),
        ({"hole": 90}, r"hole size \(%\) must be in \[5, 75\]"),
        ({"factor": 3}, r"super-resolution factor must be one of \[2, 4, 8\], got 3"),
        ({"backbone": "fdncnn-ne"}, "backbone must be one of"),
        ({"max_steps": 0}, r"step budget must be in \[1, 1000\]"),
        ({"max_steps": 2.5}, "step budget must be a whole number"),
        ({"noise_sigma": float("nan")}, "start noise sigma must be a finite number"),
        ({"color": "maybe"}, "colour must be true or false"),
        ({"a": 1}, r"unknown argument\(s\) \['a'\]"),
    ]
    for raw, message in bad:
        with pytest.raises(DemoInputError, match=message):
            parse_restore_settings(**raw)
    with pytest.raises(DemoInputError, match=r"working size must be in \[32, 256\], got 512"):
        parse_restore_settings(max_side=512, max_side_limit=256)
    assert shown_restore_controls("superres") == {
        "keep": False,
        "hole": False,
        "factor": True,
        "noise_sigma": False,
    }


def test_page_defaults_follow_the_hardware_and_the_installed_models(restorer: Restorer) -> None:
    """σ_train 10 is the default only where the plain + WNE pair exists (here only 25 has
    both); the CPU gets 128 px and the CPU step budget, up to 256 px."""
    p = restorer.params()
    assert p["sigma_train"].default == 25 and p["backbone"].default == "dncnn"
    assert dict((v, label) for label, v in p["sigma_train"].choices)[50].endswith("(no models)")
    assert (p["max_side"].default, p["max_side"].hi) == (128, CPU_RESTORE.max_side_limit)
    assert p["max_steps"].default == CPU_RESTORE.max_steps
    assert GPU_RESTORE.max_steps == 1000 and GPU_RESTORE.max_side > CPU_RESTORE.max_side
    with pytest.raises(DemoInputError, match="working size must be in"):
        restorer.settings(max_side=300)


def test_walks_stream_snapshots_then_the_final_scores(restorer: Restorer) -> None:
    views = _run(restorer, max_steps=12)
    assert len(views) >= 3 and not views[0].done and views[-1].done
    assert all(not v.done for v in views[:-1])
    last = views[-1]
    models = last.summary["models"]
    assert list(models) == ["dncnn-plain-s25", "dncnn-wne-s25"]
    for m in models.values():
        assert m["stop"] in ("converged", "max_steps", "diverged") and 1 <= m["steps"] <= 12
        assert len(m["sigma_hat_8bit"]) >= m["steps"] and len(m["psnr_per_step"]) == m["steps"] + 1
        if m["stop"] != "diverged":
            assert isinstance(m["psnr"], float) and isinstance(m["ssim"], float)
    json.dumps(last.summary)
    # every walk's σ̂ on the plot, and the stopping level σ_L = 2.55 across the budget
    levels = [r for r in last.sigma_rows if r["model"] == "σ_L"]
    assert [r["step"] for r in levels] == [0, 12] and levels[0]["sigma_hat"] == pytest.approx(2.55)
    plotted = {r["model"] for r in last.psnr_rows}
    assert plotted == {"CNN · plain", "CNN · WNE"}
    assert "**Done.**" in last.text and "**Walking…**" in views[1].text
    assert all(img is not None and img.dtype == np.uint8 for img in last.images)
    updates = restore_page_updates(last)
    assert len(updates) == 6 and updates[3]["x_lim"] == [0, 12] and "frame" in updates[4]


def test_a_fixed_seed_gives_the_same_result_and_another_seed_does_not(restorer: Restorer) -> None:
    def final(seed: int) -> RestoreView:
        return _run(restorer, seed=seed)[-1]

    a, b, c = final(3), final(3), final(4)
    for x, y in zip(a.images, b.images, strict=True):
        np.testing.assert_array_equal(x, y)
    strip = {"seconds"}
    for key in a.summary["models"]:
        ma, mb = a.summary["models"][key], b.summary["models"][key]
        assert {k: v for k, v in ma.items() if k not in strip} == {
            k: v for k, v in mb.items() if k not in strip
        }
    assert not np.array_equal(a.images[1], c.images[1])


def test_the_observed_pixels_are_kept_exactly(restorer: Restorer) -> None:
    """Inpainting's final images agree with the clean image on every observed pixel."""
    s = restorer.settings(**SMALL, keep=30, seed=2)
    clean, _ = prepare_image(np.asarray(_loaded_parrots(32)), s)
    mask = Measurement.inpaint(torch.zeros(1, 1, *clean.shape[:2]), 0.3, 2).mask
    assert mask is not None
    kept = mask[0, 0].numpy().astype(bool)
    last = _run(restorer, keep=30, seed=2)[-1]
    expected = np.rint(np.clip(clean[..., 0], 0, 1) * 255).astype(np.uint8)
    for img in last.images:
        assert img is not None
        np.testing.assert_array_equal(img[kept], expected[kept])


def _loaded_parrots(side: int) -> np.ndarray:
    from wne.demo.imaging import load_image

    return load_image(str(PARROTS), max_side=side).pixels


@pytest.mark.parametrize(
    ("raw", "caption"),
    [
        ({"task": "center_hole", "hole": 40}, "all but a 40 % hole · "),
        ({"task": "superres", "factor": 8}, "8×8 block means · "),
        ({"task": "denoise", "noise_sigma": 25}, "noisy start, σ = 25 · "),
    ],
)
def test_every_task_runs_and_says_what_was_observed(
    restorer: Restorer, raw: dict[str, object], caption: str
) -> None:
    last = _run(restorer, **raw)[-1]
    assert last.done and caption in last.observed_label
    assert set(last.summary["models"]) == {"dncnn-plain-s25", "dncnn-wne-s25"}
    if raw["task"] == "denoise":  # Table 11: no injected noise, stop at σ̂ ≤ 1
        assert last.summary["sampler"]["beta"] == 1.0
        assert last.summary["sampler"]["sigma_stop_8bit"] == pytest.approx(1.0)
        assert last.summary["sampler"]["sigma0_8bit"] == pytest.approx(25.0)


def test_stop_reasons_in_the_numbers_the_captions_and_the_table(restorer: Restorer) -> None:
    """A budget of 2 steps stops each unfinished walk at 2. Keeping every pixel gives the
    clean image back (PSNR ∞, "inf" in JSON). Each stop reason is said in words."""
    capped = _run(restorer, max_steps=2, backbone="swinir")[-1]
    models = capped.summary["models"]
    assert all(m["steps"] <= 2 for m in models.values())
    assert all(m["stop"] == "max_steps" for m in models.values() if m["steps"] == 2)
    assert "step budget used up" in capped.text
    full = _run(restorer, keep=100, max_steps=2)[-1]
    assert [m["psnr"] for m in full.summary["models"].values()] == ["inf", "inf"]
    assert "∞ dB" in full.labels[0]
    state = _state(restorer)
    state.runs[0].stop, state.runs[1].stop = "converged", "diverged"
    state.runs[1].ssim = None
    view = restore_view(state, [])
    plain = state.runs[0]
    assert view.labels[0] == f"plain · {plain.psnrs[-1]:.2f} dB · {plain.steps} steps"
    assert "σ̂ reached σ_L" in view.text
    assert view.labels[1] == f"WNE · diverged at step {state.runs[1].steps}"
    assert view.summary["models"]["dncnn-wne-s25"]["psnr"] is None
    assert "diverged (the state stopped being finite)" in view.text


def _state(restorer: Restorer) -> RestoreState:
    """A finished run's state, to set its stop reasons by hand."""
    s = restorer.settings(**SMALL)
    clean, _ = prepare_image(_loaded_parrots(32), s)
    *_, state = restore_walks(restorer.zoo, clean, s)
    return state


def test_missing_models_are_reported_and_nothing_at_all_is_an_error(restorer: Restorer) -> None:
    views = _run(restorer, sigma_train=10)  # only the plain CNN is installed at 10
    last = views[-1]
    assert list(last.summary["models"]) == ["dncnn-plain-s10"]
    assert "dncnn-wne-s10" in last.summary["unavailable"] and last.images[1] is None
    assert last.labels[1] == "WNE · unavailable" and "no checkpoint" in last.text
    with pytest.raises(DemoInputError, match="no checkpoint 'dncnn-plain-s50'"):
        _run(restorer, sigma_train=50)
    clean = np.full((32, 32, 1), 0.5, np.float32)
    with pytest.raises(DemoInputError, match="no checkpoint 'dncnn-wne-s50'"):
        next(restore_walks(restorer.zoo, clean, RestoreSettings(sigma_train=50)))


def test_colour_grayscale_and_the_super_resolution_crop(restorer: Restorer) -> None:
    gray = _run(restorer, max_steps=1)[-1]
    assert gray.summary["image"]["channels"] == 1 and gray.images[0] is not None
    assert gray.images[0].ndim == 2 and any("grayscale" in n for n in gray.summary["notes"])
    color = _run(restorer, max_steps=1, color=True)[-1]
    assert color.summary["image"]["channels"] == 3 and color.images[0].shape[-1] == 3
    s = RestoreSettings(task="superres", factor=8, max_side=36)
    img, notes = prepare_image(np.full((36, 30, 1), 0.5, np.float32), s)
    assert img.shape == (32, 24, 1) and "Cropped to 24×32" in notes[0]
    with pytest.raises(DemoInputError, match="too small for super-resolution ×8"):
        prepare_image(np.zeros((12, 40, 1), np.float32), s)


def test_bad_images_and_arguments_are_refused_before_any_walk(restorer: Restorer) -> None:
    with pytest.raises(DemoInputError, match="no image given"):
        list(restorer.restore(None, **SMALL))
    with pytest.raises(DemoInputError, match="task must be one of"):
        list(restorer.restore(str(PARROTS), **SMALL, task="deblur"))


def test_streaming_cadence_follows_the_budget(restorer: Restorer) -> None:
    """About :data:`STREAM_FRAMES` snapshots whatever the budget: the start, one every
    ⌈budget / 40⌉ steps, one when a walk stops, the final one."""
    views = _run(restorer, max_steps=80, keep=50)
    every = math.ceil(80 / STREAM_FRAMES)
    assert every == 2 and len(views) <= 80 // every + 4
    for v in views[:-1]:
        models = v.summary["models"].values()
        step = max(m["steps"] for m in models)
        assert step % every == 0 or any(m["stop"] for m in models), step


def test_the_walks_go_through_the_gpu_hook_with_picklable_arguments_and_snapshots(
    restorer: Restorer,
) -> None:
    """On ZeroGPU (``spaces.GPU``) the walks run in a worker: the hook gets them with a
    duration that grows with the work; the arguments (not the zoo) and every snapshot are
    pickled on the way, as ZeroGPU does."""
    calls: list[int] = []

    def hook(fn: Any, duration: Any = None) -> Any:
        def gpu_call(*args: Any) -> Any:
            calls.append(duration(*args))
            pickle.dumps(args)
            for item in fn(*args):
                yield pickle.loads(pickle.dumps(item))

        return gpu_call

    zoo = restorer.zoo
    views = list(Restorer(zoo, gpu=hook).restore(str(PARROTS), **SMALL))
    assert views[-1].done and views[-1].summary["models"] and len(calls) == 1
    assert isinstance(calls[0], int) and 15 <= calls[0] <= 120
    expected = _run(restorer)[-1]
    np.testing.assert_array_equal(views[-1].images[1], expected.images[1])
    small = restorer.gpu_seconds(np.zeros((64, 64, 1)), RestoreSettings())
    big = restorer.gpu_seconds(np.zeros((512, 512, 3)), RestoreSettings(max_steps=1000))
    assert 15 <= small < big <= 120


def test_the_image_is_read_at_the_working_size(restorer: Restorer) -> None:
    last = _run(restorer, max_steps=3)[-1]
    assert last.summary["image"] == {"width": 32, "height": 32, "channels": 1}
    assert any("working size 32 px" in n for n in last.summary["notes"])
    assert last.summary["observed"]["psnr"] < 15  # 10 % of the pixels, the rest black


def test_the_timing_script_runs_the_page_computation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m wne.lab.restore_bench`` (the README's timing table) on tiny models."""
    from wne.lab import restore_bench

    root = make_demo_checkpoints(tmp_path / "ckpt", broken=False)
    args = ["--checkpoints", str(root), "--backbones", "dncnn", "--sizes", "32", "--steps", "3"]
    args += ["--sigma-train", "25", "--image", str(PARROTS), "--out", str(tmp_path)]
    assert restore_bench.main(args) == 0
    data = json.loads((tmp_path / "restore-bench-cpu.json").read_text())
    (row,) = data["runs"]
    assert row["settings"]["max_steps"] == 3 and row["image"]["width"] == 32
    assert set(row["models"]) == {"dncnn-plain-s25", "dncnn-wne-s25"}
    assert row["wall_seconds"] > 0 and row["snapshots"] >= 2
    assert data["machine"]["cpu_count"] and len(data["machine"]["load_average_before"]) == 3
    assert "| dncnn | 25 | inpaint | 32×32 | 3 |" in capsys.readouterr().out
