"""The "Inside WNE" view: the wrapper's pipeline on the user's image, step by step.

For one backbone, the noisy image ``y`` and its shifted copy ``a·y + b`` go
through the WNE model's own :meth:`wne.NormEquivariant.steps` (the one
implementation of the pipeline: nothing here re-implements the wrapper's math),
and through the plain twin. The result shows, with numbers, why the wrapper is
exact: both copies normalize to the same ``T(y)`` up to float round-off, so the
backbone sees the same input and the de-normalization puts ``a`` and ``b`` back.

Colour images are denoised channel by channel, as grayscale batches
``[C, 1, H, W]`` (as in the Compare tab): each channel has its own ``m`` and
``s``. The pictures show all channels (each normalized with its own
statistics); the formulas quote the first channel, the table all of them.

No Gradio here; :mod:`wne.demo.endpoints` turns :class:`InsideView` into page
updates and API values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from wne import catalog
from wne.demo import compare as cmp
from wne.demo.imaging import LoadedImage, to_display
from wne.demo.settings import DemoInputError, Settings
from wne.demo.zoo import ModelUnavailableError, Zoo
from wne.wrapper import NormEquivariant, WrapperSteps

__all__ = [
    "INSIDE_STEPS",
    "NORMALIZED_RANGE",
    "InsidePipeline",
    "InsideStep",
    "InsideView",
    "inside_pipeline",
    "inside_view",
    "normalized_display",
]

NORMALIZED_RANGE = 3.0
"""Normalized images are shown with ONE fixed mapping ``[−3, 3] → [black, white]``."""
INSIDE_STEPS = 4
"""The number of steps the tab shows (two pictures each)."""
CHANNEL_NAMES = {1: ("gray",), 3: ("red", "green", "blue")}


@dataclass
class InsidePipeline:
    """The wrapper's steps on ``y`` and ``a·y + b``, and the plain twin's outputs.

    Attributes:
        backbone: Backbone id.
        settings: The request (``a``, ``b``, noise, σ_train, clip).
        y: ``[C, 1, H, W]`` noisy image (clipped only with "clip").
        shifted: ``[C, 1, H, W]`` ``a·y + b`` (clipped only with "clip").
        wne_y: :meth:`~wne.NormEquivariant.steps` of ``y`` (on CPU).
        wne_shifted: The steps of ``a·y + b`` (on CPU).
        plain_y: The plain twin's ``f(y)``, ``[C, 1, H, W]`` (None: unavailable).
        plain_shifted: The plain twin's ``f(a·y + b)`` (None: unavailable).
        plain_message: Why the plain twin is unavailable.
        notes: Notes for the user.
    """

    backbone: str
    settings: Settings
    y: torch.Tensor
    shifted: torch.Tensor
    wne_y: WrapperSteps
    wne_shifted: WrapperSteps
    plain_y: torch.Tensor | None = None
    plain_shifted: torch.Tensor | None = None
    plain_message: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def normalized_diff(self) -> torch.Tensor:
        """``|T(a·y + b) − T(y)|`` per entry (float64)."""
        return (self.wne_shifted.normalized.double() - self.wne_y.normalized.double()).abs()

    def defect(self, out_y: torch.Tensor, out_shifted: torch.Tensor) -> dict[str, float]:
        """``|f(a·y+b) − (a·f(y)+b)| / a``: its max, and the relative defect
        ``‖f(a·y+b) − (a·f(y)+b)‖ / ‖a·f(y)+b‖`` (as :func:`wne.ne_defect`)."""
        a, b = self.settings.a, self.settings.b
        expected = a * out_y.double() + b
        diff = out_shifted.double() - expected
        rel = diff.norm() / expected.norm().clamp_min(torch.finfo(torch.float64).tiny)
        return {"max_abs": float(diff.abs().max() / a), "relative": float(rel)}


def inside_pipeline(
    zoo: Zoo,
    clean: np.ndarray,
    settings: Settings,
    backbone: str,
    progress: cmp.Progress | None = None,
) -> InsidePipeline:
    """Runs the WNE model's steps and the plain twin on ``y`` and ``a·y + b``.

    ``y`` is the noisy image (:func:`wne.demo.compare.corrupt`: the noise type,
    level and seed of the settings); with "clip" both copies are clipped to [0, 1].
    Each copy is one call (``[C, 1, H, W]``, no tiling), so ``steps(y).output`` is
    exactly ``model(y)``.

    Args:
        zoo: The loaded models.
        clean: ``[H, W, C]`` clean image in [0, 1].
        settings: The request.
        backbone: A backbone id with a WNE variant.
        progress: Optional progress callback.

    Returns:
        The pipeline.

    Raises:
        DemoInputError: If the backbone has no WNE model for this σ_train.
    """
    if "wne" not in catalog.FAMILIES[backbone].variants:
        raise DemoInputError(f"backbone {backbone!r} has no WNE wrapper to look inside")
    wne_model = zoo.get(backbone, "wne", settings.sigma_train)  # ModelUnavailableError
    if not isinstance(wne_model, NormEquivariant):
        raise DemoInputError(f"the {backbone} WNE checkpoint is not a NormEquivariant wrapper")
    a, b = settings.a, settings.b
    x = torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32)).permute(2, 0, 1)
    y = cmp.corrupt(x, settings)
    shifted = a * y + b
    if settings.clip:
        y, shifted = y.clamp(0, 1), shifted.clamp(0, 1)
    y, shifted = y.unsqueeze(1).contiguous(), shifted.unsqueeze(1).contiguous()
    device = zoo.device
    cmp._report(progress, 0.0, "WNE model, step by step")
    with torch.no_grad():
        steps = [_cpu(wne_model.steps(t.to(device))) for t in (y, shifted)]
    res = InsidePipeline(backbone, settings, y, shifted, steps[0], steps[1])
    cmp._report(progress, 0.5, "plain twin")
    try:
        plain = zoo.get(backbone, "plain", settings.sigma_train)
    except ModelUnavailableError as exc:
        res.plain_message = str(exc)
        res.notes.append(str(exc) + ".")
    else:
        with torch.no_grad():
            outs = [plain(t.to(device)).float().cpu() for t in (y, shifted)]
        res.plain_y, res.plain_shifted = outs
    cmp._report(progress, 1.0, "done")
    if a == 1.0 and b == 0.0:
        res.notes.append("a = 1 and b = 0 is the identity shift: move the contrast or brightness.")
    if settings.clip:
        res.notes.append("Clipping to [0, 1] is on: saturated pixels break exact equivariance.")
    res.notes += cmp.noise_notes(settings, y, x.unsqueeze(1))
    return res


def _cpu(s: WrapperSteps) -> WrapperSteps:
    return WrapperSteps(
        *(t.detach().cpu() for t in (s.mean, s.std, s.normalized, s.backbone_output, s.output))
    )


# ------------------------------------------------------------------------------ view


@dataclass
class InsideStep:
    """One step of the tab: a title, a sentence with its formula, two captioned pictures."""

    title: str
    text: str
    images: list[tuple[np.ndarray, str]]


@dataclass
class InsideView:
    """Display-ready result of :meth:`wne.demo.handlers.DemoHandlers.inside`.

    Attributes:
        steps: :data:`INSIDE_STEPS` steps.
        text: The numbers per channel and notes (Markdown).
        summary: The numbers (JSON-ready).
        pipeline: The computation (for tests).
    """

    steps: list[InsideStep]
    text: str
    summary: dict[str, Any]
    pipeline: InsidePipeline | None = field(default=None, repr=False)

    @property
    def gallery(self) -> list[tuple[np.ndarray, str]]:
        """Every picture with its caption, in step order."""
        return [img for step in self.steps for img in step.images]


def normalized_display(t: torch.Tensor) -> np.ndarray:
    """A normalized ``[C, 1, H, W]`` image as uint8 with the fixed mapping
    ``[−3, 3] → [0, 255]`` (:data:`NORMALIZED_RANGE`), so equal images look equal."""
    r = NORMALIZED_RANGE
    return to_display((_hwc(t).astype(np.float64) + r) / (2 * r))[0]


def _hwc(t: torch.Tensor) -> np.ndarray:
    """``[C, 1, H, W]`` → ``[H, W, C]`` float32."""
    return t[:, 0].detach().float().permute(1, 2, 0).contiguous().numpy()


def _img(t: torch.Tensor) -> np.ndarray:
    return to_display(_hwc(t))[0]


def _f(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def _sci(v: float | None) -> str:
    return "–" if v is None else f"{v:.1e}"


def _values(t: torch.Tensor) -> list[float]:
    return [float(v) for v in t.double().flatten()]


def inside_view(res: InsidePipeline, loaded: LoadedImage) -> InsideView:
    """The tab's four steps (sentence, formula with numbers, two pictures), a table, JSON."""
    s = res.settings
    a, b = s.a, s.b
    c = res.y.shape[0]
    names = CHANNEL_NAMES.get(c, tuple(f"channel {i}" for i in range(c)))
    which = "" if c == 1 else f" (numbers of the {names[0]} channel; each channel has its own)"
    m, sd = float(res.wne_y.mean[0]), float(res.wne_y.std[0])
    m2, sd2 = float(res.wne_shifted.mean[0]), float(res.wne_shifted.std[0])
    tdiff = res.normalized_diff
    tmax = float(tdiff.max())
    wne = res.defect(res.wne_y.output, res.wne_shifted.output)
    input_diff = float((res.shifted.double() - res.y.double()).abs().max())
    plain = (
        res.defect(res.plain_y, res.plain_shifted)
        if res.plain_y is not None and res.plain_shifted is not None
        else None
    )
    r = NORMALIZED_RANGE
    steps = [
        InsideStep(
            "1 · Measure the image: mean m and spread s",
            "The wrapper first measures the average brightness **m** and the spread **s** "
            "(standard deviation) of the noisy image. Changing contrast and brightness to "
            "a·y + b moves them to a·m + b and a·s"
            f"{which}:  \n`m = {_f(m)}, s = {_f(sd)}`  →  "
            f"`m' = {a:g}·{_f(m)} + {b:g} = {_f(m2)}, s' = {a:g}·{_f(sd)} = {_f(sd2)}`",
            [
                (_img(res.y), f"y · m = {_f(m)}, s = {_f(sd)}"),
                (
                    _img(res.shifted),
                    f"a·y + b (a = {a:g}, b = {b:g}) · m' = {_f(m2)}, s' = {_f(sd2)}",
                ),
            ],
        ),
        InsideStep(
            "2 · Normalize: T(y) = (y − m) / s",
            "Subtracting the mean and dividing by the spread removes contrast and brightness, so "
            "both copies become **the same image**:  \n"
            f"`T(y) = (y − {_f(m)}) / {_f(sd)}`,  `T(a·y + b) = (a·y + b − {_f(m2)}) / {_f(sd2)}`"
            f"  \nLargest difference between them: **{_sci(tmax)}**, float round-off: this is why "
            f"WNE is exact. Both shown with one fixed scale, [−{r:g}, {r:g}] → black…white.",
            [
                (normalized_display(res.wne_y.normalized), "T(y)"),
                (
                    normalized_display(res.wne_shifted.normalized),
                    f"T(a·y + b) · max diff {_sci(tmax)}",
                ),
            ],
        ),
        InsideStep(
            "3 · Denoise the normalized image, then undo the normalization",
            "The backbone g only ever sees the normalized image. Its output is put back to the "
            f"input's brightness and contrast{which}:  \n"
            f"`f(y) = s · g(T(y)) + m = {_f(sd)} · g(T(y)) + {_f(m)}`  \n"
            "For the shifted copy g gets the same input, so f(a·y + b) = a·s·g + a·m + b = "
            "a·f(y) + b: measured defect |f(a·y+b) − (a·f(y)+b)| / a ≤ "
            f"**{_sci(wne['max_abs'])}**.",
            [
                (normalized_display(res.wne_y.backbone_output), "g(T(y)) (same fixed scale)"),
                (_img(res.wne_y.output), f"f(y) = {_f(sd)} · g(T(y)) + {_f(m)}"),
            ],
        ),
        _plain_step(res, a, b, input_diff, plain, wne),
    ]
    rows = [
        "| channel | m | s | m' = a·m + b | s' = a·s | max \\|T(a·y+b) − T(y)\\| |",
        "|---|---|---|---|---|---|",
    ]
    for i, name in enumerate(names):
        rows.append(
            f"| {name} | {_f(float(res.wne_y.mean[i]))} | {_f(float(res.wne_y.std[i]))} | "
            f"{_f(float(res.wne_shifted.mean[i]))} | {_f(float(res.wne_shifted.std[i]))} | "
            f"{_sci(float(tdiff[i].max()))} |"
        )
    h, w = res.y.shape[-2:]
    notes = [
        f"{catalog.FAMILIES[res.backbone].label}, trained at σ = {s.sigma_train}; "
        f"{w}×{h} px, noise: {s.noise}.",
        *(
            ["Colour image: each channel goes through the model as its own grayscale image."]
            if c == 3
            else []
        ),
        *loaded.notes,
        *res.notes,
    ]
    summary = {
        "backbone": res.backbone,
        "settings": s.to_dict(),
        "channels": list(names),
        "y": {"mean": _values(res.wne_y.mean), "std": _values(res.wne_y.std)},
        "shifted": {"mean": _values(res.wne_shifted.mean), "std": _values(res.wne_shifted.std)},
        "normalized_max_diff": tmax,
        "normalized_range": [-r, r],
        "formula": f"f(y) = {_f(sd)} · g(T(y)) + {_f(m)}",
        "wne": wne,
        "plain": {
            "available": plain is not None,
            "input_max_diff": input_diff,
            **(plain or {"max_abs": None, "relative": None}),
            "message": res.plain_message,
        },
        "notes": notes,
    }
    text = "\n".join([*rows, "", *(f"- {n}" for n in notes)])
    return InsideView(steps, text, summary, res)


def _plain_step(
    res: InsidePipeline,
    a: float,
    b: float,
    input_diff: float,
    plain: dict[str, float] | None,
    wne: dict[str, float],
) -> InsideStep:
    """Step 4: the plain twin is given y and a·y + b themselves."""
    title = "4 · The plain twin is given y and a·y + b themselves"
    if plain is None or res.plain_y is None or res.plain_shifted is None:
        return InsideStep(title, f"The plain twin is unavailable: {res.plain_message}", [])
    undone = (res.plain_shifted - b) / a
    text = (
        "Without the wrapper the network receives two **different** inputs (they differ by up "
        f"to {_f(input_diff)}). Undoing the shift on its second output, (f(a·y + b) − b) / a, "
        "should give f(y) again, but it is off by up to "
        f"**{_f(plain['max_abs'])}** (relative {_f(plain['relative'])}); "
        f"with WNE: {_sci(wne['max_abs'])}."
    )
    return InsideStep(
        title,
        text,
        [
            (_img(res.plain_y), "plain f(y)"),
            (_img(undone), f"plain (f(a·y + b) − b) / a · off by ≤ {_f(plain['max_abs'])}"),
        ],
    )
