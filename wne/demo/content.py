"""The demo's content: page texts, classroom scenarios, example images, precomputed curves
(the folders are passed in by ``app.py``)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wne.degrade import NOISES

log = logging.getLogger(__name__)

INTRO = (
    "# Plain vs normalization-equivariant (WNE) denoisers\n"
    "Upload an image, shift its contrast *a* and brightness *b*, add noise, and watch "
    "plain denoisers break while their WNE-wrapped twins hold: for a CNN and a "
    "transformer, side by side, with numbers. Running on **{device}**.\n\n*{color}*"
)
"""The page's heading (``device``: where the models run; ``color``: :data:`COLOR_NOTE`)."""
EQUIVARIANCE_HELP = (
    "For the chosen backbone, the maps show |f(a·y+b) − (a·f(y)+b)| per pixel, where y is "
    "the noisy image and a, b come from the sliders. An exactly equivariant model gives a "
    "black map."
)
INSIDE_HELP = (
    "What the WNE wrapper does, step by step, on your image (noisy y, noise and sliders from the "
    "left column) and on its shifted copy a·y + b, with the chosen backbone's real models. "
    "Colour images: each channel is its own grayscale image for the model; the formulas quote "
    "the first channel."
)
NOISE_HELP = (
    "Gaussian is what the models were trained on. Uniform and Laplace have the same σ; "
    "**Rayleigh is not zero-mean** (it brightens the image). Low light simulates a photo in the "
    "dark (Poisson photon noise + read noise, brightened back); JPEG compresses the noisy image. "
    "Low light and JPEG report an equivalent Gaussian σ."
)
WHY_HELP = """
**Why does WNE work, and why does nothing simpler?** A denoiser that is normalization-equivariant
(*f(a·y + b) = a·f(y) + b*) is an **adaptive filter**: each output pixel is a weighted average of
the input, *f(y) = J(y)·y*, with weights (a row of its Jacobian *J*) that **sum to 1** and that
**do not change** when the image is shifted to *a·y + b*. Click a pixel of the noisy image: the
maps show its weights (red positive, blue negative) for the plain and the WNE model, on *y* and
on *a·y + b*. The plain model's weights move with the shift, do not sum to 1, and its output is
not only a filter of its input (literalness ρ > 0); the WNE model's are the same, sum to 1, and
ρ is 0 up to round-off. Put a rival beside them: the bias-free SE net is an exact filter too
(ρ ≈ 0) but its weights do not sum to 1, so a brightness b moves them; input-only normalization's
weights sum to 0 (it ignores b).

The second half of the answer is **Δ**, the noise level of a patch *after* normalization
(*‖ỹ − x̃‖*). WNE only ever sees normalized images, so what matters is whether training met
patches of the same Δ, not of the same σ: the table shows, for 70² training patches, which
share of the patches at one σ falls inside the range of Δ that training at another σ covered
(paper Table 3). Training at a low σ covers most high-σ patches, not the reverse.
"""
RIVALS_HELP = """
### Why not something simpler?

Each objection below was tried by the paper with a model trained
for it, and each of those rivals is trained here with the same recipe, data and steps as the plain
and WNE models it is put beside. All of them denoise your image *y* (the noise and image on the
left) and its shift *a·y + b*: the table gives each one's PSNR at both and its defect
*ε_NE = ‖f(a·y + b) − (a·f(y) + b)‖ / ‖a·f(y) + b‖*, 0 for an equivariant model. Under each
question: what the paper's experiment shows, then what your image shows.
"""
SWEEP_HELP = (
    "Output PSNR vs the noise level on your image (downscaled to {side} px) for the selected "
    "backbones, with the current a, b, order, clip and noise type: the x-axis is σ, the photons "
    "per pixel (low light) or the JPEG quality. Plain models degrade away from their "
    "training σ; WNE models much less."
)
RESTORE_HELP = """
A denoiser knows what images look like, so it can **restore** one from a few of its pixels.
Kadkhodaie & Simoncelli's sampler starts from pure noise (σ ≈ 255 on the 0–255 scale) around the
pixels you keep and walks down: at each step the denoiser's residual D(y) − y points towards
images, the observed pixels are put back, a little fresh noise is injected, and the effective
noise σ̂ (the residual's size) shrinks, until σ̂ ≤ σ_L = 2.55 or the step budget runs out.

**Only a normalization-equivariant denoiser survives the walk.** Both models were trained at one
noise level (σ = 10 by default). The plain one meets noise 25× stronger than anything it was
trained on and removes almost none of it (2 % at σ = 255 in our lab book), so its walk stalls on
a grey fill, or runs away. The WNE wrapper divides the input by its own standard deviation, so
the same backbone always sees noise at the scale it knows: it removes 80–86 % of the noise at
every level and the walk fills the image in.

*Numbers.* The paper (App. N, Table 12: Set12, SwinIR-lite trained at σ = 10, 10 % of the
pixels): plain **6.08 dB**, WNE **23.87 dB**; ours are in the lab book (`assets/results/README.md`,
"The denoiser as a prior").
"""
"""The Restore tab's explanation, with the paper's and our measured numbers."""
LINK_HELP = (
    "A link opens this page with the current settings (image, sliders, models, open tab, "
    "presentation mode) and runs the comparison once: prepare a lesson, paste it in your "
    "slides. **Uploaded images are not part of a link**: it names a bundled example, or says "
    "the image must be uploaded again."
)
FIGURE_HELP = (
    "One PNG (lossless) and a PDF of the comparison shown: noisy input, target and every "
    "model's output, labelled with PSNR/SSIM, under a line with the settings."
)
QUEUE_NOTE = (
    "A class at once: the models compute one request at a time, results appear model by "
    "model, and identical requests (everyone clicking the same example) are computed once and "
    "answered together. Up to {active} requests are handled at a time and {queue} more wait in "
    "line (each shows how many computations are ahead of it); beyond that the page says "
    "“Queue is full”: wait a few seconds and try again."
)
"""How the server shares itself (``active``: requests handled at a time; ``queue``: waiting)."""
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
API_DOCS = {
    "denoise": "Plain vs WNE comparison. Returns (noisy image, target image, gallery of "
    "(output, caption) per model, JSON with settings, and PSNR/SSIM (data range a) and timings "
    "keyed by the checkpoint that ran).",
    "equivariance": "Defect maps |f(a·y+b) − (a·f(y)+b)| for one backbone. Returns (gallery of "
    "(map, caption), JSON with the relative and max defects).",
    "sweep": "Output PSNR vs the noise level (σ, photons at white or JPEG quality, by noise "
    "type) on the image (downscaled). Returns JSON {title, rows: [{level, sigma, psnr, model}], "
    "notes}; sigma is the equivalent Gaussian σ for low light and JPEG.",
    "inside": "The WNE wrapper's pipeline for one backbone on y and a·y + b, step by step. "
    "Returns (gallery of (picture, caption): y, a·y+b, T(y), T(a·y+b), g(T(y)), f(y), plain "
    "f(y), plain (f(a·y+b) − b)/a; JSON of the numbers: per-channel mean and std, max "
    "|T(a·y+b) − T(y)|, the formula, WNE and plain defects).",
    "restore": "A denoiser as an image prior (Kadkhodaie & Simoncelli's sampler, the WNE "
    "paper's App. N): restores the image from a measurement (task: inpaint, center_hole, "
    "superres or denoise, at its level) with the backbone's plain and WNE models side by side. "
    "Streams a snapshot every few steps; the last is final. Returns (observed image, plain "
    "result, WNE result, JSON: settings, sampler parameters, and per model PSNR/SSIM against "
    "the clean image, steps, stop reason (converged / max_steps / diverged), seconds and σ̂ per "
    "step on the 0–255 scale).",
    "filters": "One output pixel (row, col of the working-size image) of each of the "
    "backbone's models as an adaptive filter: the row of its Jacobian on a crop around the "
    "pixel, on the noisy y and on a·y + b (noise, then shift). Returns (gallery: the noisy image "
    "marked, then per model the filter window on y and on a·y + b; JSON: per model filter_sum, "
    "filter_sum_shifted, rho and rho_shifted (‖f(y) − J_f(y)·y‖ / ‖f(y)‖ on the crop), the "
    "largest weight change under the shift, and the Δ of the image's 70² patches against the "
    "interval training at σ_train covered); rival: a rival's key (or none) adds its filter.",
    "rivals": "The objections to WNE (normalize the input, augment, train over a noise range, "
    "a scale-equivariant net), each answered by its trained rival beside plain and WNE models "
    "on the noisy image y and on a·y + b (noise, then shift; a = 1, b = 0 measures a = 0.5, "
    "b = 0.2). Returns (gallery: the noisy a·y + b, then each model's output at a·y + b; JSON: "
    "per model psnr_y, psnr_shifted (data range a) and defect ε_NE, per objection its question, "
    "claim, models and finding).",
}
"""The API description of each endpoint."""


@dataclass(frozen=True)
class Example:
    """An example image with its label and suggested settings."""

    path: Path
    label: str
    settings: dict[str, Any]


SCENARIO_CONTROLS = ("a", "b", "sigma", "order", "clip", "noise", "photons", "read_noise")
"""The settings a scenario sets, in the order :func:`scenario` returns them."""
SCENARIOS: dict[str, str] = {
    "noise higher than training": (
        "The test noise is more than twice the training noise: plain models leave noise "
        "behind, WNE models adapt because they see the image normalized by its own std."
    ),
    "dim the lights": (
        "A noisy photo darkened to 30% contrast (a = 0.3, shift applied to the noisy image): "
        "WNE scores exactly as at a = 1, plain models do not."
    ),
    "brighten the scene": (
        "A noisy photo brightened (a = 1.5, b = +0.3; values above 1 stay unclipped): "
        "WNE is unaffected, plain models see inputs outside their training range."
    ),
    "photo in the dark": (
        "A photo taken in the dark: about 10 photons per pixel at white plus read noise, "
        "brightened back (low-light Poisson–Gaussian noise, strongest in bright regions, "
        "not the Gaussian noise the models were trained on)."
    ),
}


_SCENARIO_VALUES: dict[str, dict[str, Any]] = {
    # "sigma" is relative to σ_train: a factor, or None for σ_train itself.
    "noise higher than training": {"a": 1.0, "b": 0.0, "sigma": 2.4, "order": "shift-then-noise"},
    "dim the lights": {"a": 0.3, "b": 0.0, "sigma": None, "order": "noise-then-shift"},
    "brighten the scene": {"a": 1.5, "b": 0.3, "sigma": None, "order": "noise-then-shift"},
    "photo in the dark": {
        "a": 1.0,
        "b": 0.0,
        "sigma": None,
        "order": "shift-then-noise",
        "noise": "lowlight",
        "photons": 10.0,
        "read_noise": 1.0,
    },
}


def scenario(name: str, sigma_train: int) -> dict[str, Any]:
    """Control values (:data:`SCENARIO_CONTROLS` order) of scenario ``name`` at ``sigma_train``
    (the "noise higher than training" one uses 2.4 σ_train, clipped to [40, the slider's top])."""
    low = {p.name: p.default for p in NOISES["lowlight"].params}
    values = {"noise": "gaussian", **low, "clip": False, **_SCENARIO_VALUES[name]}
    factor = values["sigma"]
    sigma = float(sigma_train) if factor is None else max(factor * sigma_train, 40)
    values["sigma"] = float(min(NOISES["gaussian"].level.hi, sigma))
    return {k: values[k] for k in SCENARIO_CONTROLS}


def load_examples(folder: str | Path) -> list[Example]:
    """Reads ``examples.json`` (``[{"file", "label", "settings"}]``) from ``folder``; missing
    files are skipped, a missing or invalid index gives no examples (logged)."""
    folder = Path(folder)
    index = folder / "examples.json"
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("no usable example index %s: %s", index, exc)
        return []
    out = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            path = folder / str(entry["file"])
            if path.is_file():
                out.append(Example(path, str(entry["label"]), dict(entry.get("settings", {}))))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("skipping malformed example entry %r: %s", entry, exc)
    return out


def precomputed_results(folder: str | Path) -> tuple[list[Path], list[Path], str]:
    """The Set12 curves ``wne evaluate --out <folder>`` wrote (``mismatch*.png``, ``psnr.csv``,
    ``defect.csv``, found recursively) and a note saying what was found."""
    folder = Path(folder)
    if folder.is_dir():
        pngs = sorted(folder.rglob("mismatch*.png"))
        csvs = sorted([*folder.rglob("psnr.csv"), *folder.rglob("defect.csv")])
    else:
        pngs, csvs = [], []
    if not pngs and not csvs:
        note = (
            f"No precomputed Set12 curves yet: `{folder.name}/` holds no `mismatch*.png` or "
            "`psnr.csv` from `wne evaluate` (see the README)."
        )
    else:
        note = (
            f"Precomputed on Set12 by `wne evaluate` ({len(pngs)} figure(s), "
            f"{len(csvs)} table(s)): output PSNR vs test σ for models trained at one σ."
        )
    return pngs, csvs, note


def named_copies(files: list[Path], root: Path, folder: Path) -> list[Path]:
    """Each file copied into ``folder`` under a name that says which it is: its path below
    ``root`` joined by ``-`` (``sigma25/psnr.csv`` → ``sigma25-psnr.csv``), as a page's file
    list shows base names only. A copy already there with the same bytes is kept."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        target = folder / "-".join(f.relative_to(root).parts)
        data = f.read_bytes()
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)
        out.append(target)
    return out


PAGE_CSS = """
.wne-panel h3 {margin-bottom: 0.2em}
.wne-out img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}
#present-toggle {position: fixed; top: 10px; right: 14px; z-index: 1000; width: auto;
  background: var(--background-fill-primary); border: 1px solid var(--border-color-primary);
  border-radius: 8px; padding: 2px 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15)}
@media (max-width: 900px) {#present-toggle {position: static; box-shadow: none}}
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
