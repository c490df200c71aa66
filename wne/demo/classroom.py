"""The classroom kit's page logic: scenario links, the slide figure, presentation mode.

:class:`ClassroomKit` holds what the app's classroom events need and returns
plain values and update dicts (``value`` / ``visible`` / ``selected``), which
``app.py`` applies; the parsing and building of links is :mod:`wne.demo.links`,
the drawing :mod:`wne.demo.figure`. :data:`CSS` and the ``*_JS`` snippets are
the page's presentation mode and the browser side of "copy link" (the page's
address and open tab). No Gradio here.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wne.demo.content import Example
from wne.demo.figure import render_tiles, settings_line, tiles_from_page
from wne.demo.links import (
    UPLOAD,
    LinkRequest,
    build_link,
    example_id,
    identify_image,
    link_params,
    parse_link,
)
from wne.demo.settings import Param

__all__ = ["CSS", "LINK_HELP", "LINK_JS", "PRESENT_JS", "ClassroomKit", "Update"]

log = logging.getLogger(__name__)
Update = dict[str, Any]

LINK_HELP = (
    "A link opens this page with the current settings (image, sliders, models, open tab, "
    "presentation mode) and runs the comparison once: prepare a lesson, paste it in your "
    "slides. **Uploaded images are not part of a link**: it names a bundled example, or says "
    "the image must be uploaded again."
)
FIGURE_HELP = (
    "One PNG (lossless, 1920 px wide) and a PDF of the comparison shown: noisy input, target "
    "and every model's output, labelled with PSNR/SSIM, under a line with the settings."
)
CSS = """
#present-toggle {position: fixed; top: 10px; right: 14px; z-index: 1000; width: auto;
  background: var(--background-fill-primary); border: 1px solid var(--border-color-primary);
  border-radius: 8px; padding: 2px 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15)}
.wne-presenting #wne-controls, .wne-presenting .wne-secondary {display: none !important}
.wne-presenting .wne-out, .wne-presenting .wne-out img {height: 24vh !important}
.wne-presenting .wne-slider {max-height: 24vh !important}
.wne-presenting .wne-panel h3, .wne-presenting #scores {font-size: 1.5rem}
.wne-presenting label span, .wne-presenting .wne-out label {font-size: 1.25rem !important}
.wne-presenting #link-note {display: none !important}
"""
"""Presentation mode (class ``wne-presenting`` on the page's root element) and the toggle."""
PRESENT_JS = """(on) => {
  const root = document.querySelector('gradio-app') || document.body;
  for (const el of [root, document.body, document.querySelector('.gradio-container')]) {
    if (el) el.classList.toggle('wne-presenting', !!on);
  }
  return [];
}"""
"""Switches presentation mode on or off in the browser (the checkbox's value as argument)."""
LINK_JS = """(...args) => {
  const tab = document.querySelector('#wne-tabs [role="tab"][aria-selected="true"]');
  args[args.length - 2] = tab ? tab.innerText.trim() : '';
  args[args.length - 1] = window.location.origin + window.location.pathname;
  return args;
}"""
"""Fills "copy link"'s last two inputs with the open tab's label and the page's address."""


class ClassroomKit:
    """The classroom events' logic for one page.

    Args:
        params: The request's parameters as the page shows them
            (:meth:`wne.demo.handlers.DemoHandlers.params`).
        examples: The bundled examples (the first is the page's initial image).
        tabs: ``(label, id)`` of the page's tabs, the first opened by default.
        figures_dir: Where figure files are written (served to the browser).
        computations: The computation a link runs for each tab id (default: ``denoise``).
    """

    def __init__(
        self,
        params: Mapping[str, Param],
        examples: Sequence[Example],
        tabs: Sequence[tuple[str, str]],
        figures_dir: str | Path,
        computations: Mapping[str, str] | None = None,
    ) -> None:
        self.examples = {example_id(e.path): e.path for e in examples}
        images = [(e.label, example_id(e.path)) for e in examples]
        self.spec = link_params(params, images, tabs)
        self.tabs = {label: tid for label, tid in tabs}
        self.figures_dir = Path(figures_dir)
        self.computations = dict(computations or {})

    @property
    def controls(self) -> list[str]:
        """The request controls a link sets, in order (between ``image`` and ``tab``)."""
        return [n for n in self.spec if n not in ("image", "tab", "present")]

    # -- opening a link ------------------------------------------------------------------

    def open_link(
        self, query: Mapping[str, Any] | Iterable[tuple[str, Any]]
    ) -> tuple[list[Update], str]:
        """The page updates of an opened address, and the computation to run.

        Args:
            query: The address's query parameters.

        Returns:
            ``(updates, run)``: updates of the image, each of :attr:`controls`, the
            tabs (``selected``), presentation mode and the note (in that order; ``{}``
            changes nothing); ``run`` names the computation to run once (``""``: none,
            the address carried no usable setting).
        """
        req: LinkRequest = parse_link(query, self.spec)
        v = req.values
        image = v.get("image")
        out: list[Update] = [
            {"value": str(self.examples[image])} if image and image != UPLOAD else {}
        ]
        for name in self.controls:
            value = v.get(name)
            out.append({} if value is None else {"value": _control_value(value)})
        out.append({"selected": v["tab"]} if "tab" in v else {})
        out.append({"value": v["present"]} if "present" in v else {})
        note = req.markdown()
        out.append({"value": note, "visible": bool(note)})
        run = self.computations.get(v.get("tab", ""), "denoise") if req.is_scenario else ""
        if req.notes:
            log.info("scenario link with notes: %s", "; ".join(req.notes))
        return out, run

    # -- copying a link ------------------------------------------------------------------

    def copy_link(self, image: Any, *values: Any) -> str:
        """The link to the page's current settings.

        Args:
            image: The page's image (a file path; compared with the examples).
            *values: The values of :attr:`controls`, then presentation mode, the open
                tab's label and the page's address (the last two from :data:`LINK_JS`).

        Returns:
            The link (relative, ``"?..."``, when the address is unknown).

        Raises:
            DemoInputError: If a control holds an invalid value (the message names it).
        """
        names = self.controls
        if len(values) != len(names) + 3:
            raise ValueError(f"expected {len(names) + 3} values after the image, got {len(values)}")
        current = dict(zip(names, values[: len(names)], strict=True))
        present, tab_label, base = values[len(names) :]
        current["image"] = identify_image(image, self.examples)
        current["present"] = bool(present)
        tab = self.tabs.get(str(tab_label or "").strip())
        if tab is not None:
            current["tab"] = tab
        return build_link(str(base or ""), current, self.spec)

    # -- the slide figure ----------------------------------------------------------------

    def figure(
        self,
        noisy: np.ndarray | None,
        target: np.ndarray | None,
        gallery: Sequence[tuple[Any, str | None]] | None,
        summary: Mapping[str, Any] | None,
    ) -> list[str]:
        """Renders the comparison the page shows and writes it as PNG and PDF.

        Args:
            noisy: The page's noisy input.
            target: The page's target.
            gallery: The page's outputs with their captions.
            summary: The page's JSON summary of the comparison.

        Returns:
            The PNG's and the PDF's paths.

        Raises:
            DemoInputError: When no comparison has been run yet.
        """
        tiles, settings = tiles_from_page(noisy, target, gallery or [], summary or {})
        image = (summary or {}).get("image") or {}
        size = (image["width"], image["height"]) if "width" in image else None
        fig = render_tiles(tiles, "Plain vs WNE denoisers", settings_line(settings, size))
        digest = hashlib.sha256(fig.image.tobytes()).hexdigest()[:16]
        folder = self.figures_dir / digest
        png, pdf = folder / "wne-figure.png", folder / "wne-figure.pdf"
        if not (png.is_file() and pdf.is_file()):
            fig.save(pdf)
            fig.save(png)
        return [str(png), str(pdf)]


def _control_value(value: Any) -> Any:
    """A validated value as a page control takes it (lists for multiple choices)."""
    return list(value) if isinstance(value, tuple) else value
