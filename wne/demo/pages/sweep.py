"""Noise sweep: output PSNR vs the noise level on the user's (small) image."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from wne import catalog
from wne.degrade import NOISES
from wne.demo.pages.compare import ORDERS, Scene, apply_model, degrade
from wne.demo.schema import derive, to_dict
from wne.demo.zoo import ModelUnavailableError, Zoo
from wne.metrics import psnr

SIDE = 128
"""Longest side of the swept image (kept small for speed)."""
JPEG_SIGMA = 25.0
"""The Gaussian σ under JPEG compression (the sweep walks the quality)."""
AXES: dict[str, tuple[str, str]] = {
    "sigma": ("test σ", "test σ (0–255)"),
    "photons": ("photons per pixel", "photons per pixel at white"),
    "quality": ("JPEG quality", "JPEG quality (of σ = 25 noise)"),
}

WALKED = ("sigma", "max_side", "photons", "quality")
"""The scene's settings the sweep sets itself (it walks the level on a small image)."""


def as_scene(levels: Any) -> Scene:
    """The sweep's settings as the scene it walks (levels and working size its own)."""
    fixed = {n: NOISES[k].level.default for n, k in (("photons", "lowlight"), ("quality", "jpeg"))}
    return Scene(**to_dict(levels), sigma=JPEG_SIGMA, max_side=SIDE, **fixed)


Levels = derive(
    Scene,
    "Levels",
    drop=WALKED,
    namespace={"scene": as_scene},
    doc="The Noise sweep page's settings: the scene without the level it walks (``.scene()``).",
)


@dataclass
class Sweep:
    """Long-format rows ``{"level", "sigma", "psnr", "model"}`` (``sigma``: the equivalent
    Gaussian σ of the level), the swept setting's name, the image size and notes."""

    scene: Scene
    rows: list[dict[str, Any]]
    level: str
    size: tuple[int, int]
    notes: list[str] = field(default_factory=list)


def run(zoo: Zoo, clean: np.ndarray, scene: Scene) -> Iterator[Sweep]:
    """PSNR vs the noise type's level (:attr:`wne.degrade.NoiseParam.sweep`) for the noisy
    input and every selected model, with the scene's shift, order, clip and seed."""
    s, zoo = scene, zoo.select(scene.checkpoint)
    noise = NOISES[s.noise]
    level = noise.level
    pairs = [(v, degrade(clean, s, v)) for v in level.sweep]
    eq = {
        v: noise.equivalent_sigma(n, t, **{**noise.values(asdict(s)), level.name: v})
        for v, (n, t) in pairs
    }

    def row(v: float, out: Any, target: Any, model: str) -> dict[str, Any]:
        p = float(psnr(out[None], target[None], data_range=s.a)[0])  # no SSIM: the plot is PSNR
        return {"level": v, "sigma": eq[v], "psnr": p, "model": model}

    rows = [row(v, n, t, "noisy input") for v, (n, t) in pairs]
    notes = []
    for b in s.backbones:
        for var in catalog.FAMILIES[b].variants:
            try:
                model = zoo.get(b, var, s.sigma_train)
            except ModelUnavailableError as exc:
                notes.append(f"{exc}.")
                continue
            for v, (n, t) in pairs:
                out = apply_model(model, n, zoo.device)
                rows.append(row(v, out.clamp(0, 1) if s.clip else out, t, catalog.label(b, var)))
    if level.name != "sigma":
        notes.append(
            "The curves' `sigma` column is the equivalent Gaussian σ of each level: "
            + ", ".join(f"{v:g} → {eq[v]:.1f}" for v in level.sweep)
            + "."
        )
    if s.noise == "rayleigh":
        notes.append("Rayleigh noise is not zero-mean: it also brightens the image.")
    yield Sweep(
        s,
        rows,
        level.name,
        clean.shape[1::-1],
        notes + zoo.choice_notes(s.backbones, s.sigma_train),
    )


def outputs(res: Sweep, notes: list[str]) -> dict[str, Any]:
    """What ``/sweep`` returns: ``{title, rows, notes}``."""
    s, (w, h) = res.scene, res.size
    axis = AXES[res.level]
    kind = "" if s.noise == "gaussian" else f", {NOISES[s.noise].label}"
    title = (
        f"Output PSNR vs {axis[0]} ({w}×{h} px, a = {s.a:g}, b = {s.b:g}, trained at "
        f"σ = {s.sigma_train}{kind})"
    )
    lines = [
        *notes,
        *res.notes,
        f"PSNR against a·x + b with data range a = {s.a:g}; order: {ORDERS[s.order]}.",
    ]
    return {"title": title, "rows": res.rows, "notes": "\n".join(f"- {n}" for n in lines)}


def plot_titles(res: Sweep) -> tuple[str, str]:
    """The plot's title and x-axis title for a sweep."""
    word, axis = AXES[res.level]
    return ("PSNR vs σ" if res.level == "sigma" else f"PSNR vs {word}"), axis
