"""Gradio demo: plain denoisers break under contrast/brightness shifts, WNE twins hold.

Run ``python app.py`` and open http://127.0.0.1:7860 (``GRADIO_SERVER_NAME`` /
``GRADIO_SERVER_PORT`` override the address). Models come from ``checkpoints/``
(or ``$WNE_CHECKPOINT_DIR``, or the Hub repo ``$WNE_HUB_REPO``) and are loaded
once at start. This file only lays out the page and wires events; the logic
lives in :mod:`wne.demo`.
"""

from __future__ import annotations

try:  # ZeroGPU: `spaces` must be imported before anything initializes CUDA.
    import spaces
except ImportError:  # not on Hugging Face Spaces: @spaces.GPU becomes a no-op
    spaces = None

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from wne.demo import DemoConfig, DemoHandlers, Zoo
from wne.demo.compare import SWEEP_SIDE, TILE_SIZE
from wne.demo.errors import user_facing
from wne.demo.handlers import (
    ASSETS_DIR,
    SCENARIOS,
    TABLE_HEADERS,
    DenoiseView,
    load_examples,
    precomputed_results,
    scenario,
)
from wne.demo.imaging import require_uploaded
from wne.demo.runtime import limit_malloc_arenas
from wne.demo.validation import A_RANGE, B_RANGE, ORDERS, SEED_RANGE, SIGMA_RANGE
from wne.demo.validation import SIGMA_TRAIN_CHOICES as SIGMAS
from wne.demo.zoo import BACKBONES

COLOR_NOTE = (
    "Colour images are denoised channel by channel by the same grayscale model in one batched "
    "call (never turned gray); a shift a·y + b applied to all channels keeps WNE exactly "
    "equivariant."
)
ABOUT = r"""
### Normalization equivariance in three sentences
A denoiser *f* is **normalization-equivariant** when changing the contrast and brightness of
its input changes its output in exactly the same way. Ordinary networks only learn this
approximately, near the brightness, contrast and noise levels of their training images, so they
fail on images that are darker, brighter or noisier than those. The **WNE** wrapper makes any
backbone (here a CNN and a transformer) exactly equivariant without new parameters: it denoises
the image normalized by its own mean and standard deviation and then undoes the normalization.

$$f(a\,y + b) = a\,f(y) + b \quad (a > 0), \qquad
f(y) = \operatorname{std}(y)\; g\!\left(\frac{y - \operatorname{mean}(y)}{\operatorname{std}(y)}
\right) + \operatorname{mean}(y)$$

Scores: PSNR and SSIM are measured against the target *a·x + b* with data range *a*, so with the
shift applied to the noisy image an equivariant model gets the same PSNR at every *a*, *b*.
"""
# Small working sizes are shown enlarged (pixelated, so the noise stays visible).
CSS = """
.wne-panel h3 {margin-bottom: 0.2em}
.wne-out img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}
"""
API_DOCS = {
    "denoise": "Plain vs WNE comparison. Returns (noisy image, target image, gallery of "
    "(output, caption) per model, JSON with settings, PSNR/SSIM (data range a) and timings).",
    "equivariance": "Defect maps |f(a·y+b) − (a·f(y)+b)| for one backbone. Returns (gallery of "
    "(map, caption), JSON with the relative and max defects).",
    "sweep": "Output PSNR vs test σ on the image (downscaled). Returns JSON "
    "{title, rows: [{sigma, psnr, model}], notes}.",
}


def _gpu_hook(fn: Callable[..., Any], duration: Callable[..., int] | None = None) -> Any:
    """``@spaces.GPU(duration=...)`` on ZeroGPU; the function itself everywhere else."""
    if spaces is None:
        return fn
    return spaces.GPU(duration=duration)(fn) if duration else spaces.GPU(fn)


def _uploaded(image: Any) -> Any:
    """The request's image, if it names no server file outside Gradio's upload and example
    caches or the bundled examples (the handlers get raw payloads: ``preprocess=False``)."""
    from gradio import utils

    roots = [utils.get_upload_folder(), utils.get_cache_folder(), ASSETS_DIR / "examples"]
    return require_uploaded(image, roots)


def _save_pil_to_cache_atomically(
    img: Any, cache_dir: str, name: str = "image", format: str = "webp"
) -> str:
    """Gradio's ``processing_utils.save_pil_to_cache``, writing through a temporary file.

    Gradio names each output file by the hash of its bytes and rewrites it in place on
    every request, so a client downloading an identical earlier output (a class running
    the same example) could receive a truncated file. Here an existing file is kept and
    a new one appears only complete (``os.replace``).
    """
    from gradio import processing_utils as pu

    data = pu.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / pu.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    if path.is_file() and path.stat().st_size == len(data):
        with contextlib.suppress(OSError):
            os.utime(path)  # `delete_cache` ages files by their time stamps
        return str(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return str(path)


def _atomic_output_files() -> None:
    """Installs :func:`_save_pil_to_cache_atomically` for every image output (idempotent)."""
    from gradio import processing_utils

    processing_utils.save_pil_to_cache = _save_pil_to_cache_atomically


def _skip(n: int) -> tuple[Any, ...]:
    return tuple(gr.skip() for _ in range(n))


def _denoise_outputs(view: DenoiseView) -> list[Any]:
    """Maps a :class:`DenoiseView` onto the Compare tab's output components."""
    out: list[Any] = [
        gr.update(value=view.noisy, label=view.noisy_label),
        gr.update(value=view.target, label=view.target_label),
    ]
    for p in view.panels:
        out += [
            gr.update(value=p.header, visible=p.visible),
            gr.update(value=p.left, label=p.left_label or "–", visible=p.visible),
            gr.update(
                value=p.right, label=p.right_label or "–", visible=p.visible and p.right_visible
            ),
            gr.update(value=p.slider, label=p.slider_label or "–", visible=p.visible),
        ]
    out += [
        pd.DataFrame(view.table, columns=TABLE_HEADERS),
        view.notes,
        view.summary,
    ]
    return out


def _controls(
    h: DemoHandlers, default_backbones: list[str], first_image: str | None
) -> SimpleNamespace:
    """The left column: image, sliders, model choice, run button, more settings."""
    z, cfg = h.zoo, h.config
    have = z.sigmas()
    c = SimpleNamespace()
    c.image = gr.Image(
        value=first_image,
        type="filepath",
        image_mode=None,  # our own conversion keeps 16-bit, alpha and palettes intact
        format="png",
        sources=["upload", "clipboard", "webcam"],
        label="Clean image (upload, paste or webcam)",
        height=260,
        elem_id="input-image",
    )
    c.a = gr.Slider(
        *A_RANGE, value=1.0, step=0.01, label="contrast a", info="x → a·x + b", elem_id="contrast-a"
    )
    c.b = gr.Slider(
        *B_RANGE,
        value=0.0,
        step=0.01,
        label="brightness b",
        info="in [0, 1] units",
        elem_id="brightness-b",
    )
    c.sigma = gr.Slider(
        *SIGMA_RANGE, value=25, step=1, label="noise σ (0–255 scale)", elem_id="noise-sigma"
    )
    c.sigma_train = gr.Radio(
        [(f"σ = {s}" + ("" if s in have else " (no models)"), s) for s in SIGMAS],
        value=z.default_sigma(),
        label="models' training σ",
    )
    c.backbones = gr.CheckboxGroup(
        [(bb.label, bid) for bid, bb in BACKBONES.items()],
        value=default_backbones,
        label="backbones",
    )
    c.run = gr.Button("Denoise & compare", variant="primary", elem_id="run")
    with gr.Accordion("More settings", open=False):
        c.order = gr.Radio(
            [(text, key) for key, text in ORDERS.items()],
            value="shift-then-noise",
            label="order of operations",
        )
        c.seed = gr.Number(
            value=0, precision=0, minimum=SEED_RANGE[0], maximum=SEED_RANGE[1], label="noise seed"
        )
        c.max_side = gr.Slider(
            32,
            cfg.max_side_limit,
            value=cfg.default_max_side,
            step=16,
            label="working size (longest side, px)",
            info=f"larger images are downscaled; above {TILE_SIZE} px the models run in tiles",
        )
        c.clip = gr.Checkbox(
            False,
            label="clip to [0, 1]",
            info="as an 8-bit image would be; breaks exact equivariance where values saturate",
        )
        c.live = gr.Checkbox(True, label="re-run when a slider is released")
    with gr.Accordion("Available models", open=False):
        gr.Markdown(z.summary_markdown())
    return c


def _compare_tab(default_backbones: list[str]) -> SimpleNamespace:
    """Noisy input and target, one plain/WNE panel per backbone, scores and notes."""
    t = SimpleNamespace(panels=[])
    with gr.Row():
        t.noisy = gr.Image(
            label="noisy input", format="png", height=300, interactive=False, elem_classes="wne-out"
        )
        t.target = gr.Image(
            label="target a·x + b",
            format="png",
            height=300,
            interactive=False,
            elem_classes="wne-out",
        )
    for bid, bb in BACKBONES.items():
        shown = bid in default_backbones
        single = bb.variants == ("ne",)
        with gr.Column(elem_classes="wne-panel"):
            header = gr.Markdown(f"### {bb.label}", visible=shown)
            with gr.Row():
                left = gr.Image(
                    label=bb.short if single else f"{bb.short} · plain",
                    format="png",
                    height=300,
                    interactive=False,
                    visible=shown,
                    elem_classes="wne-out",
                )
                right = gr.Image(
                    label=f"{bb.short} · WNE",
                    format="png",
                    height=300,
                    interactive=False,
                    visible=shown and not single,
                    elem_classes="wne-out",
                )
                slider = gr.ImageSlider(
                    label="plain ↔ WNE",
                    format="png",
                    max_height=300,
                    interactive=False,
                    visible=shown,
                    elem_classes="wne-slider",
                )
        t.panels += [header, left, right, slider]
    t.table = gr.Dataframe(
        headers=TABLE_HEADERS,
        label="scores vs the target (data range a)",
        interactive=False,
        elem_id="scores",
    )
    t.notes = gr.Markdown(elem_id="notes")
    with gr.Accordion("Settings and numbers (JSON)", open=False):
        t.summary = gr.JSON(label="copy these to reproduce the result")
    t.outputs = [t.noisy, t.target, *t.panels, t.table, t.notes, t.summary]
    return t


def _equivariance_tab(default_backbones: list[str]) -> SimpleNamespace:
    """Heat maps of the equivariance defect, plain vs WNE."""
    t = SimpleNamespace()
    gr.Markdown(
        "For the chosen backbone, the maps show |f(a·y+b) − (a·f(y)+b)| per pixel, where y is "
        "the noisy image and a, b come from the sliders. An exactly equivariant model gives a "
        "black map."
    )
    t.backbone = gr.Radio(
        [(bb.label, bid) for bid, bb in BACKBONES.items()],
        value=(default_backbones or ["dncnn"])[0],
        label="backbone",
    )
    t.run = gr.Button("Measure equivariance", variant="primary")
    with gr.Row():
        t.left = gr.Image(
            label="plain", format="png", height=300, interactive=False, elem_classes="wne-out"
        )
        t.right = gr.Image(
            label="WNE", format="png", height=300, interactive=False, elem_classes="wne-out"
        )
    t.text = gr.Markdown()
    return t


def _sweep_tab(h: DemoHandlers) -> SimpleNamespace:
    """PSNR vs σ on the user's image, and the precomputed Set12 curves."""
    t = SimpleNamespace()
    gr.Markdown(
        f"Output PSNR vs test σ on your image (downscaled to {SWEEP_SIDE} px) for the selected "
        "backbones, with the current a, b, order and clip. Plain models degrade away from their "
        "training σ; WNE models much less."
    )
    t.run = gr.Button("Run noise sweep", variant="primary")
    t.plot = gr.LinePlot(
        x="sigma",
        y="psnr",
        color="model",
        x_title="test noise σ (0–255)",
        y_title="PSNR (dB)",
        title="PSNR vs σ",
        height=360,
    )
    t.notes = gr.Markdown()
    pngs, csvs, note = precomputed_results(h.config.results_dir)
    gr.Markdown("### Precomputed Set12 mismatch curves\n" + note)
    if pngs:
        folder = h.config.results_dir
        gr.Gallery(
            [(str(p), str(p.relative_to(folder))) for p in pngs],
            label="Set12 curves",
            format="png",
            columns=min(2, len(pngs)),
            object_fit="contain",
            height=480,
        )
    if csvs:
        gr.File([str(p) for p in csvs], label="Set12 tables (CSV)")
    return t


def _about_tab() -> list[tuple[str, gr.Button]]:
    """NE in three sentences, the formula, and the one-click scenarios."""
    gr.Markdown(ABOUT, latex_delimiters=[{"left": "$$", "right": "$$", "display": True}])
    gr.Markdown("### Try it: one-click scenarios")
    buttons = []
    for name, text in SCENARIOS.items():
        with gr.Row():
            buttons.append((name, gr.Button(name.capitalize(), scale=1)))
            gr.Markdown(text)
    return buttons


def build_demo(zoo: Zoo | None = None, handlers: DemoHandlers | None = None) -> gr.Blocks:
    """Builds the (queued) Blocks app.

    Args:
        zoo: The loaded models (default: discovered from ``$WNE_CHECKPOINT_DIR`` /
            ``checkpoints/`` and ``$WNE_HUB_REPO``).
        handlers: Handlers to use instead of ``DemoHandlers(zoo)``.

    Returns:
        The demo, ready for ``launch(**launch_kwargs())``.
    """
    if handlers is None:
        zoo = zoo if zoo is not None else Zoo.discover()
        handlers = DemoHandlers(zoo, DemoConfig.for_zoo(zoo), gpu=_gpu_hook)
    h = handlers
    z = h.zoo
    _atomic_output_files()
    default_backbones = [b for b in ("dncnn", "swinir") if b in z.backbones()] or z.backbones()[:1]
    examples = load_examples(h.config.examples_dir)
    device = "GPU (CUDA)" if z.device.type == "cuda" else "CPU"

    with gr.Blocks(title="WNE: normalization-equivariant denoisers") as demo:
        gr.Markdown(
            "# Plain vs normalization-equivariant (WNE) denoisers\n"
            "Upload an image, shift its contrast *a* and brightness *b*, add noise, and watch "
            "plain denoisers break while their WNE-wrapped twins hold: for a CNN and a "
            f"transformer, side by side, with numbers. Running on **{device}**.\n\n"
            f"*{COLOR_NOTE}*"
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=320) as left_column:
                c = _controls(h, default_backbones, str(examples[0].path) if examples else None)
            with gr.Column(scale=3), gr.Tabs(selected="compare") as tabs:
                with gr.Tab("Compare", id="compare"):
                    cmp_tab = _compare_tab(default_backbones)
                with gr.Tab("Equivariance", id="equivariance"):
                    eq_tab = _equivariance_tab(default_backbones)
                with gr.Tab("Noise sweep", id="sweep"):
                    sw_tab = _sweep_tab(h)
                with gr.Tab("About", id="about"):
                    scenario_buttons = _about_tab()

        with gr.Column(visible=False):  # outputs of the scripted API only (gradio_client)
            api = SimpleNamespace(
                noisy=gr.Image(format="png", label="noisy input"),
                target=gr.Image(format="png", label="target a·x + b"),
                outputs=gr.Gallery(format="png", label="denoised outputs"),
                summary=gr.JSON(label="settings and scores"),
                maps=gr.Gallery(format="png", label="defect maps"),
                defects=gr.JSON(label="defects"),
                curves=gr.JSON(label="PSNR vs sigma"),
                triggers=[gr.Button(visible=False) for _ in range(3)],
            )

        controls = [c.image, c.a, c.b, c.sigma, c.seed, c.sigma_train, c.backbones, c.order]
        controls += [c.max_side, c.clip]
        eq_inputs = [c.image, c.a, c.b, c.sigma, c.seed, c.sigma_train, eq_tab.backbone]
        eq_inputs += [c.max_side, c.clip]
        sweep_inputs = [c.image, c.a, c.b, c.seed, c.sigma_train, c.backbones, c.order, c.clip]

        # Handler signatures are spelled out: Gradio injects gr.Progress into positional
        # parameters only.
        @user_facing
        def ui_denoise(
            image: Any,
            a: Any,
            b: Any,
            sigma: Any,
            seed: Any,
            sigma_train: Any,
            backbones: Any,
            order: Any,
            max_side: Any,
            clip: Any,
            progress: gr.Progress = gr.Progress(),  # noqa: B008
        ) -> list[Any]:
            image = _uploaded(image)  # a file payload may not name server files
            args = (image, a, b, sigma, seed, sigma_train, backbones, order, max_side, clip)
            return _denoise_outputs(h.denoise(*args, progress=progress))

        @user_facing
        def denoise_api(
            image: Any,
            a: Any,
            b: Any,
            sigma: Any,
            seed: Any,
            sigma_train: Any,
            backbones: Any,
            order: Any,
            max_side: Any,
            clip: Any,
            progress: gr.Progress = gr.Progress(),  # noqa: B008
        ) -> tuple[Any, ...]:
            image = _uploaded(image)  # a file payload may not name server files
            args = (image, a, b, sigma, seed, sigma_train, backbones, order, max_side, clip)
            v = h.denoise(*args, progress=progress)
            return v.noisy, v.target, v.gallery, v.summary

        def ui_live(*args: Any) -> Any:
            *values, live_on = args
            if not live_on or values[0] is None:
                return _skip(len(cmp_tab.outputs))
            return ui_denoise(*values)

        @user_facing
        def ui_equivariance(
            image: Any,
            a: Any,
            b: Any,
            sigma: Any,
            seed: Any,
            sigma_train: Any,
            backbone: Any,
            max_side: Any,
            clip: Any,
            progress: gr.Progress = gr.Progress(),  # noqa: B008
        ) -> list[Any]:
            image = _uploaded(image)  # a file payload may not name server files
            args = (image, a, b, sigma, seed, sigma_train, backbone, max_side, clip)
            v = h.equivariance(*args, progress=progress)
            return [
                gr.update(value=v.left, label=v.left_label),
                gr.update(value=v.right, label=v.right_label or "–", visible=v.right_visible),
                v.text,
            ]

        @user_facing
        def equivariance_api(
            image: Any,
            a: Any,
            b: Any,
            sigma: Any,
            seed: Any,
            sigma_train: Any,
            backbone: Any,
            max_side: Any,
            clip: Any,
            progress: gr.Progress = gr.Progress(),  # noqa: B008
        ) -> tuple[Any, ...]:
            image = _uploaded(image)  # a file payload may not name server files
            args = (image, a, b, sigma, seed, sigma_train, backbone, max_side, clip)
            v = h.equivariance(*args, progress=progress)
            return v.gallery, v.summary

        @user_facing
        def ui_sweep(
            image: Any,
            a: Any,
            b: Any,
            seed: Any,
            sigma_train: Any,
            backbones: Any,
            order: Any,
            clip: Any,
            progress: gr.Progress = gr.Progress(),  # noqa: B008
        ) -> list[Any]:
            image = _uploaded(image)  # a file payload may not name server files
            args = (image, a, b, seed, sigma_train, backbones, order, clip)
            v = h.sweep(*args, progress=progress)
            return [pd.DataFrame(v.rows), f"**{v.title}**\n\n{v.notes}"]

        @user_facing
        def sweep_api(
            image: Any,
            a: Any,
            b: Any,
            seed: Any,
            sigma_train: Any,
            backbones: Any,
            order: Any,
            clip: Any,
            progress: gr.Progress = gr.Progress(),  # noqa: B008
        ) -> dict[str, Any]:
            image = _uploaded(image)  # a file payload may not name server files
            args = (image, a, b, seed, sigma_train, backbones, order, clip)
            v = h.sweep(*args, progress=progress)
            return {"title": v.title, "rows": v.rows, "notes": v.notes}

        # One model call at a time (shared CPU/GPU); a newer request from a page replaces a
        # pending one; handlers get raw values and validate them (one validation layer).
        common: dict[str, Any] = {
            "concurrency_id": "models",
            "concurrency_limit": 1,
            "trigger_mode": "always_last",
            "preprocess": False,
        }
        ui: dict[str, Any] = {**common, "api_visibility": "private"}
        c.run.click(ui_denoise, controls, cmp_tab.outputs, **ui)
        gr.on(
            [c.a.release, c.b.release, c.sigma.release],
            ui_live,
            [*controls, c.live],
            cmp_tab.outputs,
            show_progress="minimal",
            **ui,
        )
        eq_tab.run.click(ui_equivariance, eq_inputs, [eq_tab.left, eq_tab.right, eq_tab.text], **ui)
        sw_tab.run.click(ui_sweep, sweep_inputs, [sw_tab.plot, sw_tab.notes], **ui)
        # The scripted API: same inputs, plain outputs (images, galleries, JSON).
        api.triggers[0].click(
            denoise_api,
            controls,
            [api.noisy, api.target, api.outputs, api.summary],
            api_name="denoise",
            api_description=API_DOCS["denoise"],
            **common,
        )
        api.triggers[1].click(
            equivariance_api,
            eq_inputs,
            [api.maps, api.defects],
            api_name="equivariance",
            api_description=API_DOCS["equivariance"],
            **common,
        )
        api.triggers[2].click(
            sweep_api,
            sweep_inputs,
            api.curves,
            api_name="sweep",
            api_description=API_DOCS["sweep"],
            **common,
        )
        for name, btn in scenario_buttons:

            def set_scenario(st: Any, _name: str = name) -> list[Any]:
                s = scenario(_name, int(st) if st in SIGMAS else z.default_sigma())
                keys = ("a", "b", "sigma", "order", "clip")
                return [*(s[k] for k in keys), gr.Tabs(selected="compare")]

            btn.click(
                set_scenario,
                [c.sigma_train],
                [c.a, c.b, c.sigma, c.order, c.clip, tabs],
                api_visibility="private",
                queue=False,
            ).then(ui_denoise, controls, cmp_tab.outputs, **ui)

        if examples:
            with left_column:
                gr.Examples(
                    [
                        [
                            str(e.path),
                            e.settings.get("a", 1.0),
                            e.settings.get("b", 0.0),
                            e.settings.get("sigma", 25),
                            0,
                            z.default_sigma(),
                            default_backbones,
                            e.settings.get("order", "shift-then-noise"),
                            h.config.default_max_side,
                            False,
                        ]
                        for e in examples
                    ],
                    inputs=controls,
                    outputs=cmp_tab.outputs,
                    fn=ui_denoise,
                    example_labels=[e.label for e in examples],
                    # Run on click, uncached: Gradio 6.31's lazy caching fails for these
                    # outputs (gr.update inside a click builds half-initialized components;
                    # cached None images cannot be read back), so every example click errored.
                    cache_examples=False,
                    run_on_click=True,
                    preprocess=False,
                    label="Examples: Kodak images (click to load and run)",
                )
    demo.queue(max_size=int(os.environ.get("WNE_QUEUE_SIZE", "16")))
    return demo


def launch_kwargs() -> dict[str, Any]:
    """Keyword arguments of ``demo.launch`` (address from Gradio's env variables)."""
    return {
        "max_file_size": os.environ.get("WNE_MAX_FILE_SIZE", "25mb"),
        "ssr_mode": False,
        "theme": gr.themes.Soft(),
        "css": CSS,
    }


def main() -> None:
    """Loads the models once and serves the demo."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    arenas = int(os.environ.get("WNE_MALLOC_ARENAS", "2"))  # 0: glibc's default (one per thread)
    if arenas > 0:
        limit_malloc_arenas(arenas)  # bounded RSS under concurrent load
    demo = build_demo()
    demo.launch(**launch_kwargs())


if __name__ == "__main__":
    main()
