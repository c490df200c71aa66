"""The app through ``gradio_client``, launched in-process on loopback.

Every public endpoint (``/denoise``, ``/equivariance``, ``/sweep``, ``/inside``,
``/restore``) with good and bad inputs: bad ones come back as errors naming the problem
and the server keeps serving. The app is served once for the session (:mod:`app_fixtures`, tiny
random-init checkpoints).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from app_fixtures import PARROTS
from PIL import Image

from wne.degrade import NOISES
from wne.demo import imaging
from wne.demo.pages import compare, restore

pytest_plugins = ["app_fixtures"]  # the session's served app (`served`)
pytestmark = [
    pytest.mark.slow,  # imports gradio and starts a server (several seconds)
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"),  # pandas 3 notes
]

ENDPOINT_NAMES = ("denoise", "equivariance", "sweep", "inside", "filters", "rivals", "restore")
GOOD: dict[str, Any] = {
    "a": 1.0,
    "b": 0.0,
    "sigma": 25,
    "seed": 0,
    "sigma_train": 25,
    "backbones": ["dncnn", "swinir"],
    "order": "shift-then-noise",
    "max_side": 64,
    "clip": False,
}


def _direct(server: Any, **args: Any) -> tuple[Any, ...]:
    """``/denoise``'s values computed here with the page function (no server, no cache)."""
    v = {
        **GOOD,
        "noise": "gaussian",
        "photons": 20.0,
        "read_noise": 1.0,
        "quality": 30,
        "checkpoint": "best",
        **args,
    }
    scene = compare.Scene(**{**v, "backbones": tuple(v["backbones"])})
    pixels = imaging.load_image(str(PARROTS), max_side=scene.max_side).pixels
    return compare.outputs(list(compare.run(server.zoo, pixels, scene))[-1], [])


def _denoise(client: Any, path: Path, **override: Any) -> Any:
    from gradio_client import handle_file

    args = {**GOOD, **override}
    return client.predict(handle_file(str(path)), *args.values(), api_name="/denoise")


def test_public_endpoints_are_exactly_the_documented_ones(served: tuple[Any, Any]) -> None:
    _, client = served
    info = client.view_api(print_info=False, return_format="dict")
    assert set(info["named_endpoints"]) == {f"/{name}" for name in ENDPOINT_NAMES}
    params = [p["parameter_name"] for p in info["named_endpoints"]["/denoise"]["parameters"]]
    # the noise parameters (issue 14), then the checkpoint choice (issue 16) come last, so
    # older positional calls keep working
    later = ["noise", "photons", "read_noise", "quality", "checkpoint"]
    assert params == ["image", *GOOD, *later]


def test_the_checkpoint_argument_says_which_checkpoints_run(served: tuple[Any, Any]) -> None:
    """`checkpoint` (default: the best available) picks the checkpoints; the summary is keyed by
    the ones that ran, and a size the server does not have is reported per model."""
    from gradio_client import handle_file

    _, client = served
    image = handle_file(str(PARROTS))
    *_, best = client.predict(image=image, backbones=["dncnn"], max_side=48, api_name="/denoise")
    assert best["settings"]["checkpoint"] == "best"
    assert set(best["models"]) == {"dncnn-plain-s25", "dncnn-wne-s25"}
    *_, gpu = client.predict(
        image=image, backbones=["dncnn"], max_side=48, checkpoint="gpu", api_name="/denoise"
    )
    assert not any(m["available"] for m in gpu["models"].values())
    assert all("paper-size, GPU-trained" in m["message"] for m in gpu["models"].values())


def test_endpoint_defaults_are_the_page_controls(served: tuple[Any, Any]) -> None:
    """An argument left out takes its control's value on the page (one definition)."""
    server, client = served
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    defaults = {
        p["parameter_name"]: p["parameter_default"] for p in info["/denoise"]["parameters"][1:]
    }
    assert defaults == {
        **GOOD,
        "sigma": 25.0,
        "max_side": server.defaults.side,
        "noise": "gaussian",
        "photons": 20.0,
        "read_noise": 1.0,
        "quality": 30,
        "checkpoint": "best",
    }
    walks = {
        p["parameter_name"]: p["parameter_default"] for p in info["/restore"]["parameters"][1:]
    }
    cpu = ("inpaint", 10.0, 150, 128)
    assert (walks["task"], walks["keep"], walks["max_steps"], walks["max_side"]) == cpu


def test_denoise_returns_lossless_pngs_gallery_and_scores(served: tuple[Any, Any]) -> None:
    """Images come back as PNG equal to the handler's arrays (no lossy webp on the way)."""
    server, client = served
    noisy, target, gallery, summary = _denoise(client, PARROTS, a=0.5, b=0.3)
    expected_noisy, expected_target, outputs, _ = _direct(server, a=0.5, b=0.3)
    for path, expected in ((noisy, expected_noisy), (target, expected_target)):
        with Image.open(path) as im:
            assert im.format == "PNG"
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), expected)
    labels = [f"{b} · {v}" for b in ("CNN", "Transformer") for v in ("plain", "WNE")]
    assert [g["caption"].split(" · PSNR")[0] for g in gallery] == labels
    with Image.open(gallery[1]["image"]) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), outputs[1][0])
    assert summary["settings"]["a"] == 0.5 and summary["psnr_data_range"] == 0.5
    keys = {f"{b}-{v}-s25" for b in GOOD["backbones"] for v in ("plain", "wne")}
    assert set(summary["models"]) == keys
    assert all(isinstance(m["psnr"], float) for m in summary["models"].values())


def test_denoise_streams_model_by_model_and_ends_with_the_complete_result(
    served: tuple[Any, Any],
) -> None:
    """``submit`` sees every step (noisy input and target first, then one model after
    another); ``result`` (what ``predict`` returns) is the complete comparison, the same as
    the handler's, and an identical request is answered from the cache with it."""
    from gradio_client import handle_file

    server, client = served
    args = {**GOOD, "seed": 4242}  # a request no other test sends: computed here
    job = client.submit(handle_file(str(PARROTS)), *args.values(), api_name="/denoise")
    noisy, target, gallery, summary = job.result(timeout=120)
    keys = ["dncnn-plain-s25", "dncnn-wne-s25", "swinir-plain-s25", "swinir-wne-s25"]
    assert summary["pending"] == [] and list(summary["models"]) == keys
    assert all(m["available"] for m in summary["models"].values()) and len(gallery) == 4
    steps = job.outputs()
    # on a CPU with two threads a backbone's plain and WNE models run side by side: they
    # arrive together
    together = compare.side_by_side(server.zoo.device)
    counts = list(range(0, len(keys) + 1, together))
    assert [len(step[2]) for step in steps] == counts
    for n, step in zip(counts, steps, strict=True):  # in display order
        assert list(step[3]["models"]) == keys[:n] and step[3]["pending"] == keys[n:]
    for step in steps:  # the noisy input and target come with every step
        for path, final in ((step[0], noisy), (step[1], target)):
            assert Path(path).read_bytes() == Path(final).read_bytes()
    direct = _direct(server, **args)[3]
    numbers = {
        k: {f: v for f, v in m.items() if f != "seconds"} for k, m in direct["models"].items()
    }
    assert {
        k: {f: v for f, v in m.items() if f != "seconds"} for k, m in summary["models"].items()
    } == numbers
    hits = server.cache.totals()["cache"]
    again = client.predict(handle_file(str(PARROTS)), *args.values(), api_name="/denoise")
    assert again[3] == summary and server.cache.totals()["cache"] == hits + 1


def test_the_page_says_how_many_requests_it_serves_and_what_a_full_queue_means(
    served: tuple[Any, Any],
) -> None:
    import app

    _, client = served
    texts = [c.get("props", {}).get("value") for c in client.config["components"]]
    note = next(t for t in texts if isinstance(t, str) and "Queue is full" in t)
    assert f"Up to {app.ACTIVE} requests" in note and f"{app.QUEUE_SIZE} more wait" in note


def test_arguments_left_out_take_the_page_defaults(served: tuple[Any, Any]) -> None:
    """The README's snippet style: only the image, everything else from the page."""
    from gradio_client import handle_file

    server, client = served
    *_, summary = client.predict(image=handle_file(str(PARROTS)), api_name="/denoise")
    s = summary["settings"]
    expected = (1.0, 0.0, 25.0, "shift-then-noise", False)
    assert (s["a"], s["b"], s["sigma"], s["order"], s["clip"]) == expected
    assert s["max_side"] == server.defaults.side and s["checkpoint"] == server.defaults.checkpoint
    assert s["backbones"] == ["dncnn", "swinir"]


def test_missing_models_and_large_images_come_back_with_notes(
    served: tuple[Any, Any], tmp_path: Path
) -> None:
    _, client = served
    big = tmp_path / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 200, 3), dtype=np.uint8)).save(big)
    _, _, gallery, summary = _denoise(client, big, sigma_train=10, backbones=["dncnn", "swinir"])
    assert summary["image"] == {"width": 43, "height": 64, "channels": 3}
    assert any("Downscaled from 200×300" in n for n in summary["notes"])
    models = summary["models"]
    assert models["dncnn-plain-s10"]["available"]
    assert not models["dncnn-wne-s10"]["available"]
    assert "dncnn-wne-s10" in models["dncnn-wne-s10"]["message"]
    assert len(gallery) == 1


def test_equivariance_endpoint(served: tuple[Any, Any]) -> None:
    from gradio_client import handle_file

    _, client = served
    maps, defects = client.predict(
        handle_file(str(PARROTS)), 0.5, 0.2, 25, 0, 25, "dncnn", 64, False, api_name="/equivariance"
    )
    assert len(maps) == 2 and maps[0]["caption"].startswith("plain")
    d = defects["defects"]
    assert d["dncnn-wne-s25"]["relative"] < 1e-5 < d["dncnn-plain-s25"]["relative"]


def test_sweep_endpoint(served: tuple[Any, Any]) -> None:
    from gradio_client import handle_file

    _, client = served
    args = (1.0, 0.0, 0, 25, ["dncnn"], "shift-then-noise", False)  # positional, in API order
    out = client.predict(handle_file(str(PARROTS)), *args, api_name="/sweep")
    assert len(out["rows"]) == 3 * len(NOISES["gaussian"].level.sweep)
    assert {r["model"] for r in out["rows"]} == {"noisy input", "CNN · plain", "CNN · WNE"}
    assert "PSNR vs test σ" in out["title"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"a": "abc"}, "contrast a must be a number"),
        ({"a": 100}, r"contrast a must be in \[0.1, 4\]"),
        ({"sigma": -5}, r"noise σ \(0–255 scale\) must be in \[0, 100\], got -5"),
        ({"seed": 2.5}, "seed must be a whole number"),
        ({"sigma_train": 30}, "models' training σ must be one of"),
        ({"backbones": ["vgg"]}, "unknown value"),
        ({"backbones": []}, "choose at least 1"),
        ({"order": "sideways"}, "order of operations"),
        ({"max_side": 99999}, "working size"),
        ({"clip": "perhaps"}, "clip"),
    ],
)
def test_bad_arguments_are_refused_with_their_names(
    served: tuple[Any, Any], override: dict[str, Any], message: str
) -> None:
    _, client = served
    with pytest.raises(Exception, match=message):
        _denoise(client, PARROTS, **override)


def test_bad_arguments_on_the_other_endpoints(served: tuple[Any, Any]) -> None:
    from gradio_client import handle_file

    _, client = served
    img = handle_file(str(PARROTS))
    with pytest.raises(Exception, match="backbone must be one of"):
        client.predict(img, 0.5, 0.2, 25, 0, 25, "vgg", 64, False, api_name="/equivariance")
    with pytest.raises(Exception, match="brightness b"):
        client.predict(
            img, 1.0, "x", 0, 25, ["dncnn"], "shift-then-noise", False, api_name="/sweep"
        )
    assert client.predict(
        img, 1.0, 0.0, 0, 25, ["dncnn"], "shift-then-noise", False, api_name="/sweep"
    )["rows"]


# --------------------------------------------------------------------------- /restore

RESTORE: dict[str, Any] = {
    "task": "inpaint",
    "keep": 20,
    "backbone": "dncnn",
    "sigma_train": 25,
    "seed": 1,
    "max_steps": 8,
    "max_side": 48,
}
"""A small request (the tiny models walk 8 steps at 48 px in well under a second)."""


def _pixels(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _restore(client: Any, **override: Any) -> Any:
    from gradio_client import handle_file

    args = {**RESTORE, **override}
    return client.predict(image=handle_file(str(PARROTS)), **args, api_name="/restore")


def test_restore_returns_the_final_images_and_numbers_of_the_page_function(
    served: tuple[Any, Any],
) -> None:
    """/restore is the page's generator: the client gets its last snapshot: the observed
    image and the plain and WNE results as lossless PNGs equal to the handler's, and the
    numbers; the same seed gives the same images and numbers again."""
    server, client = served
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    names = [p["parameter_name"] for p in info["/restore"]["parameters"]]
    walks = "task keep hole factor noise_sigma backbone sigma_train seed max_steps max_side color"
    assert names == ["image", *walks.split()]
    observed, plain, wne, summary = _restore(client)
    walks = restore.Walks(
        **{**RESTORE, "hole": 25.0, "factor": 4, "noise_sigma": 10.0, "color": False}
    )
    pixels = imaging.load_image(str(PARROTS), max_side=48).pixels
    observed_px, images, _ = restore.outputs(list(restore.run(server.zoo, pixels, walks))[-1], [])
    finals = (observed_px, *images)
    for path, pixels in zip((observed, plain, wne), finals, strict=True):
        with Image.open(path) as im:
            assert im.format == "PNG"
            np.testing.assert_array_equal(np.asarray(im), pixels)
    assert summary["done"] and summary["settings"]["keep"] == 20.0
    assert list(summary["models"]) == ["dncnn-plain-s25", "dncnn-wne-s25"]
    for m in summary["models"].values():
        assert m["stop"] in ("converged", "max_steps", "diverged") and m["steps"] <= 8
        assert len(m["sigma_hat_8bit"]) >= m["steps"]
    again = _restore(client)
    for first, second in zip((observed, plain, wne), again[:3], strict=True):
        np.testing.assert_array_equal(_pixels(first), _pixels(second))

    def numbers(s: dict[str, Any]) -> dict[str, Any]:
        return {k: {f: v for f, v in m.items() if f != "seconds"} for k, m in s["models"].items()}

    assert numbers(again[3]) == numbers(summary)
    assert numbers(_restore(client, seed=2)[3]) != numbers(summary)


def test_restore_streams_snapshots_to_a_client(served: tuple[Any, Any]) -> None:
    from gradio_client import handle_file

    _, client = served
    job = client.submit(
        image=handle_file(str(PARROTS)), **{**RESTORE, "max_steps": 20}, api_name="/restore"
    )
    final = job.result()
    outputs = job.outputs()
    assert len(outputs) >= 3 and outputs[-1][3] == final[3]
    assert [o[3]["done"] for o in outputs] == [False] * (len(outputs) - 1) + [True]
    steps = [max(m["steps"] for m in o[3]["models"].values()) for o in outputs]
    assert steps == sorted(steps) and steps[0] == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"task": "deblur"}, "task must be one of"),
        ({"keep": 0}, r"kept pixels \(%\) must be in \[1, 100\], got 0"),
        ({"factor": 3}, "super-resolution factor must be one of"),
        ({"max_steps": 5000}, r"step budget must be in \[1, 1000\]"),
        ({"max_side": 1024}, r"working size must be in \[32, 256\]"),
        ({"backbone": "fdncnn-ne"}, "backbone must be one of"),
        ({"sigma_train": 50}, "no checkpoint 'dncnn-plain-s50' is installed"),
        ({"seed": -1}, "seed must be in"),
    ],
)
def test_restore_refuses_bad_arguments_with_their_names(
    served: tuple[Any, Any], override: dict[str, Any], message: str
) -> None:
    from gradio_client.exceptions import AppError

    _, client = served
    with pytest.raises(AppError, match=message):
        _restore(client, **override)


def test_restore_refuses_a_bad_image_and_keeps_serving(
    served: tuple[Any, Any], tmp_path: Path
) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    _, client = served
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"%PDF-1.4 definitely not a picture")
    with pytest.raises(AppError, match="not an image"):
        client.predict(image=handle_file(str(bad)), **RESTORE, api_name="/restore")
    assert _restore(client, max_steps=2)[3]["done"]


def _native_outputs(client: Any, path: Path, **override: Any) -> tuple[dict, dict]:
    """``/denoise`` of a file (added noise σ = 0): its summary and each model's download."""
    import tifffile

    *_, info = _denoise(client, path, sigma=0, backbones=["dncnn"], **override)
    read = {".tif": tifffile.imread, ".png": lambda p: np.asarray(Image.open(p))}
    files = {Path(f).stem: read[Path(f).suffix](f) for f in info["downloads"]}  # local copies
    return info, files


def test_16bit_and_float_files_are_denoised_and_downloaded_in_their_own_units(
    served: tuple[Any, Any], tmp_path: Path
) -> None:
    """The dim 12-bit example (16-bit PNG), the same frame as a 16-bit TIFF and rescaled to
    [0, 1] as a float32 TIFF (slightly negative in places): the notes say they are shown
    stretched; each output downloads in the file's format, dtype and shape; WNE's outputs
    agree across the units (to rounding), plain's do not."""
    import tifffile

    _, client = served
    example = PARROTS.with_name("lighthouse_12bit.png")
    frame = np.asarray(Image.open(example))
    tifffile.imwrite(tmp_path / "frame.tif", frame)
    tifffile.imwrite(tmp_path / "unit.tif", ((frame - 200.0) / 3000).astype(np.float32))
    info, dim = _native_outputs(client, example, max_side=256)
    note = f"16-bit image (values {frame.min()}–{frame.max()}): shown stretched for display"
    assert info["notes"][0].startswith(note)
    tif_info, tif = _native_outputs(client, tmp_path / "frame.tif", max_side=256)
    unit_info, unit = _native_outputs(client, tmp_path / "unit.tif", max_side=256)
    assert "stretched for display" in tif_info["notes"][0] + unit_info["notes"][0]
    for files, dtype in ((dim, np.uint16), (tif, np.uint16), (unit, np.float32)):
        assert [(k, v.dtype, v.shape) for k, v in sorted(files.items())] == [
            (f"denoised-dncnn-{v}-s25", dtype, frame.shape) for v in ("plain", "wne")
        ]
    assert all(np.array_equal(dim[k], tif[k]) for k in dim)
    wne, plain = (
        np.abs(dim[k] - (200 + 3000 * unit[k].astype(np.float64)))
        for k in ("denoised-dncnn-wne-s25", "denoised-dncnn-plain-s25")
    )
    assert wne.max() <= 1.0 and plain.mean() > 10


def test_no_noise_added_means_no_reference_and_no_psnr(served: tuple[Any, Any]) -> None:
    """σ = 0 on an upload (a photo that is noisy already): no PSNR/SSIM against itself, an
    estimated σ̂ for the input and each output, and each model's method noise y − f(y)."""
    _, client = served
    _, _, gallery, info = _denoise(client, PARROTS, sigma=0, backbones=["dncnn"])
    assert info["reference"] is False and info["noisy"]["psnr"] is None
    assert isinstance(info["noisy"]["estimated_sigma"], float)
    models = info["models"].values()
    assert all(m["psnr"] is None and m["ssim"] is None for m in models)
    assert all(isinstance(m["estimated_sigma"], float) for m in models)
    captions = [g["caption"] for g in gallery]
    residuals = [g for g in gallery if "method noise" in g["caption"]]
    assert len(residuals) == 2 and all("σ̂" in c for c in captions[:2]), captions
    shown = np.asarray(Image.open(residuals[0]["image"]), dtype=np.float64)
    assert shown.std() > 0  # the removed noise is drawn, not a flat image
    assert any("no PSNR or SSIM is shown" in n for n in info["notes"])
    noisy, target = (np.asarray(Image.open(f)) for f in _denoise(client, PARROTS, sigma=0)[:2])
    out = [(g["image"], g["caption"]) for g in gallery]
    tiles, _, subtitle = compare.figure_tiles(noisy, target, out, info)  # the slide figure
    assert [t.title for t in tiles[:2]] == ["noisy input (no reference)", "the shifted upload"]
    assert all("PSNR" not in t.caption for t in tiles) and "no clean reference" in subtitle
    *_, scored = _denoise(client, PARROTS, sigma=5, backbones=["dncnn"])  # noise added: scored
    assert scored["reference"] is True and isinstance(scored["noisy"]["psnr"], float)
