"""Reading an upload safely for the models, and display helpers.

8-bit files become ``[H, W, C]`` float32 in [0, 1] (:func:`wne.imageio.pil_to_array`);
16-bit or float TIFF/PNG/``.npy`` are read in their own units (:class:`Native`). Bombs,
truncated files, non-images and too-small images raise :class:`DemoInputError`; large
ones are reduced to the working size. Sets Pillow's ``Image.MAX_IMAGE_PIXELS``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from wne.demo.errors import DemoInputError
from wne.imageio import (
    NATIVE_SUFFIXES,
    ImageReadError,
    NativeImage,
    pil_to_array,
    read_native,
    write_native,
)

__all__ = [
    "MAX_IMAGE_PIXELS",
    "MIN_SIDE",
    "LoadedImage",
    "Native",
    "heatmap",
    "load_image",
    "require_uploaded",
    "resize_max_side",
    "to_display",
]

log = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 40_000_000
"""Largest accepted image (pixels); Pillow refuses twice this while decoding the header."""
MIN_SIDE = 16
"""Smallest accepted side in pixels (the models need 8, SSIM needs 11)."""

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


@dataclass(frozen=True)
class Native:
    """An upload kept in its own units (``dtype``, ``format``, ``meta`` as read): ``values =
    offset + scale · pixels`` (the dtype's range; floats as they are), ``gray``: stored as
    ``[H, W]``, values in ``[lo, hi]``."""

    dtype: str
    format: str
    meta: dict[str, Any]
    offset: float
    scale: float
    gray: bool
    lo: float
    hi: float

    @property
    def window(self) -> tuple[float, float]:
        """The image's value range in pixel units (the display stretch)."""
        return (self.lo - self.offset) / self.scale, (self.hi - self.offset) / self.scale

    @property
    def note(self) -> str:
        """What the page says about the image."""
        ints = np.dtype(self.dtype).kind in "iu"
        bits = f"{8 * np.dtype(self.dtype).itemsize}-bit" if ints else self.dtype
        plain = f"the {self.dtype} range mapped to [0, 1]" if ints else "them read as [0, 1]"
        return (
            f"{bits} image (values {self.lo:.6g}–{self.hi:.6g}): shown stretched for display; "
            f"denoised in its own units (WNE sees the values as they are, the plain models "
            f"{plain}); the outputs download in the file's format and bit depth."
        )

    def save(self, pixels: np.ndarray, folder: Path, name: str) -> str:
        """Writes ``[H, W, C]`` pixel-unit values in the file's format, dtype and layout
        (integers rounded and clipped to the dtype) and returns the path."""
        v = pixels.astype(np.float64) * self.scale + self.offset
        if np.dtype(self.dtype).kind in "iu":
            info = np.iinfo(self.dtype)
            v = np.clip(np.rint(v), info.min, info.max)
        v = np.ascontiguousarray(v[..., 0] if self.gray else v, dtype=self.dtype)
        ext = {"tiff": "tif"}.get(self.format, self.format)
        digest = hashlib.sha256(v.tobytes() + name.encode()).hexdigest()[:32]
        image = NativeImage(v, self.format, self.meta)
        return write_once(folder / digest / f"{name}.{ext}", lambda tmp: write_native(tmp, image))


def write_once(path: Path, write: Callable[[Path], None]) -> str:
    """Writes a file named by its content once (``write`` fills a temporary name, then it is
    renamed: no client reads a half-written file); returns the path."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{os.getpid()}.{threading.get_ident()}.tmp{path.suffix}")
        write(tmp)
        os.replace(tmp, path)
    return str(path)


def save_png(pixels: np.ndarray, folder: Path) -> str:
    """Writes a uint8 image once, as a PNG named by its pixels (fast compression), and returns
    its path. A streamed page repeats its images at every step: Gradio then copies a file
    instead of encoding again."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    key = hashlib.sha256(pixels.tobytes() + str(pixels.shape).encode()).hexdigest()[:40]
    save = Image.fromarray(pixels).save
    return write_once(folder / f"{key}.png", lambda tmp: save(tmp, format="png", compress_level=1))


@dataclass
class LoadedImage:
    """An image ready for the models: ``pixels`` ``[H, W, C]`` float32 in [0, 1], conversion
    ``notes``, the file's ``original_size`` (w, h), its ``mode`` and ``native`` (None: 8-bit)."""

    pixels: np.ndarray
    notes: list[str] = field(default_factory=list)
    original_size: tuple[int, int] = (0, 0)
    mode: str = ""
    native: Native | None = None


def _source_path(source: Any) -> Path | None:
    """The file path of a str/Path, a Gradio file payload (dict or object), or None."""
    if isinstance(source, str | os.PathLike):
        return Path(source)
    if isinstance(source, dict):
        path = source.get("path")
        return Path(path) if isinstance(path, str) and path else None
    path = getattr(source, "path", None)
    return Path(path) if isinstance(path, str) and path else None


def require_uploaded(source: Any, roots: Sequence[str | Path]) -> Any:
    """Refuses (DemoInputError) a payload naming a path outside ``roots``, before opening it:
    an API client may not name files on the server."""
    if source is None or isinstance(source, bytes | bytearray | np.ndarray | Image.Image):
        return source
    path = _source_path(source)
    if path is None:
        return source  # not a file payload: load_image says what is wrong with it
    real = Path(os.path.realpath(path))
    if any(real.is_relative_to(os.path.realpath(root)) for root in roots):
        return source
    raise DemoInputError(
        "the image must be uploaded with the request; files on the server cannot be named"
    )


def _open(source: Any) -> Image.Image:
    """Opens and fully decodes an image from a path, bytes, payload or PIL image."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, bytes | bytearray):
        fp: Any = io.BytesIO(bytes(source))
        name = "the uploaded data"
    else:
        path = _source_path(source)
        if path is None:
            raise DemoInputError(
                f"expected an image file, got {type(source).__name__}; upload an image"
            )
        if not path.is_file():
            raise DemoInputError(f"image file not found: {path.name}")
        if path.stat().st_size == 0:
            raise DemoInputError(f"{path.name} is empty (0 bytes)")
        fp, name = path, path.name
    try:
        im = Image.open(fp)
    except UnidentifiedImageError:
        raise DemoInputError(
            f"{name} is not an image format Pillow can read (PNG, JPEG, TIFF, WebP, BMP, ...)"
        ) from None
    except Image.DecompressionBombError:
        raise DemoInputError(
            f"{name} is refused as a possible decompression bomb: it declares more than "
            f"{2 * MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:  # e.g. a PNG text chunk above the limit
        raise DemoInputError(f"could not read {name}: {exc}") from None
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        raise DemoInputError(
            f"{name} has {w}×{h} = {w * h / 1e6:.1f} megapixels, more than the "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} MP limit; downscale it first"
        )
    return im


def _decode(
    im: Image.Image, max_side: int, notes: list[str]
) -> tuple[Image.Image, tuple[int, int]]:
    """The first frame, EXIF-rotated and cheaply pre-reduced, and the file's (w, h)."""
    size = im.size
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        im.seek(0)
        notes.append(f"The file has {frames} frames; the first one is used.")
    if im.format == "JPEG" and max(im.size) > 2 * max_side:
        im.draft(im.mode, (2 * max_side, 2 * max_side))  # DCT-domain downscale while decoding
    try:
        im.load()
    except Image.DecompressionBombError:
        raise DemoInputError("the image is refused as a possible decompression bomb") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DemoInputError(f"the image file is truncated or corrupt ({exc})") from None
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # malformed EXIF blocks raise assorted errors
        orientation = 1
    if orientation not in (1, None):
        try:
            im = ImageOps.exif_transpose(im)
            notes.append("Rotated according to the EXIF orientation tag.")
            if orientation in (5, 6, 7, 8):  # a quarter turn swaps width and height
                size = size[::-1]
        except Exception as exc:
            log.warning("EXIF transpose failed: %s", exc)
    return im, size


def resize_max_side(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """Downscales ``[H, W, C]`` so its longest side is ``max_side`` (never upscales;
    antialiased bilinear, kept inside the input's value range)."""
    h, w = pixels.shape[:2]
    if max(h, w) <= max_side:
        return pixels
    scale = max_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(2, 0, 1)[None]
    y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    y = y.clamp(float(pixels.min()), float(pixels.max()))
    return y[0].permute(1, 2, 0).contiguous().numpy()


def load_image(source: Any, *, max_side: int) -> LoadedImage:
    """Reads an image (path, Gradio payload, bytes or PIL image), downscaled to ``max_side``.

    Raises:
        DemoInputError: For a missing source, a non-image, a corrupt file, a bomb, a side
            below :data:`MIN_SIDE`, or a constant image.
    """
    if source is None:
        raise DemoInputError("no image given: upload an image or pick an example")
    notes: list[str] = []
    path = _source_path(source)
    found = _read_native(path, notes) if path is not None and _is_native(path) else None
    if found is not None:
        pixels, native = found
        original, mode = (pixels.shape[1], pixels.shape[0]), native.dtype
    else:
        native, im = None, _open(source)
        mode = im.mode
        im, original = _decode(im, max_side, notes)
        factor = min(min(im.size) // MIN_SIDE, max(im.size) // (2 * max_side))
        if factor >= 2:  # a cheap first reduction of a big image
            im = (im.convert("I") if im.mode.startswith("I;16") else im).reduce(factor)
        try:
            pixels = pil_to_array(im, notes, mode)
        except ImageReadError as exc:
            raise DemoInputError(str(exc)) from None
    h, w = pixels.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise DemoInputError(
            f"the image is {w}×{h} pixels; each side needs at least {MIN_SIDE} pixels"
        )
    if max(h, w) > max_side:
        pixels = resize_max_side(pixels, max_side)
        nh, nw = pixels.shape[:2]
        notes.append(
            f"Downscaled from {original[0]}×{original[1]} to {nw}×{nh} (working size "
            f"{max_side} px)."
        )
        if min(nh, nw) < MIN_SIDE:
            raise DemoInputError(
                f"the image is too elongated: at working size {max_side} it becomes "
                f"{nw}×{nh}, and each side needs at least {MIN_SIDE} pixels"
            )
    if float(pixels.max()) - float(pixels.min()) == 0.0:
        raise DemoInputError(
            f"the image is constant (every pixel is {float(pixels.flat[0]):.3f}): there is "
            "no structure to denoise and no contrast to shift; use an image with content"
        )
    return LoadedImage(pixels, notes, original, mode, native)


def _is_native(path: Path) -> bool:
    """A TIFF or ``.npy`` file, or a 16-bit grayscale PNG (IHDR: bit depth 16, colour 0)."""
    fmt = NATIVE_SUFFIXES.get(path.suffix.lower())
    if fmt != "png" or not path.is_file():
        return fmt in ("tiff", "npy")
    with open(path, "rb") as fh:
        head = fh.read(26)
    return len(head) == 26 and head[24] == 16 and head[25] == 0


def _read_native(path: Path, notes: list[str]) -> tuple[np.ndarray, Native] | None:
    """A native file's first frame as pixels and its :class:`Native` (None: 8-bit, read
    as any other image); its size is checked before its pixels are decoded."""
    if not path.is_file() or path.stat().st_size == 0 or path.suffix.lower() == ".png":
        shape = _open(path).size  # says what is wrong
    try:
        if path.suffix.lower() == ".npy":
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        elif path.suffix.lower() != ".png":
            import tifffile

            with tifffile.TiffFile(path) as tif:
                shape = tif.series[0].shape
        side, other = sorted(shape)[-2:]  # checked before decoding
        if int(np.prod(shape)) > 4 * MAX_IMAGE_PIXELS or side * other > MAX_IMAGE_PIXELS:
            raise DemoInputError(
                f"{path.name} is refused as a possible decompression bomb: it declares "
                f"{'×'.join(map(str, shape))} values (at most {MAX_IMAGE_PIXELS / 1e6:.0f} MP)"
            )
        image = read_native(path)
    except DemoInputError:
        raise
    except Exception as exc:  # codecs raise many types (OSError, ValueError, TiffFileError...)
        raise DemoInputError(f"could not read {path.name}: {exc}") from None
    px = image.pixels
    if px.ndim == 4 or (px.ndim == 3 and px.shape[-1] not in (1, 2, 3, 4)):
        notes.append(f"The file has {px.shape[0]} frames; the first one is used.")
        px = px[0]
    if px.ndim not in (2, 3) or px.dtype.kind not in "uif":
        raise DemoInputError(f"{path.name}: unsupported array {px.dtype} of shape {px.shape}")
    if px.dtype == np.uint8 and image.format != "npy":
        return None
    if px.ndim == 3 and px.shape[-1] in (2, 4):
        notes.append("The alpha channel is not used.")
    arr = px[..., None] if px.ndim == 2 else px[..., :1] if px.shape[-1] < 3 else px[..., :3]
    if px.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DemoInputError(f"{path.name} holds NaN or infinite values")
    info = np.iinfo(px.dtype) if px.dtype.kind in "iu" else None
    lo, hi = (float(info.min), float(info.max)) if info else (0.0, 1.0)
    pixels = ((arr.astype(np.float64) - lo) / (hi - lo)).astype(np.float32)
    gray, bounds = px.ndim == 2 or px.shape[-1] == 1, (float(arr.min()), float(arr.max()))
    return pixels, Native(px.dtype.name, image.format, image.meta, lo, hi - lo, gray, *bounds)


def to_display(
    pixels: np.ndarray, window: tuple[float, float] = (0.0, 1.0)
) -> tuple[np.ndarray, float]:
    """``window`` stretched to uint8 ([H, W] or [H, W, 3]) and the fraction of values outside it."""
    lo, hi = window
    arr = (np.asarray(pixels, dtype=np.float32) - lo) / (hi - lo if hi > lo else 1.0)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    outside = float(np.mean((arr < 0) | (arr > 1))) if arr.size else 0.0
    img = np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    return img, outside


def heatmap(error: np.ndarray, vmax: float, cmap: str = "inferno") -> np.ndarray:
    """``[H, W]`` non-negative ``error`` coloured on ``[0, vmax]`` as ``[H, W, 3]`` uint8."""
    from matplotlib import colormaps

    scale = vmax if vmax > 0 and np.isfinite(vmax) else 1.0
    t = np.clip(np.asarray(error, dtype=np.float64) / scale, 0.0, 1.0)
    rgba = colormaps[cmap](t)
    return np.rint(rgba[..., :3] * 255.0).astype(np.uint8)


PREVIEW_SIDE = 512
"""Longest side of the stretched preview of a 16-bit or float upload."""


def stretched_preview(source: Any) -> tuple[np.ndarray | None, str]:
    """A 16-bit or float file as the browser cannot show it: its pixels stretched from its
    own value range to uint8 (at most :data:`PREVIEW_SIDE`), with a label; ``(None, "")``
    for an 8-bit image or anything unreadable (the page's run reports that)."""
    try:
        loaded = load_image(source, max_side=PREVIEW_SIDE)
    except DemoInputError:
        return None, ""
    native = loaded.native
    if native is None:
        return None, ""
    label = f"{native.dtype} file, values {native.lo:.6g}–{native.hi:.6g}: shown stretched"
    return to_display(loaded.pixels, native.window)[0], label
