"""The Why page (``/filters``): a pixel's adaptive filter, plain vs WNE, and Δ.

Properties, through the live app (tiny random-init checkpoints with non-zero biases) and on the
bundled checkpoints: a WNE model's filter rows sum to 1, explain its output (ρ at round-off)
and do not change under ``a·y + b``; a plain model's do not sum to 1, ρ is clearly above
round-off and its filter moves with the shift. Bad pixels are refused with their names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from app_fixtures import PARROTS
from PIL import Image

import wne
from wne.demo import Zoo
from wne.demo.imaging import load_image
from wne.demo.pages import why

pytest_plugins = ["app_fixtures"]  # the session's served app (`served`)

SHIFT = {"a": 0.5, "b": 0.2, "sigma": 25, "max_side": 64, "crop": 32, "radius": 5}


def _filters(client: Any, **args: Any) -> tuple[list, dict]:
    from gradio_client import handle_file

    return client.predict(handle_file(str(PARROTS)), **args, api_name="/filters")


def _check(summary: dict[str, Any], key: str, equivariant: bool) -> None:
    m = summary["models"][key]
    if equivariant:
        assert abs(m["filter_sum"] - 1) < 1e-9 and abs(m["filter_sum_shifted"] - 1) < 1e-9, m
        assert m["rho"] < 1e-9 and m["rho_shifted"] < 1e-9 and m["filter_change"] < 1e-6, m
    else:
        assert m["rho"] > 1e-4 and m["filter_change"] > 1e-6, m
        sums = (m["filter_sum"], m["filter_sum_shifted"])
        assert max(abs(s - 1) for s in sums) > 1e-4, m


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["dncnn", "swinir"])
def test_filters_endpoint_plain_vs_wne(served: tuple[Any, Any], backbone: str) -> None:
    _, client = served
    gallery, summary = _filters(client, backbone=backbone, row=20, col=30, **SHIFT)
    assert set(summary["models"]) == {f"{backbone}-plain-s25", f"{backbone}-wne-s25"}
    _check(summary, f"{backbone}-plain-s25", equivariant=False)
    _check(summary, f"{backbone}-wne-s25", equivariant=True)
    assert summary["pixel"] == [20, 30] and summary["crop"]["side"] == 32
    assert len(gallery) == 1 + 2 * 2
    side = 2 * SHIFT["radius"] + 1
    windows = [np.asarray(Image.open(g["image"])) for g in gallery[1:]]
    assert all(w.shape == (side * why.ZOOM, side * why.ZOOM, 3) for w in windows)
    wne_y, wne_shift = windows[2:]
    assert np.array_equal(wne_y, wne_shift)  # the same filter drawn at y and a·y + b
    assert not np.array_equal(windows[0], windows[1])  # the plain one moves
    marked = np.asarray(Image.open(gallery[0]["image"]))
    assert tuple(marked[20, 30]) == (255, 0, 0)  # the pixel is marked where it was asked
    d = summary["delta"]
    assert d["patch"] == 64 and d["n"] >= 1 and d["q025"] <= d["median"] <= d["q975"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"row": -1}, r"pixel row must be in \[0, 2047\]"),
        ({"col": 1.5}, "pixel column must be a whole number"),
        ({"radius": 40}, r"filter window radius \(px\) must be in \[2, 16\]"),
        ({"backbone": "vgg"}, "backbone must be one of"),
    ],
)
def test_filters_refuses_bad_settings_by_name(
    served: tuple[Any, Any], override: dict[str, Any], message: str
) -> None:
    _, client = served
    with pytest.raises(Exception, match=message):
        _filters(client, **{"backbone": "dncnn", **SHIFT, **override})


def test_a_pixel_outside_the_image_is_moved_inside_with_a_note() -> None:
    zoo = Zoo({}, torch.device("cpu"))
    pixels = load_image(str(PARROTS), max_side=48).pixels
    s = why.Filters(row=500, col=3, max_side=48, crop=32)
    res = list(why.run(zoo, pixels, s))[-1]
    assert res.pixel == (47, 3) and res.box == (16, 0, 32)
    assert any("outside the 48×48 working image" in n for n in res.notes)
    _, pictures, summary, text = why.outputs(res, [])
    assert pictures == [] and all("unavailable" in m["message"] for m in summary["models"].values())
    assert "unavailable" in text and "Δ" in text


def test_bundled_twins_plain_is_no_filter_wne_is_one(tmp_path: Path) -> None:
    """The bundled σ25 CNN twins on a real photo (paper Fig. 5's reading)."""
    keys = ("dncnn-plain-s25", "dncnn-wne-s25")
    zoo = Zoo({k: wne.load(k, device="cpu") for k in keys}, torch.device("cpu"))
    pixels = load_image(str(PARROTS), max_side=96).pixels
    s = why.Filters(a=2.0, b=-0.3, sigma=25, row=40, col=50, crop=48, checkpoint="cpu")
    res = list(why.run(zoo, pixels, s))[-1]
    coverage = {"sigmas_train": [25.0], "lower": [0.0], "upper": [1e9]}
    _, _, summary, _ = why.outputs(res, [], coverage)
    _check(summary, "dncnn-plain-s25", equivariant=False)
    _check(summary, "dncnn-wne-s25", equivariant=True)
    assert summary["models"]["dncnn-plain-s25"]["rho"] > 0.01  # the paper's 0.05–0.25 range
    assert summary["delta"]["inside"] == 1.0


@pytest.mark.parametrize("bias_free", [True, False])
def test_a_rival_beside_the_twins(bias_free: bool) -> None:
    """The bundled SE-arch rival (bias-free, piecewise linear) is an exact filter, ρ at
    round-off, but its weights do not sum to 1 and move with a brightness b: scale-equivariant,
    not shift-equivariant. Input-only normalization is no exact filter at all."""
    key = "fdncnn-se-s25" if bias_free else "dncnn-in-s10"
    twins = ("dncnn-plain-s25", "dncnn-wne-s25")
    zoo = Zoo(
        {k: wne.load(k, device="cpu") for k in twins},
        torch.device("cpu"),
        rivals={key: wne.load(key, device="cpu")},
    )
    pixels = load_image(str(PARROTS), max_side=64).pixels
    s = why.Filters(a=1.5, b=0.2, sigma=25, row=30, col=30, crop=32, rival=key)
    _, pictures, summary, text = why.outputs(list(why.run(zoo, pixels, s))[-1], [])
    assert list(summary["models"]) == [*twins, key] and len(pictures) == 6
    m = summary["models"][key]
    if bias_free:
        assert m["rho"] < 1e-9 and m["rho_shifted"] < 1e-9, m
    else:
        assert m["rho"] > 1e-3, m
    assert abs(m["filter_sum"] - 1) > 1e-3 and m["filter_change"] > 1e-6, m
    assert m["label"] in text


def test_an_uninstalled_rival_is_named() -> None:
    zoo = Zoo({}, torch.device("cpu"))
    pixels = load_image(str(PARROTS), max_side=32).pixels
    s = why.Filters(crop=32, rival="swinir-softne-s10")
    summary = why.outputs(list(why.run(zoo, pixels, s))[-1], [])[2]
    assert "'swinir-softne-s10'" in summary["models"]["swinir-softne-s10"]["message"]
