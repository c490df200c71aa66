"""Gradio demo: plain denoisers break under contrast/brightness shifts, WNE twins hold.

Run ``python app.py`` and open http://127.0.0.1:7860 (``GRADIO_SERVER_NAME`` /
``GRADIO_SERVER_PORT`` override the address). Models come from ``checkpoints/``
(or ``$WNE_CHECKPOINT_DIR``, or the Hub repo ``$WNE_HUB_REPO``) and are loaded
once at start. This file only lays out the page and wires events; the logic
lives in :mod:`wne.demo`. Each computation is one function
(:class:`wne.demo.endpoints.Endpoints`) serving the page's button and the named
API endpoint (``/denoise``, ``/equivariance``, ``/sweep``, ``/inside``, ``/restore``) of the
same event.
"""

from __future__ import annotations

try:  # ZeroGPU: `spaces` must be imported before anything initializes CUDA.
    import spaces
except ImportError:  # not on Hugging Face Spaces: @spaces.GPU becomes a no-op
    spaces = None

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from wne import catalog
from wne.demo import DemoConfig, DemoHandlers, Zoo, classroom, content
from wne.demo.compare import SWEEP_SIDE
from wne.demo.endpoints import ENDPOINTS, Endpoints
from wne.demo.errors import user_facing
from wne.demo.inside import INSIDE_STEPS
from wne.demo.outputs import OutputFiles
from wne.demo.restore import Restorer
from wne.demo.runtime import limit_malloc_arenas
from wne.demo.settings import Param, shown_noise_controls, shown_restore_controls
from wne.demo.views import TABLE_HEADERS

ASSETS = Path(__file__).resolve().parent / "assets"
"""Example images (``examples/``) and precomputed Set12 curves (``results/``)."""
# Small working sizes are shown enlarged (pixelated, so the noise stays visible).
CSS = """
.wne-panel h3 {margin-bottom: 0.2em}
.wne-out img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}
"""
OUT: dict[str, Any] = {"format": "png", "interactive": False}
PRIVATE: dict[str, Any] = {"api_visibility": "private"}
ACTIVE = int(os.environ.get("WNE_CONCURRENT_REQUESTS", "24"))
"""Requests handled at once; the models still run one at a time (``wne.demo.cache.ModelQueue``),
so a request served from the result cache never waits behind computations."""
COMPUTE: dict[str, Any] = {  # a newer request from a page replaces a pending one; the
    "concurrency_id": "models",  # functions get raw values and validate them (one layer)
    "concurrency_limit": ACTIVE,
    "trigger_mode": "always_last",
    "preprocess": False,
}
QUEUE_SIZE = int(os.environ.get("WNE_QUEUE_SIZE", "48"))
"""Requests that may wait beyond :data:`ACTIVE`; more are refused ("queue is full"). Gradio
moves waiting requests to the active ones in its event loop, so a class clicking at once can
fill the waiting line before any starts: it holds more than a class (at 16, a burst of 30 at
256 px had 9 refused)."""
STREAMED = ("denoise",)
"""Computations whose page updates stream (applied on each change of their state)."""
IMG: dict[str, Any] = {**OUT, "height": 300, "elem_classes": "wne-out"}
INPUT: dict[str, Any] = {"type": "filepath", "image_mode": None, "format": "png", "height": 260}
INPUT.update(sources=["upload", "clipboard", "webcam"], elem_id="input-image")
TRUE = ("1", "true", "yes", "on")
PLOT: dict[str, Any] = {"x": "level", "y": "psnr", "color": "model", "height": 360}
WALK_PLOT: dict[str, Any] = {"x": "step", "x_title": "step", "color": "model", "height": 300}


def _gpu_hook(fn: Callable[..., Any], duration: Callable[..., int] | None = None) -> Any:
    """``@spaces.GPU(duration=...)`` on ZeroGPU; the function itself everywhere else."""
    if spaces is None:
        return fn
    return spaces.GPU(duration=duration)(fn) if duration else spaces.GPU(fn)


def make_handlers(zoo: Zoo | None = None, assets: Path = ASSETS) -> DemoHandlers:
    """The handlers for ``zoo`` (default: discovered), sized for its hardware."""
    zoo = zoo if zoo is not None else Zoo.discover()
    folders = {"results_dir": assets / "results", "examples_dir": assets / "examples"}
    return DemoHandlers(zoo, DemoConfig.for_zoo(zoo, **folders), gpu=_gpu_hook)


def control(p: Param, **kw: Any) -> Any:
    """The page control of a setting, from its one definition."""
    kw = {"label": p.label, "info": p.info or None, **kw}
    if p.kind in ("float", "int") and p.step:
        return gr.Slider(p.lo, p.hi, value=p.default, step=p.step, **kw)
    if p.kind in ("float", "int"):
        prec = 0 if p.kind == "int" else None
        return gr.Number(p.default, precision=prec, minimum=p.lo, maximum=p.hi, **kw)
    if p.kind == "choice":
        return gr.Radio(list(p.choices), value=p.default, **kw)
    if p.kind == "choices":
        return gr.CheckboxGroup(list(p.choices), value=list(p.default), **kw)
    return gr.Checkbox(p.default, **kw)


def show(updates: list[dict[str, Any]]) -> list[Any]:
    """Applies a computation's page updates (``frame``: rows of a table or plot)."""
    return [
        gr.update(value=pd.DataFrame(u.pop("frame")), **u) if "frame" in u else gr.update(**u)
        for u in (dict(u) for u in updates)
    ]


def _controls(h: DemoHandlers, first_image: str | None) -> dict[str, Any]:
    """The left column: image, sliders, model choice, run button, more settings."""
    p = h.params()
    c: dict[str, Any] = {}
    # image_mode=None: our own conversion keeps 16-bit, alpha and palettes intact
    c["image"] = gr.Image(first_image, label="Clean image (upload, paste or webcam)", **INPUT)
    for name, elem_id in (("a", "contrast-a"), ("b", "brightness-b")):
        c[name] = control(p[name], elem_id=elem_id)
    n = p["noise"]
    c["noise"] = gr.Dropdown(list(n.choices), value=n.default, label=n.label, elem_id="noise-type")
    c["noise_boxes"] = []  # only the level controls of the chosen noise type are shown
    for name, shown in shown_noise_controls(n.default).items():
        with gr.Column(visible=shown, min_width=0) as box:
            c[name] = control(p[name], elem_id=f"noise-{name.replace('_', '-')}")
        c["noise_boxes"].append(box)
    with gr.Accordion("About the noise types", open=False):
        gr.Markdown(content.NOISE_HELP)
    c["sigma_train"], c["backbones"] = control(p["sigma_train"]), control(p["backbones"])
    c["checkpoint"] = control(p["checkpoint"], elem_id="checkpoint")
    c["run"] = gr.Button("Denoise & compare", variant="primary", elem_id="run")
    with gr.Accordion("More settings", open=False):
        for name in ("order", "seed", "max_side", "clip"):
            c[name] = control(p[name])
        c["live"] = gr.Checkbox(True, label="re-run when a slider is released")
    with gr.Accordion("Available models", open=False):
        gr.Markdown(h.models_markdown())
    return c


def _compare_tab(h: DemoHandlers) -> dict[str, Any]:
    """Noisy input and target, one plain/WNE panel per backbone, scores, notes, JSON."""
    chosen = h.params()["backbones"].default
    t: dict[str, Any] = {}
    with gr.Row():
        t["noisy"] = gr.Image(label="noisy input", **IMG)
        t["target"] = gr.Image(label="target a·x + b", **IMG)
    panels = []
    for label, bid in h.params()["backbones"].choices:
        family = catalog.FAMILIES[bid]
        shown, single, short = bid in chosen, len(family.variants) == 1, family.short
        with gr.Column(elem_classes="wne-panel"):
            panels.append(gr.Markdown(f"### {label}", visible=shown))
            with gr.Row():
                left = short if single else f"{short} · plain"
                panels.append(gr.Image(label=left, visible=shown, **IMG))
                right = gr.Image(label=f"{short} · WNE", visible=shown and not single, **IMG)
                panels.append(right)
                pair = {"label": "plain ↔ WNE", "max_height": 300, "elem_classes": "wne-slider"}
                panels.append(gr.ImageSlider(visible=shown, **pair, **OUT))
    label = "scores vs the target (data range a)"
    t["table"] = gr.Dataframe(
        headers=TABLE_HEADERS, label=label, interactive=False, elem_id="scores"
    )
    t["notes"] = gr.Markdown(elem_id="notes")
    with gr.Accordion("All outputs", open=False, elem_classes="wne-secondary"):
        t["gallery"] = gr.Gallery(label="denoised outputs", format="png", columns=4)
    with gr.Accordion("Settings and numbers (JSON)", open=False, elem_classes="wne-secondary"):
        t["summary"] = gr.JSON(label="copy these to reproduce the result")
    t["state"] = gr.State()
    t["out"] = [t["noisy"], t["target"], t["gallery"], t["summary"], t["state"]]
    t["page"] = [t["noisy"], t["target"], *panels, t["table"], t["notes"]]
    return t


def _equivariance_tab(h: DemoHandlers) -> dict[str, Any]:
    """Heat maps of the equivariance defect, plain vs WNE."""
    gr.Markdown(content.EQUIVARIANCE_HELP)
    t: dict[str, Any] = {"backbone": control(h.params()["backbone"])}
    t["run"] = gr.Button("Measure equivariance", variant="primary")
    t["maps"] = gr.Gallery(label="defect maps", format="png", columns=2, height=340)
    t["text"] = gr.Markdown()
    with gr.Accordion("Defects (JSON)", open=False):
        t["defects"] = gr.JSON(label="defects")
    t["state"] = gr.State()
    t["out"], t["page"] = [t["maps"], t["defects"], t["state"]], [t["text"]]
    return t


def _sweep_tab(h: DemoHandlers) -> dict[str, Any]:
    """PSNR vs σ on the user's image, and the precomputed Set12 curves."""
    gr.Markdown(content.SWEEP_HELP.format(side=SWEEP_SIDE))
    t: dict[str, Any] = {"run": gr.Button("Run noise sweep", variant="primary")}
    t["plot"] = gr.LinePlot(
        title="PSNR vs σ", x_title="test σ (0–255)", y_title="PSNR (dB)", **PLOT
    )
    t["notes"] = gr.Markdown()
    with gr.Accordion("Curves (JSON)", open=False):
        t["curves"] = gr.JSON(label="PSNR vs sigma")
    t["state"] = gr.State()
    t["out"], t["page"] = [t["curves"], t["state"]], [t["plot"], t["notes"]]
    folder = h.config.results_dir
    pngs, csvs, note = content.precomputed_results(folder) if folder else ([], [], "")
    gr.Markdown("### Precomputed Set12 mismatch curves\n" + note)
    if pngs and folder:
        curves = [(str(p), str(p.relative_to(folder))) for p in pngs]
        gr.Gallery(curves, label="Set12 curves", format="png", columns=2, height=480)
    if csvs:
        gr.File([str(p) for p in csvs], label="Set12 tables (CSV)")
    return t


def _inside_tab(h: DemoHandlers) -> dict[str, Any]:
    """The WNE pipeline step by step: pictures, sentences and formulas with numbers."""
    gr.Markdown(content.INSIDE_HELP)
    t: dict[str, Any] = {"backbone": control(h.inside_backbone(), elem_id="inside-backbone")}
    t["run"] = gr.Button("Show the steps", variant="primary", elem_id="inside-run")
    t["page"] = []
    for _ in range(INSIDE_STEPS):
        t["page"].append(gr.Markdown())
        with gr.Row():
            t["page"] += [gr.Image(label="–", **IMG), gr.Image(label="–", **IMG)]
    t["page"].append(gr.Markdown(elem_id="inside-numbers"))
    with gr.Accordion("All pictures and numbers (JSON)", open=False):
        t["gallery"] = gr.Gallery(label="steps", format="png", columns=4, elem_id="inside-gallery")
        t["numbers"] = gr.JSON(label="numbers")
    t["state"] = gr.State()
    t["out"] = [t["gallery"], t["numbers"], t["state"]]
    return t


def _restore_tab(r: Restorer) -> dict[str, Any]:
    """A denoiser as an image prior: the plain and WNE walks streamed side by side."""
    gr.Markdown(content.RESTORE_HELP)
    p, t = r.params(), {}
    with gr.Row():  # the controls across the top, the two walks below at full width
        t["task"] = control(p["task"], elem_id="restore-task")
        with gr.Column(min_width=240):
            t["level_boxes"] = []  # only the chosen task's level is shown
            for name, shown in shown_restore_controls(p["task"].default).items():
                with gr.Column(visible=shown, min_width=0) as box:
                    t[name] = control(p[name], elem_id=f"restore-{name.replace('_', '-')}")
                t["level_boxes"].append(box)
            t["backbone"], t["sigma_train"] = control(p["backbone"]), control(p["sigma_train"])
        with gr.Column(min_width=240):
            with gr.Accordion("More settings", open=False):
                for name in ("seed", "max_steps", "max_side", "color"):
                    t[name] = control(p[name], elem_id=f"restore-{name.replace('_', '-')}")
            t["run"] = gr.Button("Restore", variant="primary", elem_id="restore-run")
            t["stop"] = gr.Button("Stop", elem_id="restore-stop")
    with gr.Row():
        images = [
            gr.Image(label=label, elem_id=f"restore-{label.lower()}", **IMG)
            for label in ("observed", "plain", "WNE")
        ]
    with gr.Row():  # σ̂_t on a log scale: from ~255 down to σ_L = 2.55
        plots = [
            gr.LinePlot(title=title, y=y, y_title=y_title, elem_id=eid, **WALK_PLOT)
            for title, y, y_title, eid in (
                ("noise σ̂ per step", "log10_sigma_hat", "log₁₀ σ̂ (0–255 scale)", "restore-sigma"),
                ("PSNR per step", "psnr", "PSNR vs clean (dB)", "restore-psnr"),
            )
        ]
    t["text"] = gr.Markdown(elem_id="restore-results")
    with gr.Accordion("Numbers (JSON)", open=False):
        t["summary"] = gr.JSON(label="settings, scores and σ̂ per step")
    t["state"] = gr.State()
    t["out"] = [*images, t["summary"], t["state"]]
    t["page"] = [*images, *plots, t["text"]]
    return t


def _about_tab() -> list[tuple[str, Any]]:
    """NE in three sentences, the formula, and the one-click scenarios."""
    gr.Markdown(content.ABOUT, latex_delimiters=[{"left": "$$", "right": "$$", "display": True}])
    gr.Markdown("### Try it: one-click scenarios")
    buttons = []
    for name, text in content.SCENARIOS.items():
        with gr.Row():
            buttons.append((name, gr.Button(name.capitalize(), scale=1)))
            gr.Markdown(text)
    return buttons


def _classroom_controls() -> dict[str, Any]:
    """Scenario link and slide figure (logic: :mod:`wne.demo.classroom`)."""
    k: dict[str, Any] = {}
    with gr.Accordion("Classroom: link to this scenario, slide figure", open=False):
        k["copy"] = gr.Button("Copy link to this scenario", elem_id="copy-link", size="sm")
        k["link"] = gr.Textbox(label="link", buttons=["copy"], elem_id="scenario-link")
        gr.Markdown(classroom.LINK_HELP)
        k["make"] = gr.Button("Download figure (PNG, PDF)", elem_id="make-figure", size="sm")
        k["files"] = gr.File(
            label="slide figure", file_count="multiple", height=120, elem_id="figure-files"
        )
        gr.Markdown(classroom.FIGURE_HELP)
    k["tab"], k["base"] = gr.Textbox(visible=False), gr.Textbox(visible=False)  # from LINK_JS
    return k


def _classroom_events(
    demo: gr.Blocks, kit: classroom.ClassroomKit, c: dict[str, Any], page: dict[str, Any]
) -> dict[str, Any]:
    """Opening a link sets the controls; copy link; figure; presentation mode. Returns a
    state per computation that an opened link sets (its change runs the computation)."""
    controls = [c["image"], *(c[n] for n in kit.controls)]
    go = {name: gr.State(False) for name in sorted({"denoise", *kit.computations.values()})}

    def open_link(request: gr.Request) -> list[Any]:
        updates, run = kit.open_link(request.query_params.multi_items())
        return [*show(updates), *(name == run for name in go)]

    outs = [*controls, page["tabs"], page["present"], page["note"], *go.values()]
    # Queued: Gradio fires a State's change only after queued events.
    demo.load(open_link, None, outs, concurrency_limit=None, **PRIVATE)
    link_in = [*controls, page["present"], page["tab"], page["base"]]
    page["copy"].click(
        user_facing(kit.copy_link), link_in, page["link"], js=classroom.LINK_JS, **PRIVATE
    )
    figure_in = [page["compare"][k] for k in ("noisy", "target", "gallery", "summary")]
    page["make"].click(user_facing(kit.figure), figure_in, page["files"], **PRIVATE)
    page["present"].change(None, page["present"], None, js=classroom.PRESENT_JS, **PRIVATE)
    return go


def _live_gate(live: bool, image: Any) -> None:
    """Lets a slider release re-run the comparison only when live updates are on."""
    if not live or image is None:
        raise gr.Error("live updates are off", visible=False, print_exception=False)


def build_demo(zoo: Zoo | None = None, handlers: DemoHandlers | None = None) -> gr.Blocks:
    """Builds the (queued) Blocks app.

    Args:
        zoo: The loaded models (default: discovered from ``$WNE_CHECKPOINT_DIR`` /
            ``checkpoints/`` and ``$WNE_HUB_REPO``).
        handlers: Handlers to use instead of :func:`make_handlers` ``(zoo)``.

    Returns:
        The demo, ready for ``launch(**launch_kwargs())``.
    """
    h = handlers if handlers is not None else make_handlers(zoo)
    cfg = h.config
    examples = content.load_examples(cfg.examples_dir) if cfg.examples_dir else []
    upload = gr.utils.get_upload_folder()
    roots = [upload, gr.utils.get_cache_folder(), *([cfg.examples_dir] if examples else [])]
    fns = Endpoints(h, OutputFiles(Path(upload) / "wne-outputs"), roots)
    device = "GPU (CUDA)" if h.zoo.device.type == "cuda" else "CPU"

    with gr.Blocks(title="WNE: normalization-equivariant denoisers") as demo:
        intro = content.INTRO.format(device=device, color=content.COLOR_NOTE)
        intro += "\n\n*" + content.QUEUE_NOTE.format(active=ACTIVE, queue=QUEUE_SIZE) + "*"
        gr.Markdown(intro, elem_classes="wne-secondary")
        k = {"note": gr.Markdown(visible=False, elem_id="link-note")}  # classroom kit
        k["present"] = gr.Checkbox(label="presentation mode", elem_id="present-toggle")
        with gr.Row():
            with gr.Column(scale=1, min_width=320, elem_id="wne-controls") as left_column:
                c = _controls(h, str(examples[0].path) if examples else None)
                k.update(_classroom_controls())
            with gr.Column(scale=3), gr.Tabs(selected="compare", elem_id="wne-tabs") as tabs:
                with gr.Tab("Compare", id="compare"):
                    tab = {"denoise": _compare_tab(h)}
                with gr.Tab("Equivariance", id="equivariance"):
                    tab["equivariance"] = _equivariance_tab(h)
                    c["backbone"] = tab["equivariance"]["backbone"]
                with gr.Tab("Noise sweep", id="sweep"):
                    tab["sweep"] = _sweep_tab(h)
                with gr.Tab("Inside WNE", id="inside"):
                    tab["inside"] = _inside_tab(h)
                with gr.Tab("Restore from a few pixels", id="restore"):
                    tab["restore"] = _restore_tab(fns.restorer)
                with gr.Tab("About", id="about"):
                    scenario_buttons = _about_tab()

        def run(start: Callable[..., Any], name: str, api: bool = False, **kw: Any) -> Any:
            """Chains computation ``name`` (its one function) and its page update to
            ``start``; ``api`` exposes the event as the named endpoint. Returns the
            computation's event (e.g. for a button that cancels it)."""
            t = tab[name]  # a tab's own control (e.g. its backbone) takes precedence
            inputs = [c["image"], *(t[p] if p in t else c[p] for p in ENDPOINTS[name].params)]
            if api:
                kw.update(api_name=name, api_description=ENDPOINTS[name].description)
                kw["api_visibility"] = "public"
            fn = getattr(fns, name)
            event = start(fn, inputs, t["out"], **{**COMPUTE, **PRIVATE, **kw})
            if name in STREAMED:  # its state's change shows each partial result
                return event
            event.success(show, t["state"], t["page"], queue=False, **PRIVATE)
            return event

        for name in STREAMED:  # in order: a change waits for the previous one's update
            state, page = tab[name]["state"], tab[name]["page"]
            state.change(show, state, page, queue=False, trigger_mode="always_last", **PRIVATE)

        run(c["run"].click, "denoise", api=True)
        run(tab["equivariance"]["run"].click, "equivariance", api=True)
        run(tab["sweep"]["run"].click, "sweep", api=True)
        run(tab["inside"]["run"].click, "inside", api=True)
        rt = tab["restore"]  # a generator: each snapshot's page updates are shown as they come
        rt["stop"].click(None, cancels=[run(rt["run"].click, "restore", api=True)], **PRIVATE)
        rt["state"].change(show, rt["state"], rt["page"], queue=False, **PRIVATE)
        rt["task"].change(
            lambda task: [gr.update(visible=v) for v in shown_restore_controls(task).values()],
            rt["task"],
            rt["level_boxes"],
            queue=False,
            **PRIVATE,
        )
        c["noise"].change(
            lambda kind: [gr.update(visible=v) for v in shown_noise_controls(kind).values()],
            c["noise"],
            c["noise_boxes"],
            queue=False,
            **PRIVATE,
        )
        releases = [c["a"].release, c["b"].release, c["sigma"].release]
        gate = gr.on(releases, _live_gate, [c["live"], c["image"]], queue=False, **PRIVATE)
        run(gate.success, "denoise", show_progress="minimal")
        for name, btn in scenario_buttons:

            def set_scenario(st: Any, _name: str = name) -> list[Any]:
                st = st if st in catalog.SIGMA_TRAINS else h.zoo.default_sigma()
                return [*content.scenario(_name, st).values(), gr.Tabs(selected="compare")]

            scenario = [*(c[k] for k in content.SCENARIO_CONTROLS), tabs]
            run(
                btn.click(set_scenario, c["sigma_train"], scenario, queue=False, **PRIVATE).then,
                "denoise",
            )

        if examples:
            params = ENDPOINTS["denoise"].params
            with left_column:
                ex = gr.Examples(
                    content.example_rows(examples, h.defaults(), params),
                    inputs=[c["image"], *(c[p] for p in params)],
                    example_labels=[e.label for e in examples],
                    # Uncached, run by the chained event below: Gradio 6.31's lazy caching
                    # cannot read back these outputs (cached None images).
                    cache_examples=False,
                    label="Examples: Kodak images (click to load and run)",
                )
            run(ex.load_input_event.then, "denoise")
        tab_ids = [(t.label, t.id) for t in tabs.children]
        runs = {"compare": "denoise", **{n: n for n in tab if n != "denoise"}}
        figures = Path(upload) / "wne-figures"
        kit = classroom.ClassroomKit(h.params(), examples, tab_ids, figures, runs)
        k.update(tabs=tabs, compare=tab["denoise"])
        for name, opened in _classroom_events(demo, kit, c, k).items():
            run(opened.change, name)  # once, when a link asks for it
    demo.queue(max_size=QUEUE_SIZE)
    return demo


def example_requests(h: DemoHandlers) -> list[tuple[str, dict[str, Any]]]:
    """The ``/denoise`` request each example button sends (image, arguments)."""
    folder = h.config.examples_dir
    examples = content.load_examples(folder) if folder else []
    params = ENDPOINTS["denoise"].params
    rows = content.example_rows(examples, h.defaults(), params)
    return [(row[0], dict(zip(params, row[1:], strict=True))) for row in rows]


def launch_kwargs() -> dict[str, Any]:
    """Keyword arguments of ``demo.launch`` (address from Gradio's env variables)."""
    return {
        "max_file_size": os.environ.get("WNE_MAX_FILE_SIZE", "25mb"),
        "max_threads": ACTIVE + 40,  # the active requests wait in threads; the page's too
        "ssr_mode": False,
        "theme": gr.themes.Soft(),
        "css": CSS + classroom.CSS,
    }


def main() -> None:
    """Loads the models once and serves the demo."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    arenas = int(os.environ.get("WNE_MALLOC_ARENAS", "2"))  # 0: glibc's default (one per thread)
    if arenas > 0:
        limit_malloc_arenas(arenas)  # bounded RSS under concurrent load
    handlers = make_handlers()
    demo = build_demo(handlers=handlers)
    # not on ZeroGPU (a wrapped compute function): there the GPU exists only within requests
    if os.environ.get("WNE_WARM_EXAMPLES", "1").lower() in TRUE and handlers.in_process:
        warm = threading.Thread(
            target=handlers.warm, args=(example_requests(handlers),), daemon=True
        )
        warm.start()  # background work of the model queue: a request waits at most for one
    demo.launch(**launch_kwargs())


if __name__ == "__main__":
    main()
