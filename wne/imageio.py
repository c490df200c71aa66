"""Reading images: the one reader of training, evaluation and the demo, and native I/O.

:func:`read_image` makes every image ``[H, W, C]`` float32 in [0, 1]: 8-bit values
divided by 255, 16-bit by 65535 (never squeezed through 8 bits), palettes, CMYK and
other modes to RGB, transparency composited on white, and an RGB image whose three
channels are equal to grayscale (``C = 1``). :func:`read_native` keeps a file's own
dtype, shape, values and metadata (PNG, JPEG, TIFF via ``tifffile``, ``.npy``);
:func:`write_native` writes them back in the same format.

Files of any size: :func:`inspect_native` reads a header only (shape, dtype, and whether the
file can be read piece by piece); :func:`open_native` opens a TIFF or ``.npy`` without reading
its pixels (a read-only memmap, or :class:`TiffPages` for compressed or tiled TIFFs), and
:func:`create_native` makes the memory-mapped file a result is written into.
"""

from __future__ import annotations

import logging
import math
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMAGE_SUFFIXES",
    "NATIVE_SUFFIXES",
    "ImageReadError",
    "NativeHeader",
    "NativeImage",
    "TiffPages",
    "create_native",
    "inspect_native",
    "list_images",
    "open_native",
    "pil_to_array",
    "read_image",
    "read_native",
    "to_channels",
    "write_native",
]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
NATIVE_SUFFIXES: dict[str, str] = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff", ".npy": "npy"
}  # fmt: skip
"""File suffix → format that :func:`read_native` and :func:`write_native` handle."""
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R 601-2 luma, as Pillow's ``convert("L")``."""

log = logging.getLogger(__name__)


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


@dataclass
class NativeImage:
    """A file's pixels as stored, with what is needed to write them back alike.

    Attributes:
        pixels: The values in the file's dtype: ``[H, W]``, ``[H, W, C]``, or frames
            first (``[F, H, W]``, ``[F, H, W, C]`` for a multi-page TIFF or ``.npy``).
        format: ``"png"``, ``"jpeg"``, ``"tiff"`` or ``"npy"``.
        meta: What the format's writer keeps: ``icc_profile``, ``dpi``, ``exif``,
            PNG ``text``; TIFF ``description``, ``resolution``, ``resolutionunit``,
            ``photometric``, ``planar``, ``compression``.
        notes: Human-readable notes on the reading.
    """

    pixels: np.ndarray
    format: str
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _native_format(path: Path) -> str:
    fmt = NATIVE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(NATIVE_SUFFIXES)
        raise ImageReadError(f"unsupported file type {path.suffix or '(none)'!r} (use {known})")
    return fmt


def _tiff_meta(page: Any) -> dict[str, Any]:
    """What :func:`write_native` keeps of a TIFF page's tags."""
    tags, icc = page.tags, page.tags.get(34675)
    photometric = {0: "miniswhite", 1: "minisblack", 2: "rgb"}.get(int(page.photometric))
    if photometric is None:  # palette indices, YCbCr, CMYK...: not intensities
        raise ImageReadError(f"unsupported TIFF photometric {page.photometric.name}")
    meta: dict[str, Any] = {
        "photometric": photometric,
        "compression": "zlib" if page.compression in (8, 32946) else None,
        "description": page.description or None,
        "icc_profile": icc.value if icc is not None else None,
    }
    if 282 in tags and 283 in tags:
        meta["resolution"], meta["resolutionunit"] = page.resolution, page.resolutionunit
    return meta


def _planar(axes: str) -> bool:
    return "S" in axes and not axes.endswith("S")


def _read_tiff(path: Path) -> NativeImage:
    import tifffile  # imported when used: `import wne` stays light

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        meta = _tiff_meta(series.keyframe)
        pixels, axes = series.asarray(), series.axes
    if _planar(axes):  # planar colour: channels last while in memory
        pixels = np.moveaxis(pixels, axes.index("S"), -1)
        meta["planar"] = True
    return NativeImage(pixels, "tiff", {k: v for k, v in meta.items() if v is not None})


class TiffPages:
    """A TIFF series as a read-only array that decodes only the strips or tiles a slice
    needs (tifffile's own segment reading and decoding), for compressed, tiled or
    byte-swapped files that cannot be memory-mapped.

    Indexing: ``pages[*frames, rows, cols]`` or ``pages[*frames, rows, cols, channels]`` with
    an integer per frame axis and step-1 slices (the layout of :func:`read_native`: frames
    first, channels last); the rows last decoded are kept, so tiles along a row cost one
    decoding. Memory: a band of whole strips or rows of tiles.

    Args:
        path: The TIFF file (kept open until :meth:`close` or garbage collection).

    Raises:
        ImageReadError: If the series' pages are not plain 2-D frames (volumes, odd layouts).
    """

    def __init__(self, path: str | Path) -> None:
        import tifffile

        self._tif = tif = tifffile.TiffFile(path)
        weakref.finalize(self, tif.close)
        series = tif.series[0]
        key = self._key = series.keyframe
        self._pages = series.pages
        page_shape = tuple(key.shape)
        lead = tuple(series.shape[: len(series.shape) - len(page_shape)])
        if (
            key.imagedepth != 1
            or math.prod(lead) != len(self._pages)
            or tuple(series.shape[len(lead) :]) != page_shape
        ):
            tif.close()
            raise ImageReadError(f"TIFF pages of shape {page_shape} in a series {series.shape}")
        self._lead, self._samples = lead, key.samplesperpixel
        self._separate = key.planarconfig == 2 and self._samples > 1
        self.height, self.width = key.imagelength, key.imagewidth
        self.dtype = np.dtype(series.dtype).newbyteorder("=")
        self.shape = (
            *lead,
            self.height,
            self.width,
            *((self._samples,) if self._samples > 1 else ()),
        )
        self.ndim = len(self.shape)
        self.band_rows = key.chunks[-3 if key.planarconfig == 1 and self._samples > 1 else -2]
        self._band: tuple[int, int, int, np.ndarray] | None = None

    def close(self) -> None:
        """Closes the file."""
        self._band = None
        self._tif.close()

    def __getitem__(self, key: tuple[Any, ...]) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        n = len(self._lead)
        frame, rest = key[:n], [*key[n:], slice(None), slice(None), slice(None)][:3]
        page = int(np.ravel_multi_index(tuple(int(i) for i in frame), self._lead)) if n else 0
        r0, r1, step = rest[0].indices(self.height) if isinstance(rest[0], slice) else (0, 0, 0)
        if step != 1 or r1 <= r0:
            raise IndexError(f"TiffPages takes step-1 row slices, got {rest[0]!r}")
        band, top = self._rows(page, r0, r1)
        out = band[r0 - top : r1 - top, rest[1], rest[2]]
        return out if self._samples > 1 else out[..., 0]

    def _rows(self, page: int, r0: int, r1: int) -> tuple[np.ndarray, int]:
        """The decoded band of whole segments holding rows ``[r0, r1)``, and its top row."""
        cr = self.band_rows
        k0, k1 = r0 // cr, (r1 - 1) // cr + 1
        if self._band is not None and self._band[:3] == (page, k0, k1):
            return self._band[3], k0 * cr
        self._band = None  # let the previous band go before decoding the next
        key, tif = self._key, self._tif
        target = self._pages[page]
        seg_rows = math.ceil(self.height / cr)
        seg_cols = math.ceil(self.width / key.tilewidth) if key.is_tiled else 1
        seps = self._samples if self._separate else 1
        indices = [
            (s * seg_rows + r) * seg_cols + c
            for s in range(seps)
            for r in range(k0, k1)
            for c in range(seg_cols)
        ]
        rows = min(k1 * cr, self.height) - k0 * cr
        buf = np.zeros((seps, rows, self.width, self._samples // seps), self.dtype)
        decodeargs: dict[str, Any] = {"_fullsize": key.is_tiled}
        if key.compression in {6, 7, 34892, 33007}:  # JPEG, as TiffPage.segments does
            decodeargs["jpegtables"] = target.jpegtables
            decodeargs["jpegheader"] = key.jpegheader
        fh = tif.filehandle
        offsets = [target.dataoffsets[i] for i in indices]
        counts = [target.databytecounts[i] for i in indices]
        for data, index in fh.read_segments(offsets, counts, indices=indices, lock=fh.lock):
            seg, (s, _, y, x, _), _ = key.decode(data, index, **decodeargs)
            if seg is None:  # an empty segment: zeros
                continue
            seg, y = seg[0], y - k0 * cr
            h, w = min(seg.shape[0], rows - y), min(seg.shape[1], self.width - x)
            buf[s, y : y + h, x : x + w] = seg[:h, :w]
        band = buf.transpose(1, 2, 0, 3).reshape(rows, self.width, self._samples)
        self._band = (page, k0, k1, band)
        return band, k0 * cr


@dataclass(frozen=True)
class NativeHeader:
    """What a file holds, from its header alone (:func:`inspect_native`).

    Attributes:
        format: ``"png"``, ``"jpeg"``, ``"tiff"`` or ``"npy"``.
        shape: The shape :func:`read_native` gives its pixels.
        dtype: Their dtype.
        streamable: Whether :func:`open_native` can read it piece by piece.
        why: When it cannot, why (a phrase).
        band_rows: Rows decoded at once when streamed (a strip or a row of tiles; 1 for a
            memory-mapped file).
    """

    format: str
    shape: tuple[int, ...]
    dtype: np.dtype
    streamable: bool
    why: str = ""
    band_rows: int = 1

    @property
    def nbytes(self) -> int:
        """Bytes of the pixels once in memory."""
        return math.prod(self.shape) * self.dtype.itemsize


def _memmappable(series: Any) -> bool:
    return series.dataoffset is not None and bool(series.keyframe.is_memmappable)


def _inspect_tiff(path: Path) -> NativeHeader:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        key = series.keyframe
        _tiff_meta(key)  # unsupported photometrics fail here, before any pixel is read
        shape, axes, dtype = tuple(series.shape), series.axes, np.dtype(series.dtype)
        if _planar(axes):
            shape = (
                *shape[: axes.index("S")],
                *shape[axes.index("S") + 1 :],
                shape[axes.index("S")],
            )
        if _memmappable(series):
            return NativeHeader("tiff", shape, dtype.newbyteorder("="), True)
    try:
        pages = TiffPages(path)
    except ImageReadError as exc:
        return NativeHeader("tiff", shape, dtype.newbyteorder("="), False, str(exc))
    rows = pages.band_rows
    pages.close()
    return NativeHeader("tiff", shape, dtype.newbyteorder("="), True, band_rows=rows)


def _existing(path: str | Path) -> tuple[Path, str]:
    """The path of an existing image file and its native format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    return path, _native_format(path)


def inspect_native(path: str | Path) -> NativeHeader:
    """Reads what a file holds from its header, no pixels.

    Raises:
        FileNotFoundError: If the file does not exist.
        ImageReadError: For an unsupported type or mode, or an unreadable header.
    """
    path, fmt = _existing(path)
    try:
        if fmt == "tiff":
            return _inspect_tiff(path)
        if fmt == "npy":
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            ok = arr.dtype.kind in "biuf" and arr.ndim >= 2
            return NativeHeader(
                fmt, arr.shape, arr.dtype.newbyteorder("="), ok, "" if ok else "not an image array"
            )
        with Image.open(path) as im:  # the header only: decoding waits for load()
            bands, wide = len(im.getbands()), im.mode.startswith("I;16")
            shape = (im.height, im.width, *((bands,) if bands > 1 else ()))
            dtype = np.dtype(np.uint16 if wide else np.uint8)
        return NativeHeader(fmt, shape, dtype, False, f"{fmt.upper()} is decoded whole")
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(f"cannot read {path.name}: {exc}") from None


def open_native(path: str | Path) -> NativeImage:
    """Opens a TIFF or ``.npy`` file without reading its pixels: they are a read-only memmap
    (uncompressed contiguous data) or :class:`TiffPages`, in :func:`read_native`'s layout.

    Raises:
        FileNotFoundError: If the file does not exist.
        ImageReadError: If the file cannot be read piece by piece (:func:`inspect_native`).
    """
    path = Path(path)
    header = inspect_native(path)
    if not header.streamable:
        raise ImageReadError(f"{path.name} cannot be read piece by piece: {header.why}")
    if header.format == "npy":
        return NativeImage(np.load(path, mmap_mode="r", allow_pickle=False), "npy")
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        meta = {k: v for k, v in _tiff_meta(series.keyframe).items() if v is not None}
        axes, mappable = series.axes, _memmappable(series)
    if not mappable:
        return NativeImage(TiffPages(path), "tiff", meta)
    pixels = tifffile.memmap(path, mode="r")
    if _planar(axes):
        pixels = np.moveaxis(pixels, axes.index("S"), -1)
        meta["planar"] = True
    return NativeImage(pixels, "tiff", meta)


def create_native(
    path: str | Path, shape: tuple[int, ...], dtype: np.dtype, fmt: str, meta: dict[str, Any]
) -> np.memmap:
    """Creates a TIFF or ``.npy`` file of ``shape`` and ``dtype`` (:func:`read_native`'s
    layout) and returns its pixels memory-mapped read-write, to be filled piece by piece.
    The file is sparse until written; a TIFF is uncompressed whatever ``meta`` says.

    Raises:
        ValueError: For another format.
    """
    if fmt == "npy":
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
    if fmt != "tiff":
        raise ValueError(f"{fmt} files cannot be written piece by piece (use TIFF or .npy)")
    import tifffile

    planar = bool(meta.get("planar"))
    disk = (*shape[:-3], shape[-1], *shape[-3:-1]) if planar else tuple(shape)
    if meta.get("compression"):
        log.info("%s: written uncompressed (piece by piece)", Path(path).name)
    mm = tifffile.memmap(
        path,
        shape=disk,
        dtype=dtype,
        photometric=meta.get("photometric") or ("rgb" if shape[-1] in (3, 4) else None),
        planarconfig="separate" if planar else None,
        description=meta.get("description"),
        metadata=None,
        resolution=meta.get("resolution"),
        resolutionunit=meta.get("resolutionunit"),
        iccprofile=meta.get("icc_profile"),
    )
    return np.moveaxis(mm, -3, -1) if planar else mm


def _png_colour16(path: Path) -> bool:
    """Whether a PNG's IHDR chunk declares 16 bits per sample and more than gray."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    return len(head) == 26 and head[24] == 16 and head[25] != 0


def _read_pil(path: Path, fmt: str) -> NativeImage:
    if fmt == "png" and _png_colour16(path):
        raise ImageReadError("16-bit colour PNG: Pillow decodes it to 8 bits; save it as TIFF")
    with Image.open(path) as im:
        im.load()
        notes = []
        if im.mode in ("P", "PA", "1"):
            rgb = "RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB"
            im = im.convert("L" if im.mode == "1" else rgb)
            notes.append(f"stored as {im.mode} (the file's palette or bit mode is not kept)")
        if im.mode not in ("L", "LA", "RGB", "RGBA", "I;16", "I;16B", "I;16L"):
            raise ImageReadError(f"unsupported image mode {im.mode!r}")
        keep = ("icc_profile", "dpi", "exif")
        meta = {k: im.info[k] for k in keep if k in im.info}
        if getattr(im, "text", None):
            meta["text"] = dict(im.text)
        pixels = np.asarray(im)
        if pixels.dtype.byteorder == ">":
            pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    return NativeImage(pixels, fmt, meta, notes)


def read_native(path: str | Path) -> NativeImage:
    """Reads an image file in its own dtype, shape and values, with its metadata.

    Raises:
        FileNotFoundError: If the file does not exist.
        ImageReadError: For an unsupported type or mode, or an unreadable file.
    """
    path, fmt = _existing(path)
    try:
        if fmt == "npy":
            return NativeImage(np.load(path, allow_pickle=False), fmt)
        return _read_tiff(path) if fmt == "tiff" else _read_pil(path, fmt)
    except ImageReadError:
        raise
    except Exception as exc:  # codecs raise many types (OSError, ValueError, TiffFileError...)
        raise ImageReadError(f"cannot read {path.name}: {exc}") from None


def write_native(path: str | Path, image: NativeImage) -> None:
    """Writes ``image.pixels`` in ``image.format`` with the metadata it carries.

    PNG holds 8-bit or 16-bit grayscale (and 8-bit colour), JPEG 8-bit (quality 95),
    TIFF and ``.npy`` any dtype.

    Raises:
        ValueError: If the format cannot hold the pixels' dtype or shape.
    """
    path, px, meta = Path(path), image.pixels, image.meta
    if image.format == "npy":
        np.save(path, px, allow_pickle=False)
    elif image.format == "tiff":
        import tifffile

        if meta.get("planar"):
            px = np.moveaxis(px, -1, -3)
        tifffile.imwrite(
            path,
            px,
            photometric=meta.get("photometric") or ("rgb" if px.shape[-1] in (3, 4) else None),
            planarconfig="separate" if meta.get("planar") else None,
            compression=meta.get("compression"),
            description=meta.get("description"),
            metadata=None,
            resolution=meta.get("resolution"),
            resolutionunit=meta.get("resolutionunit"),
            iccprofile=meta.get("icc_profile"),
        )
    else:
        fits = px.dtype == np.uint8 or (px.dtype == np.uint16 and px.ndim == 2)
        if not fits or (image.format == "jpeg" and px.dtype != np.uint8):
            raise ValueError(f"{image.format} cannot hold {px.dtype} pixels of shape {px.shape}")
        kw = {k: meta[k] for k in ("icc_profile", "dpi", "exif") if k in meta}
        if image.format == "jpeg":
            kw["quality"] = 95
        elif "text" in meta:
            from PIL.PngImagePlugin import PngInfo

            kw["pnginfo"] = info = PngInfo()
            for k, v in meta["text"].items():
                info.add_text(k, v)
        Image.fromarray(px[..., 0] if px.ndim == 3 and px.shape[-1] == 1 else px).save(
            path, format=image.format.upper(), **kw
        )
