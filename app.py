"""Gradio demo: plain denoisers break under contrast/brightness shifts, WNE twins hold.

Run ``python app.py`` (``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` set the address).
Each page's settings are one typed dataclass of :mod:`wne.demo.pages` whose
:class:`~wne.demo.schema.Form` makes its controls, its API endpoint and its links' check; this
file lays out the page and wires one typed handler per event (:class:`wne.demo.site.Site`).
"""

try:  # ZeroGPU: `spaces` must be imported before anything initializes CUDA.
    import spaces
except ImportError:  # not on Hugging Face Spaces: @spaces.GPU becomes a no-op
    spaces = None

import functools
import inspect
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from wne import catalog
from wne.demo import content
from wne.demo.calibration import calibrate
from wne.demo.errors import DemoInputError
from wne.demo.imaging import save_png, stretched_preview
from wne.demo.pages import compare, inside, restore, rivals, sweep, why
from wne.demo.process import limit_malloc_arenas
from wne.demo.schema import Form
from wne.demo.serving import Server
from wne.demo.site import LINKED, NO_IMAGE, SCENE, SECTIONS, TABS, Site, page_forms
from wne.demo.zoo import Zoo
from wne.settings import EnvSettings

log = logging.getLogger("app")
ASSETS = Path(__file__).resolve().parent / "assets"  # examples/, results/ (the lab's)
ENV = EnvSettings.from_env()
ACTIVE = ENV.concurrent_requests
"""Requests handled at once; the models still run one at a time (the server's queue), so
a request answered from the cache never waits behind computations."""
QUEUE_SIZE = ENV.queue_size  # requests that may wait beyond ACTIVE (a class clicking at once)
Outputs4 = tuple[gr.FileData, gr.FileData | None, Any, dict]
"""The type of each yield of ``/denoise`` and ``/restore``: ``gr.api`` reads a tuple return
hint as that many outputs (each streamed on its own, as the page's components are)."""
PROGRESS = gr.Progress()  # the page handlers' progress (Gradio gives each call its own)
MODELS: dict[str, Any] = {"concurrency_id": "models", "concurrency_limit": ACTIVE}
PAGE: dict[str, Any] = {**MODELS, "api_visibility": "private", "trigger_mode": "always_last"}
PRIVATE: dict[str, Any] = {"api_visibility": "private", "queue": False}
OUT: dict[str, Any] = {"format": "png", "interactive": False}
IMG: dict[str, Any] = {**OUT, "height": 300, "elem_classes": "wne-out"}
WALK_PLOT: dict[str, Any] = {"x": "step", "x_title": "step", "color": "model", "height": 300}
WALK_PLOTS = (  # title, y, y_title, elem_id
    ("noise σ̂ per step", "log10_sigma_hat", "log₁₀ σ̂ (0–255 scale)", "restore-sigma"),
    ("PSNR per step", "psnr", "PSNR vs clean (dB)", "restore-psnr"),
)
COLLAPSE = {"x": "delta", "y": "q", "color": "curve", "x_title": "Δ", "y_title": "Q (dB)"}
SWEEP_PLOT = {"x": "level", "y": "psnr", "color": "model", "height": 360, "y_title": "PSNR (dB)"}


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


# -- the schema's controls and endpoints ---------------------------------------------------


def control(form: Form, name: str, **kw: Any) -> Any:
    """The page's control of one setting, from its :class:`wne.demo.schema.Spec`."""
    s = form.settings[name]
    sp = s.spec
    kw = {"value": form.default(name), "label": sp.label, "info": sp.info or None, **kw}
    kw.setdefault("elem_id", sp.elem_id)
    if s.kind is bool:
        return gr.Checkbox(**kw)
    if s.kind is tuple:
        return gr.CheckboxGroup(list(sp.choices), **kw)
    if sp.choices:
        return (gr.Dropdown if sp.widget == "dropdown" else gr.Radio)(list(sp.choices), **kw)
    whole = {"precision": 0} if s.kind is int else {}
    if sp.widget == "number":
        return gr.Number(minimum=sp.lo, maximum=sp.hi, **whole, **kw)
    return gr.Slider(sp.lo, sp.hi, step=sp.step, **whole, **kw)


def typed_call(
    fn: Callable[..., Any],
    params: list[inspect.Parameter],
    convert: Callable[..., tuple],
    **hints: Any,
) -> Callable[..., Any]:
    """``fn(*convert(*args))`` under the signature ``params`` (what Gradio reads), a generator
    when ``fn`` is one; failures shown as :func:`shown_errors` does."""
    if inspect.isgeneratorfunction(fn):

        def call(*args: Any) -> Iterator[Any]:
            yield from fn(*convert(*args))

    else:

        def call(*args: Any) -> Any:
            return fn(*convert(*args))

    call.__signature__ = inspect.Signature(params, return_annotation=hints.get("return"))  # type: ignore[attr-defined]
    call.__annotations__ = {p.name: p.annotation for p in params} | hints
    call.__name__ = call.__qualname__ = getattr(fn, "func", fn).__name__
    return shown_errors(call)


ARG = inspect.Parameter.POSITIONAL_OR_KEYWORD


def endpoint(form: Form, fn: Callable[..., Any], returns: Any) -> Callable[..., Any]:
    """A named API endpoint: ``fn(image path, settings)`` behind a typed signature made from
    ``form`` (the image, then every setting with this page's default), so ``gr.api`` and
    ``gradio_client`` see each setting's name, type and default."""

    def convert(image: Any, *values: Any) -> tuple:
        if image is None:
            raise DemoInputError(NO_IMAGE)
        return image, form.from_values(values)  # the server checks that it was uploaded

    params = [inspect.Parameter("image", ARG, annotation=gr.FileData)] + [
        inspect.Parameter(n, ARG, default=form.default(n), annotation=s.hint)
        for n, s in form.settings.items()
    ]
    return typed_call(fn, params, convert, **{"return": returns})


def on_page(form: Form, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A page event's handler: the controls' values as ``form``'s typed settings, then
    ``fn(image, settings, progress)``."""
    params = [
        inspect.Parameter("progress", ARG, default=PROGRESS, annotation=gr.Progress),
        inspect.Parameter("image", ARG, default=None, annotation=Any),
        inspect.Parameter("values", inspect.Parameter.VAR_POSITIONAL, annotation=Any),
    ]
    return typed_call(fn, params, lambda p, image, *v: (image, form.from_values(v), p))


def and_unplaced(form: Form, names: tuple[str, ...], *placed: dict[str, Any]) -> list[str]:
    """``names``, then the form's settings no control was laid out for (a new field's goes
    there: a new setting is one dataclass field)."""
    return [*names, *(n for n in form.names if n not in names and not any(n in p for p in placed))]


def validator(form: Form) -> Callable[..., list[Any]]:
    """The page's validator: an image is given, and every multiple choice has a choice."""

    def validate(image: str | None, *values: Any) -> list[Any]:
        v, kinds = dict(zip(form.names, values, strict=False)), form.settings
        return [gr.validate(image is not None, NO_IMAGE)] + [
            gr.validate(kinds[n].kind is not tuple or bool(v[n]), f"choose at least one of {n}")
            for n in form.names
        ]

    return validate


def denoise_page(site: Site, image: Any, s: compare.Scene, progress: Any) -> Iterator[list]:
    """The Compare tab, streamed: inputs, a panel per backbone, scores, notes, files."""
    for img, tgt, out, info, saved in site.denoise_results(image, s, progress):
        img, tgt = save_png(img, site.files), save_png(tgt, site.files)
        out = [(save_png(o, site.files), caption) for o, caption in out]
        view = compare.page(img, out, info)
        cells = []
        for p in view["panels"]:
            cells += [
                gr.Markdown(p.header, visible=p.visible),
                gr.Image(p.left, label=p.left_label, visible=p.visible),
                gr.Image(p.right, label=p.right_label, visible=p.visible and p.right_visible),
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


def equivariance_page(site: Site, image: Any, p: Any, progress: Any) -> list:
    """The Equivariance tab: defect maps, text, defects."""
    out, info, text = site.equivariance_results(image, p, progress)
    return [out, text, info]


def sweep_page(site: Site, image: Any, levels: Any, progress: Any) -> list:
    """The Noise sweep tab: the plot, its notes, the curves."""
    res, out = site.sweep_results(image, levels, progress)
    title, x_title = sweep.plot_titles(res)
    return [
        gr.LinePlot(pd.DataFrame(out["rows"]), x_title=x_title, title=title),
        f"**{out['title']}**\n\n{out['notes']}",
        out,
    ]


def inside_page(site: Site, image: Any, st: Any, progress: Any) -> list:
    """The Inside WNE tab: each step's text and two pictures, the numbers."""
    out, info = site.inside_results(image, st, progress)
    cells, pics = [], iter(out)
    for step in info["steps"]:
        shown = [next(pics) for _ in range(step["pictures"])]
        shown += [(None, "–")] * (2 - step["pictures"])
        cells += [
            f"### {step['title']}\n\n{step['text']}",
            *(gr.Image(img, label=cap, visible=img is not None) for img, cap in shown),
        ]
    return [*cells, info["text"], out, info]


def why_page(site: Site, image: Any, f: Any, progress: Any) -> list:
    """The Why tab: the marked image, the filters, the numbers, Q vs Δ with the image's Δ."""
    marked, pictures, info, text, rows = site.filters_results(image, f, progress)
    return [marked, pictures, text, pd.DataFrame(rows, columns=["delta", "q", "curve"]), info]


def rivals_page(site: Site, image: Any, r: Any, progress: Any) -> Iterator[list]:
    """The Why tab's objections, streamed: the shifted input, the outputs, answers, table."""
    for shifted, gallery, info, text, table in site.rivals_results(image, r, progress):
        yield [shifted, gallery, text, pd.DataFrame(table, columns=rivals.TABLE_HEADERS), info]


def restore_page(site: Site, image: Any, w: restore.Walks, progress: Any) -> Iterator[list]:
    """The Restore tab, streamed: observed, plain and WNE images, the two plots, text."""
    for observed, images, info in site.walks_results(image, w, progress):
        sigma_rows, psnr_rows = restore.plots(info)
        budget = [0, info["settings"]["max_steps"]]
        shown = [None if i is None else save_png(i, site.files) for i in [observed, *images]]
        yield [
            *(gr.Image(f, label=cap) for f, cap in zip(shown, info["captions"], strict=True)),
            gr.LinePlot(pd.DataFrame(sigma_rows), x_lim=budget),
            gr.LinePlot(pd.DataFrame(psnr_rows), x_lim=budget),
            info["text"],
            info,
        ]


# -- the named API endpoints: JSON at the edge -----------------------------------------------


API = {  # endpoint: (page, return type); its function is the site's ``<endpoint>_api``
    "denoise": ("compare", Outputs4),
    "equivariance": ("equivariance", tuple[list, dict]),
    "sweep": ("sweep", dict),
    "inside": ("inside", tuple[list, dict]),
    "filters": ("why", tuple[list, dict]),
    "rivals": ("rivals", tuple[list, dict]),
    "restore": ("restore", Outputs4),
}


# -- the page ----------------------------------------------------------------------------------


def build_demo(zoo: Zoo | None = None, server: Server | None = None) -> gr.Blocks:
    """Builds the (queued) app around ``zoo`` (default: discovered) or a ready ``server``."""
    server = server if server is not None else make_server(zoo)
    upload = Path(gr.utils.get_upload_folder())
    examples = content.load_examples(ASSETS / "examples")
    site = Site(
        server,
        *(upload / f"wne-{n}" for n in ("outputs", "figures", "native")),
        forms=page_forms(server),
        examples={e.path.stem: e.path for e in examples},
        file=lambda path: gr.FileData(path=path),
        explained=ASSETS / "results" / "explain",
    )
    ui: dict[str, Any] = {}
    with gr.Blocks(title="WNE: normalization-equivariant denoisers") as demo:
        device = "GPU (CUDA)" if server.zoo.device.type == "cuda" else "CPU"
        intro = content.INTRO.format(device=device, color=content.COLOR_NOTE)
        queue = content.QUEUE_NOTE.format(active=ACTIVE, queue=QUEUE_SIZE)
        gr.Markdown(f"{intro}\n\n*{queue}*", elem_classes="wne-secondary")
        ui["link_note"] = gr.Markdown(visible=False, elem_id="link-note")
        ui["present"] = gr.Checkbox(label="presentation mode", elem_id="present-toggle")
        with gr.Row():
            with gr.Column(scale=1, min_width=320, elem_id="wne-controls") as ui["left"]:
                _scene_controls(site, ui, examples)
            with gr.Column(scale=3), gr.Tabs(selected="compare", elem_id="wne-tabs") as ui["tabs"]:
                for label, tab in TABS.items():
                    with gr.Tab(label, id=tab):
                        TAB_LAYOUTS[tab](site, ui)
        events = _page_events(site, ui)
        _classroom(site, ui, events, examples, demo)
        for name, (page, returns) in API.items():
            call = endpoint(site.forms[page], getattr(site, f"{name}_api"), returns)
            gr.api(call, api_name=name, api_description=content.API_DOCS[name], **MODELS)
        gr.api(server.report, api_name="cache_stats", api_visibility="undocumented", queue=False)
    demo.queue(max_size=QUEUE_SIZE)
    demo.wne_server = server  # type: ignore[attr-defined]
    demo.wne_site = site  # type: ignore[attr-defined]
    demo.wne_controls = {n: ui[n] for n in LINKED}  # type: ignore[attr-defined]
    return demo


def _scene_controls(site: Site, ui: dict[str, Any], examples: list[Any]) -> None:
    """The left column: the image, the scene's controls, the models and the classroom."""
    form, zoo = site.forms["compare"], site.server.zoo
    ui["image"] = gr.Image(
        str(examples[0].path) if examples else None,
        type="filepath",
        image_mode=None,
        format="png",
        height=260,
        elem_id="input-image",
        sources=["upload", "clipboard", "webcam"],
        label="Clean image (upload, paste or webcam)",
    )
    ui["preview"] = gr.Image(visible=False, elem_id="native-preview", height=200, **OUT)
    for n in ("a", "b", "noise"):
        ui[n] = control(form, n)
    ui["noise_boxes"] = []
    for n in compare.NOISE_PARAMS:
        with gr.Column(visible=n == "sigma", min_width=0) as box:
            ui[n] = control(form, n)
        ui["noise_boxes"].append(box)
    with gr.Accordion("About the noise types", open=False):
        gr.Markdown(content.NOISE_HELP)
    for n in ("sigma_train", "backbones", "checkpoint"):
        ui[n] = control(form, n)
    ui["run"] = gr.Button("Denoise & compare", variant="primary", elem_id="run")
    with gr.Accordion("More settings", open=False):
        for n in and_unplaced(form, ("order", "seed", "max_side", "clip"), ui):
            ui[n] = control(form, n)
        ui["live"] = gr.Checkbox(True, label="re-run when a slider is released")
    note = site.server.defaults.note
    with gr.Accordion("Available models", open=False):
        gr.Markdown(zoo.summary_markdown() + (f"\n\n- {note}" if note else ""))
    with gr.Accordion("Classroom: link to this scenario, slide figure", open=False):
        ui["copy"] = gr.Button("Copy link to this scenario", elem_id="copy-link", size="sm")
        ui["link"] = gr.Textbox(label="link", buttons=["copy"], elem_id="scenario-link")
        gr.Markdown(content.LINK_HELP)
        ui["make"] = gr.Button("Download figure (PNG, PDF)", elem_id="make-figure", size="sm")
        ui["figure_files"] = gr.File(
            label="slide figure", file_count="multiple", height=120, elem_id="figure-files"
        )
        gr.Markdown(content.FIGURE_HELP)
    ui["tab_label"], ui["base_url"] = (gr.Textbox(visible=False) for _ in "tu")  # by LINK_JS


def _compare_tab(site: Site, ui: dict[str, Any]) -> None:
    """The Compare tab's outputs: noisy input and target, a panel per backbone (header,
    plain or only output, WNE output, slider), the scores, the notes, all outputs, JSON."""
    chosen = site.forms["compare"].default("backbones")
    with gr.Row():
        noisy = gr.Image(label="noisy input", **IMG)
        target = gr.Image(label="target a·x + b", **IMG)
    panels = []
    for label, bid in compare.BACKBONES:
        fam = catalog.FAMILIES[bid]
        on, single = bid in chosen, len(fam.variants) == 1
        with gr.Column(elem_classes="wne-panel"):
            panels.append(gr.Markdown(f"### {label}", visible=on))
            with gr.Row():
                left = fam.short if single else f"{fam.short} · plain"
                panels.append(gr.Image(label=left, visible=on, **IMG))
                right = gr.Image(label=f"{fam.short} · WNE", visible=on and not single, **IMG)
                pair = {"max_height": 300, "elem_classes": "wne-slider", **OUT}
                panels += [right, gr.ImageSlider(label="plain ↔ WNE", visible=on, **pair)]
    table = gr.Dataframe(
        headers=compare.TABLE_HEADERS,
        interactive=False,
        elem_id="scores",
        label="scores vs the target (data range a)",
    )
    notes = gr.Markdown(elem_id="notes")
    label = "denoised outputs in the file's format and bit depth"
    files = gr.File(label=label, file_count="multiple", visible=False, elem_id="downloads")
    with gr.Accordion("All outputs", open=False, elem_classes="wne-secondary"):
        ui["gallery"] = gr.Gallery(label="denoised outputs", format="png", columns=4)
    with gr.Accordion("Settings and numbers (JSON)", open=False, elem_classes="wne-secondary"):
        ui["summary"] = gr.JSON(label="copy these to reproduce the result")
    ui["noisy"], ui["target"] = noisy, target
    ui["compare_out"] = [
        noisy, target, *panels, table, notes, files, ui["gallery"], ui["summary"]
    ]  # fmt: skip


def _equivariance_tab(site: Site, ui: dict[str, Any]) -> None:
    gr.Markdown(content.EQUIVARIANCE_HELP)
    ui["backbone"] = control(site.forms["equivariance"], "backbone")
    ui["eq_run"] = gr.Button("Measure equivariance", variant="primary")
    maps = gr.Gallery(label="defect maps", format="png", columns=2, height=340)
    text = gr.Markdown()
    with gr.Accordion("Defects (JSON)", open=False):
        defects = gr.JSON(label="defects")
    ui["equivariance_out"] = [maps, text, defects]


def _sweep_tab(site: Site, ui: dict[str, Any]) -> None:
    gr.Markdown(content.SWEEP_HELP.format(side=sweep.SIDE))
    ui["sw_run"] = gr.Button("Run noise sweep", variant="primary")
    plot = gr.LinePlot(title="PSNR vs σ", x_title="test σ (0–255)", **SWEEP_PLOT)
    notes = gr.Markdown()
    with gr.Accordion("Curves (JSON)", open=False):
        curves = gr.JSON(label="PSNR vs sigma")
    ui["sweep_out"] = [plot, notes, curves]
    results = ASSETS / "results"
    pngs, csvs, found = content.precomputed_results(results)
    gr.Markdown("### Precomputed Set12 mismatch curves\n" + found)
    if pngs:
        shown = [(str(p), str(p.relative_to(results))) for p in pngs]
        gr.Gallery(shown, label="Set12 curves", format="png", columns=2, height=480)
    if csvs:  # named by their folder: eight are psnr.csv
        named = content.named_copies(csvs, results, site.files.parent / "wne-tables")
        label = "Set12 tables (CSV), named by their folder"
        gr.File([str(p) for p in named], label=label, elem_id="sweep-tables")


def _inside_tab(site: Site, ui: dict[str, Any]) -> None:
    gr.Markdown(content.INSIDE_HELP)
    ui["inside_backbone"] = control(site.forms["inside"], "backbone")
    ui["in_run"] = gr.Button("Show the steps", variant="primary", elem_id="inside-run")
    steps = []
    for _ in range(inside.INSIDE_STEPS):
        steps.append(gr.Markdown())
        with gr.Row():
            steps += [gr.Image(label="–", **IMG), gr.Image(label="–", **IMG)]
    text = gr.Markdown(elem_id="inside-numbers")
    with gr.Accordion("All pictures and numbers (JSON)", open=False):
        pictures = gr.Gallery(label="steps", format="png", columns=4, elem_id="inside-gallery")
        numbers = gr.JSON(label="numbers")
    ui["inside_out"] = [*steps, text, pictures, numbers]


def _restore_tab(site: Site, ui: dict[str, Any]) -> None:
    """The Restore tab: its own controls (each task's level shown for that task only)."""
    gr.Markdown(content.RESTORE_HELP)
    form, r = site.forms["restore"], {"boxes": []}
    with gr.Row():
        r["task"] = control(form, "task")
        with gr.Column(min_width=240):
            for name in restore.LEVELS.values():
                with gr.Column(visible=name == "keep", min_width=0) as box:
                    r[name] = control(form, name)
                r["boxes"].append(box)
            for n in ("backbone", "sigma_train"):
                r[n] = control(form, n)
        with gr.Column(min_width=240):
            with gr.Accordion("More settings", open=False):
                for n in and_unplaced(form, ("seed", "max_steps", "max_side", "color"), r):
                    r[n] = control(form, n)
            r["run"] = gr.Button("Restore", variant="primary", elem_id="restore-run")
            r["stop"] = gr.Button("Stop", elem_id="restore-stop")
    with gr.Row():
        walked = [
            gr.Image(label=x, elem_id=f"restore-{x.lower()}", **IMG)
            for x in ("observed", "plain", "WNE")
        ]
    with gr.Row():
        plots = [
            gr.LinePlot(title=t, y=y, y_title=yt, elem_id=e, **WALK_PLOT)
            for t, y, yt, e in WALK_PLOTS
        ]
    text = gr.Markdown(elem_id="restore-results")
    with gr.Accordion("Numbers (JSON)", open=False):
        result = gr.JSON(label="settings, scores and σ̂ per step")
    ui["restore"], ui["restore_out"] = r, [*walked, *plots, text, result]


def _why_tab(site: Site, ui: dict[str, Any]) -> None:
    """The Why page: a pixel's adaptive filters (plain vs WNE, on y and a·y + b) and Δ."""
    gr.Markdown(content.WHY_HELP)
    form, w = site.forms["why"], {}
    with gr.Row():
        w["backbone"] = control(form, "backbone")
        for n in and_unplaced(form, ("row", "col", "radius", "crop"), ui, w):
            w[n] = control(form, n)
    ui["why_run"] = gr.Button("Show the filters", variant="primary", elem_id="why-run")
    with gr.Row():
        picked = gr.Image(label="noisy image: click a pixel", elem_id="why-image", **IMG)
        shown = gr.Gallery(label="filters", format="png", columns=2, elem_id="why-filters")
    text = gr.Markdown(elem_id="why-numbers")
    headers, rows = why.coverage_rows(site.coverage)
    label = "Δ coverage (%) of 70² patches: σ_test in σ_train's range"
    gr.Dataframe(rows, headers=headers, label=label, elem_id="why-coverage")
    collapse = gr.LinePlot(title="normalized error Q vs Δ", elem_id="why-collapse", **COLLAPSE)
    with gr.Accordion("Numbers (JSON)", open=False):
        summary = gr.JSON(label="per model filter_sum and rho, Δ")
    ui["why"], ui["why_picked"] = w, picked
    ui["why_out"] = [picked, shown, text, collapse, summary]
    _rivals_section(site, ui)


def _rivals_section(site: Site, ui: dict[str, Any]) -> None:
    """The Why tab's objections: each rival beside plain and WNE on the image and its shift."""
    gr.Markdown(content.RIVALS_HELP, elem_id="rivals-help")
    form, r = site.forms["rivals"], {}
    for n in and_unplaced(form, ("objections",), ui):
        r[n] = control(form, n)
    ui["rivals_run"] = gr.Button("Answer the objections", variant="primary", elem_id="rivals-run")
    text = gr.Markdown(elem_id="rivals-answers")
    label = "PSNR at y and at a·y + b (data range a), ε_NE between them"
    table = gr.Dataframe(
        headers=rivals.TABLE_HEADERS, interactive=False, label=label, elem_id="rivals-table"
    )
    with gr.Row():
        shifted = gr.Image(label="noisy a·y + b", elem_id="rivals-input", **IMG)
        outs = gr.Gallery(label="outputs at a·y + b", format="png", columns=3, elem_id="rivals-out")
    make = gr.Button("Download figure (PNG, PDF)", size="sm", elem_id="rivals-figure")
    files = gr.File(label="slide figure", file_count="multiple", height=120)
    with gr.Accordion("Numbers (JSON)", open=False):
        summary = gr.JSON(label="per model PSNR and ε_NE, per objection the finding")
    figure = shown_errors(functools.partial(rivals.slide_figure, folder=site.figures))
    make.click(figure, [shifted, outs, summary], files, api_visibility="private")
    ui["rivals"], ui["rivals_out"] = r, [shifted, outs, text, table, summary]


def pick_pixel(evt: gr.SelectData) -> list[int]:
    """The clicked pixel of the noisy image as (row, column)."""
    x, y = evt.index
    return [int(y), int(x)]


def _about_tab(site: Site, ui: dict[str, Any]) -> None:
    gr.Markdown(content.ABOUT, latex_delimiters=[{"left": "$$", "right": "$$", "display": True}])
    gr.Markdown("### Try it: one-click scenarios")
    ui["scenarios"] = []
    for name, text in content.SCENARIOS.items():
        with gr.Row():
            ui["scenarios"].append((name, gr.Button(name.capitalize(), scale=1)))
            gr.Markdown(text)


TAB_LAYOUTS = {
    "compare": _compare_tab,
    "equivariance": _equivariance_tab,
    "sweep": _sweep_tab,
    "inside": _inside_tab,
    "restore": _restore_tab,
    "why": _why_tab,
    "about": _about_tab,
}
"""Each tab's layout, by tab id (:data:`wne.demo.site.TABS` gives their labels and order)."""


def _page_events(site: Site, ui: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each tab's computation wired to its button; returns the events a link may start."""

    def event(page: str, fn: Callable[..., Any], outputs: list, where: dict) -> dict[str, Any]:
        form = site.forms[page]
        inputs = [ui["image"], *(where[n] for n in form.names)]
        handler = on_page(form, functools.partial(fn, site))
        return {"fn": handler, "inputs": inputs, "outputs": outputs, "validator": validator(form)}

    r = ui["restore"]
    events = {  # a tab's computation: run by its button, or by a link that opens the tab
        "compare": event("compare", denoise_page, ui["compare_out"], ui),
        "equivariance": event("equivariance", equivariance_page, ui["equivariance_out"], ui),
        "sweep": event("sweep", sweep_page, ui["sweep_out"], ui),
        "inside": event(
            "inside", inside_page, ui["inside_out"], {**ui, "backbone": ui["inside_backbone"]}
        ),
        "why": event("why", why_page, ui["why_out"], {**ui, **ui["why"]}),
        "rivals": event("rivals", rivals_page, ui["rivals_out"], {**ui, **ui["rivals"]}),
    }
    buttons = ("run", "eq_run", "sw_run", "in_run", "why_run", "rivals_run")
    for button, tab in zip(buttons, events, strict=True):
        ui[button].click(**events[tab], **PAGE)
    walk = event("restore", restore_page, ui["restore_out"], r)
    walking = r["run"].click(**walk, **{**PAGE, "trigger_mode": "once"})
    r["stop"].click(None, cancels=[walking], api_visibility="private")
    shows(ui["noise"], ui["noise_boxes"], compare.NOISE_PARAMS, compare.noise_params_of)
    ui["image"].change(preview, ui["image"], ui["preview"], **PRIVATE)
    shows(r["task"], r["boxes"], list(restore.LEVELS.values()), lambda t: [restore.LEVELS[t]])
    w = ui["why"]  # a clicked pixel is shown at once
    ui["why_picked"].select(pick_pixel, None, [w["row"], w["col"]], **PRIVATE).success(
        **events["why"], **PAGE
    )
    den = {**events["compare"], **PAGE}
    released = [ui["a"].release, ui["b"].release, ui["sigma"].release]
    gated = gr.on(released, live_gate, [ui["live"], ui["image"]], None, **PRIVATE)
    gated.success(**{**den, "show_progress": "minimal"})
    scenario = [*(ui[k] for k in content.SCENARIO_CONTROLS), ui["tabs"]]
    for name, btn in ui["scenarios"]:
        pick = functools.partial(set_scenario, name)
        btn.click(pick, ui["sigma_train"], scenario, **PRIVATE).then(**den)
    return events


def shows(choice: Any, boxes: list, names: list[str], shown: Callable[[Any], list[str]]) -> None:
    """Shows, when ``choice`` changes, only the boxes (one per name) of its ``shown`` names."""
    update = lambda value: [gr.Column(visible=n in shown(value)) for n in names]  # noqa: E731
    choice.change(update, choice, boxes, **PRIVATE)


def preview(image: str | None) -> Any:
    """A 16-bit or float upload shown stretched from its value range (else hidden)."""
    pixels, label = stretched_preview(image)
    return gr.Image(pixels, label=label or None, visible=pixels is not None)


def live_gate(on: bool, image: str | None) -> None:
    """Lets a released slider re-run the comparison only when live updates are on."""
    if not on or image is None:
        raise gr.Error("live updates are off", visible=False, print_exception=False)


def set_scenario(name: str, sigma_train: int) -> list[Any]:
    """A one-click scenario's settings, and the Compare tab."""
    return [*content.scenario(name, sigma_train).values(), gr.Tabs(selected="compare")]


def _classroom(
    site: Site, ui: dict[str, Any], events: dict[str, dict], examples: list[Any], demo: gr.Blocks
) -> None:
    """Examples, scenario links (opened and copied), the slide figure, presentation mode."""
    form, den = site.forms["compare"], {**events["compare"], **PAGE}
    rows = [[str(e.path), *(e.settings.get(n, form.default(n)) for n in SCENE)] for e in examples]
    if examples:
        with ui["left"]:
            ex = gr.Examples(
                rows,
                inputs=den["inputs"],
                example_labels=[e.label for e in examples],
                cache_examples=False,
                label="Examples: Kodak images (click to load and run)",
            )
        ex.load_input_event.then(**den)
    demo.warm_requests = [(image, form.from_values(v)) for image, *v in rows]  # type: ignore[attr-defined]
    linked = [ui[n] for n in LINKED]
    go = gr.State("")

    def opened_link(request: gr.Request) -> list[Any]:
        return open_link(site, request)

    shown = [ui["image"], *linked, ui["tabs"], ui["present"], ui["link_note"], go]
    opened = demo.load(opened_link, None, shown, api_visibility="private")
    for name, ev in events.items():
        tab = SECTIONS.get(name, name)
        opened.then(functools.partial(gate, tab), go, None, **PRIVATE).success(**{**PAGE, **ev})
    copy_in = [ui["image"], *linked, ui["present"], ui["tab_label"], ui["base_url"]]
    copy = shown_errors(site.link_to)
    ui["copy"].click(copy, copy_in, ui["link"], js=content.LINK_JS, api_visibility="private")
    figure = shown_errors(functools.partial(compare.slide_figure, folder=site.figures))
    figure_in = [ui["noisy"], ui["target"], ui["gallery"], ui["summary"]]
    ui["make"].click(figure, figure_in, ui["figure_files"], api_visibility="private")
    ui["present"].change(None, ui["present"], None, js=content.PRESENT_JS, api_visibility="private")


def open_link(site: Site, request: gr.Request) -> list[Any]:
    """The page opened from a scenario link: its settings, tab and a note on what was ignored."""
    values, text, tab = site.read_link(request.query_params.multi_items())
    image = values.get("image")
    return [
        gr.Image(str(site.examples[image])) if image in site.examples else gr.skip(),
        *(values.get(n, gr.skip()) for n in LINKED),
        gr.Tabs(selected=values["tab"]) if "tab" in values else gr.skip(),
        values.get("present", gr.skip()),
        gr.Markdown(text, visible=bool(text)),
        tab,
    ]


def gate(tab: str, opened: str) -> None:
    """Lets a link's computation run only for the tab it opened."""
    if opened != tab:
        raise gr.Error("not this tab", visible=False, print_exception=False)


def make_server(zoo: Zoo | None = None) -> Server:
    """The server for ``zoo`` (default: discovered), calibrated
    (:func:`wne.demo.site.calibrate`: its default working size and checkpoints)."""
    zoo = zoo if zoo is not None else Zoo.discover()
    roots = [gr.utils.get_upload_folder(), str(ASSETS / "examples")]
    server = Server(zoo, gpu=gpu, upload_roots=roots)
    server.defaults = calibrate(zoo)
    return server


def launch_kwargs() -> dict[str, Any]:
    """Keyword arguments of ``demo.launch`` (address from Gradio's env variables)."""
    return {
        "max_file_size": EnvSettings.from_env().max_file_size,
        "max_threads": ACTIVE + 40,
        "ssr_mode": False,
        "theme": gr.themes.Soft(),
        "css": content.PAGE_CSS,
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
