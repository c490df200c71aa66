"""The Why-not-simpler page (``/rivals``): each objection's trained rival beside plain and WNE
models, on the noisy image ``y`` and on ``a·y + b``.

On the bundled checkpoints, the properties each rival has or lacks: WNE at round-off for every
shift; input-only normalization invariant (its output at ``a·y + b`` is its output at ``y``, so
ε_NE is the shift's own size) and far below WNE; soft-NE augmentation smaller than plain but
not zero; the bias-free SE net exact for a contrast alone, not with a brightness. Through the
live app (tiny random-init checkpoints, the SwinIR rivals missing on purpose): the endpoint's
numbers, the missing rivals named, bad settings refused by name, the slide figure, the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from app_fixtures import PARROTS
from PIL import Image

from wne.demo import Zoo
from wne.demo.imaging import load_image
from wne.demo.pages import rivals

pytest_plugins = ["app_fixtures"]  # the session's served app (`served`)

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "checkpoints"
WNE_KEYS = ("dncnn-wne-s10", "swinir-wne-s10", "swinir-wne-s0-55", "swinir-wne-s25")


@pytest.fixture(scope="module")
def bundled() -> Zoo:
    zoo = Zoo.discover(BUNDLED, device="cpu", hub_repo="")
    missing = [k for o in rivals.OBJECTIONS.values() for k in o.keys if k not in zoo.rivals]
    missing = [k for k in missing if k not in zoo.models]
    if missing:
        pytest.skip(f"bundled checkpoints missing: {missing}")
    return zoo


def _answer(zoo: Zoo, a: float, b: float, side: int = 96) -> rivals.Contest:
    clean = load_image(PARROTS, max_side=side).pixels
    return list(rivals.run(zoo, clean, rivals.Rivals(a=a, b=b, sigma=25.0, max_side=side)))[-1]


@pytest.mark.slow
def test_bundled_rivals_have_the_symmetries_the_paper_says(bundled: Zoo) -> None:
    res = _answer(bundled, 0.5, 0.2)
    runs = res.runs
    assert not res.pending and all(m.output is not None for m in runs.values())
    for key in (*WNE_KEYS, "fdncnn-wne-s25"):
        assert runs[key].defect < rivals.EXACT, key
    for o in rivals.OBJECTIONS.values():
        assert runs[o.rival].defect > 1e-3, o.rival  # every rival breaks under this shift
    # input-only normalization is invariant: ε_NE is the shift's own size on its output
    f = torch.from_numpy(runs["dncnn-in-s10"].output)
    expected = float((f - (0.5 * f + 0.2)).norm() / (0.5 * f + 0.2).norm())
    assert runs["dncnn-in-s10"].defect == pytest.approx(expected, rel=1e-4)
    assert runs["dncnn-in-s10"].psnr_shifted < runs["dncnn-wne-s10"].psnr_shifted - 5
    # augmentation shrinks the defect, never to zero
    soft, plain = runs["swinir-softne-s10"].defect, runs["swinir-plain-s10"].defect
    assert rivals.EXACT < soft < plain / 2
    # WNE gives the same PSNR at y and at a·y + b
    for key in WNE_KEYS:
        assert runs[key].psnr_y == pytest.approx(runs[key].psnr_shifted, abs=1e-3)
    # a bias-free net is exact for a contrast alone
    contrast = _answer(bundled, 1.7, 0.0).runs
    assert contrast["fdncnn-se-s25"].defect < rivals.EXACT
    assert contrast["fdncnn-plain-s25"].defect > 1e-3


@pytest.mark.slow
def test_the_findings_say_what_the_numbers_show(bundled: Zoo) -> None:
    res = _answer(bundled, 0.5, 0.2)
    _, gallery, summary, text, table = rivals.outputs(res, [])
    found = {k: o["finding"] for k, o in summary["objections"].items()}
    assert "× smaller than the plain model's" in found["augment"]
    assert "clearly above 0" in found["scale"] and "b = 0.2" in found["scale"]
    assert "a·σ = 12.5 is inside its range [0, 55]" in found["range"]
    assert all(
        o["question"] in text and o["finding"] in text for o in summary["objections"].values()
    )
    assert len(table) == sum(len(o.keys) for o in rivals.OBJECTIONS.values())
    assert len(gallery) == len(summary["models"]) == 12  # each model drawn once
    at_b0 = rivals.outputs(_answer(bundled, 1.5, 0.0), [])[2]["objections"]["scale"]["finding"]
    assert "at round-off" in at_b0 and "set a brightness b to break it" in at_b0


def _rivals(client: Any, **args: Any) -> tuple[list, dict]:
    from gradio_client import handle_file

    return client.predict(handle_file(str(PARROTS)), **args, api_name="/rivals")


@pytest.mark.slow
def test_rivals_endpoint_with_a_shift_and_missing_rivals(served: tuple[Any, Any]) -> None:
    _, client = served
    gallery, summary = _rivals(client, a=0.5, b=0.2, sigma=25, max_side=64)
    models = summary["models"]
    assert summary["shift"] == {"a": 0.5, "b": 0.2} and not summary["pending"]
    assert models["fdncnn-wne-s25"]["defect"] < rivals.EXACT
    for key in ("dncnn-in-s10", "fdncnn-se-s25", "fdncnn-plain-s25"):
        assert models[key]["available"] and models[key]["defect"] > 1e-4, key
    assert not models["swinir-softne-s10"]["available"]
    assert "swinir-softne-s10" in models["swinir-softne-s10"]["message"]
    assert summary["objections"]["augment"]["finding"].startswith("The rival is not installed")
    assert not models["dncnn-wne-s10"]["available"]  # missing from the tiny zoo on purpose
    shown = [m for m in models.values() if m["available"]]
    assert len(gallery) == 1 + len(shown)
    pixels = [np.asarray(Image.open(g["image"])) for g in gallery]
    assert all(p.shape == pixels[0].shape for p in pixels) and pixels[0].shape[:2] == (64, 64)
    assert all(
        g["caption"].endswith(f"ε_NE {m['defect']:.1e}")
        for g, m in zip(gallery[1:], shown, strict=True)
    )


@pytest.mark.slow
def test_rivals_identity_shift_measures_the_probe(served: tuple[Any, Any]) -> None:
    _, client = served
    _, summary = _rivals(client, a=1.0, b=0.0, sigma=15, max_side=48, objections=["scale"])
    assert summary["shift"] == dict(zip("ab", rivals.PROBE, strict=True))
    assert any("trivially equivariant" in n for n in summary["notes"])
    assert set(summary["objections"]) == {"scale"}
    assert set(summary["models"]) == {"fdncnn-se-s25", "fdncnn-plain-s25", "fdncnn-wne-s25"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"objections": ["wishful"]}, r"objections: unknown value\(s\) \[.wishful.\]"),
        ({"objections": []}, "objections: choose at least 1"),
        ({"a": 0}, r"contrast a must be in \[0.1, 4"),
        ({"max_side": 8}, "working size"),
    ],
)
def test_rivals_refuses_bad_settings_by_name(
    served: tuple[Any, Any], override: dict[str, Any], message: str
) -> None:
    from gradio_client.exceptions import AppError

    _, client = served
    with pytest.raises(AppError, match=message):
        _rivals(client, **{"max_side": 48, **override})


@pytest.mark.slow
def test_rivals_slide_figure(served: tuple[Any, Any], tmp_path: Path) -> None:
    _, client = served
    gallery, summary = _rivals(client, a=0.6, b=0.1, sigma=25, max_side=48)
    shifted, outs = gallery[0]["image"], [(g["image"], g["caption"]) for g in gallery[1:]]
    png, pdf = rivals.slide_figure(shifted, outs, summary, tmp_path)
    assert png.endswith(".png") and pdf.endswith(".pdf")
    assert Image.open(png).size[0] == 1920
    with pytest.raises(Exception, match="answer the objections first"):
        rivals.slide_figure(shifted, outs, {**summary, "pending": ["scale"]}, tmp_path)
