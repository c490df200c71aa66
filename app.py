"""Gradio demo: plain denoisers break under contrast/brightness shifts, WNE twins hold.

Run ``python app.py`` (``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` set the address).
This file lays out the page and wires events to :mod:`wne.demo.pages` through
:class:`wne.demo.serving.Server`; the controls define every setting's range and default,
for the page, the named API endpoints and the scenario links alike.
"""

try:  # ZeroGPU: `spaces` must be imported before anything initializes CUDA.
    import spaces
except ImportError:  # not on Hugging Face Spaces: @spaces.GPU becomes a no-op
    spaces = None

import functools
import hashlib
import inspect
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from wne import catalog
from wne.degrade import NOISES
from wne.demo import content, links
from wne.demo.errors import DemoInputError
from wne.demo.figure import Tile, render_figure
from wne.demo.imaging import save_png
from wne.demo.pages import compare, equivariance, inside, restore, sweep
from wne.demo.serving import Server, checkpoint_keys, cpu_defaults, limit_malloc_arenas
from wne.demo.zoo import CHECKPOINTS, Zoo
from wne.sampler import TASKS
from wne.settings import EnvSettings

log = logging.getLogger("app")
ASSETS = Path(__file__).resolve().parent / "assets"
"""Example images (``examples/``) and precomputed Set12 curves (``results/``)."""
ENV = EnvSettings.from_env()
ACTIVE = ENV.concurrent_requests
"""Requests handled at once; the models still run one at a time (the server's queue), so
a request answered from the cache never waits behind computations."""
QUEUE_SIZE = ENV.queue_size
"""Requests that may wait beyond :data:`ACTIVE` (a class clicking at once fits)."""
Outputs4 = tuple[gr.FileData, gr.FileData | None, Any, dict]
"""The type of each yield of ``/denoise`` and ``/restore``: ``gr.api`` reads a tuple return
hint as that many outputs (each streamed on its own, as the page's components are)."""
NOISE_PARAMS = list({p.name: p for n in NOISES.values() for p in n.params}.values())
"""Every noise type's level controls (σ, photons, read noise, JPEG quality), defined by
:data:`wne.degrade.NOISES`; the page shows those of the chosen type."""
PROGRESS = gr.Progress()
"""The page handlers' progress (Gradio gives each call its own tracker)."""
MODELS: dict[str, Any] = {"concurrency_id": "models", "concurrency_limit": ACTIVE}
PAGE: dict[str, Any] = {**MODELS, "api_visibility": "private", "trigger_mode": "always_last"}
PRIVATE: dict[str, Any] = {"api_visibility": "private", "queue": False}
OUT: dict[str, Any] = {"format": "png", "interactive": False}
IMG: dict[str, Any] = {**OUT, "height": 300, "elem_classes": "wne-out"}
SEED: dict[str, Any] = {"precision": 0, "minimum": 0, "maximum": 2**31 - 1}
SIDE: dict[str, Any] = {"step": 16, "precision": 0}
WALK_PLOT: dict[str, Any] = {"x": "step", "x_title": "step", "color": "model", "height": 300}
WALK_PLOTS = (  # title, y, y_title, elem_id
    ("noise σ̂ per step", "log10_sigma_hat", "log₁₀ σ̂ (0–255 scale)", "restore-sigma"),
    ("PSNR per step", "psnr", "PSNR vs clean (dB)", "restore-psnr"),
)
SWEEP_PLOT = {"x": "level", "y": "psnr", "color": "model", "height": 360, "y_title": "PSNR (dB)"}
CPU_SIDE_LIMIT, GPU_SIDE, RESTORE_SIDE = (
    1024,
    512,
    {"cpu": (128, 256, 150), "cuda": (256, 512, 1000)},
)
CSS = """
.wne-panel h3 {margin-bottom: 0.2em}
.wne-out img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}
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
PRESENT_JS = """(on) => {
  for (const el of [document.querySelector('gradio-app'), document.body]) {
    if (el) el.classList.toggle('wne-presenting', !!on);
  }
  return [];
}"""
LINK_JS = """(...args) => {
  const tab = document.querySelector('#wne-tabs [role="tab"][aria-selected="true"]');
  args[args.length - 2] = tab ? tab.innerText.trim() : '';
  args[args.length - 1] = window.location.origin + window.location.pathname;
  return args;
}"""
SHIFT = (  # the shift's controls: name, range, default, label, info, elem_id
    ("a", 0.1, 4, 1.0, "contrast a", "x → a·x + b", "contrast-a"),
    ("b", -1, 1, 0.0, "brightness b", "in [0, 1] units", "brightness-b"),
)
SCENE = tuple(f.name for f in fields(compare.Scene))
"""``/denoise``'s parameters after the image, in API order (the scene's controls)."""
ONE = tuple("backbone" if n == "backbones" else n for n in SCENE if n != "order")
"""``/equivariance``'s and ``/inside``'s parameters after the image."""
SWEEP = tuple(n for n in SCENE if n not in ("sigma", "max_side", "photons", "quality"))
DEFAULT_BACKBONES = ("dncnn", "swinir")
"""The backbones compared by default: a CNN and a transformer."""
LINKS = ("image", *SCENE, "backbone", "tab", "present")
"""A scenario link's parameters (links printed on slides keep opening the same scenario)."""
TABS = {
    "Compare": "compare",
    "Equivariance": "equivariance",
    "Noise sweep": "sweep",
    "Inside WNE": "inside",
    "Restore from a few pixels": "restore",
    "About": "about",
}
WALKS = tuple(f.name for f in fields(restore.Walks))
KEPT, BLOCKS = (
    "a random mask; the paper keeps 10 %",
    "each factor × factor block is seen only via its mean",
)
START, FACTORS = (
    "the walk stops when σ̂ ≤ 1 (the paper starts at 10)",
    [("×2", 2), ("×4", 4), ("×8", 8)],
)


def gpu(fn: Callable[..., Any], duration: Callable[..., int] | None = None) -> Any:
    """``@spaces.GPU(duration=...)`` on ZeroGPU; the function itself everywhere else."""
    return spaces.GPU(duration=duration)(fn) if spaces is not None else fn


def shown_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A handler whose failures reach the user as ``gr.Error`` (bad input: its message;
    anything else: logged, and a short message); generators stay generators."""

    def error(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error):
            return exc
        if isinstance(exc, DemoInputError):
            return gr.Error(str(exc), print_exception=False)
        if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
            return gr.Error("Out of memory while denoising: lower the working size and try again.")
        log.exception("handler %s failed", fn.__name__, exc_info=exc)
        return gr.Error(
            f"Internal error ({type(exc).__name__}); the details are in the server log."
        )

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise error(exc) from None

        return streaming

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise error(exc) from None

    return plain


def check(control: Any, value: Any, name: str | None = None) -> Any:
    """A raw value (API client or link) checked against its page control.

    Raises:
        DemoInputError: Naming the control (or ``name``) and what it accepts.
    """
    name = name or control.label
    if isinstance(control, gr.Checkbox):
        text = str(value).strip().lower()
        if isinstance(value, bool) or text in ("true", "false", "1", "0"):
            return value if isinstance(value, bool) else text in ("true", "1")
        raise DemoInputError(f"{name} must be true or false, got {value!r}")
    if isinstance(control, gr.CheckboxGroup):
        allowed = [v for _, v in control.choices]
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list | tuple):
            raise DemoInputError(f"{name} must be a list drawn from {allowed}, got {value!r}")
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise DemoInputError(f"{name}: unknown value(s) {unknown}; choose from {allowed}")
        if not values:
            raise DemoInputError(f"{name}: choose at least 1 of {allowed}")
        return [v for v in allowed if v in values]
    if isinstance(control, gr.Radio | gr.Dropdown):
        allowed = [v for _, v in control.choices]
        if all(isinstance(v, int) for v in allowed) and isinstance(value, str):
            value = int(value) if value.strip().lstrip("-").isdigit() else value
        if value not in allowed or isinstance(value, bool):
            raise DemoInputError(f"{name} must be one of {allowed}, got {value!r}")
        return value
    lo, hi = control.minimum, control.maximum
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, AttributeError):
        raise DemoInputError(
            f"{name} must be a number in [{lo:g}, {hi:g}], got {str(value)[:40]!r}"
        ) from None
    if not math.isfinite(number):
        raise DemoInputError(f"{name} must be a finite number, got {value!r}")
    if control.precision == 0 and number != int(number):
        raise DemoInputError(f"{name} must be a whole number, got {number:g}")
    if not lo <= number <= hi:
        raise DemoInputError(f"{name} must be in [{lo:g}, {hi:g}], got {number:g}")
    return int(number) if control.precision == 0 else number


def link_value(controls: dict[str, Any], examples: dict[str, Path], name: str, value: Any) -> Any:
    """A scenario link's value checked against its control (``image``: an example's id or
    ``upload``; ``tab``: a tab's id; ``present``: presentation mode)."""
    allowed = {"image": [*examples, links.UPLOAD], "tab": list(TABS.values())}.get(name)
    if allowed is not None and value not in allowed:
        raise DemoInputError(f"{name} must be one of {allowed}, got {value!r}")
    if name == "present":
        return check(controls["clip"], value, name)
    return value if allowed else check(controls[name], value)


def build_demo(zoo: Zoo | None = None, server: Server | None = None) -> gr.Blocks:
    """Builds the (queued) app around ``zoo`` (default: discovered) or a ready ``server``."""
    if server is None:
        server = make_server(zoo)
    zoo = server.zoo
    gpu_run = zoo.device.type == "cuda"
    side, choice, note = server.defaults
    examples = content.load_examples(ASSETS / "examples")
    upload = Path(gr.utils.get_upload_folder())
    files, figures, outputs = (upload / f"wne-{n}" for n in ("outputs", "figures", "native"))
    have, sizes = zoo.sigmas(), zoo.sizes()
    backbones = (
        [b for b in DEFAULT_BACKBONES if b in zoo.backbones()] or zoo.backbones()[:1] or ["dncnn"]
    )
    families = [(f.label, f.id) for f in catalog.families(zoo_only=True)]
    c: dict[str, Any] = {}

    with gr.Blocks(title="WNE: normalization-equivariant denoisers") as demo:
        intro = content.INTRO.format(
            device="GPU (CUDA)" if gpu_run else "CPU", color=content.COLOR_NOTE
        )
        gr.Markdown(
            intro + "\n\n*" + content.QUEUE_NOTE.format(active=ACTIVE, queue=QUEUE_SIZE) + "*",
            elem_classes="wne-secondary",
        )
        link_note = gr.Markdown(visible=False, elem_id="link-note")
        present = gr.Checkbox(label="presentation mode", elem_id="present-toggle")
        with gr.Row():
            with gr.Column(scale=1, min_width=320, elem_id="wne-controls") as left:
                c["image"] = gr.Image(
                    str(examples[0].path) if examples else None,
                    type="filepath",
                    image_mode=None,
                    format="png",
                    height=260,
                    elem_id="input-image",
                    sources=["upload", "clipboard", "webcam"],
                    label="Clean image (upload, paste or webcam)",
                )
                for n, lo, hi, value, label, info, elem_id in SHIFT:
                    c[n] = gr.Slider(lo, hi, value=value, step=0.01, label=label, info=info)
                    c[n].elem_id = elem_id
                c["noise"] = gr.Dropdown(
                    [(n.label, k) for k, n in NOISES.items()],
                    value="gaussian",
                    label="noise type",
                    elem_id="noise-type",
                )
                noise_boxes = {}
                for p in NOISE_PARAMS:
                    with gr.Column(visible=p.name == "sigma", min_width=0) as noise_boxes[p.name]:
                        c[p.name] = gr.Slider(
                            p.lo,
                            p.hi,
                            value=p.default,
                            step=p.step,
                            label=p.label,
                            info=p.info or None,
                            precision=0 if p.integer else None,
                            elem_id=f"noise-{p.name.replace('_', '-')}",
                        )
                with gr.Accordion("About the noise types", open=False):
                    gr.Markdown(content.NOISE_HELP)
                c["sigma_train"] = gr.Radio(
                    sigma_choices(have), value=zoo.default_sigma(), label="models' training σ"
                )
                c["backbones"] = gr.CheckboxGroup(families, value=backbones, label="backbones")
                c["checkpoint"] = gr.Radio(
                    [
                        (text + ("" if k == "best" or k in sizes else " (no models)"), k)
                        for k, text in CHECKPOINTS.items()
                    ],
                    value=choice,
                    label="checkpoints",
                    elem_id="checkpoint",
                    info="which trained models run; the notes name the checkpoints that ran",
                )
                run = gr.Button("Denoise & compare", variant="primary", elem_id="run")
                with gr.Accordion("More settings", open=False):
                    orders = [(t, k) for k, t in compare.ORDERS.items()]
                    c["order"] = gr.Radio(
                        orders, value="shift-then-noise", label="order of operations"
                    )
                    c["seed"] = gr.Number(0, **SEED, label="noise seed")
                    limit = 2048 if gpu_run else CPU_SIDE_LIMIT
                    label = "working size (longest side, px)"
                    info = "larger images are downscaled; large ones run in tiles"
                    c["max_side"] = gr.Slider(32, limit, value=side, **SIDE, label=label, info=info)
                    info = "as an 8-bit image; breaks exact equivariance where values saturate"
                    c["clip"] = gr.Checkbox(False, label="clip to [0, 1]", info=info)
                    live = gr.Checkbox(True, label="re-run when a slider is released")
                with gr.Accordion("Available models", open=False):
                    gr.Markdown(zoo.summary_markdown() + (f"\n\n- {note}" if note else ""))
                with gr.Accordion("Classroom: link to this scenario, slide figure", open=False):
                    copy = gr.Button("Copy link to this scenario", elem_id="copy-link", size="sm")
                    link = gr.Textbox(label="link", buttons=["copy"], elem_id="scenario-link")
                    gr.Markdown(content.LINK_HELP)
                    make = gr.Button("Download figure (PNG, PDF)", elem_id="make-figure", size="sm")
                    figure_files = gr.File(
                        label="slide figure",
                        file_count="multiple",
                        height=120,
                        elem_id="figure-files",
                    )
                    gr.Markdown(content.FIGURE_HELP)
                tab_label, base_url = (gr.Textbox(visible=False) for _ in "tu")  # by LINK_JS
            with gr.Column(scale=3), gr.Tabs(selected="compare", elem_id="wne-tabs") as tabs:
                with gr.Tab("Compare", id="compare"):
                    noisy, target, panels, table, notes, downloads, gallery, summary = _compare_tab(
                        families, backbones
                    )
                with gr.Tab("Equivariance", id="equivariance"):
                    gr.Markdown(content.EQUIVARIANCE_HELP)
                    c["backbone"] = gr.Radio(families, value=backbones[0], label="backbone")
                    eq_run = gr.Button("Measure equivariance", variant="primary")
                    maps = gr.Gallery(label="defect maps", format="png", columns=2, height=340)
                    eq_text = gr.Markdown()
                    with gr.Accordion("Defects (JSON)", open=False):
                        defects = gr.JSON(label="defects")
                with gr.Tab("Noise sweep", id="sweep"):
                    gr.Markdown(content.SWEEP_HELP.format(side=sweep.SIDE))
                    sw_run = gr.Button("Run noise sweep", variant="primary")
                    plot = gr.LinePlot(title="PSNR vs σ", x_title="test σ (0–255)", **SWEEP_PLOT)
                    sw_notes = gr.Markdown()
                    with gr.Accordion("Curves (JSON)", open=False):
                        curves = gr.JSON(label="PSNR vs sigma")
                    pngs, csvs, found = content.precomputed_results(ASSETS / "results")
                    gr.Markdown("### Precomputed Set12 mismatch curves\n" + found)
                    if pngs:
                        gr.Gallery(
                            [(str(p), str(p.relative_to(ASSETS / "results"))) for p in pngs],
                            label="Set12 curves",
                            format="png",
                            columns=2,
                            height=480,
                        )
                    if csvs:
                        gr.File([str(p) for p in csvs], label="Set12 tables (CSV)")
                with gr.Tab("Inside WNE", id="inside"):
                    gr.Markdown(content.INSIDE_HELP)
                    wrapped = [(n, b) for n, b in families if "wne" in catalog.FAMILIES[b].variants]
                    ids = [b for _, b in wrapped]
                    first = next((b for b in backbones if b in ids), ids[0])
                    in_backbone = gr.Radio(
                        wrapped,
                        value=first,
                        label="backbone",
                        elem_id="inside-backbone",
                        info="a backbone with a WNE wrapper",
                    )
                    in_run = gr.Button("Show the steps", variant="primary", elem_id="inside-run")
                    steps = []
                    for _ in range(inside.INSIDE_STEPS):
                        steps.append(gr.Markdown())
                        with gr.Row():
                            steps += [gr.Image(label="–", **IMG), gr.Image(label="–", **IMG)]
                    in_text = gr.Markdown(elem_id="inside-numbers")
                    with gr.Accordion("All pictures and numbers (JSON)", open=False):
                        pictures = gr.Gallery(
                            label="steps", format="png", columns=4, elem_id="inside-gallery"
                        )
                        numbers = gr.JSON(label="numbers")
                with gr.Tab("Restore from a few pixels", id="restore"):
                    gr.Markdown(content.RESTORE_HELP)
                    r = _restore_controls(zoo, families)
                    with gr.Row():
                        walked = [
                            gr.Image(label=x, elem_id=f"restore-{x.lower()}", **IMG)
                            for x in ("observed", "plain", "WNE")
                        ]
                    with gr.Row():
                        walk_plots = [
                            gr.LinePlot(title=t, y=y, y_title=yt, elem_id=e, **WALK_PLOT)
                            for t, y, yt, e in WALK_PLOTS
                        ]
                    walk_text = gr.Markdown(elem_id="restore-results")
                    with gr.Accordion("Numbers (JSON)", open=False):
                        result = gr.JSON(label="settings, scores and σ̂ per step")
                with gr.Tab("About", id="about"):
                    gr.Markdown(
                        content.ABOUT,
                        latex_delimiters=[{"left": "$$", "right": "$$", "display": True}],
                    )
                    gr.Markdown("### Try it: one-click scenarios")
                    scenarios = []
                    for name, text in content.SCENARIOS.items():
                        with gr.Row():
                            scenarios.append((name, gr.Button(name.capitalize(), scale=1)))
                            gr.Markdown(text)

        # -- the computations: one typed handler per page, through the server ----------------
        def waiting(progress: gr.Progress) -> Callable[[int], None]:
            return lambda ahead: (
                progress(0.0, desc=f"waiting for the models: {ahead} computation(s) ahead")
                if ahead
                else None
            )

        def scene(v: dict[str, Any], **fixed: Any) -> compare.Scene:
            v = {**v, **fixed}
            return compare.Scene(**{k: v[k] for k in SCENE})

        def denoise_results(
            image: Any, v: dict[str, Any], progress: gr.Progress
        ) -> Iterator[tuple]:
            s = scene(v)
            loaded = server.open(image, s.max_side)
            native = loaded.native  # a 16-bit or float upload: its outputs in its own format too
            for res in server.stream(compare.run, loaded.pixels, s, waiting(progress)):
                done = [r for r in res.runs if native and not res.pending and r.output is not None]
                files = [native.save(r.output, outputs, f"denoised-{r.key}") for r in done]
                yield *compare.outputs(res, loaded.notes, native), files

        @shown_errors
        def denoise_page(
            progress: gr.Progress = PROGRESS, image: str | None = None, *values: Any
        ) -> Iterator[list]:
            for img, tgt, out, info, saved in denoise_results(
                image, dict(zip(SCENE, values, strict=True)), progress
            ):
                img, tgt = save_png(img, files), save_png(tgt, files)
                out = [(save_png(o, files), caption) for o, caption in out]
                view = compare.page(img, out, info)
                cells = []
                for p in view["panels"]:
                    cells += [
                        gr.Markdown(p.header, visible=p.visible),
                        gr.Image(p.left, label=p.left_label, visible=p.visible),
                        gr.Image(
                            p.right, label=p.right_label, visible=p.visible and p.right_visible
                        ),
                        gr.ImageSlider(p.pair, label=p.pair_label, visible=p.visible),
                    ]
                yield [
                    gr.Image(img, label=view["noisy_label"]),
                    gr.Image(tgt, label=view["target_label"]),
                    *cells,
                    pd.DataFrame(view["table"], columns=compare.TABLE_HEADERS),
                    view["notes"],
                    gr.File(saved or None, visible=bool(saved)),
                    out,
                    info,
                ]

        def one(v: dict[str, Any], progress: gr.Progress, page: Any, side: int = 0) -> tuple:
            s = scene(v, backbones=[v["backbone"]], order="noise-then-shift")
            loaded = server.open(v.pop("image"), side or s.max_side)
            res = list(server.stream(page.run, loaded.pixels, s, waiting(progress)))[-1]
            return page.outputs(res, loaded.notes)

        @shown_errors
        def equivariance_page(
            progress: gr.Progress = PROGRESS, image: str | None = None, *values: Any
        ) -> list:
            v = {"image": image, **dict(zip(ONE, values, strict=True))}
            out, info, text = one(v, progress, equivariance)
            return [out, text, info]

        def sweep_results(image: Any, v: dict[str, Any], progress: gr.Progress) -> tuple:
            fixed = {
                n: NOISES[k].level.default
                for n, k in (("photons", "lowlight"), ("quality", "jpeg"))
            }
            s = scene(v, sigma=sweep.JPEG_SIGMA, max_side=sweep.SIDE, **fixed)  # it walks the level
            loaded = server.open(image, sweep.SIDE)
            res = list(server.stream(sweep.run, loaded.pixels, s, waiting(progress)))[-1]
            return res, sweep.outputs(res, loaded.notes)

        @shown_errors
        def sweep_page(
            progress: gr.Progress = PROGRESS, image: str | None = None, *values: Any
        ) -> list:
            res, out = sweep_results(image, dict(zip(SWEEP, values, strict=True)), progress)
            title, x_title = sweep.plot_titles(res)
            return [
                gr.LinePlot(pd.DataFrame(out["rows"]), x_title=x_title, title=title),
                f"**{out['title']}**\n\n{out['notes']}",
                out,
            ]

        def inside_results(image: Any, v: dict[str, Any], progress: gr.Progress) -> tuple:
            return one({"image": image, **v}, progress, inside, min(int(v["max_side"]), 512))

        @shown_errors
        def inside_page(
            progress: gr.Progress = PROGRESS, image: str | None = None, *values: Any
        ) -> list:
            out, info = inside_results(image, dict(zip(ONE, values, strict=True)), progress)
            cells, pics = [], iter(out)
            for st in info["steps"]:
                shown = [next(pics) for _ in range(st["pictures"])] + [(None, "–")] * (
                    2 - st["pictures"]
                )
                cells += [
                    f"### {st['title']}\n\n{st['text']}",
                    *(gr.Image(img, label=cap, visible=img is not None) for img, cap in shown),
                ]
            return [*cells, info["text"], out, info]

        def walks_results(image: Any, v: dict[str, Any], progress: gr.Progress) -> Iterator[tuple]:
            w = restore.Walks(**v)
            missing = restore.missing_models(zoo, w)  # said before any device time is asked for
            if missing:
                raise DemoInputError(missing)
            loaded = server.open(image, w.max_side)
            for state in server.stream(restore.run, loaded.pixels, w, waiting(progress)):
                step = max(run.steps for run in state.runs)
                progress(
                    1.0 if state.done else step / w.max_steps,
                    desc=f"step {step} of at most {w.max_steps}",
                )
                yield restore.outputs(state, loaded.notes)

        @shown_errors
        def restore_page(
            progress: gr.Progress = PROGRESS, image: str | None = None, *values: Any
        ) -> Iterator[list]:
            for observed, images, info in walks_results(
                image, dict(zip(WALKS, values, strict=True)), progress
            ):
                sigma_rows, psnr_rows = restore.plots(info)
                budget = [0, info["settings"]["max_steps"]]
                shown = [None if i is None else save_png(i, files) for i in [observed, *images]]
                pairs = zip(shown, info["captions"], strict=True)
                yield [
                    *(gr.Image(f, label=cap) for f, cap in pairs),
                    gr.LinePlot(pd.DataFrame(sigma_rows), x_lim=budget),
                    gr.LinePlot(pd.DataFrame(psnr_rows), x_lim=budget),
                    info["text"],
                    info,
                ]

        def valid(names: tuple[str, ...]) -> Callable[..., list[Any]]:
            """The page's validator: an image is given, and a comparison has a backbone."""

            def validate(image: str | None, *values: Any) -> list[Any]:
                v = dict(zip(names, values, strict=False))
                no_image = "no image given: upload an image or pick an example"
                return [gr.validate(image is not None, no_image)] + [
                    gr.validate(n != "backbones" or bool(v[n]), "choose at least one backbone")
                    for n in names
                ]

            return validate

        def event(
            fn: Callable[..., Any], names: tuple[str, ...], outputs: list, controls: dict = c
        ) -> dict[str, Any]:
            inputs = [c["image"], *(controls[n] for n in names)]
            return {"fn": fn, "inputs": inputs, "outputs": outputs, "validator": valid(names)}

        compare_out = [noisy, target, *panels, table, notes, downloads, gallery, summary]
        inner = c | {"backbone": in_backbone}  # Inside WNE has its own backbone control
        events = {  # a tab's computation: run by its button, or by a link that opens the tab
            "compare": event(denoise_page, SCENE, compare_out),
            "equivariance": event(equivariance_page, ONE, [maps, eq_text, defects]),
            "sweep": event(sweep_page, SWEEP, [plot, sw_notes, curves]),
            "inside": event(inside_page, ONE, [*steps, in_text, pictures, numbers], controls=inner),
        }
        den = {**events["compare"], **PAGE}
        for button, tab in zip((run, eq_run, sw_run, in_run), events, strict=True):
            button.click(**events[tab], **PAGE)
        walk = event(restore_page, WALKS, [*walked, *walk_plots, walk_text, result], controls=r)
        walking = r["run"].click(**walk, **{**PAGE, "trigger_mode": "once"})
        r["stop"].click(None, cancels=[walking], api_visibility="private")
        c["noise"].change(
            lambda kind: [
                gr.Column(visible=p.name in {q.name for q in NOISES[kind].params})
                for p in NOISE_PARAMS
            ],
            c["noise"],
            list(noise_boxes.values()),
            **PRIVATE,
        )
        r["task"].change(
            lambda task: [
                gr.Column(visible=restore.LEVELS[task] == n) for n in restore.LEVELS.values()
            ],
            r["task"],
            r["boxes"],
            **PRIVATE,
        )

        def live_gate(on: bool, image: str | None) -> None:
            if not on or image is None:
                raise gr.Error("live updates are off", visible=False, print_exception=False)

        gr.on(
            [c["a"].release, c["b"].release, c["sigma"].release],
            live_gate,
            [live, c["image"]],
            None,
            **PRIVATE,
        ).success(**{**den, "show_progress": "minimal"})
        for name, btn in scenarios:

            def set_scenario(st: int, _name: str = name) -> list[Any]:
                return [*content.scenario(_name, st).values(), gr.Tabs(selected="compare")]

            btn.click(
                set_scenario,
                c["sigma_train"],
                [*(c[k] for k in content.SCENARIO_CONTROLS), tabs],
                **PRIVATE,
            ).then(**den)
        rows = [[str(e.path), *(e.settings.get(n, c[n].value) for n in SCENE)] for e in examples]
        if examples:
            with left:
                ex = gr.Examples(
                    rows,
                    inputs=den["inputs"],
                    example_labels=[e.label for e in examples],
                    cache_examples=False,
                    label="Examples: Kodak images (click to load and run)",
                )
            ex.load_input_event.then(**den)
        warm = [(image, scene(dict(zip(SCENE, v, strict=True)))) for image, *v in rows]
        demo.warm_requests = warm  # type: ignore[attr-defined]

        # -- classroom: links, slide figure, presentation mode -------------------------------
        ids = {e.path.stem: e.path for e in examples}
        check_link = functools.partial(link_value, c, ids)
        demo.wne_controls = c  # type: ignore[attr-defined]

        go = gr.State("")

        def open_link(request: gr.Request) -> list[Any]:
            values, lines = links.parse_query(
                request.query_params.multi_items(), LINKS, check_link, ["backbones"]
            )
            scenario = bool(set(values) - {"present"})
            head = (
                "Opened from a scenario link"
                if scenario
                else "This link's settings could not be used"
            )
            text = "\n".join([f"**{head}.**", *(f"- {n}" for n in lines)]) if lines else ""
            image = values.get("image")
            return [
                gr.Image(str(ids[image])) if image in ids else gr.skip(),
                *(values.get(n, gr.skip()) for n in [*SCENE, "backbone"]),
                gr.Tabs(selected=values["tab"]) if "tab" in values else gr.skip(),
                values.get("present", gr.skip()),
                gr.Markdown(text, visible=bool(text)),
                values.get("tab", "compare") if scenario else "",
            ]

        opened = demo.load(
            open_link,
            None,
            [c["image"], *(c[n] for n in [*SCENE, "backbone"]), tabs, present, link_note, go],
            api_visibility="private",
        )
        for tab, ev in events.items():

            def gate(name: str, _tab: str = tab) -> None:
                if name != _tab:
                    raise gr.Error("not this tab", visible=False, print_exception=False)

            opened.then(gate, go, None, **PRIVATE).success(**{**PAGE, **ev})

        def copy_link(image: str | None, *values: Any) -> str:
            *controls, on, label, base = values
            current = dict(zip([*SCENE, "backbone"], controls, strict=True))
            current = {"image": links.identify_image(image, ids), **current, "present": bool(on)}
            if label in TABS:
                current["tab"] = TABS[label]
            return links.build_link(base, current)

        link_in = [c["image"], *(c[n] for n in [*SCENE, "backbone"]), present, tab_label, base_url]
        copy.click(shown_errors(copy_link), link_in, link, js=LINK_JS, api_visibility="private")
        figure = shown_errors(lambda *v: slide_figure(*v, folder=figures))
        make.click(
            figure, [noisy, target, gallery, summary], figure_files, api_visibility="private"
        )
        present.change(None, present, None, js=PRESENT_JS, api_visibility="private")

        # -- the named API endpoints: typed functions, the controls' defaults and ranges ----------
        def api_values(
            names: tuple[str, ...], v: dict[str, Any], controls: dict[str, Any]
        ) -> dict[str, Any]:
            return {n: check(controls.get(n, c.get(n)), v[n]) for n in names}

        def path(image: Any) -> str:
            if image is None:
                raise DemoInputError("no image given: upload an image or pick an example")
            return image  # a file payload; the server checks that it was uploaded

        def png(pixels: np.ndarray | None) -> gr.FileData | None:
            return None if pixels is None else gr.FileData(path=save_png(pixels, files))

        d = {n: c[n].value for n in (*SCENE, "backbone")}

        def denoise(
            image: gr.FileData,
            a: float = d["a"],
            b: float = d["b"],
            sigma: float = d["sigma"],
            seed: int = d["seed"],
            sigma_train: int = d["sigma_train"],
            backbones: list[str] = d["backbones"],
            order: str = d["order"],
            max_side: int = d["max_side"],
            clip: bool = d["clip"],
            noise: str = d["noise"],
            photons: float = d["photons"],
            read_noise: float = d["read_noise"],
            quality: int = d["quality"],
            checkpoint: str = d["checkpoint"],
        ) -> Outputs4:
            v = api_values(SCENE, locals(), {})
            for img, tgt, out, info, saved in denoise_results(path(image), v, gr.Progress()):
                downloads = {"downloads": [gr.FileData(path=f).model_dump() for f in saved]}
                gallery = [{"image": png(o), "caption": c} for o, c in out]
                yield png(img), png(tgt), gallery, {**info, **(downloads if saved else {})}

        def one_api(page: Any, backbone_control: Any) -> Callable[..., tuple[list, dict]]:
            """``/equivariance`` or ``/inside``: one backbone, the same parameters."""

            def endpoint(
                image: gr.FileData,
                a: float = d["a"],
                b: float = d["b"],
                sigma: float = d["sigma"],
                seed: int = d["seed"],
                sigma_train: int = d["sigma_train"],
                backbone: str = backbone_control.value,
                max_side: int = d["max_side"],
                clip: bool = d["clip"],
                noise: str = d["noise"],
                photons: float = d["photons"],
                read_noise: float = d["read_noise"],
                quality: int = d["quality"],
                checkpoint: str = d["checkpoint"],
            ) -> tuple[list, dict]:
                v = api_values(ONE, locals(), {"backbone": backbone_control})
                if page is inside:
                    out, info = inside_results(path(image), v, gr.Progress())
                else:
                    out, info, _ = one({"image": path(image), **v}, gr.Progress(), page)
                return [{"image": png(m), "caption": cap} for m, cap in out], info

            return endpoint

        def sweep_api(
            image: gr.FileData,
            a: float = d["a"],
            b: float = d["b"],
            seed: int = d["seed"],
            sigma_train: int = d["sigma_train"],
            backbones: list[str] = d["backbones"],
            order: str = d["order"],
            clip: bool = d["clip"],
            noise: str = d["noise"],
            read_noise: float = d["read_noise"],
            checkpoint: str = d["checkpoint"],
        ) -> dict:
            return sweep_results(path(image), api_values(SWEEP, locals(), {}), gr.Progress())[1]

        w = {n: r[n].value for n in WALKS}

        def restore_api(
            image: gr.FileData,
            task: str = w["task"],
            keep: float = w["keep"],
            hole: float = w["hole"],
            factor: int = w["factor"],
            noise_sigma: float = w["noise_sigma"],
            backbone: str = w["backbone"],
            sigma_train: int = w["sigma_train"],
            seed: int = w["seed"],
            max_steps: int = w["max_steps"],
            max_side: int = w["max_side"],
            color: bool = w["color"],
        ) -> Outputs4:
            v = api_values(WALKS, locals(), r)
            for observed, images, info in walks_results(path(image), v, gr.Progress()):
                yield png(observed), *(png(i) for i in images), info

        for fn, name in (
            (denoise, "denoise"),
            (one_api(equivariance, c["backbone"]), "equivariance"),
            (sweep_api, "sweep"),
            (one_api(inside, in_backbone), "inside"),
            (restore_api, "restore"),
        ):
            gr.api(
                shown_errors(fn), api_name=name, api_description=content.API_DOCS[name], **MODELS
            )
    demo.queue(max_size=QUEUE_SIZE)
    demo.wne_server = server  # type: ignore[attr-defined]
    return demo


def _compare_tab(families: list[tuple[str, str]], backbones: list[str]) -> tuple[Any, ...]:
    """The Compare tab's outputs: noisy input and target, a panel per backbone (header,
    plain or only output, WNE output, slider), the scores, the notes, all outputs, JSON."""
    with gr.Row():
        noisy = gr.Image(label="noisy input", **IMG)
        target = gr.Image(label="target a·x + b", **IMG)
    panels = []
    for label, bid in families:
        fam = catalog.FAMILIES[bid]
        on, single = bid in backbones, len(fam.variants) == 1
        with gr.Column(elem_classes="wne-panel"):
            panels.append(gr.Markdown(f"### {label}", visible=on))
            with gr.Row():
                left = fam.short if single else f"{fam.short} · plain"
                panels.append(gr.Image(label=left, visible=on, **IMG))
                panels.append(
                    gr.Image(label=f"{fam.short} · WNE", visible=on and not single, **IMG)
                )
                pair = {"max_height": 300, "elem_classes": "wne-slider", **OUT}
                panels.append(gr.ImageSlider(label="plain ↔ WNE", visible=on, **pair))
    scores = "scores vs the target (data range a)"
    table = gr.Dataframe(
        headers=compare.TABLE_HEADERS, interactive=False, elem_id="scores", label=scores
    )
    notes = gr.Markdown(elem_id="notes")
    label = "denoised outputs in the file's format and bit depth"
    files = gr.File(label=label, file_count="multiple", visible=False, elem_id="downloads")
    with gr.Accordion("All outputs", open=False, elem_classes="wne-secondary"):
        gallery = gr.Gallery(label="denoised outputs", format="png", columns=4)
    with gr.Accordion("Settings and numbers (JSON)", open=False, elem_classes="wne-secondary"):
        summary = gr.JSON(label="copy these to reproduce the result")
    return noisy, target, panels, table, notes, files, gallery, summary


def _restore_controls(zoo: Zoo, families: list[tuple[str, str]]) -> dict[str, Any]:
    """The Restore tab's controls (defaults: the first backbone with a plain/WNE pair, σ_train
    10 when it has one; working size and step budget by hardware)."""
    paired = [(lab, b) for lab, b in families if catalog.FAMILIES[b].variants == ("plain", "wne")]
    pairs = {
        b: [s for s in catalog.SIGMA_TRAINS if all(zoo.has(b, v, s) for v in ("plain", "wne"))]
        for _, b in paired
    }
    backbone = next((b for _, b in paired if pairs[b]), paired[0][1])
    sigma = 10 if 10 in pairs[backbone] or not pairs[backbone] else pairs[backbone][0]
    have = zoo.sigmas([backbone])
    side, limit, steps = RESTORE_SIDE["cuda" if zoo.device.type == "cuda" else "cpu"]
    whole = functools.partial(gr.Slider, step=1)
    levels = {  # each task's level control, shown for that task only
        "keep": lambda: whole(1, 100, value=10.0, label="kept pixels (%)", info=KEPT),
        "hole": lambda: whole(5, 75, value=25.0, label="hole size (%)"),
        "factor": lambda: gr.Radio(FACTORS, value=4, label="super-resolution factor", info=BLOCKS),
        "noise_sigma": lambda: whole(1, 100, value=10.0, label="start noise sigma", info=START),
    }
    r: dict[str, Any] = {"boxes": []}
    with gr.Row():
        tasks = [(t.label, k) for k, t in TASKS.items()]
        r["task"] = gr.Radio(tasks, value="inpaint", label="task", elem_id="restore-task")
        with gr.Column(min_width=240):
            for name in restore.LEVELS.values():
                with gr.Column(visible=name == "keep", min_width=0) as box:
                    r[name] = levels[name]()
                    r[name].elem_id = f"restore-{name.replace('_', '-')}"
                r["boxes"].append(box)
            r["backbone"] = gr.Radio(paired, value=backbone, label="backbone")
            info = "the sampler's models are trained at σ = 10 in the paper"
            r["sigma_train"] = gr.Radio(
                sigma_choices(have), value=sigma, label="training sigma", info=info
            )
        with gr.Column(min_width=240):
            with gr.Accordion("More settings", open=False):
                info = "mask, start and injected noise"
                r["seed"] = gr.Number(0, **SEED, label="seed", info=info)
                info = "each walk stops here if σ̂ has not reached σ_L"
                r["max_steps"] = whole(
                    1, 1000, value=steps, precision=0, label="step budget", info=info
                )
                info = "larger images are downscaled"
                r["max_side"] = gr.Slider(
                    32, limit, value=side, **SIDE, label="working size", info=info
                )
                info = "3× the time; off: the grayscale image, as the paper"
                r["color"] = gr.Checkbox(False, label="colour", info=info)
                for n in ("seed", "max_steps", "max_side", "color"):
                    r[n].elem_id = f"restore-{n.replace('_', '-')}"
            r["run"] = gr.Button("Restore", variant="primary", elem_id="restore-run")
            r["stop"] = gr.Button("Stop", elem_id="restore-stop")
    return r


def sigma_choices(have: list[int]) -> list[tuple[str, int]]:
    """The training σ choices, those without models marked."""
    return [(f"σ = {s}" + ("" if s in have else " (no models)"), s) for s in catalog.SIGMA_TRAINS]


def slide_figure(noisy: Any, target: Any, gallery: Any, summary: Any, folder: Path) -> list[str]:
    """The comparison shown as a slide figure (PNG and PDF): noisy input, target and every
    output with its scores from the summary, under a line with the settings."""
    if noisy is None or not summary or summary.get("pending"):
        raise DemoInputError("run a comparison first: the figure shows the comparison on the page")

    def pixels(image: Any) -> np.ndarray:
        image = image[0] if isinstance(image, tuple | list) else image
        return np.asarray(Image.open(image)) if isinstance(image, str) else np.asarray(image)

    s, info = summary["settings"], summary["image"]
    tiles = [
        Tile(pixels(noisy), "noisy input", f"PSNR {compare.db(summary['noisy']['psnr'])}"),
        Tile(pixels(target), "target a·x + b", f"a = {s['a']:g}, b = {s['b']:g}"),
    ]
    shown = [m for m in summary["models"].values() if m["available"]]  # the gallery's order
    for (img, _), m in zip(gallery or [], shown, strict=True):
        score = f"PSNR {compare.db(m['psnr'])} · SSIM {m['ssim']:.3f}"
        tiles.append(Tile(pixels(img), m["label"], score))
    subtitle = (
        f"σ = {s['sigma']:g} ({s['noise']}), seed {s['seed']}, σ_train = {s['sigma_train']}, "
        f"{s['order']}, {info['width']}×{info['height']} px; PSNR/SSIM vs a·x + b, data range a"
    )
    fig = render_figure(tiles, "Plain vs WNE denoisers", subtitle)
    out = folder / hashlib.sha256(fig.png).hexdigest()[:16]
    return [str(p) for p in fig.save(out, stem="wne-figure")]


def make_server(zoo: Zoo | None = None) -> Server:
    """The server for ``zoo`` (default: discovered), with its default working size and
    checkpoints (``server.defaults``): 512 px on a GPU, sized to ``$WNE_LATENCY_TARGET``
    (1.8 s) on a CPU unless ``$WNE_DEMO_MAX_SIDE`` fixes it."""
    zoo = zoo if zoo is not None else Zoo.discover()
    roots = [gr.utils.get_upload_folder(), str(ASSETS / "examples")]
    server = Server(zoo, gpu=gpu, upload_roots=roots)
    env, st = EnvSettings.from_env(), zoo.default_sigma()
    fixed = max(32, min(CPU_SIDE_LIMIT, env.demo_max_side)) if env.demo_max_side else None
    best, cpu = (checkpoint_keys(zoo.select(c), DEFAULT_BACKBONES, st) for c in ("best", "cpu"))
    if zoo.device.type == "cuda" or not zoo.models:
        server.defaults = (fixed or (GPU_SIDE if zoo.device.type == "cuda" else 256), "best", "")
    elif fixed and best == cpu:
        server.defaults = (fixed, "best", "")
    else:
        # a comparison's time depends on its models and size, not on the shift or the noise level
        chosen = tuple(b for b in DEFAULT_BACKBONES if b in zoo.backbones()) or tuple(
            zoo.backbones()[:1]
        )
        order, noise = "shift-then-noise", "gaussian"
        scene = compare.Scene(
            1.0, 0, 25, 0, st, chosen, order, 256, False, noise, 20, 1, 30, "best"
        )
        side, choice, note = cpu_defaults(zoo, scene, env.latency_target)
        server.defaults = (fixed or side, choice, note)
    return server


def launch_kwargs() -> dict[str, Any]:
    """Keyword arguments of ``demo.launch`` (address from Gradio's env variables)."""
    return {
        "max_file_size": EnvSettings.from_env().max_file_size,
        "max_threads": ACTIVE + 40,
        "ssr_mode": False,
        "theme": gr.themes.Soft(),
        "css": CSS,
    }


def main() -> None:
    """Loads the models once and serves the demo (warming the cache with the examples)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    server = make_server()
    demo = build_demo(server=server)
    env = EnvSettings.from_env()
    if env.malloc_arenas > 0:
        limit_malloc_arenas(env.malloc_arenas)  # bounded RSS under concurrent load
    if env.warm_examples and server.in_process:
        threading.Thread(target=server.warm, args=(demo.warm_requests,), daemon=True).start()
    demo.launch(**launch_kwargs())


if __name__ == "__main__":
    main()
