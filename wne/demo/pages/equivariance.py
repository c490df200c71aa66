"""Equivariance: per-pixel maps of ``|f(a·y + b) − (a·f(y) + b)|``, plain vs WNE."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from wne import catalog
from wne.demo.imaging import heatmap
from wne.demo.pages.compare import (
    BACKBONES,
    Scene,
    apply_model,
    chw,
    corrupt,
    noise_notes,
    sci,
)
from wne.demo.schema import derive, setting, to_dict
from wne.demo.zoo import ModelUnavailableError, Zoo
from wne.wrapper import ne_defect_map


def as_scene(probe: Any) -> Scene:
    """The one-backbone page's settings as the scene its computation takes (the shift applied
    to the noisy image, so an equivariant model's outputs are exactly comparable)."""
    values = {k: v for k, v in to_dict(probe).items() if k in Scene.__dataclass_fields__}
    return Scene(**values, backbones=(probe.backbone,), order="noise-then-shift")


Probe = derive(
    Scene,
    "Probe",
    drop=("order",),
    replace={"backbones": ("backbone", str, setting("dncnn", "backbone", choices=BACKBONES))},
    namespace={"scene": as_scene},
    doc="The Equivariance page's settings: the scene with one backbone (``.scene()``).",
)


@dataclass
class Defect:
    """One variant's defect: ``error`` ``[H, W]`` (max over channels; None: unavailable),
    the relative defect ``‖f(a·y+b) − (a·f(y)+b)‖ / ‖a·f(y)+b‖`` and the largest one."""

    variant: str
    key: str
    error: np.ndarray | None = None
    relative: float | None = None
    max_abs: float | None = None
    message: str | None = None


@dataclass
class Equivariance:
    """The defects of one backbone's variants, and notes."""

    scene: Scene
    runs: list[Defect]
    notes: list[str] = field(default_factory=list)

    @property
    def backbone(self) -> str:
        """The backbone measured."""
        return self.scene.backbones[0]


def run(zoo: Zoo, clean: np.ndarray, scene: Scene) -> Iterator[Equivariance]:
    """Measures ``f(a·y + b)`` against ``a·f(y) + b`` for each variant of
    ``scene.backbones[0]``; ``y`` is the noisy image (both clipped with ``clip``)."""
    s, zoo = scene, zoo.select(scene.checkpoint)
    bid = s.backbones[0]
    x = chw(clean)
    y = corrupt(x, s)
    shifted = s.a * y + s.b
    if s.clip:
        y, shifted = y.clamp(0, 1), shifted.clamp(0, 1)
    c, runs = y.shape[0], []
    for v in catalog.FAMILIES[bid].variants:
        key = zoo.checkpoint(bid, v, s.sigma_train) or catalog.key(bid, v, s.sigma_train)
        try:
            model = zoo.get(bid, v, s.sigma_train)
        except ModelUnavailableError as exc:
            runs.append(Defect(v, key, message=str(exc)))
            continue
        out = apply_model(model, torch.cat([y, shifted]), zoo.device)
        error, rel = ne_defect_map(out[None, :c], out[None, c:], s.a, s.b)
        runs.append(
            Defect(v, key, error[0].amax(0).float().numpy(), float(rel[0]), float(error.max()))
        )
    notes = (
        ["a = 1 and b = 0 is the identity shift: every model is trivially exact."]
        if (s.a, s.b) == (1.0, 0.0)
        else []
    )
    notes += (
        ["Clipping to [0, 1] is on: saturated pixels break exact equivariance."] if s.clip else []
    )
    yield Equivariance(
        s, runs, notes + noise_notes(s, y, x) + zoo.choice_notes([bid], s.sigma_train)
    )


def outputs(
    res: Equivariance, notes: list[str]
) -> tuple[list[tuple[np.ndarray, str]], dict[str, Any], str]:
    """What ``/equivariance`` returns (maps with captions, defects JSON) and the page's text."""
    s = res.scene
    vmax = max((r.max_abs for r in res.runs if r.max_abs), default=0.0) or 1.0
    lines = [
        f"**{catalog.FAMILIES[res.backbone].label}**, trained at σ = {s.sigma_train}; y = noisy "
        f"image ({s.noise}, σ = {s.sigma:g}), a = {s.a:g}, b = {s.b:g}.",
        "",
        "| model | relative defect ‖f(a·y+b) − (a·f(y)+b)‖ / ‖a·f(y)+b‖ | max abs. defect |",
        "|---|---|---|",
    ]
    gallery = []
    for r in res.runs:
        name = catalog.VARIANT_LABELS[r.variant]
        if r.error is None:
            lines.append(f"| {name} | unavailable | {r.message} |")
            continue
        gallery.append((heatmap(r.error, vmax), f"{name} · relative defect {sci(r.relative, 2)}"))
        lines.append(f"| {name} | {sci(r.relative, 2)} | {sci(r.max_abs, 2)} |")
    if (s.a, s.b) == (1.0, 0.0):
        lines += ["", "**⚠ a = 1, b = 0 is the identity: move the contrast or brightness slider.**"]
    lines += [
        "",
        f"Colour scale shared by both maps: black = 0 … yellow = {vmax:.3g} (in [0, 1] image "
        "units). WNE defects are float round-off (~1e-7).",
        *(f"- {n}" for n in [*notes, *res.notes]),
    ]
    defects = {
        "backbone": res.backbone,
        "settings": {**s.to_dict(), "backbone": res.backbone},
        "defects": {
            r.key: {"relative": r.relative, "max_abs": r.max_abs, "message": r.message}
            for r in res.runs
        },
    }
    return gallery, defects, "\n".join(lines)
