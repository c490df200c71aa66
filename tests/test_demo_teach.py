"""Issue 14 "Teach it": the Inside WNE view and the noise types of real photos.

- The pipeline view shows the WNE model's own steps: ``f(y)`` is exactly ``model(y)``,
  ``T(a·y + b) = T(y)`` to float round-off, the plain twin's defect is large.
- Every noise type goes through the handlers with the right :mod:`wne.degrade` function
  and level (compared with ``wne.degrade`` on the same seed, or spied on).
- Bad noise arguments are refused with messages naming them.
- ``/inside`` and the noise parameters through ``gradio_client`` (the session app of
  :mod:`app_fixtures`, tiny random-init checkpoints).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from app_fixtures import PARROTS, make_demo_checkpoints
from PIL import Image

from wne import degrade
from wne.demo import compare as cmp
from wne.demo.content import SCENARIO_CONTROLS, SCENARIOS, scenario
from wne.demo.handlers import DemoHandlers
from wne.demo.inside import NORMALIZED_RANGE, normalized_display
from wne.demo.settings import (
    INSIDE_PARAMS,
    NOISE_CONTROLS,
    NOISE_TYPES,
    OPTIONAL_CONTROLS,
    DemoInputError,
    Settings,
    params,
    parse_settings,
    shown_noise_controls,
)
from wne.demo.zoo import Zoo

pytest_plugins = ["app_fixtures"]  # the session's served app (`served`)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")

SHIFT = {"a": 0.5, "b": 0.2}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Zoo:
    return Zoo.discover(
        make_demo_checkpoints(tmp_path_factory.mktemp("teach_ckpts")), device="cpu", hub_repo=""
    )


@pytest.fixture(scope="module")
def handlers(zoo: Zoo) -> DemoHandlers:
    return DemoHandlers(zoo)


def _scene(h: int = 40, w: int = 48, c: int = 3) -> np.ndarray:
    """A smooth image with an edge, values in [0.1, 0.9]."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.5 + 0.3 * np.sin(6 * xx + 3 * yy) * (xx > 0.3)
    return np.stack([np.clip(base + 0.05 * k, 0.1, 0.9) for k in range(c)], -1).astype(np.float32)


def _chw(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(2, 0, 1)


# ----------------------------------------------------------------------------- inside WNE


@pytest.mark.parametrize("backbone", ["dncnn", "swinir"])
@pytest.mark.parametrize("channels", [1, 3])
def test_pipeline_view_is_the_models_own_steps(
    handlers: DemoHandlers, zoo: Zoo, backbone: str, channels: int
) -> None:
    """f(y) is exactly model(y) on the same [C, 1, H, W] batch; T(a·y+b) = T(y) to
    round-off; the plain twin, given two different inputs, is far from equivariant."""
    v = handlers.inside(_scene(c=channels), backbone=backbone, **SHIFT)
    p = v.pipeline
    assert p is not None and p.y.shape == (channels, 1, 40, 48)
    # y is the noisy image of wne.degrade (Gaussian σ = 25, seed 0), the copy a·y + b
    x = _chw(_scene(c=channels))
    expected_y = x + degrade.gaussian_noise(x.shape, 25.0, 0)
    assert torch.equal(p.y[:, 0], expected_y)
    assert torch.equal(p.shifted, 0.5 * p.y + 0.2)
    wne_model, plain = zoo.get(backbone, "wne", 25), zoo.get(backbone, "plain", 25)
    with torch.no_grad():
        assert torch.equal(p.wne_y.output, wne_model(p.y))
        assert torch.equal(p.wne_shifted.output, wne_model(p.shifted))
        assert p.plain_y is not None and torch.equal(p.plain_y, plain(p.y))
    s = v.summary
    assert s["normalized_max_diff"] <= 1e-5
    assert float((p.wne_shifted.normalized - p.wne_y.normalized).abs().max()) <= 1e-5
    assert s["wne"]["max_abs"] <= 1e-5 and s["wne"]["relative"] <= 1e-5
    assert s["plain"]["max_abs"] > 1e-3 and s["plain"]["relative"] > 1e-3
    assert s["plain"]["input_max_diff"] > 0.1  # the plain twin is given different inputs
    # the statistics per channel, independently: m' = a·m + b, s' = a·s
    y64 = p.y.double().flatten(1)
    np.testing.assert_allclose(s["y"]["mean"], y64.mean(1).numpy(), atol=1e-6)
    np.testing.assert_allclose(s["y"]["std"], y64.std(1, correction=0).numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        s["shifted"]["mean"], [0.5 * m + 0.2 for m in s["y"]["mean"]], atol=1e-6
    )
    np.testing.assert_allclose(s["shifted"]["std"], [0.5 * d for d in s["y"]["std"]], rtol=1e-5)
    json.dumps(s)


def test_pipeline_view_pictures_formulas_and_sentences(handlers: DemoHandlers) -> None:
    """Four steps of two pictures; both normalized images shown with one fixed mapping (so
    they look identical); the formula carries the first channel's numbers."""
    v = handlers.inside(_scene(), backbone="dncnn", **SHIFT)
    p = v.pipeline
    assert p is not None
    assert [len(st.images) for st in v.steps] == [2, 2, 2, 2]
    (t_y, cap_y), (t_s, cap_s) = v.steps[1].images
    assert cap_y == "T(y)" and cap_s.startswith("T(a·y + b)")
    np.testing.assert_array_equal(t_y, t_s)  # equal images look equal
    np.testing.assert_array_equal(t_y, normalized_display(p.wne_y.normalized))
    assert t_y.dtype == np.uint8 and t_y.shape == (40, 48, 3)
    zero = torch.zeros(1, 1, 2, 2)
    assert normalized_display(zero).max() == 128  # 0 → mid-gray
    assert normalized_display(zero + NORMALIZED_RANGE).min() == 255  # fixed, not per image
    m, s = v.summary["y"]["mean"][0], v.summary["y"]["std"][0]
    formula = f"f(y) = {s:.4g} · g(T(y)) + {m:.4g}"
    assert v.summary["formula"] == formula and formula in v.steps[2].images[1][1]
    assert f"{s:.4g} · g(T(y)) + {m:.4g}" in v.steps[2].text
    assert "red channel" in v.steps[0].text and "| blue |" in v.text
    assert "round-off" in v.steps[1].text and "different" in v.steps[3].text
    f_y = v.steps[2].images[1][0]
    expected = np.rint(np.clip(p.wne_y.output[:, 0].permute(1, 2, 0).numpy(), 0, 1) * 255)
    np.testing.assert_array_equal(f_y, expected.astype(np.uint8))


def test_pipeline_view_without_a_plain_twin_and_bad_backbones(handlers: DemoHandlers) -> None:
    """σ_train = 10 has a plain CNN but no WNE CNN: refused; NE-arch has no wrapper."""
    with pytest.raises(DemoInputError, match="dncnn-wne-s10"):
        handlers.inside(_scene(), backbone="dncnn", sigma_train=10)
    with pytest.raises(DemoInputError, match=r"backbone must be one of \['dncnn', 'swinir'\]"):
        handlers.inside(_scene(), backbone="fdncnn-ne")
    with pytest.raises(DemoInputError, match=r"unknown argument\(s\) \['backbones'\]"):
        handlers.inside(_scene(), backbones=["dncnn"])


def test_pipeline_view_with_clipping_and_other_noise(handlers: DemoHandlers) -> None:
    """Clipping breaks exactness (and says so); low light goes through the same view."""
    v = handlers.inside(_scene(), backbone="dncnn", a=2.5, b=0.3, clip=True)
    assert v.summary["wne"]["relative"] > 1e-3 and "Clipping" in v.text
    ll = handlers.inside(_scene(), backbone="dncnn", noise="lowlight", photons=5, **SHIFT)
    assert ll.summary["normalized_max_diff"] <= 1e-5
    assert "equivalent Gaussian σ" in ll.text


# ----------------------------------------------------------------------------- noise types


def _reference(kind: str, x: torch.Tensor, s: Settings) -> torch.Tensor:
    """The noisy image straight from wne.degrade (same seed, same level)."""
    if kind == "gaussian":
        return x + degrade.gaussian_noise(x.shape, s.sigma, s.seed)
    if kind == "lowlight":
        return degrade.low_light(x, s.photons, s.seed, read_noise=s.read_noise)
    if kind == "jpeg":
        return degrade.jpeg(x + degrade.gaussian_noise(x.shape, s.sigma, s.seed), s.quality)
    return x + degrade.noise(kind, x.shape, s.sigma, s.seed)


@pytest.mark.parametrize("kind", list(NOISE_TYPES))
def test_each_noise_type_goes_through_the_handler(handlers: DemoHandlers, kind: str) -> None:
    """The comparison's noisy image is wne.degrade's for that type and level (a = 1, b = 0)."""
    raw = {"noise": kind, "sigma": 15, "seed": 3, "photons": 7, "read_noise": 2, "quality": 12}
    v = handlers.denoise(_scene(), backbones=["dncnn"], **raw)
    res = v.comparison
    assert res is not None and res.settings.noise == kind
    x = _chw(res.clean)
    expected = _reference(kind, x, res.settings)
    torch.testing.assert_close(_chw(res.noisy), expected, rtol=0, atol=0)
    eq = v.summary["noise"]["equivalent_sigma"]
    assert eq == pytest.approx(degrade.equivalent_sigma(expected, x))
    if kind in ("lowlight", "jpeg"):
        assert f"equivalent Gaussian σ ≈ {eq:.1f}" in v.notes
        assert v.noisy_label.endswith(f"equivalent σ ≈ {eq:.1f}")
    if kind == "rayleigh":
        assert "not zero-mean" in v.notes


def test_gaussian_default_is_todays_behaviour_bit_for_bit(handlers: DemoHandlers) -> None:
    """Leaving the noise arguments out is Gaussian noise, as before issue 14, in both orders."""
    for order in ("shift-then-noise", "noise-then-shift"):
        res = handlers.denoise(_scene(), backbones=["dncnn"], order=order, **SHIFT).comparison
        assert res is not None
        x = _chw(res.clean)
        n = degrade.gaussian_noise(x.shape, 25.0, 0)
        old = 0.5 * x + 0.2 + n if order == "shift-then-noise" else 0.5 * (x + n) + 0.2
        assert torch.equal(_chw(res.noisy), old)


def test_equivariance_and_sweep_use_the_type_and_its_level(
    handlers: DemoHandlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spies on the degradation functions: the right one, with the right level (the sweep's
    x-axis is σ, photons or quality)."""
    calls: list[tuple[str, Any]] = []
    real_low, real_jpeg = cmp.low_light, cmp.jpeg

    def low(x: torch.Tensor, photons: float, seed: int, **kw: Any) -> torch.Tensor:
        calls.append(("lowlight", photons))
        return real_low(x, photons, seed, **kw)

    def jp(x: torch.Tensor, quality: int) -> torch.Tensor:
        calls.append(("jpeg", quality))
        return real_jpeg(x, quality)

    monkeypatch.setattr(cmp, "low_light", low)
    monkeypatch.setattr(cmp, "jpeg", jp)
    e = handlers.equivariance(_scene(), noise="lowlight", photons=42, backbone="dncnn", **SHIFT)
    assert calls == [("lowlight", 42.0)] and "42 photons" in e.text
    calls.clear()
    sw = handlers.sweep(_scene(24, 24), noise="jpeg", backbones=["dncnn"])
    assert calls == [("jpeg", round(q)) for q in cmp.SWEEP_LEVELS["quality"]]
    assert sorted({r["level"] for r in sw.rows}) == sorted(cmp.SWEEP_LEVELS["quality"])
    assert sw.x_title.startswith("JPEG quality") and "JPEG quality" in sw.title
    assert sw.plot_title == "PSNR vs JPEG quality"
    calls.clear()
    sw = handlers.sweep(_scene(24, 24), noise="lowlight", read_noise=0, backbones=["dncnn"])
    assert calls == [("lowlight", p) for p in cmp.SWEEP_LEVELS["photons"]]
    noisy = [r for r in sw.rows if r["model"] == "noisy input"]
    assert [r["sigma"] for r in noisy] == sorted((r["sigma"] for r in noisy), reverse=True)
    gauss = handlers.sweep(_scene(24, 24), backbones=["dncnn"])
    assert all(r["level"] == r["sigma"] for r in gauss.rows) and "test σ" in gauss.title


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"noise": "salt"}, r"noise type must be one of \['gaussian', 'uniform'"),
        ({"noise": 3}, "noise type must be one of"),
        ({"photons": 0}, r"photons at white must be in \[1, 1000\], got 0"),
        ({"photons": 5000}, r"photons at white must be in \[1, 1000\]"),
        ({"photons": "many"}, "photons at white must be a number"),
        ({"read_noise": -1}, r"read noise must be in \[0, 20\]"),
        ({"quality": 200}, r"JPEG quality must be in \[1, 95\], got 200"),
        ({"quality": 2.5}, "JPEG quality must be a whole number"),
        ({"quality": None}, "JPEG quality must be a number"),
    ],
)
def test_bad_noise_arguments_are_refused_naming_them(
    handlers: DemoHandlers, override: dict[str, Any], message: str
) -> None:
    with pytest.raises(DemoInputError, match=message):
        parse_settings(**override)
    with pytest.raises(DemoInputError, match=message):
        handlers.denoise(_scene(), **override)
    with pytest.raises(DemoInputError, match=message):
        handlers.inside(_scene(), **override)


def test_noise_settings_are_defined_once_and_come_last() -> None:
    """New settings are the last fields (older positional calls keep working): the noise ones,
    then the checkpoint choice; the page shows only the level controls of the chosen type;
    the dark-photo scenario is low light."""
    spec = params()
    assert (*NOISE_CONTROLS, "checkpoint") == OPTIONAL_CONTROLS
    assert list(spec)[-len(OPTIONAL_CONTROLS) - 1 : -1] == list(OPTIONAL_CONTROLS)
    assert INSIDE_PARAMS[-len(OPTIONAL_CONTROLS) :] == OPTIONAL_CONTROLS
    assert spec["noise"].default == "gaussian" and spec["noise"].values == list(NOISE_TYPES)
    assert "not zero-mean" in dict((v, k) for k, v in spec["noise"].choices)["rayleigh"]
    assert shown_noise_controls("gaussian") == {
        "sigma": True,
        "photons": False,
        "read_noise": False,
        "quality": False,
    }
    assert shown_noise_controls("lowlight") == {
        "sigma": False,
        "photons": True,
        "read_noise": True,
        "quality": False,
    }
    assert shown_noise_controls("jpeg")["quality"] and shown_noise_controls("jpeg")["sigma"]
    assert shown_noise_controls("nonsense") == shown_noise_controls("gaussian")
    dark = scenario("photo in the dark", 25)
    assert list(dark) == list(SCENARIO_CONTROLS) and "photo in the dark" in SCENARIOS
    assert dark["noise"] == "lowlight" and dark["photons"] <= 20
    assert parse_settings(**dark).noise == "lowlight"
    assert all(
        scenario(n, 25)["noise"] == "gaussian" for n in SCENARIOS if n != "photo in the dark"
    )


@pytest.mark.slow  # imports gradio
def test_the_inside_function_names_its_api_parameters(
    handlers: DemoHandlers, tmp_path: Path
) -> None:
    """One function serves the tab and /inside: image + INSIDE_PARAMS (later ones optional),
    PNG files equal to the view's pictures, JSON numbers, the tab's page updates."""
    import gradio as gr

    from wne.demo.endpoints import Endpoints
    from wne.demo.inside import INSIDE_STEPS
    from wne.demo.outputs import OutputFiles

    examples = PARROTS.parent
    fns = Endpoints(handlers, OutputFiles(tmp_path / "out"), [examples])
    sig = inspect.signature(fns.inside)
    assert list(sig.parameters) == ["image", *INSIDE_PARAMS, "progress"]
    assert all(sig.parameters[n].default is not inspect.Parameter.empty for n in OPTIONAL_CONTROLS)
    gallery, numbers, page = fns.inside(str(PARROTS), 0.5, 0.2, 25, 0, 25, "swinir", 64, False)
    view = handlers.inside(str(PARROTS), **SHIFT, backbone="swinir", max_side=64)
    assert len(gallery) == 8 and numbers == json.loads(json.dumps(view.summary))
    for (path, caption), (img, cap) in zip(gallery, view.gallery, strict=True):
        assert caption == cap
        np.testing.assert_array_equal(np.asarray(Image.open(path)), img)
    assert len(page) == 3 * INSIDE_STEPS + 1 and page[0]["value"].startswith("### 1 ·")
    assert page[1]["label"].startswith("y · m =") and page[-1]["value"].startswith("| channel")
    with pytest.raises(gr.Error, match="photons at white must be in"):
        fns.inside(str(PARROTS), 0.5, 0.2, 25, 0, 25, "swinir", 64, False, "lowlight", 0)


# ----------------------------------------------------------------------------- the live app


@pytest.mark.slow
def test_inside_endpoint_through_gradio_client(served: tuple[Any, Any]) -> None:
    """README: ``client.predict(image=..., a=0.5, b=0.2, backbone="dncnn", api_name="/inside")``
    returns the steps' pictures (lossless PNG) and the numbers."""
    from gradio_client import handle_file

    handlers, client = served
    gallery, numbers = client.predict(
        image=handle_file(str(PARROTS)), a=0.5, b=0.2, backbone="dncnn", api_name="/inside"
    )
    assert [g["caption"].split(" ·")[0] for g in gallery][:3] == [
        "y",
        "a·y + b (a = 0.5, b = 0.2)",
        "T(y)",
    ]
    assert numbers["normalized_max_diff"] <= 1e-5 and numbers["wne"]["max_abs"] <= 1e-5
    assert numbers["plain"]["max_abs"] > 1e-3 and numbers["formula"].startswith("f(y) = ")
    view = handlers.inside(str(PARROTS), **SHIFT, backbone="dncnn")
    with Image.open(gallery[2]["image"]) as im:
        assert im.format == "PNG"
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), view.gallery[2][0])
    with pytest.raises(Exception, match="backbone must be one of"):
        client.predict(image=handle_file(str(PARROTS)), backbone="fdncnn-ne", api_name="/inside")
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    names = [p["parameter_name"] for p in info["/inside"]["parameters"]]
    assert names == ["image", *INSIDE_PARAMS]


@pytest.mark.slow
def test_noise_parameters_through_gradio_client(served: tuple[Any, Any]) -> None:
    """The new parameters by name on /denoise, /equivariance and /sweep; bad ones refused."""
    from gradio_client import handle_file

    _, client = served
    img = handle_file(str(PARROTS))
    *_, summary = client.predict(
        image=img,
        noise="lowlight",
        photons=8,
        max_side=64,
        backbones=["dncnn"],
        api_name="/denoise",
    )
    assert summary["settings"]["noise"] == "lowlight" and summary["settings"]["photons"] == 8
    assert summary["noise"]["equivalent_sigma"] > 25
    assert any("equivalent Gaussian σ" in n for n in summary["notes"])
    _, defects = client.predict(
        image=img, a=0.5, b=0.2, noise="jpeg", quality=20, max_side=64, api_name="/equivariance"
    )
    assert defects["settings"]["quality"] == 20
    curves = client.predict(image=img, backbones=["dncnn"], noise="jpeg", api_name="/sweep")
    assert {r["level"] for r in curves["rows"]} == set(cmp.SWEEP_LEVELS["quality"])
    for bad, message in (
        ({"noise": "salt"}, "noise type must be one of"),
        ({"noise": "lowlight", "photons": 0}, r"photons at white must be in \[1, 1000\]"),
        ({"noise": "jpeg", "quality": "high"}, "JPEG quality must be a number"),
    ):
        with pytest.raises(Exception, match=message):
            client.predict(image=img, max_side=64, **bad, api_name="/denoise")
