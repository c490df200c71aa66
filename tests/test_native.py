"""Image I/O in the file's own dtype and ``wne.denoise`` / ``wne denoise`` in the data's own
units, with the bundled ``dncnn-*-s25`` (receptive field 12 px, within half the overlap)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import make_tiny_model
from PIL import Image

from wne import imageio
from wne.imageio import NativeImage, read_native, write_native
from wne.lab.denoise import main
from wne.native import default_model, denoise, load_model, model_units

WNE, PLAIN = "dncnn-wne-s25", "dncnn-plain-s25"


def _noisy(h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth image in [0, 1] plus σ = 25/255 Gaussian noise (float64, unclipped)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    clean = 0.5 + 0.3 * np.sin(xx / 6.0) * np.cos(yy / 9.0)
    return clean + rng.normal(0, 25 / 255, (h, w))


# -- files: every format and dtype round-trips its dtype, shape, values and metadata ----------

ICC = b"\x00\x00\x02\x0cfake icc profile bytes"
CASES = {
    "gray8.png": (np.uint8, (20, 24)),
    "rgb8.png": (np.uint8, (20, 24, 3)),
    "rgba8.png": (np.uint8, (20, 24, 4)),
    "gray16.png": (np.uint16, (20, 24)),
    "gray8.tif": (np.uint8, (20, 24)),
    "gray16.tif": (np.uint16, (20, 24)),
    "rgb16.tif": (np.uint16, (20, 24, 3)),
    "float.tif": (np.float32, (20, 24)),
    "stack16.tif": (np.uint16, (5, 20, 24)),
    "stackrgb.tif": (np.float32, (2, 20, 24, 3)),
    "float64.npy": (np.float64, (20, 24)),
    "int16.npy": (np.int16, (3, 20, 24)),
}


def _values(dtype: type, shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)
    return (rng.normal(0, 1, shape) * 1000 - 300).astype(dtype)  # negative values too


@pytest.mark.parametrize("name", CASES)
def test_native_files_round_trip(name: str, tmp_path: Path) -> None:
    """write_native → read_native is bit-identical with metadata; denoising keeps dtype, shape."""
    dtype, shape = CASES[name]
    fmt = imageio.NATIVE_SUFFIXES[Path(name).suffix]
    meta = {
        "png": {"dpi": (300, 300), "icc_profile": ICC, "text": {"Comment": "from a scope"}},
        "tiff": {"description": "exposure 20 ms", "resolution": (5.0, 5.0), "icc_profile": ICC},
    }.get(fmt, {})
    pixels = _values(dtype, shape)
    write_native(tmp_path / name, NativeImage(pixels, fmt, dict(meta)))
    back = read_native(tmp_path / name)
    assert back.format == fmt
    assert back.pixels.dtype == dtype and back.pixels.shape == shape
    np.testing.assert_array_equal(back.pixels, pixels)
    for key, value in meta.items():
        got = back.meta[key]
        assert np.allclose(got, value, atol=0.01) if key == "dpi" else got == value, key
    out = denoise(back.pixels, WNE)
    assert out.dtype == dtype and out.shape == shape
    assert dtype != np.float32 or out.min() < 0


def test_jpeg_and_palette_keep_bit_depth_and_shape(tmp_path: Path) -> None:
    """JPEG stays 8-bit colour with its ICC profile; a palette PNG is read as RGB."""
    rgb = (np.clip(_noisy(24, 32), 0, 1) * 255).astype(np.uint8)[..., None].repeat(3, -1)
    rgb[..., 0] //= 2
    write_native(tmp_path / "a.jpg", NativeImage(rgb, "jpeg", {"icc_profile": ICC}))
    back = read_native(tmp_path / "a.jpg")
    assert back.pixels.dtype == np.uint8 and back.pixels.shape == rgb.shape
    assert back.meta["icc_profile"] == ICC
    assert np.abs(back.pixels.astype(int) - rgb).mean() < 8  # lossy, but the same image
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    assert read_native(tmp_path / "p.png").pixels.shape == rgb.shape


def test_native_read_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "x.bmp").write_bytes(b"BM")
    with pytest.raises(imageio.ImageReadError, match=r"unsupported file type '\.bmp'"):
        read_native(tmp_path / "x.bmp")
    (tmp_path / "x.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(imageio.ImageReadError, match=r"cannot read x\.tif"):
        read_native(tmp_path / "x.tif")
    palette = np.zeros((3, 256), np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", np.zeros((8, 8), np.uint8), colormap=palette)
    with pytest.raises(imageio.ImageReadError, match="unsupported TIFF photometric PALETTE"):
        read_native(tmp_path / "p.tif")  # palette indices are not intensities
    ihdr = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x10\x02"
    (tmp_path / "rgb16.png").write_bytes(ihdr + bytes(20))
    with pytest.raises(imageio.ImageReadError, match="16-bit colour PNG"):
        read_native(tmp_path / "rgb16.png")
    with pytest.raises(ValueError, match="png cannot hold float32"):
        write_native(tmp_path / "f.png", NativeImage(np.zeros((8, 8), np.float32), "png"))


def test_read_image_keeps_16_bit_precision_converts_channels_and_names_errors(tmp_path: Path):
    """read_image: 16-bit ÷ 65535, 8-bit ÷ 255, channels on request, transparency on white."""
    values = np.array([[0, 1, 257, 65535]] * 16, dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    got = imageio.read_image(tmp_path / "deep.png")
    assert got.shape == (16, 4, 1) and got.dtype == np.float32
    np.testing.assert_array_equal(got[0, :, 0], (values[0] / 65535).astype(np.float32))
    assert got[0, 1, 0] > 0  # 1/65535 survives: an 8-bit path would give 0
    rgb = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    assert imageio.read_image(tmp_path / "c.png").shape == (16, 20, 3)
    np.testing.assert_array_equal(imageio.read_image(tmp_path / "c.png"), rgb / np.float32(255))
    luma = imageio.read_image(tmp_path / "c.png", channels=1)
    pil_l = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32) / 255
    assert luma.shape == (16, 20, 1) and np.abs(luma[..., 0] - pil_l).max() <= 1 / 255
    Image.fromarray(rgb[..., 0]).save(tmp_path / "g.png")
    assert imageio.read_image(tmp_path / "g.png", channels=3).shape == (16, 20, 3)
    rgba = np.dstack([rgb, np.zeros((16, 20), np.uint8)])  # fully transparent → white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert (imageio.read_image(tmp_path / "t.png") == 1.0).all()
    (tmp_path / "x.png").write_bytes(b"not an image")
    with pytest.raises(imageio.ImageReadError, match=r"x\.png"):
        imageio.read_image(tmp_path / "x.png")
    with pytest.raises(FileNotFoundError, match=r"nothing\.png"):
        imageio.read_image(tmp_path / "nothing.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        imageio.list_images(tmp_path / "empty")
    with pytest.raises(ValueError, match="channels"):
        imageio.to_channels(np.zeros((4, 4, 1), np.float32), 2)


# -- wne.denoise: units, dtypes, layouts, tiling ----------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "a", "b"),
    [
        (np.uint8, 255, 0),
        (np.uint16, 3000, 200),
        (np.float32, 5000, -1234.5),
        (np.float64, 0.01, 0.5),
    ],
)
def test_wne_in_native_units_equals_wne_on_the_rescaled_image(dtype: type, a: float, b: float):
    """f(a·y + b) = a·f(y) + b: every kind of units gives the [0, 1] result (to rounding)."""
    stored = a * _noisy() + b
    stored = np.round(np.clip(stored, 0, 255)) if dtype == np.uint8 else stored
    stored = np.round(stored) if np.issubdtype(dtype, np.integer) else stored
    out = denoise(stored.astype(dtype), WNE)
    assert out.dtype == dtype and out.shape == stored.shape
    unit = denoise(((stored - b) / a).astype(np.float64), WNE)
    tol = 0.5 + 1e-3 if np.issubdtype(dtype, np.integer) else 1e-4 * a
    np.testing.assert_allclose(out.astype(np.float64), a * unit + b, rtol=0, atol=tol)
    if dtype == np.float32:
        assert out.min() < 0  # negative values stay negative: nothing is clipped


@pytest.mark.parametrize("key", ["dncnn-wne-tiny", "swinir-wne-tiny"])  # direct, residual
def test_denoise_computes_what_the_wrapper_computes(key: str) -> None:
    """The tiled whole-image path (wne.native._run) equals NormEquivariant's own forward."""
    model, x = make_tiny_model(key), (3.0 * _noisy() - 1.0).astype(np.float32)
    ref = model(torch.from_numpy(x)[None, None]).detach().numpy()[0, 0]
    np.testing.assert_allclose(denoise(x, model), ref, rtol=1e-5, atol=1e-5)


def test_plain_models_map_the_dtype_range_to_unit_interval() -> None:
    """A plain model sees ``uint16 / 65535`` (or ``data_range``): the documented assumption."""
    noisy = _noisy()
    u16 = np.round(noisy * 65535).clip(0, 65535).astype(np.uint16)
    unit = denoise(u16.astype(np.float32) / 65535, PLAIN)
    np.testing.assert_allclose(denoise(u16, PLAIN), unit * 65535, atol=0.51 + 65535 * 1e-6)
    dim = np.round(200 + 3000 * noisy).astype(np.float32)
    ranged = denoise(dim, PLAIN, data_range=(200, 3200))
    np.testing.assert_allclose(ranged, 200 + 3000 * denoise((dim - 200) / 3000, PLAIN), atol=1e-2)
    assert model_units(load_model(PLAIN)) == "plain" and model_units(load_model(WNE)) == "wne"
    assert model_units(load_model("fdncnn-ne-s25")) == "ne"


def test_layouts_colour_alpha_stacks_and_torch() -> None:
    """Channels as grayscale images, alpha kept, frames independent, tensors stay tensors,
    big-endian data (a FITS-style ``.npy``) read as its values."""
    gray = [(_noisy(seed=s) * 1000).astype(np.float32) for s in range(3)]
    alone = [denoise(g, WNE) for g in gray]
    np.testing.assert_array_equal(denoise(gray[0].astype(">f4"), WNE), alone[0])
    rgba = np.stack([*gray, np.full_like(gray[0], 7.0)], axis=-1)
    out = denoise(rgba, WNE)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], alone[c], atol=1e-3)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    stack = denoise(np.stack(gray), WNE)
    np.testing.assert_allclose(stack, np.stack(alone), atol=1e-3)
    t = torch.from_numpy(np.stack(gray))[None]  # [1, 3, H, W]
    got = denoise(t, WNE)
    assert isinstance(got, torch.Tensor) and got.shape == t.shape and got.dtype == t.dtype
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), out[..., :3], atol=1e-3)


@pytest.mark.parametrize("key", [WNE, PLAIN])
def test_tiled_equals_untiled(key: str) -> None:
    """Whole-image statistics: 40 px tiles equal one piece; per-tile ones differ but stay NE."""
    y = (_noisy(90, 100) * 3000 + 200).astype(np.float32)
    whole = denoise(y, key, tile=512)
    np.testing.assert_allclose(denoise(y, key, tile=40), whole, rtol=0, atol=1e-3)
    if key == WNE:
        per_tile = denoise(y, key, tile=40, stats="tile")
        assert np.abs(per_tile - whole).max() > 0.1
        moved = denoise(2 * y - 500, key, tile=40, stats="tile")
        np.testing.assert_allclose(moved, 2 * per_tile - 500, rtol=0, atol=2e-3)


def test_denoise_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="need 8×8"):
        denoise(np.zeros((4, 40), np.float32), WNE)
    with pytest.raises(ValueError, match="NaN or infinite"):
        denoise(np.full((16, 16), np.nan, np.float32), WNE)
    with pytest.raises(ValueError, match="real image data"):
        denoise(np.zeros((16, 16), bool), WNE)
    with pytest.raises(ValueError, match="stats must be"):
        denoise(np.zeros((16, 16), np.float32), WNE, stats="global")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="low < high"):
        denoise(np.zeros((16, 16), np.float32), PLAIN, data_range=(1, 1))
    const = np.full((16, 16), 1234, np.uint16)  # std 0: returned exactly
    np.testing.assert_array_equal(denoise(const, WNE), const)


def test_default_model_is_the_best_recorded_wne_checkpoint_for_the_cpu() -> None:
    from wne import catalog
    from wne.checkpoints import available_checkpoints, default_root, read_config

    ours = [
        e.key
        for e in catalog.entries(sigma_train=25, size="cpu")
        if e.variant == "wne" and e.key in available_checkpoints()
    ]
    psnr = {k: read_config(default_root() / k).metrics["set12"]["psnr_matched"] for k in ours}
    assert default_model("cpu") == max(psnr, key=psnr.get)


# -- wne denoise ----------------------------------------------------------------------------


def _folder(root: Path) -> dict[str, np.ndarray]:
    """A folder tree with a 16-bit TIFF stack, an 8-bit PNG, a float .npy and a bad file."""
    files = {
        "a.png": np.round(np.clip(_noisy(), 0, 1) * 255).astype(np.uint8),
        "sub/b.tif": np.round(200 + 3000 * np.stack([_noisy(seed=s) for s in (1, 2)])).astype(
            np.uint16
        ),
        "sub/deeper/c.npy": (_noisy(seed=3) * 40 - 30).astype(np.float32),
    }
    for rel, px in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        fmt = imageio.NATIVE_SUFFIXES[Path(rel).suffix]
        write_native(root / rel, NativeImage(px, fmt, {"description": "scope"}))
    (root / "sub/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (root / "notes.txt").write_text("not an image: ignored in folders")
    return files


def test_cli_folder_with_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Good files land in the mirrored tree as they came; the bad one is named; exit 1."""
    files = _folder(tmp_path / "data")
    assert main([str(tmp_path / "data"), "--model", WNE]) == 1
    err = capsys.readouterr().err
    assert "broken.png: cannot read" in err and "1 of 4 file(s) failed" in err
    for rel, px in files.items():
        out = read_native(tmp_path / "data_denoised" / rel)
        assert out.pixels.dtype == px.dtype and out.pixels.shape == px.shape
        np.testing.assert_allclose(out.pixels, denoise(px, WNE), atol=1e-4)
    assert read_native(tmp_path / "data_denoised/sub/b.tif").meta["description"] == "scope"
    assert abs(float(out.pixels.mean()) - float(px.mean())) < 1  # float c.npy: offset kept


def test_cli_never_overwrites_without_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture):
    src = tmp_path / "in.npy"
    noisy = (_noisy() * 100).astype(np.float32)
    np.save(src, noisy)
    assert main([str(src), "-o", str(src), "--model", WNE]) == 1
    assert "exists (pass --overwrite" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(src), noisy)
    assert main([str(tmp_path / "*.npy"), "--model", WNE]) == 0  # a glob; beside, renamed
    first = np.load(tmp_path / "in_denoised.npy")
    np.save(tmp_path / "in_denoised.npy", first + 1)
    assert main([str(src), "--model", WNE]) == 1
    np.testing.assert_array_equal(np.load(tmp_path / "in_denoised.npy"), first + 1)
    assert main([str(src), "-o", str(src), "--model", WNE, "--overwrite"]) == 0
    np.testing.assert_allclose(np.load(src), first, atol=1e-5)
    assert main([str(tmp_path / "missing.png"), "--model", WNE]) == 1
    assert "missing.png: image file not found" in capsys.readouterr().err
    assert main([str(src), "--model", "no-such-key"]) == 2
