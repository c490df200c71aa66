"""Slide-ready figure of a comparison: every image in one labelled grid, PNG (or PDF).

:func:`render_figure` draws the noisy input, the target and every model's
output of a :class:`~wne.demo.compare.Comparison` (or of the
:class:`~wne.demo.views.DenoiseView` built from one) in a grid about 1920 px
wide, each labelled with its name and PSNR/SSIM, under a title line with the
settings. It returns a :class:`Figure`: the image plus the layout (every
cell's box and label strings), so callers and tests can check what was drawn
without OCR. The app renders the comparison shown on the page through
:func:`tiles_from_page`; scripts use the command line::

    python -m wne.demo.figure --image assets/examples/parrots.png \\
        --scenario "dim the lights" --out fig.png

Pillow's ImageDraw with DejaVu Sans (Debian's fonts-dejavu-core or
matplotlib's bundled copy, found without importing matplotlib), falling back
to Pillow's default font. No Gradio.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from wne.demo.compare import Comparison
from wne.demo.imaging import to_display
from wne.demo.settings import ORDERS, DemoInputError, Settings, parse_settings
from wne.demo.views import DenoiseView

__all__ = [
    "FIGURE_WIDTH",
    "Cell",
    "Figure",
    "Tile",
    "comparison_tiles",
    "main",
    "render_figure",
    "render_tiles",
    "settings_line",
    "tiles_from_page",
]

log = logging.getLogger(__name__)

FIGURE_WIDTH = 1920
"""Default width in pixels (a full-HD slide)."""
PDF_DPI = 150
"""Resolution the PDF page is sized for."""
_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu",)
_BG, _INK, _MUTED = (255, 255, 255), (20, 20, 20), (90, 90, 90)


@dataclass
class Tile:
    """One image of the figure.

    Attributes:
        image: ``[H, W]`` or ``[H, W, 3]`` uint8 (as displayed on the page).
        name: Its label, e.g. ``"CNN · WNE"``.
        psnr: PSNR vs the target in dB (None: not scored, e.g. the target).
        ssim: SSIM vs the target.
        note: Second label line when there are no scores.
    """

    image: np.ndarray
    name: str
    psnr: float | None = None
    ssim: float | None = None
    note: str = ""

    @property
    def caption(self) -> str:
        """The score line: ``"PSNR 27.31 dB · SSIM 0.8123"`` (or the note)."""
        if self.psnr is None:
            return self.note
        db = "∞" if math.isinf(self.psnr) else f"{self.psnr:.2f}"
        ssim = "–" if self.ssim is None else f"{self.ssim:.4f}"
        return f"PSNR {db} dB · SSIM {ssim}"


@dataclass
class Cell:
    """Where a tile was drawn.

    Attributes:
        name: The tile's name line.
        caption: Its score line.
        box: ``(left, top, right, bottom)`` of the image in the figure.
    """

    name: str
    caption: str
    box: tuple[int, int, int, int]


@dataclass
class Figure:
    """A rendered figure and its layout.

    Attributes:
        image: The RGB figure.
        title: The title line.
        subtitle: The settings line.
        cells: One per tile, in reading order.
        font: The font file used (``"default"``: Pillow's built-in font).
    """

    image: Image.Image
    title: str
    subtitle: str
    cells: list[Cell] = field(default_factory=list)
    font: str = "default"

    @property
    def labels(self) -> list[str]:
        """Every string drawn, in drawing order (title, settings, then name/score per cell)."""
        out = [self.title, self.subtitle]
        for c in self.cells:
            out += [c.name, *([c.caption] if c.caption else [])]
        return out

    def save(self, path: str | Path) -> Path:
        """Writes the figure as PNG (lossless) or PDF, chosen by the file's extension.

        Raises:
            ValueError: For another extension.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".png", ".pdf"):
            raise ValueError(f"figure file must end in .png or .pdf, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".png":
            self.image.save(path, format="PNG", compress_level=6)
        else:
            path.write_bytes(_pdf(self.image, self.title))
        return path


def _pdf(image: Image.Image, title: str) -> bytes:
    """A one-page PDF holding ``image`` losslessly (Flate; Pillow's PDF writer uses JPEG)."""
    import zlib

    w, h = image.size
    pw, ph = w * 72 / PDF_DPI, h * 72 / PDF_DPI
    pixels = zlib.compress(image.convert("RGB").tobytes(), 6)
    draw = f"q {pw:.2f} 0 0 {ph:.2f} 0 0 cm /Im0 Do Q".encode()
    safe_title = title.encode("ascii", "replace").decode().replace("\\", "")
    safe_title = safe_title.replace("(", "[").replace(")", "]")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {pw:.2f} {ph:.2f}] "
        "/Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>".encode(),
        f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB "
        f"/BitsPerComponent 8 /Filter /FlateDecode /Length {len(pixels)} >>\nstream\n".encode()
        + pixels
        + b"\nendstream",
        f"<< /Length {len(draw)} >>\nstream\n".encode() + draw + b"\nendstream",
        f"<< /Title ({safe_title}) /Producer (wne.demo.figure) >>".encode(),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


# --------------------------------------------------------------------------- tiles


def _settings_of(source: Comparison | DenoiseView) -> Comparison:
    res = source.comparison if isinstance(source, DenoiseView) else source
    if not isinstance(res, Comparison):
        raise TypeError(
            f"render_figure takes a Comparison or a DenoiseView, got {type(source).__name__}"
        )
    return res


def comparison_tiles(res: Comparison) -> list[Tile]:
    """The noisy input, the target and every available model output of a comparison."""
    s = res.settings
    tiles = [
        Tile(to_display(res.noisy)[0], "noisy input", res.noisy_psnr, res.noisy_ssim),
        Tile(to_display(res.target)[0], "target a·x + b", note=f"a = {s.a:g}, b = {s.b:g}"),
    ]
    tiles += [
        Tile(to_display(r.output)[0], r.label, r.psnr, r.ssim)
        for r in res.runs
        if r.output is not None
    ]
    return tiles


def tiles_from_page(
    noisy: np.ndarray,
    target: np.ndarray,
    gallery: Sequence[tuple[Any, str | None]],
    summary: Mapping[str, Any],
) -> tuple[list[Tile], Settings]:
    """The tiles of the comparison a page shows (its images and its JSON summary).

    Args:
        noisy: The noisy input as displayed.
        target: The target as displayed.
        gallery: ``(image or path, caption)`` of every output; captions start with
            the model's label (``"CNN · WNE · PSNR …"``).
        summary: The comparison's summary (:meth:`Comparison.summary`), whose
            numbers are used.

    Returns:
        The tiles and the settings.

    Raises:
        DemoInputError: If there is no comparison yet or the parts do not match.
    """
    if noisy is None or target is None or not summary or "settings" not in summary:
        raise DemoInputError("no comparison to draw yet: run “Denoise & compare” first")
    settings = parse_settings(**summary["settings"])
    s = settings
    noisy_scores = summary.get("noisy") or {}
    tiles = [
        Tile(
            _as_uint8(noisy),
            "noisy input",
            _float(noisy_scores.get("psnr")),
            _float(noisy_scores.get("ssim")),
        ),
        Tile(_as_uint8(target), "target a·x + b", note=f"a = {s.a:g}, b = {s.b:g}"),
    ]
    captions = [(item, str(caption or "")) for item, caption in gallery or []]
    for record in (summary.get("models") or {}).values():
        if not record.get("available"):
            continue
        label = str(record["label"])
        match = next((item for item, cap in captions if cap.startswith(label + " · ")), None)
        if match is None:
            raise DemoInputError(f"the page shows no output of {label}: run the comparison again")
        image = match[0] if isinstance(match, list | tuple) else match
        tiles.append(
            Tile(_as_uint8(image), label, _float(record.get("psnr")), _float(record.get("ssim")))
        )
    return tiles, settings


def _float(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)  # "inf" strings from the JSON summary included


def _as_uint8(image: Any) -> np.ndarray:
    if isinstance(image, str | Path):
        with Image.open(image) as im:
            image = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = to_display(arr.astype(np.float32) / (255.0 if arr.max(initial=0) > 1 else 1.0))[0]
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    return arr


def settings_line(settings: Settings, size: tuple[int, int] | None = None) -> str:
    """The figure's settings line, e.g. ``"a = 0.3, b = 0 · σ = 25 · …"``."""
    s = settings
    parts = [
        f"a = {s.a:g}, b = {s.b:g}",
        f"noise σ = {s.sigma:g}"
        + (f" (becomes a·σ = {s.a * s.sigma:.3g})" if s.order == "noise-then-shift" else ""),
        ORDERS[s.order],
        f"seed {s.seed}",
        f"models trained at σ = {s.sigma_train}",
    ]
    if size:
        parts.append(f"{size[0]}×{size[1]} px")
    if s.clip:
        parts.append("clipped to [0, 1]")
    for f_name in ("noise_type", "noise", "levels"):  # settings added later, if present
        value = getattr(s, f_name, None)
        if value not in (None, "", "gaussian"):
            parts.append(f"{f_name.replace('_', ' ')}: {value}")
    return " · ".join(parts)


# --------------------------------------------------------------------------- drawing


def _font_file(bold: bool) -> str | None:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    dirs = list(_FONT_DIRS)
    spec = importlib.util.find_spec("matplotlib")
    if spec and spec.submodule_search_locations:
        dirs += [str(Path(p, "mpl-data", "fonts", "ttf")) for p in spec.submodule_search_locations]
    for d in dirs:
        if Path(d, name).is_file():
            return str(Path(d, name))
    return None


def _font(size: int, bold: bool = False) -> tuple[Any, str]:
    path = _font_file(bold)
    if path:
        try:
            return ImageFont.truetype(path, size), path
        except OSError:
            log.warning("could not read font %s; using Pillow's default", path)
    return ImageFont.load_default(size), "default"


def _fit(draw: ImageDraw.ImageDraw, text: str, size: int, width: int, bold: bool) -> Any:
    """The largest font (≤ ``size``) in which ``text`` fits ``width`` pixels."""
    font, _ = _font(size, bold)
    while size > 10 and draw.textlength(text, font=font) > width:
        size -= 1
        font, _ = _font(size, bold)
    return font


def _grid(n: int) -> tuple[int, int]:
    """Rows and columns: one row up to 3 tiles, else two rows filled column by column (the
    usual comparison reads noisy/target, then each backbone's plain over its WNE output)."""
    rows = 1 if n <= 3 else 2 if n <= 10 else math.ceil(n / 5)
    return rows, math.ceil(n / rows)


def render_tiles(
    tiles: Sequence[Tile], title: str, subtitle: str = "", *, width: int = FIGURE_WIDTH
) -> Figure:
    """Draws tiles in a grid under a title and a settings line.

    Args:
        tiles: The images and their labels (at least one).
        title: The title line.
        subtitle: The settings line.
        width: Figure width in pixels (≥ 480).

    Returns:
        The figure and its layout.

    Raises:
        ValueError: Without tiles or with a width below 480 px.
    """
    if not tiles:
        raise ValueError("a figure needs at least one image")
    if width < 480:
        raise ValueError(f"figure width must be at least 480 px, got {width}")
    margin, gap = width // 64, width // 96
    h0, w0 = tiles[0].image.shape[:2]
    aspect = h0 / w0
    rows, cols = _grid(len(tiles))
    tile_w = (width - 2 * margin - (cols - 1) * gap) // cols
    if tile_w >= 2 * w0:  # whole-pixel enlargement: crisp noise, small PNG
        tile_w = tile_w // w0 * w0
    tile_h = max(1, round(tile_w * aspect))
    left = (width - cols * tile_w - (cols - 1) * gap) // 2  # the grid, centred
    name_size, cap_size = max(16, tile_w // 16), max(14, tile_w // 20)
    band = name_size + cap_size + 3 * (gap // 2 + 2)
    title_size, sub_size = max(22, width // 42), max(16, width // 80)
    top = margin + title_size + sub_size + 2 * gap
    height = top + rows * (tile_h + band) + (rows - 1) * gap + margin
    fig = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(fig)
    _, font_path = _font(title_size, True)
    inner = width - 2 * left
    draw.text((left, margin), title, fill=_INK, font=_fit(draw, title, title_size, inner, True))
    draw.text(
        (left, margin + title_size + gap // 2),
        subtitle,
        fill=_MUTED,
        font=_fit(draw, subtitle, sub_size, inner, False),
    )
    cells = []
    for i, tile in enumerate(tiles):
        col, row = divmod(i, rows)
        x = left + col * (tile_w + gap)
        y = top + row * (tile_h + band + gap)
        img = Image.fromarray(tile.image).convert("RGB")
        fig.paste(img.resize((tile_w, tile_h), Image.Resampling.NEAREST), (x, y))
        ty = y + tile_h + gap // 2
        draw.text(
            (x, ty), tile.name, fill=_INK, font=_fit(draw, tile.name, name_size, tile_w, True)
        )
        if tile.caption:
            font = _fit(draw, tile.caption, cap_size, tile_w, False)
            draw.text((x, ty + name_size + gap // 3), tile.caption, fill=_MUTED, font=font)
        cells.append(Cell(tile.name, tile.caption, (x, y, x + tile_w, y + tile_h)))
    return Figure(fig, title, subtitle, cells, font_path)


def render_figure(
    source: Comparison | DenoiseView,
    *,
    title: str | None = None,
    width: int = FIGURE_WIDTH,
) -> Figure:
    """The slide figure of a comparison: noisy input, target and every model's output.

    Args:
        source: The comparison (or the page's view of it).
        title: The title line (default: "Plain vs WNE denoisers").
        width: Figure width in pixels.

    Returns:
        The figure and its layout (:attr:`Figure.cells`, :attr:`Figure.labels`).
    """
    res = _settings_of(source)
    h, w = res.clean.shape[:2]
    return render_tiles(
        comparison_tiles(res),
        title or "Plain vs WNE denoisers",
        settings_line(res.settings, (w, h)),
        width=width,
    )


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    from wne.demo.content import SCENARIOS

    p = argparse.ArgumentParser(
        prog="python -m wne.demo.figure",
        description="Render the demo's comparison of an image as one slide-ready figure.",
    )
    p.add_argument("--image", required=True, help="the clean image (any PIL-readable file)")
    p.add_argument("--scenario", choices=sorted(SCENARIOS), help="a classroom scenario")
    p.add_argument("--out", required=True, help="output file (.png or .pdf)")
    p.add_argument("--pdf", action="store_true", help="also write a PDF next to a PNG")
    p.add_argument("--checkpoints", help="checkpoint folder (default: the bundled one)")
    p.add_argument("--title", help="title line (default: the scenario's name)")
    p.add_argument("--width", type=int, default=FIGURE_WIDTH, help="width in px")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting (a, b, sigma, seed, sigma_train, backbones=dncnn,swinir, order, "
        "max_side, clip); overrides the scenario; repeatable",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: compare with the checkpoints, render, write the figure.

    Returns:
        The exit status (0, or 2 on a bad argument).
    """
    from wne.demo.content import scenario
    from wne.demo.handlers import DemoHandlers
    from wne.demo.zoo import Zoo

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    zoo = Zoo.discover(args.checkpoints, hub_repo="")
    handlers = DemoHandlers(zoo)
    raw: dict[str, Any] = {}
    try:
        for item in args.set:
            name, sep, value = item.partition("=")
            if not sep:
                raise DemoInputError(f"--set takes NAME=VALUE, got {item!r}")
            raw[name.strip()] = value.split(",") if name.strip() == "backbones" else value
        st = handlers.settings(**raw).sigma_train
        values = {**(scenario(args.scenario, st) if args.scenario else {}), **raw}
        view = handlers.denoise(args.image, **values)
        title = args.title or (
            f"{args.scenario.capitalize()}: plain vs WNE denoisers" if args.scenario else None
        )
        fig = render_figure(view, title=title, width=args.width)
        out = fig.save(args.out)
    except (DemoInputError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    print(out)
    if args.pdf and out.suffix.lower() == ".png":
        print(fig.save(out.with_suffix(".pdf")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
