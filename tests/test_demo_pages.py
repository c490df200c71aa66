"""The demo's pages as plain functions (no Gradio): what each computes, on tiny models and
the shipped ones.

- Compare: scores equal scikit-image's on the target ``a·x + b`` (data range ``a``, the
  shipped checkpoints); WNE scores the same under any shift; results stream backbone by
  backbone; every noise type is the library's; missing models are reported, not raised;
  the page view says what the API values say.
- Equivariance, sweep, Inside WNE, Restore: the numbers that make each page's point.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from app_fixtures import PARROTS, make_demo_checkpoints
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from wne.degrade import NOISES
from wne.demo import DemoInputError, Zoo
from wne.demo.imaging import load_image
from wne.demo.pages import compare, equivariance, inside, restore, sweep
from wne.imageio import read_image
from wne.sampler import Measurement

ROOT = Path(__file__).resolve().parent.parent
SCENE = compare.Scene(
    a=1.0,
    b=0.0,
    sigma=25.0,
    seed=0,
    sigma_train=25,
    backbones=("dncnn", "swinir"),
    order="shift-then-noise",
    max_side=48,
    clip=False,
    noise="gaussian",
    photons=20.0,
    read_noise=1.0,
    quality=30,
    checkpoint="best",
)
WALKS = restore.Walks(
    task="inpaint",
    keep=20.0,
    hole=25.0,
    factor=4,
    noise_sigma=10.0,
    backbone="dncnn",
    sigma_train=25,
    seed=1,
    max_steps=8,
    max_side=32,
    color=False,
)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    root = make_demo_checkpoints(tmp_path_factory.mktemp("pages"), broken=False)
    return Zoo.discover(root, device="cpu", hub_repo="")


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return load_image(str(PARROTS), max_side=48).pixels


def last(it: object) -> object:
    return list(it)[-1]  # type: ignore[call-overload]


@pytest.mark.parametrize("order", ["shift-then-noise", "noise-then-shift"])
@pytest.mark.parametrize("clip", [False, True])
def test_reported_scores_equal_scikit_image(order: str, clip: bool) -> None:
    """The shipped checkpoints at 48 px: PSNR/SSIM of the noisy input and every model equal
    scikit-image's on a target computed here, and the captions and table show them."""
    shipped = Zoo.discover(ROOT / "checkpoints", device="cpu", hub_repo="")
    img = load_image(str(PARROTS), max_side=48).pixels
    a, b = 0.6, 0.25
    all3 = ("dncnn", "swinir", "fdncnn-ne")
    s = replace(SCENE, a=a, b=b, sigma=30.0, seed=4, order=order, clip=clip, backbones=all3)
    res = last(compare.run(shipped, img, s))
    target = a * img.astype(np.float64) + b
    target = target.clip(0, 1) if clip else target
    np.testing.assert_allclose(res.target, target, atol=1e-6)
    noisy, _, gallery, summary = compare.outputs(res, [])
    view = compare.page(noisy, gallery, summary)
    assert len(res.runs) == 5
    for run in res.runs:
        assert run.output is not None, run.message
        out = run.output.astype(np.float64)
        psnr = peak_signal_noise_ratio(target, out, data_range=a)
        gauss = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
        ssim = structural_similarity(target, out, data_range=a, channel_axis=2, **gauss)
        assert (run.psnr, run.ssim) == pytest.approx((psnr, ssim), abs=1e-4)
        row = next(r for r in view["table"] if r[0] == run.label)
        assert float(row[1]) == round(psnr, 2) and float(row[2]) == round(ssim, 4), row
        assert any(c.startswith(run.label) and f"PSNR {psnr:.2f} dB" in c for _, c in gallery)
    noisy_psnr = peak_signal_noise_ratio(target, res.noisy.astype(np.float64), data_range=a)
    assert res.noisy_psnr == pytest.approx(noisy_psnr, abs=1e-4)
    assert f"{noisy_psnr:.2f} dB" in view["noisy_label"]


def test_the_image_is_read_as_the_library_reads_it(zoo: Zoo) -> None:
    np.testing.assert_array_equal(
        load_image(str(PARROTS), max_side=256).pixels, read_image(PARROTS)
    )


def test_wne_scores_the_same_under_any_shift_and_plain_does_not(
    zoo: Zoo, clean: np.ndarray
) -> None:
    """Shift applied to the noisy image: WNE's PSNR (data range a) does not move, plain's does."""
    base = replace(SCENE, order="noise-then-shift")
    runs = [
        {r.key: r.psnr for r in last(compare.run(zoo, clean, replace(base, a=a, b=b))).runs}
        for a, b in ((1.0, 0.0), (0.3, 0.2), (2.0, -0.4))
    ]
    for key in ("dncnn-wne-s25", "swinir-wne-s25"):
        assert max(r[key] for r in runs) - min(r[key] for r in runs) < 1e-3
    assert max(r["dncnn-plain-s25"] for r in runs) - min(r["dncnn-plain-s25"] for r in runs) > 0.1


def test_the_comparison_streams_input_first_then_model_by_model(
    zoo: Zoo, clean: np.ndarray
) -> None:
    steps = list(compare.run(zoo, clean, SCENE))
    keys = ["dncnn-plain-s25", "dncnn-wne-s25", "swinir-plain-s25", "swinir-wne-s25"]
    together = compare.side_by_side(zoo.device)
    assert [len(s.runs) for s in steps] == list(range(0, 5, together))
    assert [len(s.pending) for s in steps] == [4 - len(s.runs) for s in steps]
    assert [r.key for r in steps[-1].runs] == keys and steps[-1].notes
    assert not steps[0].runs and not steps[1].notes  # snapshots: later steps change nothing
    np.testing.assert_array_equal(steps[0].noisy, steps[-1].noisy)
    summary = compare.outputs(steps[0], [])[3]
    assert summary["pending"] == keys and summary["models"] == {}


def test_missing_models_are_reported_not_raised(zoo: Zoo, clean: np.ndarray) -> None:
    res = last(compare.run(zoo, clean, replace(SCENE, sigma_train=10, backbones=("dncnn",))))
    plain, wne = res.runs
    assert plain.output is not None and wne.output is None and "dncnn-wne-s10" in wne.message
    gpu = last(compare.run(zoo, clean, replace(SCENE, checkpoint="gpu", backbones=("dncnn",))))
    assert all(r.output is None and "paper-size, GPU-trained" in r.message for r in gpu.runs)
    noisy, _, gallery, summary = compare.outputs(res, [])
    panel = compare.page(noisy, gallery, summary)["panels"][0]
    assert panel.left is not None and panel.right is None and "unavailable" in panel.right_label
    assert panel.pair is not None and panel.pair_label.startswith("noisy ↔ plain")


@pytest.mark.parametrize("kind", list(NOISES))
def test_each_noise_type_is_the_librarys(zoo: Zoo, clean: np.ndarray, kind: str) -> None:
    s = replace(SCENE, noise=kind, a=0.5, b=0.2, backbones=("dncnn",))
    res = last(compare.run(zoo, clean, s))
    target = compare.chw(clean) * 0.5 + 0.2
    expected = NOISES[kind].apply(target, 0, **NOISES[kind].values(s.to_dict()))
    np.testing.assert_array_equal(res.noisy, compare.hwc(expected))
    assert (kind == "gaussian") == (not compare.noise_notes(s, expected, target))


def test_the_page_view_follows_the_api_values(zoo: Zoo, clean: np.ndarray) -> None:
    s = replace(SCENE, backbones=("dncnn", "fdncnn-ne"))
    first, *_, final = compare.run(zoo, clean, s)
    noisy, _, gallery, summary = compare.outputs(first, [])
    view = compare.page(noisy, gallery, summary)
    assert [p.visible for p in view["panels"]] == [True, False, True]
    assert "computing" in view["panels"][0].header and len(view["table"]) == 4
    noisy, _, gallery, summary = compare.outputs(final, ["Downscaled."])
    view = compare.page(noisy, gallery, summary)
    cnn, _, ne = view["panels"]
    assert cnn.pair is not None and cnn.pair_label.startswith("plain ↔ WNE") and "Δ" in cnn.header
    assert not ne.right_visible and ne.left_label.startswith("output · ")
    assert [r[0] for r in view["table"]] == ["noisy input", "CNN · plain", "CNN · WNE", "NE-arch"]
    assert view["notes"].startswith("- Downscaled.")


def test_equivariance_maps_wne_is_round_off_and_plain_is_not(zoo: Zoo, clean: np.ndarray) -> None:
    s = replace(SCENE, a=0.5, b=0.2, backbones=("swinir",), order="noise-then-shift")
    res = last(equivariance.run(zoo, clean, s))
    plain, wne = res.runs
    assert wne.relative < 1e-5 < plain.relative and plain.error.shape == clean.shape[:2]
    gallery, defects, text = equivariance.outputs(res, [])
    assert [c.split(" ·")[0] for _, c in gallery] == ["plain", "WNE"] and gallery[0][
        0
    ].dtype == np.uint8
    assert defects["backbone"] == "swinir" and "relative defect" in text
    clipped = last(equivariance.run(zoo, clean, replace(s, clip=True, a=3.0)))
    assert clipped.runs[1].relative > 1e-5  # saturated pixels break exactness


def test_the_sweep_walks_the_noise_types_level(zoo: Zoo, clean: np.ndarray) -> None:
    s = replace(SCENE, backbones=("dncnn",), noise="lowlight")
    res = last(sweep.run(zoo, clean, s))
    photons = NOISES["lowlight"].level.sweep
    assert res.level == "photons" and len(res.rows) == 3 * len(photons)
    assert {r["model"] for r in res.rows} == {"noisy input", "CNN · plain", "CNN · WNE"}
    curves = sweep.outputs(res, [])
    assert set(curves) == {"title", "rows", "notes"}
    assert sweep.plot_titles(res) == ("PSNR vs photons per pixel", "photons per pixel at white")
    assert "equivalent Gaussian σ" in curves["notes"]


def test_inside_is_the_wrappers_own_steps(zoo: Zoo, clean: np.ndarray) -> None:
    s = replace(SCENE, a=0.5, b=0.2, backbones=("dncnn",), order="noise-then-shift")
    res = last(inside.run(zoo, clean, s))
    model = zoo.get("dncnn", "wne", 25)
    with torch.no_grad():
        torch.testing.assert_close(res.wne_y.output, model(res.y), rtol=0, atol=0)
    pictures, numbers = inside.outputs(res, [])
    assert len(pictures) == 8 and [st["pictures"] for st in numbers["steps"]] == [2, 2, 2, 2]
    assert numbers["normalized_max_diff"] < 1e-5 < numbers["plain"]["max_abs"]
    assert numbers["wne"]["max_abs"] < 1e-5 and numbers["formula"].startswith("f(y) = ")
    with pytest.raises(DemoInputError, match="no WNE wrapper"):
        last(inside.run(zoo, clean, replace(s, backbones=("fdncnn-ne",))))


def test_restore_streams_then_scores_and_a_seed_repeats(zoo: Zoo, clean: np.ndarray) -> None:
    states = []
    for state in restore.run(zoo, clean, WALKS):
        states.append(restore.outputs(state, []))
    *partial, (observed, images, summary) = states
    assert summary["done"] and not any(p[2]["done"] for p in partial) and len(partial) >= 1
    assert list(summary["models"]) == ["dncnn-plain-s25", "dncnn-wne-s25"] and observed.ndim == 2
    for m in summary["models"].values():
        assert m["stop"] in restore.STOP_REASONS and m["steps"] <= 8
    assert len(summary["captions"]) == 3 and "Done." in summary["text"]
    sigma_rows, psnr_rows = restore.plots(summary)
    assert {r["model"] for r in sigma_rows} == {"CNN · plain", "CNN · WNE", "σ_L"} and psnr_rows
    for _, _, frame in states:  # from the first frame on, each walk has its σ̂ series (the
        rows = restore.plots(frame)[0]  # page's plot keeps the series it is first sent)
        assert {r["model"] for r in rows} == {"CNN · plain", "CNN · WNE", "σ_L"}
        first = {r["model"]: r for r in rows if r["step"] == 0 and r["model"] != "σ_L"}
        start = math.log10(frame["sampler"]["sigma0_8bit"])  # every walk starts at σ0
        assert all(r["log10_sigma_hat"] == pytest.approx(start) for r in first.values())
    again = last(restore.run(zoo, clean, WALKS))
    other = last(restore.run(zoo, clean, replace(WALKS, seed=2)))
    np.testing.assert_array_equal(restore.outputs(again, [])[1][1], images[1])
    assert not np.array_equal(restore.outputs(other, [])[1][1], images[1])


def test_restore_keeps_the_observed_pixels(zoo: Zoo, clean: np.ndarray) -> None:
    w = replace(WALKS, keep=30.0, seed=2)
    gray, _ = restore.prepare_image(clean, w)
    kept = (
        Measurement.inpaint(torch.zeros(1, 1, *gray.shape[:2]), 0.3, 2)
        .mask[0, 0]
        .numpy()
        .astype(bool)
    )
    _, images, _ = restore.outputs(last(restore.run(zoo, clean, w)), [])
    expected = np.rint(np.clip(gray[..., 0], 0, 1) * 255).astype(np.uint8)
    for img in images:
        np.testing.assert_array_equal(img[kept], expected[kept])


@pytest.mark.parametrize(
    ("task", "level", "caption"),
    [
        ("center_hole", {"hole": 40.0}, "all but a 40 % hole · "),
        ("superres", {"factor": 8}, "8×8 block means · "),
        ("denoise", {"noise_sigma": 25.0}, "noisy start, σ = 25 · "),
    ],
)
def test_every_task_runs_and_says_what_was_observed(
    zoo: Zoo, clean: np.ndarray, task: str, level: dict[str, float], caption: str
) -> None:
    _, _, summary = restore.outputs(
        last(restore.run(zoo, clean, replace(WALKS, task=task, **level))), []
    )
    assert summary["captions"][0].startswith(caption) and summary["done"]


def test_restore_without_models_says_so(zoo: Zoo, clean: np.ndarray) -> None:
    w = replace(WALKS, sigma_train=50)
    assert "dncnn-plain-s50" in restore.missing_models(zoo, w)
    with pytest.raises(DemoInputError, match="dncnn-plain-s50"):
        last(restore.run(zoo, clean, w))
    assert restore.missing_models(zoo, WALKS) == ""
