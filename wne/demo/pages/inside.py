"""Inside WNE: ``y`` and ``a·y + b`` through the WNE model's own
:meth:`wne.NormEquivariant.steps` and the plain twin; both normalize to the same ``T(y)``.
Colour channels are separate grayscale images; formulas quote the first channel.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from wne import catalog
from wne.demo.errors import DemoInputError
from wne.demo.imaging import to_display
from wne.demo.pages.compare import BACKBONES, Scene, chw, corrupt, hwc, noise_notes, sci
from wne.demo.pages.equivariance import Probe
from wne.demo.schema import derive, setting
from wne.demo.zoo import ModelUnavailableError, Zoo
from wne.wrapper import NormEquivariant, WrapperSteps, ne_defect_map

NORMALIZED_RANGE = 3.0
"""Normalized images are shown with ONE fixed mapping ``[−3, 3] → [black, white]``."""
INSIDE_STEPS = 4
"""The number of steps the tab shows (two pictures each)."""
CHANNEL_NAMES = {1: ("gray",), 3: ("red", "green", "blue")}
WRAPPED = tuple((label, b) for label, b in BACKBONES if "wne" in catalog.FAMILIES[b].variants)
"""The backbones with a WNE wrapper."""
MAX_SIDE = 512
"""The page's largest working size (its steps run untiled)."""
Steps = derive(
    Probe,
    "Steps",
    replace={
        "backbone": (
            "backbone",
            str,
            setting(
                "dncnn",
                "backbone",
                choices=WRAPPED,
                info="a backbone with a WNE wrapper",
                elem_id="inside-backbone",
            ),
        )
    },
    namespace={"scene": Probe.scene},
    doc="The Inside WNE page's settings: a backbone with a WNE wrapper (``.scene()``).",
)


@dataclass
class Inside:
    """The wrapper's steps on ``y`` and ``a·y + b`` (``[C, 1, H, W]``, on CPU), the plain
    twin's outputs (None: unavailable, see ``plain_message``) and notes."""

    scene: Scene
    y: torch.Tensor
    shifted: torch.Tensor
    wne_y: WrapperSteps
    wne_shifted: WrapperSteps
    plain_y: torch.Tensor | None = None
    plain_shifted: torch.Tensor | None = None
    plain_message: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def backbone(self) -> str:
        """The backbone shown."""
        return self.scene.backbones[0]

    def defect(self, out_y: torch.Tensor, out_shifted: torch.Tensor) -> dict[str, float]:
        """``max |f(a·y+b) − (a·f(y)+b)| / a`` and the relative defect (as ``wne.ne_defect``)."""
        a, b = self.scene.a, self.scene.b
        error, rel = ne_defect_map(out_y.transpose(0, 1), out_shifted.transpose(0, 1), a, b)
        return {"max_abs": float(error.max() / a), "relative": float(rel[0])}


def run(zoo: Zoo, clean: np.ndarray, scene: Scene) -> Iterator[Inside]:
    """The WNE model's steps and the plain twin on ``y`` and ``a·y + b`` (no tiling).

    Raises:
        DemoInputError: If the backbone has no WNE model at this σ_train.
    """
    s, zoo = scene, zoo.select(scene.checkpoint)
    bid = s.backbones[0]
    if "wne" not in catalog.FAMILIES[bid].variants:
        raise DemoInputError(f"backbone {bid!r} has no WNE wrapper to look inside")
    wne_model = zoo.get(bid, "wne", s.sigma_train)  # ModelUnavailableError
    if not isinstance(wne_model, NormEquivariant):
        raise DemoInputError(f"the {bid} WNE checkpoint is not a NormEquivariant wrapper")
    x = chw(clean)
    y = corrupt(x, s)
    shifted = s.a * y + s.b
    if s.clip:
        y, shifted = y.clamp(0, 1), shifted.clamp(0, 1)
    y, shifted = y.unsqueeze(1).contiguous(), shifted.unsqueeze(1).contiguous()
    dev = zoo.device
    with torch.no_grad():
        steps = [_cpu(wne_model.steps(t.to(dev))) for t in (y, shifted)]
        res = Inside(s, y, shifted, *steps)
        try:
            plain = zoo.get(bid, "plain", s.sigma_train)
        except ModelUnavailableError as exc:
            res.plain_message = str(exc)
            res.notes.append(f"{exc}.")
        else:
            res.plain_y, res.plain_shifted = (plain(t.to(dev)).float().cpu() for t in (y, shifted))
    if (s.a, s.b) == (1.0, 0.0):
        res.notes.append("a = 1 and b = 0 is the identity shift: move the contrast or brightness.")
    if s.clip:
        res.notes.append("Clipping to [0, 1] is on: saturated pixels break exact equivariance.")
    res.notes += noise_notes(s, y, x.unsqueeze(1)) + zoo.choice_notes([bid], s.sigma_train)
    yield res


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


def normalized_display(t: torch.Tensor) -> np.ndarray:
    """A normalized ``[C, 1, H, W]`` image as uint8 with the fixed mapping
    ``[−3, 3] → [0, 255]`` (:data:`NORMALIZED_RANGE`), so equal images look equal."""
    r = NORMALIZED_RANGE
    return to_display((hwc(t[:, 0]).astype(np.float64) + r) / (2 * r))[0]


def _img(t: torch.Tensor) -> np.ndarray:
    return to_display(hwc(t[:, 0]))[0]


def _f(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def _values(t: torch.Tensor) -> list[float]:
    return [float(v) for v in t.double().flatten()]


def outputs(res: Inside, notes: list[str]) -> tuple[list[tuple[np.ndarray, str]], dict[str, Any]]:
    """What ``/inside`` returns: every picture with its caption, and the numbers (with the
    four steps' titles and sentences, and the table, for the page)."""
    s = res.scene
    a, b = s.a, s.b
    c = res.y.shape[0]
    names = CHANNEL_NAMES.get(c, tuple(f"channel {i}" for i in range(c)))
    which = "" if c == 1 else f" (numbers of the {names[0]} channel; each channel has its own)"
    m, sd = float(res.wne_y.mean[0]), float(res.wne_y.std[0])
    m2, sd2 = float(res.wne_shifted.mean[0]), float(res.wne_shifted.std[0])
    tdiff = (res.wne_shifted.normalized.double() - res.wne_y.normalized.double()).abs()
    tmax = float(tdiff.max())
    wne = res.defect(res.wne_y.output, res.wne_shifted.output)
    input_diff = float((res.shifted.double() - res.y.double()).abs().max())
    twin = (res.plain_y, res.plain_shifted)
    plain = res.defect(*twin) if twin[0] is not None and twin[1] is not None else None
    r, moved = NORMALIZED_RANGE, f"m' = {_f(m2)}, s' = {_f(sd2)}"
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
                (_img(res.shifted), f"a·y + b (a = {a:g}, b = {b:g}) · {moved}"),
            ],
        ),
        InsideStep(
            "2 · Normalize: T(y) = (y − m) / s",
            "Subtracting the mean and dividing by the spread removes contrast and brightness, so "
            "both copies become **the same image**:  \n"
            f"`T(y) = (y − {_f(m)}) / {_f(sd)}`,  `T(a·y + b) = (a·y + b − {_f(m2)}) / {_f(sd2)}`"
            f"  \nLargest difference between them: **{sci(tmax)}**, float round-off: this is why "
            f"WNE is exact. Both shown with one fixed scale, [−{r:g}, {r:g}] → black…white.",
            [
                (normalized_display(res.wne_y.normalized), "T(y)"),
                (
                    normalized_display(res.wne_shifted.normalized),
                    f"T(a·y + b) · max diff {sci(tmax)}",
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
            f"**{sci(wne['max_abs'])}**.",
            [
                (normalized_display(res.wne_y.backbone_output), "g(T(y)) (same fixed scale)"),
                (_img(res.wne_y.output), f"f(y) = {_f(sd)} · g(T(y)) + {_f(m)}"),
            ],
        ),
        _plain_step(res, input_diff, plain, wne),
    ]
    rows = [
        "| channel | m | s | m' = a·m + b | s' = a·s | max \\|T(a·y+b) − T(y)\\| |",
        "|---|---|---|---|---|---|",
    ]
    for i, name in enumerate(names):
        rows.append(
            f"| {name} | {_f(float(res.wne_y.mean[i]))} | {_f(float(res.wne_y.std[i]))} | "
            f"{_f(float(res.wne_shifted.mean[i]))} | {_f(float(res.wne_shifted.std[i]))} | "
            f"{sci(float(tdiff[i].max()))} |"
        )
    h, w = res.y.shape[-2:]
    notes = [
        *notes,
        f"{catalog.FAMILIES[res.backbone].label}, trained at σ = {s.sigma_train}; "
        f"{w}×{h} px, noise: {s.noise}.",
        *["Colour image: each channel goes through the model as its own grayscale image."]
        * (c == 3),
        *res.notes,
    ]
    summary = {
        "backbone": res.backbone,
        "settings": {**s.to_dict(), "backbone": res.backbone},
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
        "steps": [{"title": st.title, "text": st.text, "pictures": len(st.images)} for st in steps],
        "text": "\n".join([*rows, "", *(f"- {n}" for n in notes)]),
    }
    return [img for st in steps for img in st.images], summary


def _plain_step(
    res: Inside, input_diff: float, plain: dict[str, float] | None, wne: dict[str, float]
) -> InsideStep:
    """Step 4: the plain twin is given y and a·y + b themselves."""
    title = "4 · The plain twin is given y and a·y + b themselves"
    if plain is None or res.plain_y is None or res.plain_shifted is None:
        return InsideStep(title, f"The plain twin is unavailable: {res.plain_message}", [])
    undone = (res.plain_shifted - res.scene.b) / res.scene.a
    text = (
        "Without the wrapper the network receives two **different** inputs (they differ by up "
        f"to {_f(input_diff)}). Undoing the shift on its second output, (f(a·y + b) − b) / a, "
        "should give f(y) again, but it is off by up to "
        f"**{_f(plain['max_abs'])}** (relative {_f(plain['relative'])}); "
        f"with WNE: {sci(wne['max_abs'])}."
    )
    off = f"plain (f(a·y + b) − b) / a · off by ≤ {_f(plain['max_abs'])}"
    return InsideStep(title, text, [(_img(res.plain_y), "plain f(y)"), (_img(undone), off)])
