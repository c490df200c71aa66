"""The demo's logic as plain functions (no browser, no server).

Covers the validation layer, safe image reading, model discovery, the
comparison / equivariance / sweep computations and the handlers' views, on
tiny random-init checkpoints written to a temp folder (:mod:`app_fixtures`).
"""

from __future__ import annotations

import inspect
import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from app_fixtures import DEMO_KEYS, make_demo_checkpoints, save_demo_checkpoint
from badinputs import BASE_ARGS
from PIL import Image
from torch import nn

import wne
from wne import catalog
from wne.demo import compare as cmp
from wne.demo import imaging
from wne.demo.content import (
    SCENARIO_CONTROLS,
    SCENARIOS,
    example_rows,
    load_examples,
    precomputed_results,
    scenario,
)
from wne.demo.endpoints import ENDPOINTS
from wne.demo.errors import user_facing, user_message
from wne.demo.handlers import (
    CPU_MIN_DEFAULT_SIDE,
    DemoConfig,
    DemoHandlers,
    calibrate_max_side,
)
from wne.demo.outputs import OutputFiles
from wne.demo.settings import (
    COMPARE_PARAMS,
    DemoInputError,
    Settings,
    params,
    parse_flag,
    parse_settings,
)
from wne.demo.zoo import ModelUnavailableError, Zoo

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "assets" / "examples"
KEYS = [catalog.key(*slot) for slot in DEMO_KEYS]
FAMILY_IDS = [f.id for f in catalog.families(zoo_only=True)]


@pytest.fixture(scope="module")
def ckpt_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo_checkpoints(tmp_path_factory.mktemp("demo_ckpts"))


@pytest.fixture(scope="module")
def zoo(ckpt_root: Path) -> Zoo:
    return Zoo.discover(ckpt_root, device="cpu", hub_repo="")


@pytest.fixture(scope="module")
def handlers(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> DemoHandlers:
    results = tmp_path_factory.mktemp("no_results")
    return DemoHandlers(zoo, DemoConfig(results_dir=results, examples_dir=EXAMPLES))


def _scene(h: int = 40, w: int = 48, c: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth synthetic image with edges, values in [0.1, 0.9]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.5 + 0.3 * np.sin(6 * xx + 3 * yy) * (xx > 0.3)
    chans = [
        np.clip(base + 0.05 * k + 0.02 * rng.standard_normal((h, w)), 0.1, 0.9) for k in range(c)
    ]
    return np.stack(chans, axis=-1).astype(np.float32)


def _png(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


# ----------------------------------------------------------------------------- validation


def test_parse_settings_coerces_strings_and_orders_backbones() -> None:
    """API clients may send numbers as strings; backbones come back in display order."""
    s = parse_settings(
        "0.5", "-0.25", "30", "7", "25", ["swinir", "dncnn"], "noise-then-shift", "128", "true"
    )
    assert s == Settings(
        0.5, -0.25, 30.0, 7, 25, ("dncnn", "swinir"), "noise-then-shift", 128, True
    )
    assert parse_flag(0, "x") is False and parse_flag("False", "x") is False


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ({"a": 0}, "contrast a"),
        ({"a": "abc"}, "contrast a"),
        ({"a": float("nan")}, "contrast a"),
        ({"a": None}, "contrast a"),
        ({"b": 1.5}, "brightness b"),
        ({"sigma": -1}, "noise sigma"),
        ({"sigma": [25]}, "noise sigma"),
        ({"seed": 1.5}, "seed"),
        ({"seed": -3}, "seed"),
        ({"sigma_train": 30}, "training sigma"),
        ({"backbones": []}, "backbones"),
        ({"backbones": ["resnet"]}, "backbones"),
        ({"backbones": 3}, "backbones"),
        ({"order": "sideways"}, "order of operations"),
        ({"max_side": 8}, "working size"),
        ({"max_side": 4096}, "working size"),
        ({"clip": "maybe"}, "clip"),
    ],
)
def test_parse_settings_rejects_bad_values_naming_them(override: dict, names: str) -> None:
    """Each invalid argument raises a DemoInputError whose message names that argument."""
    parse_settings(**BASE_ARGS)  # the base is valid: only the override can be at fault
    kwargs: dict[str, Any] = {**BASE_ARGS, **override}
    with pytest.raises(DemoInputError, match=names):
        parse_settings(**kwargs)


def test_parse_settings_applies_the_hardware_size_limit() -> None:
    """A lower max_side_limit (CPU) is enforced with a message giving the range."""
    with pytest.raises(DemoInputError, match=r"working size must be in \[32, 1024\]"):
        parse_settings(max_side=2048, max_side_limit=1024)


def test_settings_are_defined_once() -> None:
    """The dataclass's defaults are the controls' defaults; parse_settings() with nothing
    gives them; every range and choice is the one validation checks."""
    spec = params()
    assert list(spec)[: len(COMPARE_PARAMS)] == list(COMPARE_PARAMS)
    assert parse_settings() == Settings()
    assert {n: spec[n].default for n in COMPARE_PARAMS} == {
        n: getattr(Settings(), n) for n in COMPARE_PARAMS
    }
    assert spec["sigma_train"].values == list(catalog.SIGMA_TRAINS)
    assert spec["backbones"].values == FAMILY_IDS == spec["backbone"].values
    for name in ("a", "b", "sigma", "seed", "max_side"):
        p = spec[name]
        parse_settings(**{name: p.lo})
        parse_settings(**{name: p.hi})
        with pytest.raises(DemoInputError, match=f"{p.arg} must be in"):
            parse_settings(**{name: p.hi + 1})
    with pytest.raises(DemoInputError, match=r"unknown argument\(s\) \['contrast'\]"):
        parse_settings(contrast=2)


def test_hardware_and_models_adjust_the_one_definition(
    handlers: DemoHandlers, tmp_path: Path
) -> None:
    """The working size's default and limit come from the hardware config, σ_train's default
    and labels from the loaded models; validation and left-out arguments follow them."""
    h = DemoHandlers(handlers.zoo, DemoConfig(default_max_side=96, max_side_limit=512))
    p = h.params()
    assert (p["max_side"].default, p["max_side"].lo, p["max_side"].hi) == (96, 32, 512)
    assert p["sigma_train"].default == 25
    assert dict((v, lab) for lab, v in p["sigma_train"].choices)[50].endswith("(no models)")
    assert h.defaults()["backbones"] == ["dncnn", "swinir"]
    assert h.settings().max_side == 96
    with pytest.raises(DemoInputError, match=r"working size must be in \[32, 512\]"):
        h.settings(max_side=1024)
    with pytest.raises(DemoInputError, match=r"unknown argument\(s\) \['sigma'\]"):
        h.sweep(_scene(24, 24), sigma=10)
    rows = example_rows(load_examples(EXAMPLES), h.defaults(), COMPARE_PARAMS)
    assert all(len(r) == 1 + len(COMPARE_PARAMS) for r in rows)
    assert all(parse_settings(**dict(zip(COMPARE_PARAMS, r[1:], strict=True))) for r in rows)
    assert rows[0][COMPARE_PARAMS.index("max_side") + 1] == 96


# ----------------------------------------------------------------------------- imaging


def test_pillow_limit_is_set_on_import() -> None:
    """Importing the imaging module installs the decompression-bomb limit in Pillow."""
    assert Image.MAX_IMAGE_PIXELS == imaging.MAX_IMAGE_PIXELS


def test_8bit_rgb_is_read_exactly_and_stays_colour(tmp_path: Path) -> None:
    arr = (np.arange(32 * 24 * 3) % 256).astype(np.uint8).reshape(32, 24, 3)
    img = imaging.load_image(_png(tmp_path / "rgb.png", arr), max_side=256)
    assert img.pixels.shape == (32, 24, 3) and img.pixels.dtype == np.float32
    np.testing.assert_array_equal(np.rint(img.pixels * 255).astype(np.uint8), arr)
    assert img.is_color


def test_16bit_grayscale_keeps_its_precision(tmp_path: Path) -> None:
    """A 16-bit PNG is scaled by 1/65535, not saturated to 0/255 as Gradio's default would."""
    arr = np.linspace(0, 65535, 20 * 30).astype(np.uint16).reshape(20, 30)
    path = tmp_path / "g16.png"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode.startswith("I;16")
    img = imaging.load_image(path, max_side=256)
    assert img.pixels.shape == (20, 30, 1)
    np.testing.assert_allclose(img.pixels[..., 0], arr / 65535.0, atol=1e-6)
    assert any("16-bit" in n for n in img.notes)


def test_large_16bit_image_is_reduced_without_losing_its_scale(tmp_path: Path) -> None:
    """The cheap pre-reduction path for big images keeps 16-bit scaling (dark image stays dark)."""
    arr = np.full((300, 1200), 3000, dtype=np.uint16)
    arr[:, ::2] = 1000
    path = tmp_path / "big16.png"
    Image.fromarray(arr).save(path)
    img = imaging.load_image(path, max_side=128, allow_constant=True)
    assert img.pixels.shape == (32, 128, 1) and img.original_size == (1200, 300)
    assert img.pixels.mean() == pytest.approx(2000 / 65535, rel=0.05)
    assert any("Downscaled" in n for n in img.notes)


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    arr = np.zeros((16, 16, 4), dtype=np.uint8)
    arr[..., 0] = 200
    arr[:8, :, 3] = 255  # top half opaque red-ish, bottom half fully transparent
    img = imaging.load_image(_png(tmp_path / "rgba.png", arr), max_side=64)
    assert img.pixels.shape == (16, 16, 3)
    np.testing.assert_allclose(img.pixels[12, 5], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(img.pixels[2, 5], [200 / 255, 0, 0], atol=1e-6)
    assert any("composited" in n for n in img.notes)


def test_palette_image_is_read_as_colour(tmp_path: Path) -> None:
    rgb = np.zeros((20, 20, 3), dtype=np.uint8)
    rgb[:, :10] = (255, 0, 0)
    rgb[:, 10:] = (0, 0, 255)
    path = tmp_path / "p.png"
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)
    assert Image.open(path).mode == "P"
    img = imaging.load_image(path, max_side=64)
    np.testing.assert_allclose(img.pixels, rgb / 255.0, atol=1e-6)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A JPEG stored landscape with orientation 6 (rotate 90°) is read as portrait."""
    im = Image.fromarray((np.arange(40 * 60) % 251).astype(np.uint8).reshape(40, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif.tobytes(), quality=95)
    img = imaging.load_image(path, max_side=256)
    assert img.pixels.shape[:2] == (60, 40)
    assert any("EXIF" in n for n in img.notes)


def test_gray_stored_as_rgb_is_processed_once(tmp_path: Path) -> None:
    g = (np.arange(24 * 24) % 200).astype(np.uint8).reshape(24, 24)
    img = imaging.load_image(_png(tmp_path / "g.png", np.stack([g] * 3, -1)), max_side=64)
    assert img.pixels.shape == (24, 24, 1)


def test_multiframe_gif_uses_the_first_frame(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((20, 20), v, np.uint8)).convert("P") for v in (10, 200)]
    frames[0].putpixel((0, 0), 250)
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    img = imaging.load_image(path, max_side=64)
    assert any("frames" in n for n in img.notes)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"this is not an image at all"), "not an image"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: Image.new("RGB", (1, 1)).save(p), r"1×1"),
        (lambda p: Image.new("L", (500, 4)).save(p), "at least 16"),
        (lambda p: Image.new("RGB", (64, 64), (90, 90, 90)).save(p), "constant"),
    ],
    ids=["not-an-image", "empty", "1x1", "thin", "constant"],
)
def test_bad_files_raise_errors_naming_the_problem(tmp_path: Path, make: Any, message: str) -> None:
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(DemoInputError, match=message):
        imaging.load_image(path, max_side=256)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    path = tmp_path / "trunc.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(DemoInputError, match="truncated or corrupt"):
        imaging.load_image(path, max_side=256)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [40, 100], ids=["above-limit", "above-twice-limit"])
def test_decompression_bombs_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int
) -> None:
    """Above the pixel limit (warning zone) and above twice it (Pillow's error) both refuse."""
    monkeypatch.setattr(imaging, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = _png(tmp_path / "bomb.png", np.zeros((side, side), np.uint8))
    with pytest.raises(DemoInputError, match=r"decompression bomb|megapixels"):
        imaging.load_image(path, max_side=256)


def test_large_image_is_downscaled_with_a_note(tmp_path: Path) -> None:
    arr = (_scene(300, 500) * 255).astype(np.uint8)
    img = imaging.load_image(_png(tmp_path / "big.png", arr), max_side=100)
    assert img.pixels.shape == (60, 100, 3)
    assert img.original_size == (500, 300)
    assert any("Downscaled from 500×300 to 100×60" in n for n in img.notes)


def test_other_sources_and_missing_source() -> None:
    """Bytes, Gradio payload dicts and arrays are accepted; None names the problem."""
    arr = (_scene(20, 20) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    a = imaging.load_image(buf.getvalue(), max_side=64).pixels
    b = imaging.load_image(arr, max_side=64).pixels
    np.testing.assert_array_equal(a, b)
    with pytest.raises(DemoInputError, match="no image"):
        imaging.load_image(None, max_side=64)
    with pytest.raises(DemoInputError, match="not found"):
        imaging.load_image({"path": "/nonexistent/x.png"}, max_side=64)


def test_to_display_clips_and_reports_the_fraction() -> None:
    img, frac = imaging.to_display(np.array([[[-0.5], [0.5]], [[1.5], [1.0]]], np.float32))
    assert img.dtype == np.uint8 and img.shape == (2, 2)
    assert img.tolist() == [[0, 128], [255, 255]]
    assert frac == pytest.approx(0.5)


def test_heatmap_uses_a_fixed_scale() -> None:
    m = imaging.heatmap(np.array([[0.0, 1.0], [2.0, 0.5]]), vmax=1.0)
    assert m.shape == (2, 2, 3) and m.dtype == np.uint8
    np.testing.assert_array_equal(m[0, 1], m[1, 0])  # values above vmax saturate


# ----------------------------------------------------------------------------- zoo


def test_zoo_discovers_models_and_reports_missing_and_broken(zoo: Zoo) -> None:
    assert sorted(zoo.models) == sorted(KEYS)
    assert zoo.sigmas() == [10, 25] and zoo.default_sigma() == 25
    assert zoo.backbones() == FAMILY_IDS
    assert "swinir-wne-s10" in zoo.errors and "sha256" in zoo.errors["swinir-wne-s10"]
    assert "other-model" not in zoo.errors
    missing = zoo.unavailable_reason("dncnn", "wne", 10)
    assert missing is not None and "dncnn-wne-s10" in missing and "no checkpoint" in missing
    broken = zoo.unavailable_reason("swinir", "wne", 10)
    assert broken is not None and "failed to load" in broken
    with pytest.raises(ModelUnavailableError, match="dncnn-wne-s50"):
        zoo.get("dncnn", "wne", 50)
    table = zoo.summary_markdown()
    assert "unavailable" in table and "plain + WNE" in table


def test_zoo_reads_the_catalog_and_files_models_by_their_config(tmp_path: Path) -> None:
    """The demo's keys are the catalog's; a checkpoint whose config.json describes another
    slot than its key (a plain model stored as ``dncnn-wne-s25``) is refused with the reason,
    and a model is found under the slot its config describes."""
    assert Zoo.standard_keys() == catalog.keys()
    folder = save_demo_checkpoint(tmp_path, "dncnn", "plain", 25, seed=0)
    folder.rename(tmp_path / "dncnn-wne-s25")
    cfg = json.loads((tmp_path / "dncnn-wne-s25" / "config.json").read_text())
    cfg["key"] = "dncnn-wne-s25"
    (tmp_path / "dncnn-wne-s25" / "config.json").write_text(json.dumps(cfg))
    save_demo_checkpoint(tmp_path, "swinir", "wne", 50, seed=1)
    z = Zoo.discover(tmp_path, device="cpu", hub_repo="")
    assert sorted(z.models) == ["swinir-wne-s50"]
    assert "describes dncnn-plain-s25" in z.errors["dncnn-wne-s25"]
    assert z.has("swinir", "wne", 50) and z.sigmas() == [50] and z.default_sigma() == 50


def _sized_zoo(root: Path, psnr: dict[str, float | None]) -> Zoo:
    """Tiny σ_train = 25 checkpoints: DnCNN twins at both sizes and CPU-sized SwinIR twins,
    with the recorded Set12 PSNR of ``psnr`` (by key; a key left out is not written)."""
    slots = [("dncnn", "plain"), ("dncnn", "wne"), ("swinir", "plain"), ("swinir", "wne")]
    for i, (family, variant) in enumerate(slots):
        for size in catalog.SIZES:
            key = catalog.key(family, variant, 25, size)
            if key in psnr:
                save_demo_checkpoint(
                    root, family, variant, 25, 10 * i + catalog.SIZES.index(size), size, psnr[key]
                )
    return Zoo.discover(root, device="cpu", hub_repo="")


CPU_AND_GPU = {
    "dncnn-plain-s25": 29.57,
    "dncnn-wne-s25": 29.19,
    "dncnn-plain-s25-gpu": 29.83,
    "dncnn-wne-s25-gpu": 29.65,
    "swinir-plain-s25": 28.22,
    "swinir-wne-s25": 29.04,
}


def test_demo_prefers_the_best_checkpoint_of_each_slot(tmp_path: Path) -> None:
    """ "best" takes, per backbone, the size whose checkpoints record the higher Set12 PSNR
    (from config.json, not from the key): swapping the numbers swaps the choice. Twins stay
    together (a size with both variants beats one with more dB but one variant missing; the
    mean decides, not one slot), checkpoints without numbers keep the catalog's order."""

    def picked(zoo: Zoo) -> list[str | None]:
        return [zoo.checkpoint("dncnn", v, 25) for v in ("plain", "wne")]

    zoo = _sized_zoo(tmp_path / "a", CPU_AND_GPU)
    assert zoo.choice == "best" and zoo.sizes() == ["cpu", "gpu"]
    assert picked(zoo) == ["dncnn-plain-s25-gpu", "dncnn-wne-s25-gpu"]
    assert zoo.get("dncnn", "wne", 25) is zoo.models["dncnn-wne-s25-gpu"]
    assert zoo.checkpoint("swinir", "wne", 25) == "swinir-wne-s25"  # no GPU one: the CPU one
    table = zoo.summary_markdown()
    assert "paper-size, GPU-trained" in table and "`dncnn-wne-s25-gpu`: 29.65 dB" in table

    swapped = {k: v - 1.0 if k.endswith("-gpu") else v for k, v in CPU_AND_GPU.items()}
    assert picked(_sized_zoo(tmp_path / "b", swapped)) == ["dncnn-plain-s25", "dncnn-wne-s25"]
    # GPU plain +1 dB but GPU WNE −1.5 dB: the pair's mean decides, for both slots
    mixed = {**CPU_AND_GPU, "dncnn-plain-s25-gpu": 30.57, "dncnn-wne-s25-gpu": 27.69}
    assert picked(_sized_zoo(tmp_path / "c", mixed)) == ["dncnn-plain-s25", "dncnn-wne-s25"]
    lonely = {k: v for k, v in CPU_AND_GPU.items() if k != "dncnn-wne-s25-gpu"}
    assert picked(_sized_zoo(tmp_path / "d", lonely)) == ["dncnn-plain-s25", "dncnn-wne-s25"]
    unscored = dict.fromkeys(CPU_AND_GPU, None)
    assert picked(_sized_zoo(tmp_path / "e", unscored)) == ["dncnn-plain-s25", "dncnn-wne-s25"]
    cpu_unscored = {**CPU_AND_GPU, "dncnn-plain-s25": None, "dncnn-wne-s25": None}
    assert picked(_sized_zoo(tmp_path / "f", cpu_unscored))[0] == "dncnn-plain-s25-gpu"


def test_the_cpu_sized_checkpoints_stay_selectable_and_the_page_names_what_ran(
    tmp_path: Path,
) -> None:
    """The "checkpoint" setting picks a size (or the best); the API's scores are keyed by the
    checkpoint that ran, the panel and the notes say which; a size a slot lacks is reported."""
    h = DemoHandlers(_sized_zoo(tmp_path, CPU_AND_GPU))
    spec = h.params()["checkpoint"]
    assert spec.default == "best" and spec.values == ["best", *catalog.SIZES]
    img = _scene(24, 24)
    best = h.denoise(img, backbones=["dncnn", "swinir"])
    assert best.summary["settings"]["checkpoint"] == "best"
    assert set(best.summary["models"]) == {
        "dncnn-plain-s25-gpu",
        "dncnn-wne-s25-gpu",
        "swinir-plain-s25",
        "swinir-wne-s25",
    }
    assert "paper-size, GPU-trained" in best.panels[0].header
    assert any("`dncnn-wne-s25-gpu`" in n and "29.65" in n for n in best.summary["notes"])
    cpu = h.denoise(img, backbones=["dncnn"], checkpoint="cpu")
    assert set(cpu.summary["models"]) == {"dncnn-plain-s25", "dncnn-wne-s25"}
    assert "CPU-sized" in cpu.panels[0].header
    ran = {k: m["psnr"] for k, m in {**best.summary["models"], **cpu.summary["models"]}.items()}
    assert ran["dncnn-wne-s25"] != ran["dncnn-wne-s25-gpu"]  # another model did run
    gpu = h.denoise(img, backbones=["swinir"], checkpoint="gpu")
    assert not gpu.summary["models"]["swinir-wne-s25"]["available"]
    assert (
        "no paper-size, GPU-trained checkpoint"
        in gpu.summary["models"]["swinir-wne-s25"]["message"]
    )
    eq = h.equivariance(img, a=0.5, b=0.1, backbone="dncnn", checkpoint="cpu")
    assert set(eq.summary["defects"]) == {"dncnn-plain-s25", "dncnn-wne-s25"}
    sweep = h.sweep(img, backbones=["dncnn"], checkpoint="gpu")
    assert "`dncnn-plain-s25-gpu`" in sweep.notes
    with pytest.raises(DemoInputError, match="checkpoint must be one of"):
        h.denoise(img, checkpoint="biggest")
    only_cpu = DemoHandlers(_sized_zoo(tmp_path / "cpu", {"dncnn-plain-s25": 29.57}))
    labels = dict((v, k) for k, v in only_cpu.params()["checkpoint"].choices)
    assert labels["gpu"].endswith("(no models)") and not labels["cpu"].endswith("(no models)")


def test_cpu_default_falls_back_to_cpu_sized_checkpoints_that_fit_the_latency_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a CPU, when the best checkpoints' fitted model time misses the target even at 256 px,
    the default becomes the CPU-sized ones (with a note on the page); when they fit, "best"."""
    from wne.demo import handlers as hd

    monkeypatch.delenv("WNE_DEMO_MAX_SIDE", raising=False)
    zoo = _sized_zoo(tmp_path, CPU_AND_GPU)
    fits = {"best": (0.1, 1e-6), "cpu": (0.1, 1e-6)}
    monkeypatch.setattr(hd, "latency_fit", lambda z, settings: fits[z.choice])
    cfg = DemoConfig.for_zoo(zoo, target_seconds=1.8)
    assert cfg.default_checkpoint == "best" and not cfg.notes
    fits["best"] = (0.1, 3e-4)  # 20 s at 256 px
    cfg = DemoConfig.for_zoo(zoo, target_seconds=1.8)
    assert cfg.default_checkpoint == "cpu" and cfg.default_max_side == 512
    assert "CPU-sized" in cfg.notes[0]
    h = DemoHandlers(zoo, cfg)
    assert h.params()["checkpoint"].default == "cpu" and cfg.notes[0] in h.models_markdown()
    assert set(h.denoise(_scene(24, 24), backbones=["dncnn"]).summary["models"]) == {
        "dncnn-plain-s25",
        "dncnn-wne-s25",
    }
    # a fixed working size ($WNE_DEMO_MAX_SIDE) is checked too: the slow best give way
    monkeypatch.setenv("WNE_DEMO_MAX_SIDE", "320")
    cfg = DemoConfig.for_zoo(zoo, target_seconds=1.8)
    assert cfg.default_checkpoint == "cpu" and cfg.default_max_side == 320
    fits["best"] = (0.1, 1e-6)
    cfg = DemoConfig.for_zoo(zoo, target_seconds=1.8)
    assert cfg.default_checkpoint == "best" and cfg.default_max_side == 320


def test_unavailable_device_falls_back_to_the_cpu(
    ckpt_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CUDA asked for ($WNE_DEVICE) where there is none: the app starts on the CPU and says why."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("WNE_DEVICE", "cuda")
    z = Zoo.discover(ckpt_root, hub_repo="")
    assert z.device.type == "cpu" and z.models
    assert any("CUDA is not available" in n for n in z.notes)
    assert "CUDA is not available" in z.summary_markdown()


def test_models_are_loaded_once(ckpt_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Discovery calls wne.load once per checkpoint; requests never load again."""
    calls: list[str] = []
    real = wne.load

    def spy(key: str, **kw: Any) -> nn.Module:
        calls.append(key)
        return real(key, **kw)

    monkeypatch.setattr(wne, "load", spy)
    z = Zoo.discover(ckpt_root, device="cpu", hub_repo="")
    loaded = sorted(calls)
    h = DemoHandlers(z)
    img = _scene(24, 24)
    h.denoise(img, backbones=["dncnn", "fdncnn-ne"])
    h.denoise(img, sigma=10, backbones=["dncnn"])
    assert sorted(calls) == loaded
    assert len(set(loaded)) == len(loaded)


def test_empty_zoo_gives_a_clear_error(tmp_path: Path) -> None:
    h = DemoHandlers(Zoo.discover(tmp_path, device="cpu", hub_repo=""))
    with pytest.raises(DemoInputError, match="no model checkpoints"):
        h.denoise(_scene(24, 24))


# ----------------------------------------------------------------------------- compare


def test_compare_shapes_ranges_and_table(zoo: Zoo) -> None:
    clean = _scene(40, 48, 3)
    s = Settings(a=1.3, b=0.1, backbones=("dncnn", "swinir", "fdncnn-ne"))
    res = cmp.compare(zoo, clean, s)
    assert res.noisy.shape == res.target.shape == clean.shape
    np.testing.assert_allclose(res.target, 1.3 * clean + 0.1, atol=1e-6)
    assert [r.key for r in res.runs] == [
        "dncnn-plain-s25",
        "dncnn-wne-s25",
        "swinir-plain-s25",
        "swinir-wne-s25",
        "fdncnn-ne-s25",
    ]
    for r in res.runs:
        assert r.output is not None and r.output.shape == clean.shape
        assert r.output.dtype == np.float32 and np.isfinite(r.output).all()
        assert math.isfinite(r.psnr) and -1 <= r.ssim <= 1 and r.seconds > 0
    assert len(res.table()) == 1 + len(res.runs)
    json.dumps(res.summary())  # JSON-ready


def test_clip_on_keeps_values_in_unit_range(zoo: Zoo) -> None:
    res = cmp.compare(zoo, _scene(), Settings(a=2.0, b=0.3, clip=True, backbones=("dncnn",)))
    for arr in (res.noisy, res.target, *(r.output for r in res.runs)):
        assert arr.min() >= 0.0 and arr.max() <= 1.0


@pytest.mark.parametrize("channels", [1, 3])
def test_wne_psnr_is_invariant_to_a_and_b_while_plain_moves(zoo: Zoo, channels: int) -> None:
    """Shift applied to the noisy image, clip off: WNE (and NE-arch) PSNR/SSIM do not move."""
    clean = _scene(40, 48, channels, seed=channels)
    shifts = [(1.0, 0.0), (0.3, 0.0), (2.5, 0.4), (0.6, -0.7), (1.0, 0.8)]
    scores: dict[str, list[tuple[float, float]]] = {}
    for a, b in shifts:
        s = Settings(a=a, b=b, order="noise-then-shift", backbones=("dncnn", "swinir", "fdncnn-ne"))
        for r in cmp.compare(zoo, clean, s).runs:
            scores.setdefault(r.key, []).append((r.psnr, r.ssim))
    for key, vals in scores.items():
        psnrs = [p for p, _ in vals]
        spread = max(psnrs) - min(psnrs)
        if "plain" in key:
            assert spread > 0.05, f"{key} PSNR did not move: {psnrs}"
        else:
            assert spread < 0.05, f"{key} PSNR moved by {spread:.3f} dB: {psnrs}"
            # SSIM uses data range a too: invariant to a (b = 0), not to b (luminance term).
            ssims = [q for (p, q), (_, b) in zip(vals, shifts, strict=True) if b == 0]
            assert max(ssims) - min(ssims) < 1e-4


class _Recorder(nn.Module):
    """Wraps a model and records the shapes it is called with."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return self.inner(x)


def test_colour_is_denoised_per_channel_in_one_batched_call(zoo: Zoo) -> None:
    """Channels become the batch of a single call; the output stays colour."""
    inner = zoo.models["dncnn-wne-s25"]
    rec = _Recorder(inner)
    rec.wne_config = inner.wne_config  # described like the model it wraps
    z = Zoo({"recorded": rec}, torch.device("cpu"))
    clean = _scene(32, 40, 3)
    clean[..., 1] *= 0.5  # make the channels clearly different
    res = cmp.compare(z, clean, Settings(backbones=("dncnn",)))
    assert rec.shapes == [(3, 1, 32, 40)]
    out = res.run("dncnn", "wne").output
    assert out.shape == (32, 40, 3)
    assert np.abs(out[..., 0] - out[..., 1]).mean() > 0.05


def test_equivariance_map_exact_for_wne_on_all_channels(zoo: Zoo) -> None:
    """The same shift on every channel keeps WNE exact; plain models show a defect."""
    for backbone in ("dncnn", "swinir"):
        res = cmp.equivariance_map(zoo, _scene(32, 40, 3), Settings(a=0.4, b=0.3), backbone)
        by = {r.variant: r for r in res.runs}
        assert by["wne"].relative < 1e-5 and by["wne"].max_abs < 1e-4
        assert by["plain"].relative > 1e-3
        assert by["wne"].error.shape == (32, 40)
        assert res.vmax == pytest.approx(by["plain"].max_abs)
    ne = cmp.equivariance_map(zoo, _scene(32, 40, 1), Settings(a=2.0, b=-0.5), "fdncnn-ne")
    assert ne.runs[0].relative < 1e-5


def test_clipping_breaks_exact_equivariance(zoo: Zoo) -> None:
    s = Settings(a=2.5, b=0.3, clip=True)
    res = cmp.equivariance_map(zoo, _scene(32, 40, 3), s, "dncnn")
    assert {r.variant: r for r in res.runs}["wne"].relative > 1e-3
    assert any("Clipping" in n for n in res.notes)


def test_noise_sweep_rows_and_progress(zoo: Zoo) -> None:
    seen: list[float] = []
    res = cmp.noise_sweep(
        zoo,
        _scene(24, 24, 1),
        Settings(backbones=("dncnn", "fdncnn-ne")),
        sigmas=(5, 25, 60),
        progress=lambda f, desc="": seen.append(f),
    )
    models_ = {r["model"] for r in res.rows}
    assert models_ == {"noisy input", "CNN · plain", "CNN · WNE", "NE-arch"}
    assert len(res.rows) == 4 * 3
    assert all(math.isfinite(r["psnr"]) for r in res.rows)
    assert seen == sorted(seen) and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    noisy = [r["psnr"] for r in res.rows if r["model"] == "noisy input"]
    assert noisy == sorted(noisy, reverse=True)  # more noise, lower input PSNR


# ----------------------------------------------------------------------------- handlers


def test_denoise_view_display_ready(handlers: DemoHandlers, tmp_path: Path) -> None:
    path = _png(tmp_path / "in.png", (_scene(40, 48) * 255).astype(np.uint8))
    v = handlers.denoise(path, a=2.0, b=0.2, backbones=["dncnn", "fdncnn-ne"])
    assert v.noisy.dtype == np.uint8 and v.noisy.shape == (40, 48, 3)
    by = {p.backbone: p for p in v.panels}
    assert not by["swinir"].visible
    cnn = by["dncnn"]
    assert cnn.visible and "dB" in cnn.header and cnn.left_label.endswith(" dB")
    assert cnn.slider is not None and len(cnn.slider) == 2
    assert cnn.left.dtype == np.uint8 and cnn.right.shape == (40, 48, 3)
    assert not by["fdncnn-ne"].right_visible and by["fdncnn-ne"].left is not None
    assert "clipped" in v.notes  # a=2 pushes the target above 1
    assert "data range a = 2" in v.notes
    assert len(v.table) == 1 + 3 and all(isinstance(c, str) for row in v.table for c in row)
    assert v.gallery[0][1].startswith("CNN · plain")
    json.dumps(v.summary)


def test_missing_pairs_are_shown_as_unavailable(handlers: DemoHandlers) -> None:
    """σ_train=10 has a plain CNN only; σ_train=50 has nothing: no crash, clear messages."""
    v = handlers.denoise(_scene(24, 24), sigma_train=10, backbones=["dncnn", "swinir"])
    cnn = {p.backbone: p for p in v.panels}["dncnn"]
    assert cnn.left is not None and cnn.right is None
    assert "dncnn-wne-s10" in cnn.header and "unavailable" in cnn.right_label
    assert cnn.slider is not None  # noisy ↔ plain
    assert "failed to load" in v.notes  # the tampered swinir-wne-s10
    v50 = handlers.denoise(_scene(24, 24), sigma_train=50, backbones=["dncnn"])
    assert all(not m["available"] for m in v50.summary["models"].values())


def test_equivariance_and_sweep_views(handlers: DemoHandlers) -> None:
    e = handlers.equivariance(_scene(32, 32), a=0.5, b=0.2, backbone="swinir")
    assert e.left.shape == (32, 32, 3) and e.left.dtype == np.uint8 and e.right_visible
    assert "relative defect" in e.text and len(e.gallery) == 2
    ne = handlers.equivariance(_scene(32, 32), backbone="fdncnn-ne")
    assert not ne.right_visible and len(ne.gallery) == 1
    with pytest.raises(DemoInputError, match="backbone"):
        handlers.equivariance(_scene(32, 32), backbone="vgg")
    sw = handlers.sweep(_scene(200, 150), backbones=["dncnn"])
    assert len(sw.rows) == 3 * len(cmp.SWEEP_SIGMAS)
    assert f"{cmp.SWEEP_SIDE}×" in sw.title or f"×{cmp.SWEEP_SIDE}" in sw.title


def test_gpu_hook_wraps_the_compute_function(zoo: Zoo) -> None:
    """The ZeroGPU hook gets the compute function and a duration estimate with its arguments."""
    seen: dict[str, Any] = {}

    def hook(fn: Any, duration: Any = None) -> Any:
        def wrapped(*args: Any) -> Any:
            seen["duration"] = duration(*args)
            return fn(*args)

        return wrapped

    wrapped = DemoHandlers(zoo, gpu=hook)
    view = wrapped.denoise(_scene(24, 24))
    assert isinstance(seen["duration"], int) and 15 <= seen["duration"] <= 120
    # a wrapped compute function may run elsewhere (ZeroGPU): no partial results, no warming
    assert not wrapped.in_process and DemoHandlers(zoo).in_process
    assert view.summary["pending"] == [] and len(list(wrapped.denoise_stream(_scene(20, 20)))) == 1


def test_cpu_working_size_is_calibrated_to_the_latency_target(
    zoo: Zoo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default working size shrinks with a tighter target, but the page's default never
    drops below 256 px however loaded the machine is at start-up (issue 13); the env
    variable overrides it."""
    monkeypatch.delenv("WNE_DEMO_MAX_SIDE", raising=False)
    assert calibrate_max_side(zoo, 1e-9) == 128
    assert calibrate_max_side(zoo, 1e9) == 512
    side = DemoConfig.for_zoo(zoo, target_seconds=0.5).default_max_side
    assert CPU_MIN_DEFAULT_SIDE == 256 <= side <= 512 and side % 16 == 0
    assert DemoConfig.for_zoo(zoo, target_seconds=1e-9).default_max_side == 256
    monkeypatch.setenv("WNE_DEMO_MAX_SIDE", "320")
    assert DemoConfig.for_zoo(zoo).default_max_side == 320
    assert DemoConfig.for_device(torch.device("cuda")).max_side_limit == 2048


def test_scenarios_examples_and_results(tmp_path: Path) -> None:
    for name in SCENARIOS:
        vals = scenario(name, 25)
        assert tuple(vals) == SCENARIO_CONTROLS
        parse_settings(vals["a"], vals["b"], vals["sigma"], order=vals["order"], clip=vals["clip"])
    assert scenario("noise higher than training", 25)["sigma"] > 25
    with pytest.raises(DemoInputError):
        scenario("make it pop", 25)
    examples = load_examples(EXAMPLES)
    assert len(examples) >= 3 and all(e.path.is_file() and e.label for e in examples)
    modes = {Image.open(e.path).mode for e in examples}
    assert "L" in modes and "RGB" in modes
    for e in examples:
        parse_settings(**e.settings)
        assert e.path.stat().st_size < 200_000
    pngs, csvs, note = precomputed_results(tmp_path)
    assert not pngs and not csvs and "No precomputed" in note
    (tmp_path / "bench-cpu.png").write_bytes(b"x")  # another tool's output: ignored
    assert precomputed_results(tmp_path)[:2] == ([], [])
    (tmp_path / "sigma25").mkdir()
    (tmp_path / "sigma25" / "mismatch.png").write_bytes(b"x")
    (tmp_path / "sigma25" / "psnr.csv").write_text("model,sigma_test,psnr\n")
    pngs, csvs, note = precomputed_results(tmp_path)
    assert [p.name for p in pngs] == ["mismatch.png"] and [p.name for p in csvs] == ["psnr.csv"]
    assert "1 figure(s)" in note


def test_output_files_are_content_addressed_and_complete(tmp_path: Path) -> None:
    files = OutputFiles(tmp_path / "out")
    img = (np.arange(24 * 20 * 3) % 256).astype(np.uint8).reshape(24, 20, 3)
    first = files.png(img)
    assert first is not None and files.png(img.copy()) == first
    assert files.png(img[..., 0]) != first and files.png(None) is None
    with Image.open(first) as im:
        assert im.format == "PNG"
        np.testing.assert_array_equal(np.asarray(im), img)
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == [".png", ".png"]


@pytest.mark.slow  # imports gradio
def test_one_function_per_computation_names_the_api_parameters(
    handlers: DemoHandlers, tmp_path: Path
) -> None:
    """Each endpoint's function takes the image and its settings by their API names, returns
    plain values (PNG paths equal to the handler's arrays, JSON) plus the page's updates, and
    refuses an image naming a server file outside the allowed folders."""
    import gradio as gr

    from wne.demo.compare import side_by_side
    from wne.demo.endpoints import UNCHANGED, Endpoints

    fns = Endpoints(handlers, OutputFiles(tmp_path / "out"), [EXAMPLES])
    for name, ep in ENDPOINTS.items():
        sig = inspect.signature(getattr(fns, name))
        assert list(sig.parameters) == ["image", *ep.params, "progress"]
        # the comparison and the restore walks stream their steps
        assert inspect.isgeneratorfunction(getattr(fns, name)) == (name in ("denoise", "restore"))
    parrots = str(EXAMPLES / "parrots.png")
    args = {**BASE_ARGS, "a": 0.5, "backbones": ["dncnn", "fdncnn-ne"]}
    steps = list(fns.denoise(parrots, *args.values()))  # streams: the models as they come
    # a backbone's plain and WNE models come together when they run side by side
    counts = [0, 2, 3] if side_by_side(handlers.zoo.device) == 2 else [0, 1, 2, 3]
    assert [len(s[2]) for s in steps] == counts
    assert [len(s[3]["pending"]) for s in steps] == [3 - n for n in counts]
    # the noisy input and target are sent first and last; partial steps leave them as they are
    assert all(isinstance(p, str) for p in (*steps[0][:2], *steps[-1][:2]))
    assert steps[0][:2] == steps[-1][:2]
    assert all(s[0] == s[1] == UNCHANGED == gr.skip() for s in steps[1:-1]) and len(steps) > 2
    noisy, target, gallery, summary, page = steps[-1]
    view = handlers.denoise(parrots, **args)
    for path, expected in [
        (noisy, view.noisy),
        (target, view.target),
        (gallery[1][0], view.gallery[1][0]),
    ]:
        np.testing.assert_array_equal(np.asarray(Image.open(path)), expected)
    assert [c.split(" · PSNR")[0] for _, c in gallery] == ["CNN · plain", "CNN · WNE", "NE-arch"]
    assert summary["settings"]["a"] == 0.5
    json.dumps(summary)
    assert page[0]["label"].startswith("noisy input · PSNR")
    assert len(page) == 2 + 4 * len(FAMILY_IDS) + 2 and "frame" in page[-2]
    maps, defects, _ = fns.equivariance(parrots, 0.5, 0.2, 25, 0, 25, "dncnn", 64, False)
    assert len(maps) == 2 and set(defects["defects"]) == {"dncnn-plain-s25", "dncnn-wne-s25"}
    curves, sw_page = fns.sweep(parrots, 1.0, 0.0, 0, 25, ["dncnn"], "shift-then-noise", False)
    assert set(curves) == {"title", "rows", "notes"} and sw_page[0]["frame"] == curves["rows"]
    outside = tmp_path / "private.png"
    outside.write_bytes((EXAMPLES / "parrots.png").read_bytes())
    with pytest.raises(gr.Error, match="files on the server cannot be named"):
        list(fns.denoise({"path": str(outside)}, *args.values()))
    with pytest.raises(gr.Error, match=r"contrast a must be in \[0.1, 4\]"):
        list(fns.denoise(parrots, *{**args, "a": 9}.values()))


# ----------------------------------------------------------------------------- errors, imports


@pytest.mark.slow  # imports gradio
def test_user_facing_turns_every_failure_into_a_gradio_error() -> None:
    import gradio as gr

    @user_facing
    def bad_input(x: int, progress: int = 0) -> None:
        raise DemoInputError("contrast a must be in [0.1, 4], got 9")

    @user_facing
    def crash() -> None:
        raise RuntimeError("boom")

    with pytest.raises(gr.Error, match=r"contrast a must be in \[0.1, 4\], got 9"):
        bad_input(1)
    with pytest.raises(gr.Error, match="Internal error"):
        crash()
    assert "working size" in user_message(torch.OutOfMemoryError())
    import inspect

    assert list(inspect.signature(bad_input).parameters) == ["x", "progress"]

    @user_facing
    def stream(fail: bool) -> Any:  # a streaming handler stays a generator function
        yield "noisy input"
        if fail:
            raise DemoInputError("working size must be in [32, 1024], got 5000")
        yield "all models"

    assert inspect.isgeneratorfunction(stream)
    assert list(stream(False)) == ["noisy input", "all models"]
    steps = stream(True)
    assert next(steps) == "noisy input"
    with pytest.raises(gr.Error, match=r"working size must be in \[32, 1024\]"):
        next(steps)


@pytest.mark.slow
def test_demo_package_does_not_import_gradio_pandas_or_matplotlib() -> None:
    code = (
        "import sys, wne.demo, wne.demo.handlers, wne.demo.compare, wne.demo.imaging, "
        "wne.demo.zoo, wne.demo.errors, wne.demo.settings, wne.demo.content, "
        "wne.demo.endpoints, wne.demo.outputs, wne.demo.runtime, wne.demo.inside, "
        "wne.demo.restore; "
        "wne.demo.cache; "
        "print(sorted({'gradio', 'pandas', 'matplotlib'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    assert out.stdout.strip() == "[]"


def test_side_by_side_runs_equal_one_after_the_other(
    zoo: Zoo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two CPU threads a backbone's plain and WNE models run side by side (one thread
    each): the same outputs and scores as one after the other, delivered in pairs in
    display order, with a note saying so; the process's thread count is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert cmp.side_by_side("cpu") == 2 and cmp.side_by_side("meta") == 1
        rng = np.random.default_rng(5)
        clean = rng.random((40, 36, 3)).astype(np.float32)
        settings = Settings(sigma_train=25, backbones=("dncnn", "swinir"))
        together = list(cmp.compare_steps(zoo, clean, settings))
        assert torch.get_num_threads() == 2
        monkeypatch.setenv(cmp.SIDE_BY_SIDE_ENV, "0")
        assert cmp.side_by_side("cpu") == 1
        apart = list(cmp.compare_steps(zoo, clean, settings))
    finally:
        torch.set_num_threads(threads)
    assert [len(s.runs) for s in together] == [0, 2, 4] and [len(s.runs) for s in apart] == [
        0, 1, 2, 3, 4,
    ]  # fmt: skip
    a, b = together[-1], apart[-1]
    assert [r.key for r in a.runs] == [r.key for r in b.runs]
    for x, y in zip(a.runs, b.runs, strict=True):
        np.testing.assert_allclose(x.output, y.output, atol=1e-5)
        assert x.psnr == pytest.approx(y.psnr, abs=1e-4)
    assert any("side by side" in n for n in a.notes)
    assert not any("side by side" in n for n in b.notes)
