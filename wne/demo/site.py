"""The demo's site without Gradio: each page's :class:`~wne.demo.schema.Form` on a server
(defaults from its models and calibration, ranges from its device), the typed computation
behind each page and endpoint, the scenario links' check and the server's CPU calibration.
``app.py`` lays these out on the page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wne import catalog
from wne.demo import links
from wne.demo.calibration import CPU_SIDE_LIMIT, DEFAULT_BACKBONES
from wne.demo.errors import DemoInputError
from wne.demo.imaging import save_png
from wne.demo.pages import compare, equivariance, inside, restore, rivals, sweep, why
from wne.demo.schema import Form, Spec, check
from wne.demo.serving import Server
from wne.demo.zoo import CHECKPOINTS

Progress = Callable[..., Any]
"""A progress callback, ``progress(fraction, desc=...)`` (e.g. ``gr.Progress``)."""
RESTORE_SIDE = {"cpu": (128, 256, 150), "cuda": (256, 512, 1000)}
"""The Restore page's working size, its largest value and the step budget, by device."""
SCENE = tuple(compare.Scene.__dataclass_fields__)
"""``/denoise``'s parameters after the image, in API order (the scene's settings)."""
LINKED = (*SCENE, "backbone")
"""The settings a scenario link carries (the scene, and the Equivariance page's backbone)."""
LINKS = ("image", *LINKED, "tab", "present")
"""A scenario link's parameters (links printed on slides keep opening the same scenario)."""
TABS = {
    "Compare": "compare",
    "Equivariance": "equivariance",
    "Noise sweep": "sweep",
    "Inside WNE": "inside",
    "Restore from a few pixels": "restore",
    "Why it works": "why",
    "About": "about",
}
"""The tabs' labels and ids."""
SECTIONS = {"rivals": "why"}
"""Computations laid out in another page's tab (the objections, under Why it works), by page."""
_quiet: Progress = lambda *args, **kwargs: None  # noqa: E731
"""No progress shown (an API call)."""
NO_IMAGE = "no image given: upload an image or pick an example"


@dataclass
class Site:
    """What the handlers share: the server, the folders of the files they write, each page's
    :class:`Form` and the bundled examples by id."""

    server: Server
    files: Path
    figures: Path
    native: Path
    forms: dict[str, Form]
    examples: dict[str, Path]
    file: Callable[[str], Any] = str
    """An API output file from its path (e.g. ``gr.FileData``)."""
    explained: Path | None = None
    """The folder of ``wne explain``'s results (the Δ table, the Q-vs-Δ curves)."""

    @functools.cached_property
    def coverage(self) -> dict[str, Any] | None:
        """The precomputed Δ coverage table (:func:`wne.demo.pages.why.load_coverage`)."""
        return why.load_coverage(self.explained / "coverage") if self.explained else None

    def png(self, pixels: np.ndarray | None) -> Any:
        """An API output image (written once, named by its pixels)."""
        return None if pixels is None else self.file(save_png(pixels, self.files))

    def denoise_api(self, image: str, s: compare.Scene) -> Iterator[tuple]:
        """``/denoise``: noisy input, target, the outputs with captions, the summary (streamed)."""
        for img, tgt, out, info, saved in self.denoise_results(image, s, _quiet):
            downloads = {"downloads": [dict(self.file(f)) for f in saved]}
            gallery = [{"image": self.png(o), "caption": c} for o, c in out]
            yield self.png(img), self.png(tgt), gallery, {**info, **(downloads if saved else {})}

    def equivariance_api(self, image: str, p: Any) -> tuple[list, dict]:
        """``/equivariance``: the defect maps with captions, and the defects."""
        out, info, _ = self.equivariance_results(image, p, _quiet)
        return [{"image": self.png(m), "caption": cap} for m, cap in out], info

    def inside_api(self, image: str, st: Any) -> tuple[list, dict]:
        """``/inside``: every picture with its caption, and the numbers."""
        out, info = self.inside_results(image, st, _quiet)
        return [{"image": self.png(m), "caption": cap} for m, cap in out], info

    def filters_api(self, image: str, f: Any) -> tuple[list, dict]:
        """``/filters``: the noisy image marked, then per model its filter window on ``y``
        and on ``a·y + b`` (captions name them), and the summary (``filter_sum``, ``rho``)."""
        marked, pictures, info, *_ = self.filters_results(image, f, _quiet)
        shown = [(marked, "noisy image: the pixel (red) and the crop (yellow)"), *pictures]
        return [{"image": self.png(m), "caption": cap} for m, cap in shown], info

    def rivals_api(self, image: str, r: Any) -> tuple[list, dict]:
        """``/rivals``: the shifted noisy image, then every model's output at ``a·y + b``
        (captions name them), and the summary (per model PSNRs and ε_NE, per objection its
        finding)."""
        *_, (shifted, gallery, info, *_) = self.rivals_results(image, r, _quiet)
        shown = [(shifted, "noisy a·y + b"), *gallery]
        return [{"image": self.png(m), "caption": cap} for m, cap in shown], info

    def sweep_api(self, image: str, levels: Any) -> dict:
        """``/sweep``: ``{title, rows, notes}``."""
        return self.sweep_results(image, levels, _quiet)[1]

    def restore_api(self, image: str, w: restore.Walks) -> Iterator[tuple]:
        """``/restore``: observed, plain, WNE and the summary per snapshot (streamed)."""
        for observed, images, info in self.walks_results(image, w, _quiet):
            yield self.png(observed), *(self.png(i) for i in images), info

    def denoise_results(self, image: Any, s: compare.Scene, progress: Progress) -> Iterator[tuple]:
        """The comparison's snapshots, with the native-format downloads once complete."""
        loaded = self.server.open(image, s.max_side)
        native = loaded.native  # a 16-bit or float upload: its outputs in its own format too
        for res in self.server.stream(compare.run, loaded.pixels, s, waiting(progress)):
            done = [r for r in res.runs if native and not res.pending and r.output is not None]
            files = [native.save(r.output, self.native, f"denoised-{r.key}") for r in done]
            yield *compare.outputs(res, loaded.notes, native), files

    def last(self, page: Any, image: Any, scene: Any, progress: Any, side: int) -> Any:
        """A one-shot page's final result on ``image`` at working size ``side``."""
        loaded = self.server.open(image, side)
        res = list(self.server.stream(page.run, loaded.pixels, scene, waiting(progress)))[-1]
        return res, loaded.notes

    def equivariance_results(self, image: Any, p: Any, progress: Any) -> tuple:
        """``/equivariance``'s maps, defects and the page's text."""
        res, notes = self.last(equivariance, image, p.scene(), progress, p.max_side)
        return equivariance.outputs(res, notes)

    def sweep_results(self, image: Any, levels: Any, progress: Any) -> tuple:
        """The sweep and ``/sweep``'s summary."""
        res, notes = self.last(sweep, image, levels.scene(), progress, sweep.SIDE)
        return res, sweep.outputs(res, notes)

    def inside_results(self, image: Any, st: Any, progress: Any) -> tuple:
        """``/inside``'s pictures and numbers (at most :data:`inside.MAX_SIDE` px, untiled)."""
        side = min(st.max_side, inside.MAX_SIDE)
        return inside.outputs(*self.last(inside, image, st.scene(), progress, side))

    def filters_results(self, image: Any, f: Any, progress: Any) -> tuple:
        """The Why page's marked image, filter pictures, summary, text and the Q-vs-Δ curves
        of the backbone's bundled twins with the image's median Δ."""
        res, notes = self.last(why, image, f, progress, f.max_side)
        marked, pictures, info, text = why.outputs(res, notes, self.coverage)
        folder = self.explained / f"collapse-{f.backbone}" if self.explained else None
        rows = why.load_collapse(folder) if folder else []
        if rows:
            qs = [r["q"] for r in rows]
            d = info["delta"]["median"]
            rows += [
                {"delta": d, "q": q, "curve": "this image: median Δ"} for q in (min(qs), max(qs))
            ]
        return marked, pictures, info, text, rows

    def rivals_results(self, image: Any, r: Any, progress: Any) -> Iterator[tuple]:
        """The rivals page's snapshots: the shifted noisy image, the outputs, summary, text,
        table (one per objection answered)."""
        loaded = self.server.open(image, r.max_side)
        for res in self.server.stream(rivals.run, loaded.pixels, r, waiting(progress)):
            yield rivals.outputs(res, loaded.notes)

    def walks_results(self, image: Any, w: restore.Walks, progress: Any) -> Iterator[tuple]:
        """The two walks' snapshots."""
        missing = restore.missing_models(self.server.zoo, w)  # before any device time is asked for
        if missing:
            raise DemoInputError(missing)
        loaded = self.server.open(image, w.max_side)
        for state in self.server.stream(restore.run, loaded.pixels, w, waiting(progress)):
            step = max(run.steps for run in state.runs)
            done = 1.0 if state.done else step / w.max_steps
            progress(done, desc=f"step {step} of at most {w.max_steps}")
            yield restore.outputs(state, loaded.notes)

    def read_link(self, pairs: list[tuple[str, Any]]) -> tuple[dict[str, Any], str, str]:
        """A scenario link's query ``pairs``: the valid values, a note on what was ignored
        (Markdown, "" for none) and the tab whose computation it starts ("" for none)."""
        values, lines = links.parse_query(pairs, LINKS, self.link_value, ["backbones"])
        scenario = bool(set(values) - {"present"})
        head = (
            "Opened from a scenario link" if scenario else "This link's settings could not be used"
        )
        text = "\n".join([f"**{head}.**", *(f"- {n}" for n in lines)]) if lines else ""
        return values, text, values.get("tab", "compare") if scenario else ""

    def link_to(self, image: str | None, *values: Any) -> str:
        """The link to the page's scenario: the image (an example's id, else ``upload``),
        the :data:`LINKED` settings, presentation mode, the tab's label and the page's address."""
        *settings, on, label, base = values
        current = dict(zip(LINKED, settings, strict=True))
        image_id = links.identify_image(image, self.examples)
        current = {"image": image_id, **current, "present": bool(on)}
        if label in TABS:
            current["tab"] = TABS[label]
        return links.build_link(base, current)

    def link_value(self, name: str, value: Any) -> Any:
        """A scenario link's value checked against its page's setting (``image``: an example's
        id or ``upload``; ``tab``: a tab's id; ``present``: presentation mode).

        Raises:
            DemoInputError: Naming the setting and what it accepts.
        """
        allowed = {"image": [*self.examples, links.UPLOAD], "tab": list(TABS.values())}.get(name)
        if allowed is not None:
            if value not in allowed:
                raise DemoInputError(f"{name} must be one of {allowed}, got {value!r}")
            return value
        if name == "present":
            return check(bool, Spec(name), value, name)
        return self.forms["compare" if name in SCENE else "equivariance"].check(name, value)


def sigma_choices(have: list[int]) -> list[tuple[str, int]]:
    """The training σ choices, those without models marked."""
    return [(f"σ = {s}" + ("" if s in have else " (no models)"), s) for s in catalog.SIGMA_TRAINS]


def page_forms(server: Server) -> dict[str, Form]:
    """Each page's form on this server: defaults from its models and calibration, ranges
    from its device."""
    zoo = server.zoo
    side, choice = server.defaults.side, server.defaults.checkpoint
    have, sizes, chosen = zoo.sigmas(), zoo.sizes(), zoo.backbones()
    backbones = [b for b in DEFAULT_BACKBONES if b in chosen] or chosen[:1] or ["dncnn"]
    marked = [
        (t + ("" if k == "best" or k in sizes else " (no models)"), k)
        for k, t in CHECKPOINTS.items()
    ]
    spec = {
        "max_side": {"hi": 2048 if zoo.device.type == "cuda" else CPU_SIDE_LIMIT},
        "sigma_train": {"choices": sigma_choices(have)},
        "checkpoint": {"choices": marked},
    }
    scene = {"sigma_train": zoo.default_sigma(), "max_side": side, "checkpoint": choice}
    wrapped = [b for _, b in inside.WRAPPED]
    probe = {**scene, "backbone": backbones[0]}
    paired = [b for _, b in restore.PAIRED]
    pairs = {
        b: [s for s in catalog.SIGMA_TRAINS if all(zoo.has(b, v, s) for v in ("plain", "wne"))]
        for b in paired
    }
    walker = next((b for b in paired if pairs[b]), paired[0])
    sigma = 10 if 10 in pairs[walker] or not pairs[walker] else pairs[walker][0]
    r_side, r_limit, steps = RESTORE_SIDE["cuda" if zoo.device.type == "cuda" else "cpu"]
    walks = {"backbone": walker, "sigma_train": sigma, "max_side": r_side, "max_steps": steps}
    levels = {k: v for k, v in scene.items() if k != "max_side"}
    return {
        "compare": Form(compare.Scene, {**scene, "backbones": backbones}, spec),
        "equivariance": Form(equivariance.Probe, probe, spec),
        "sweep": Form(sweep.Levels, {**levels, "backbones": backbones}, spec),
        "inside": Form(
            inside.Steps,
            {**probe, "backbone": next((b for b in backbones if b in wrapped), wrapped[0])},
            spec,
        ),
        "why": Form(why.Filters, {**probe, "max_side": min(side, 256)}, spec),
        "rivals": Form(rivals.Rivals, {"max_side": min(side, rivals.SIDE)}, spec),
        "restore": Form(
            restore.Walks,
            walks,
            {
                "max_side": {"hi": r_limit},
                "sigma_train": {"choices": sigma_choices(zoo.sigmas([walker]))},
            },
        ),
    }


def waiting(progress: Progress) -> Callable[[int], None]:
    """Shows the queue ahead of a computation."""
    return lambda ahead: (
        progress(0.0, desc=f"waiting for the models: {ahead} computation(s) ahead")
        if ahead
        else None
    )
