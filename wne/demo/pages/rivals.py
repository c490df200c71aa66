"""Why nothing simpler does: the ideas a skeptic proposes instead of WNE (paper App. O, D, E
and §5.2), each trained rival on the user's noisy image ``y`` and on its shift ``a·y + b``,
beside the plain and WNE models trained like it.

Per model: PSNR at ``y`` (against ``x``) and at ``a·y + b`` (against ``a·x + b``, data range
``a``) and the defect ``ε_NE = ‖f(a·y + b) − (a·f(y) + b)‖ / ‖a·f(y) + b‖`` between the two
(:func:`wne.wrapper.ne_defect_map`). The shift is applied to the noisy image, so the two
inputs are exactly comparable; at ``a = 1, b = 0`` every model is trivially equivariant and
:data:`PROBE` is measured instead.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wne import catalog
from wne.demo.errors import DemoInputError
from wne.demo.figure import Tile, render_figure
from wne.demo.imaging import to_display
from wne.demo.pages.compare import (
    Scene,
    apply_model,
    chw,
    corrupt,
    figure_pixels,
    has_reference,
    hwc,
    json_number,
    noise_notes,
    run_jobs,
    sci,
)
from wne.demo.schema import derive, setting
from wne.demo.zoo import ModelUnavailableError, Zoo
from wne.device import synchronize
from wne.metrics import psnr
from wne.wrapper import ne_defect_map

PROBE: tuple[float, float] = (0.5, 0.2)
"""The shift ``(a, b)`` measured when the page's is the identity (where ε_NE is 0 for all)."""
SIDE = 192
"""The page's default working size (px): eleven models, each on ``y`` and ``a·y + b``."""
EXACT = 1e-5
"""An ε_NE below this is equivariance up to round-off (float32 models)."""


@dataclass(frozen=True)
class Objection:
    """One objection and the experiment that answers it.

    Attributes:
        id: Its identifier (the page's choice, the API's ``objections``).
        question: The objection, as asked.
        rival: The key of the rival that tries it.
        beside: The keys of the models it is put beside (its plain and WNE kin).
        claim: What the paper's experiment shows (``source``).
        source: Where in the paper.
    """

    id: str
    question: str
    rival: str
    beside: tuple[str, ...]
    claim: str
    source: str

    @property
    def keys(self) -> tuple[str, ...]:
        """The rival's key, then the others'."""
        return (self.rival, *self.beside)


OBJECTIONS: dict[str, Objection] = {
    o.id: o
    for o in (
        Objection(
            "normalize",
            "Isn't WNE just normalizing the input?",
            "dncnn-in-s10",
            ("dncnn-plain-s10", "dncnn-wne-s10"),
            "Normalizing the input and never undoing it makes the output invariant, "
            "f(a·y + b) = f(y): the model loses the brightness and contrast it must give back "
            "and has to guess them from the normalized image. WNE undoes the normalization.",
            "App. O",
        ),
        Objection(
            "augment",
            "Why not train with contrast and brightness augmentation?",
            "swinir-softne-s10",
            ("swinir-plain-s10", "swinir-wne-s10"),
            "Training on shifted copies α·y + μ shrinks the defect but never to zero: the "
            "symmetry is learned approximately, and only over the shifts training drew.",
            "App. D",
        ),
        Objection(
            "range",
            "Why not train over a range of noise levels?",
            "swinir-plain-s0-55",
            ("swinir-wne-s0-55", "swinir-wne-s25"),
            "Training over σ ∈ [0, 55] makes one blind model for every level inside the range, "
            "but it is still not equivariant and it fails beyond the range; the same training "
            "wrapped in WNE is exact for every shift.",
            "App. E",
        ),
        Objection(
            "scale",
            "Isn't a scale-equivariant network enough?",
            "fdncnn-se-s25",
            ("fdncnn-plain-s25", "fdncnn-wne-s25"),
            "A bias-free network is scale-equivariant, f(a·y) = a·f(y), but not "
            "shift-equivariant: a brightness offset b still breaks it, and without biases it "
            "denoises less well at the level it was trained for.",
            "§5.2, Table 7",
        ),
    )
}
"""The objections the page answers, in its order."""
OBJECTION_CHOICES = tuple((o.question, o.id) for o in OBJECTIONS.values())


def as_scene(r: Any) -> Scene:
    """The page's settings as a scene (noise, then shift; no clipping: ε_NE is exact)."""
    values = {k: getattr(r, k) for k in Scene.__dataclass_fields__ if hasattr(r, k)}
    return Scene(**values, order="noise-then-shift")


Rivals = derive(
    Scene,
    "Rivals",
    drop=("order", "backbones", "sigma_train", "checkpoint", "clip"),
    add=[
        (
            "objections",
            tuple,
            setting(
                tuple(OBJECTIONS),
                "objections",
                choices=OBJECTION_CHOICES,
                info="each runs its rival and the models beside it",
                elem_id="rivals-objections",
            ),
        )
    ],
    namespace={"scene": as_scene},
    doc="The rivals page's settings: the image's shift and noise, and which objections to run.",
)


def model_label(key: str) -> str:
    """A checkpoint's name on the page, e.g. ``"CNN · WNE, σ_train 10"``."""
    e = catalog.get(key)
    fam = catalog.RIVAL_FAMILIES.get(e.family.id)
    text = f"{fam.short}" if fam else e.label
    return text if e.sigma_range else f"{text}, σ_train {e.sigma_train}"


@dataclass
class RivalRun:
    """One model on ``y`` and on ``a·y + b``: its output at ``a·y + b`` ``[H, W, C]``, the two
    PSNRs (None without a reference), ε_NE between them, seconds for both calls."""

    key: str
    output: np.ndarray | None = None
    psnr_y: float | None = None
    psnr_shifted: float | None = None
    defect: float | None = None
    seconds: float | None = None
    message: str | None = None

    @property
    def label(self) -> str:
        """Its name on the page."""
        return model_label(self.key)


@dataclass
class Contest:
    """The page's result so far: the shifted noisy image and its target ``[H, W, C]``, the
    shift measured, each model's run by key, the objections still ``pending`` and notes."""

    settings: Any
    shifted: np.ndarray
    target: np.ndarray
    shift: tuple[float, float]
    runs: dict[str, RivalRun] = field(default_factory=dict)
    pending: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    reference: bool = True


def run(zoo: Zoo, clean: np.ndarray, r: Any) -> Iterator[Contest]:
    """Each chosen objection's models on the noisy ``y`` and on ``a·y + b``; yields the
    inputs first, then after each objection (a model shared by two runs once)."""
    s = r.scene()
    a, b = (s.a, s.b) if (s.a, s.b) != (1.0, 0.0) else PROBE
    x = chw(clean)
    y = corrupt(x, s)
    shifted, target = a * y + b, a * x + b
    res = Contest(r, hwc(shifted), hwc(target), (a, b), pending=tuple(r.objections))
    res.reference = has_reference(s)
    if (s.a, s.b) == (1.0, 0.0):
        res.notes.append(
            f"At a = 1, b = 0 every model is trivially equivariant: ε_NE and the shifted PSNR "
            f"are measured at a = {a:g}, b = {b:g}; set a contrast or brightness to measure yours."
        )
    yield replace(res, runs=dict(res.runs))
    for oid in r.objections:
        for key in OBJECTIONS[oid].keys:
            if key in res.runs:
                continue
            res.runs[key] = out = RivalRun(key)
            try:
                model = zoo.by_key(key)
            except ModelUnavailableError as exc:
                out.message = str(exc)
                continue
            _measure(out, model, zoo.device, (x, y), (target, shifted), (a, b), res.reference)
        res.pending = res.pending[1:]
        if res.pending:
            yield replace(res, runs=dict(res.runs))
    res.notes += noise_notes(s, shifted, target)
    yield res


def _measure(
    out: RivalRun,
    model: nn.Module,
    device: Any,
    at_y: tuple[torch.Tensor, torch.Tensor],
    at_shift: tuple[torch.Tensor, torch.Tensor],
    shift: tuple[float, float],
    reference: bool,
) -> None:
    """``model`` on ``y`` and on ``a·y + b`` (side by side on a CPU), filled into ``out``."""
    got: dict[int, torch.Tensor] = {}

    def call(i: int, image: torch.Tensor) -> Callable[[], None]:
        return lambda: got.__setitem__(i, apply_model(model, image, device))

    synchronize(device)
    start = time.perf_counter()
    run_jobs([call(0, at_y[1]), call(1, at_shift[1])])
    synchronize(device)
    out.seconds = time.perf_counter() - start
    a, b = shift
    out.defect = float(ne_defect_map(got[0][None], got[1][None], a, b)[1][0])
    if reference:
        out.psnr_y = float(psnr(got[0][None], at_y[0][None], data_range=1.0)[0])
        out.psnr_shifted = float(psnr(got[1][None], at_shift[0][None], data_range=a)[0])
    out.output = hwc(got[1])


def _db(value: float | None) -> str:
    if value is None:
        return "–"
    return "∞" if math.isinf(value) else f"{value:.2f}"


TABLE_HEADERS = ["objection", "model", "PSNR at y (dB)", "PSNR at a·y + b (dB)", "ε_NE"]


def _kin(o: Objection, wrapper: str) -> str | None:
    """The first model beside the rival with that wrapper (``"wne"`` or ``"none"``)."""
    return next((k for k in o.beside if catalog.get(k).wrapper == wrapper), None)


def finding(
    o: Objection, runs: dict[str, RivalRun], shift: tuple[float, float], sigma: float
) -> str:
    """What this image shows of the objection, in one sentence from the measured numbers."""
    ran = {k: runs[k] for k in o.keys if k in runs and runs[k].output is not None}
    if o.rival not in ran:
        return "The rival is not installed here: " + (runs[o.rival].message or "unavailable") + "."
    r, a, b = ran[o.rival], *shift
    w = ran.get(_kin(o, "wne") or "")
    p = ran.get(_kin(o, "none") or "")
    exact = "at round-off" if r.defect is not None and r.defect < EXACT else "clearly above 0"
    lead = {
        "normalize": f"its output does not follow the shift (ε_NE {sci(r.defect)}, {exact})",
        "augment": (
            f"its ε_NE {sci(r.defect)} is "
            + (
                f"{p.defect / r.defect:.1f}× smaller than the plain model's"
                if p and p.defect and r.defect and r.defect < p.defect
                else "not smaller than the plain model's"
            )
            + f", {exact}"
        ),
        "range": (
            f"the shifted image's noise a·σ = {a * sigma:.1f} is "
            + ("inside" if a * sigma <= 55 else "outside")
            + f" its range [0, 55], and its ε_NE is {sci(r.defect)} ({exact})"
        ),
        "scale": (
            f"with b = {b:g} its ε_NE is {sci(r.defect)} ({exact}"
            + ("; set a brightness b to break it)" if b == 0 else ")")
        ),
    }[o.id]
    wne = f"; the WNE model's is {sci(w.defect)}" if w else ""
    scores = ""
    if r.psnr_shifted is not None:
        kin = [m for m in (w, p) if m is not None and m.psnr_shifted is not None]
        scores = (
            f" At a·y + b it scores {_db(r.psnr_shifted)} dB; "
            + ", ".join(f"{m.label} {_db(m.psnr_shifted)} dB" for m in kin)
            + "."
        )
    return f"Here {lead}{wne}.{scores}"


def outputs(
    res: Contest, notes: list[str]
) -> tuple[np.ndarray, list[tuple[np.ndarray, str]], dict[str, Any], str, list[list[str]]]:
    """What ``/rivals`` returns and the page shows: the shifted noisy image, each model's
    output at ``a·y + b`` with its caption (the objections' order, each model once), the
    summary (per model ``psnr_y``, ``psnr_shifted``, ``defect``; per objection its
    ``finding``), the text and the table."""
    a, b = res.shift
    window = (min(0.0, b), max(1.0, a + b))
    gallery, table, shown, found = [], [], set(), {}
    sigma = res.settings.sigma
    for oid in res.settings.objections:
        o, done = OBJECTIONS[oid], oid not in res.pending
        for key in o.keys:
            m = res.runs.get(key)
            if m is None or not done:
                table.append([o.question, model_label(key), "…", "…", "…"])
            elif m.output is None:
                table.append([o.question, f"{m.label} (unavailable)", "–", "–", "–"])
            else:
                row = [_db(m.psnr_y), _db(m.psnr_shifted), sci(m.defect)]
                table.append([o.question, m.label, *row])
                if key not in shown:
                    score = "" if m.psnr_shifted is None else f"PSNR {_db(m.psnr_shifted)} dB · "
                    caption = f"{m.label} at a·y + b · {score}ε_NE {sci(m.defect)}"
                    gallery.append((to_display(m.output, window)[0], caption))
                    shown.add(key)
        found[oid] = finding(o, res.runs, res.shift, sigma) if done else None
    h, w, c = res.shifted.shape
    summary = {
        "settings": res.settings.to_dict(),
        "image": {"width": w, "height": h, "channels": c},
        "shift": {"a": a, "b": b},
        "reference": res.reference,
        "models": {
            k: {
                "label": m.label,
                "available": m.output is not None,
                "psnr_y": json_number(m.psnr_y),
                "psnr_shifted": json_number(m.psnr_shifted),
                "defect": json_number(m.defect),
                "seconds": json_number(m.seconds),
                "message": m.message,
            }
            for k, m in res.runs.items()
        },
        "objections": {
            oid: {
                "question": OBJECTIONS[oid].question,
                "source": OBJECTIONS[oid].source,
                "claim": OBJECTIONS[oid].claim,
                "models": list(OBJECTIONS[oid].keys),
                "finding": found[oid],
            }
            for oid in res.settings.objections
        },
        "pending": list(res.pending),
        "notes": [*notes, *res.notes],
    }
    return to_display(res.shifted, window)[0], gallery, summary, text(summary), table


def text(summary: dict[str, Any]) -> str:
    """The page's answer: per objection the question, the paper's claim and this image's
    finding; then the notes."""
    parts = []
    for o in summary["objections"].values():
        here = o["finding"] or "*computing…*"
        parts.append(f"**{o['question']}** ({o['source']}) {o['claim']}\n\n{here}")
    notes = "\n".join(f"- {n}" for n in summary["notes"])
    return "\n\n".join([*parts, *([notes] if notes else [])])


def slide_figure(shifted: Any, gallery: Any, summary: Any, folder: Path) -> list[str]:
    """The page's result as a slide figure (PNG and PDF): the shifted noisy image and every
    model's output at ``a·y + b`` with its PSNR and ε_NE, under a line with the settings."""
    if shifted is None or not summary or summary.get("pending") or "objections" not in summary:
        raise DemoInputError("answer the objections first: the figure shows the page's result")
    pixels = figure_pixels

    s, shift = summary["settings"], summary["shift"]
    tiles = [Tile(pixels(shifted), "noisy a·y + b", f"a = {shift['a']:g}, b = {shift['b']:g}")]
    for img, caption in gallery or []:
        name, _, score = caption.partition(" at a·y + b · ")
        tiles.append(Tile(pixels(img), name, score))
    size = f"{summary['image']['width']}×{summary['image']['height']} px"
    subtitle = f"σ = {s['sigma']:g} ({s['noise']}), seed {s['seed']}, {size}; at a·y + b"
    fig = render_figure(tiles, "WNE and its rivals", subtitle)
    out = folder / hashlib.sha256(fig.png).hexdigest()[:16]
    return [str(p) for p in fig.save(out, stem="wne-rivals")]
