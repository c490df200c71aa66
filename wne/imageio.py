"""Reading images: the one reader used by training, evaluation and the demo.

Every image becomes ``[H, W, C]`` float32 in [0, 1]: 8-bit values are divided by
255 and 16-bit values by 65535 (never squeezed through 8 bits), palettes,
CMYK and other modes become RGB, transparency is composited on white, and an RGB
image whose three channels are equal is grayscale (``C = 1``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "list_images",
    "pil_to_array",
    "read_image",
    "to_channels",
]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R 601-2 luma, as Pillow's ``convert("L")``."""


class ImageReadError(ValueError):
    """An image that cannot be read or converted; the message names the problem."""


def list_images(folder: str | Path) -> list[Path]:
    """The image files of a folder (by suffix, not recursive), sorted by name.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def pil_to_array(
    im: Image.Image, notes: list[str] | None = None, file_mode: str | None = None
) -> np.ndarray:
    """Converts a decoded PIL image to ``[H, W, C]`` float32 in [0, 1], ``C`` 1 or 3.

    Args:
        im: The image (already loaded).
        notes: Human-readable notes on the conversion are appended here.
        file_mode: The mode the file declared, when ``im`` was converted since
            (a 16-bit image reduced in mode ``"I"``).

    Returns:
        The pixels.

    Raises:
        ImageReadError: For an unsupported mode or non-finite float pixels.
    """
    notes = notes if notes is not None else []
    mode = im.mode
    file_mode = file_mode or mode
    if mode == "1":
        im = im.convert("L")
    elif mode in ("P", "PA"):
        im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
        notes.append(f"{mode} image converted to RGB.")
    elif mode in ("RGBa", "La"):
        im = im.convert("RGBA" if mode == "RGBa" else "LA")
    elif mode.startswith("I;16") or mode == "I":
        im = im.convert("I") if mode != "I" else im
    elif mode not in ("L", "LA", "RGB", "RGBA", "F", "RGBX"):
        try:
            im = im.convert("RGB")
        except (ValueError, OSError) as exc:
            raise ImageReadError(f"unsupported image mode {mode!r}: {exc}") from None
    if im.mode == "RGBX":
        im = im.convert("RGB")

    arr = np.asarray(im)
    if im.mode == "I":
        values = arr.astype(np.float64)
        if file_mode.startswith("I;16"):
            scale = 65535.0
            notes.append("16-bit image: scaled from 0–65535 to [0, 1].")
        else:
            top = float(values.max()) if values.size else 0.0
            scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else max(top, 1.0)
            notes.append(f"32-bit integer image: scaled by 1/{scale:g}.")
        out = (values / scale).clip(0.0, 1.0)[..., None]
    elif im.mode == "F":
        values = arr.astype(np.float64)
        lo, hi = float(values.min()), float(values.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ImageReadError("the float image holds NaN or infinite values")
        if lo < 0 or hi > 1:
            values = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
            notes.append(f"Float image with range [{lo:g}, {hi:g}] rescaled to [0, 1].")
        out = values[..., None]
    else:
        out = arr.astype(np.float64) / 255.0
        if out.ndim == 2:
            out = out[..., None]
        if out.shape[-1] in (2, 4):  # LA / RGBA: composite on white
            alpha = out[..., -1:]
            color = out[..., :-1]
            if float(alpha.min()) < 1.0:
                notes.append("Transparent pixels composited on white (alpha is not denoised).")
            out = color * alpha + (1.0 - alpha)
    if (
        out.shape[-1] == 3
        and np.array_equal(out[..., 0], out[..., 1])
        and np.array_equal(out[..., 0], out[..., 2])
    ):
        out = out[..., :1]
        notes.append("All three colour channels are equal: processed as a grayscale image.")
    return np.ascontiguousarray(out, dtype=np.float32)


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """``[H, W, C]`` pixels with 1 channel (ITU-R 601-2 luma) or 3 (gray repeated).

    Raises:
        ValueError: If ``channels`` is not 1 or 3.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    c = pixels.shape[-1]
    if c == channels:
        return pixels
    if channels == 3:
        return np.ascontiguousarray(np.repeat(pixels, 3, axis=-1))
    luma = pixels.astype(np.float64) @ np.asarray(LUMA_WEIGHTS)
    return np.ascontiguousarray(luma[..., None], dtype=np.float32)


def read_image(
    path: str | Path, *, channels: int | None = None, notes: list[str] | None = None
) -> np.ndarray:
    """Reads one image file as ``[H, W, C]`` float32 in [0, 1].

    Args:
        path: The file.
        channels: 1 (colour converted to luma), 3 (grayscale repeated), or ``None``
            (as stored: 1 for grayscale, 3 for colour).
        notes: Human-readable notes on the conversion are appended here.

    Returns:
        The pixels.

    Raises:
        FileNotFoundError: If the file does not exist.
        ImageReadError: If it is not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            pixels = pil_to_array(im, notes)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}") from None
    return pixels if channels is None else to_channels(pixels, channels)
