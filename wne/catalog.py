"""The model catalog: every backbone family and zoo checkpoint, as data; the one place that
builds checkpoint keys (``dncnn-wne-s25``, ``dncnn-wne-s25-gpu``) and picks the one that runs
(:func:`best_checkpoint`). Loaded models are described by ``config.json`` (:func:`describe`),
never by their key. A backbone is one :class:`Family` here plus a file in :mod:`wne.models`.

>>> from wne import catalog
>>> catalog.get("swinir-wne-s25").wrapper
'wne'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

__all__ = [
    "FAMILIES",
    "SIGMA_TRAINS",
    "SIZES",
    "SIZE_LABELS",
    "VARIANTS",
    "VARIANT_LABELS",
    "Entry",
    "Family",
    "Recipe",
    "best_checkpoint",
    "best_size",
    "describe",
    "entries",
    "families",
    "get",
    "key",
    "keys",
    "label",
    "set12_psnr",
]

VARIANTS: tuple[str, ...] = ("plain", "wne", "ne")
"""``plain``: the bare backbone; ``wne``: wrapped in :class:`wne.NormEquivariant`;
``ne``: an architecturally normalization-equivariant backbone (no wrapper)."""
VARIANT_LABELS: Mapping[str, str] = MappingProxyType(
    {"plain": "plain", "wne": "WNE", "ne": "NE-arch"}
)
SIGMA_TRAINS: tuple[int, ...] = (10, 25, 50)
"""Training noise levels (0–255 scale) of the zoo, ascending."""
SIZES: tuple[str, ...] = ("cpu", "gpu")
"""Checkpoint sizes: ``cpu``, small models trained on a CPU (the family's ``cpu``
recipe); ``gpu``, the paper's model size trained on a GPU (its ``gpu`` recipes)."""
SIZE_LABELS: Mapping[str, str] = MappingProxyType(
    {"cpu": "CPU-sized", "gpu": "paper-size, GPU-trained"}
)


@dataclass(frozen=True)
class Recipe:
    """How a checkpoint is trained (the arguments of ``wne train``).

    Attributes:
        arch_kwargs: Constructor arguments of the backbone.
        steps: Optimizer steps.
        batch: Patches per step (per process).
        patch: Patch side in pixels.
        lr: Peak learning rate (``None``: the trainer's default).
        sampler: Where patches are drawn, ``"host"`` or ``"device"`` (``None``: the
            trainer's default).
        seed: The run's seed (patches, noise, initialization).
        channels_last: Trained in channels-last memory format.
        init: The recipe of the checkpoint this one continues from (None: from scratch).
    """

    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    steps: int = 3000
    batch: int = 16
    patch: int = 48
    lr: float | None = None
    sampler: str | None = None
    seed: int = 0
    channels_last: bool = False
    init: Recipe | None = None

    @property
    def total_steps(self) -> int:
        """Optimizer steps of this run and of every run it continues from."""
        return self.steps + (self.init.total_steps if self.init else 0)


@dataclass(frozen=True)
class Family:
    """A backbone family: one registered architecture and its variants.

    Attributes:
        id: Identifier in keys, the demo's UI and its API (``"dncnn"``).
        arch: Registered backbone name (:func:`wne.models.build`).
        label: Human-readable name (``"CNN (DnCNN)"``).
        short: Short name for tables and plots (``"CNN"``).
        variants: The zoo's variants of it, in display order.
        sigmas: Training σ values of its checkpoints (empty: benchmarked only).
        cpu: The recipe of the bundled, CPU-trained checkpoints.
        paper: The paper-size recipe (Saied & Fleuret 2026, App. B).
        cpu_steps: σ_train-specific step budgets overriding ``cpu.steps``.
        gpu: σ_train → the recipe of its paper-size checkpoints (size ``gpu``).
        paper_columns: Variant → column of the paper's tables (:mod:`wne.lab.paper`).
        ne_twin: The id of its architecturally equivariant twin, if any (benchmarked beside).
    """

    id: str
    arch: str
    label: str
    short: str
    variants: tuple[str, ...]
    sigmas: tuple[int, ...]
    cpu: Recipe
    paper: Recipe
    cpu_steps: Mapping[int, int] = field(default_factory=dict)
    gpu: Mapping[int, Recipe] = field(default_factory=dict)
    paper_columns: Mapping[str, str] = field(default_factory=dict)
    ne_twin: str | None = None


def _twins(id: str, label: str, short: str, steps: int, paper: Recipe, **kw: Any) -> Family:
    """A family with plain and WNE variants (CPU recipe: ``steps`` at the default size, patches
    drawn on the host), trained at every zoo σ unless ``sigmas`` says otherwise."""
    kw.setdefault("sigmas", SIGMA_TRAINS)
    variants = ("plain", "wne")
    cpu = Recipe(steps=steps, sampler="host")
    return Family(id, id, label, short, variants, cpu=cpu, paper=paper, **kw)


_PAPER_CNN = Recipe({"depth": 20, "width": 64}, steps=500_000, batch=128, patch=70, lr=1e-4)
_PAPER_SWINIR = Recipe(
    {
        "embed_dim": 60,
        "depths": [6, 6, 6, 6],
        "num_heads": 6,
        "window_size": 8,
        "mlp_ratio": 2,
        "drop_path_rate": 0.1,
    },
    steps=500_000,
    batch=32,
    patch=64,
    lr=1e-4,
)
FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        f.id: f
        for f in (
            _twins(
                "dncnn",
                "CNN (DnCNN)",
                "CNN",
                3000,
                _PAPER_CNN,
                cpu_steps={25: 6000},
                # the paper's model, batch and patch: 3200 steps at lr 1e-3, then 12800
                # more from there at lr 4e-4 in channels-last layout, with another seed
                gpu={
                    25: replace(
                        _PAPER_CNN,
                        steps=12800,
                        lr=4e-4,
                        sampler="device",
                        seed=1,
                        channels_last=True,
                        init=replace(_PAPER_CNN, steps=3200, lr=1e-3, sampler="device"),
                    )
                },
                paper_columns={"plain": "b_dncnn", "wne": "wne_dncnn"},
            ),
            _twins(
                "swinir",
                "Transformer (SwinIR)",
                "Transformer",
                2500,
                _PAPER_SWINIR,
                paper_columns={"plain": "b_swinir", "wne": "wne_swinir"},
            ),
            Family(
                "fdncnn-ne",
                "fdncnn_ne",
                "NE-arch baseline (FDnCNN-NE)",
                "NE-arch",
                ("ne",),
                sigmas=(25,),
                cpu=Recipe(steps=3000, sampler="host"),
                paper=replace(_PAPER_CNN, steps=900_000),
                paper_columns={"ne": "ne_fdncnn"},
            ),
            # Benchmarked only (no checkpoints): the unconstrained twin of FDnCNN-NE.
            _twins(
                "fdncnn",
                "FDnCNN (unconstrained twin of FDnCNN-NE)",
                "FDnCNN",
                3000,
                _PAPER_CNN,
                sigmas=(),
                ne_twin="fdncnn-ne",
            ),
        )
    }
)
"""Every backbone family, by id, in display order."""


@dataclass(frozen=True)
class Entry:
    """One checkpoint of the zoo.

    Attributes:
        family: Its backbone family.
        variant: One of :data:`VARIANTS`.
        sigma_train: Training noise level (0–255 scale).
        size: One of :data:`SIZES`.
    """

    family: Family
    variant: str
    sigma_train: int
    size: str = "cpu"

    @property
    def key(self) -> str:
        """The checkpoint key, e.g. ``"dncnn-wne-s25"`` (:func:`key`)."""
        return key(self.family.id, self.variant, self.sigma_train, self.size)

    @property
    def arch(self) -> str:
        """The registered backbone name."""
        return self.family.arch

    @property
    def wrapper(self) -> str:
        """``"wne"`` or ``"none"``, as ``config.json`` records it."""
        return "wne" if self.variant == "wne" else "none"

    def recipe(self, paper: bool = False) -> Recipe:
        """The recipe the bundled checkpoint was trained by (its size's), or the paper's
        full recipe with ``paper``."""
        if paper:
            return self.family.paper
        if self.size == "gpu":
            return self.family.gpu[self.sigma_train]
        steps = self.family.cpu_steps.get(self.sigma_train)
        return replace(self.family.cpu, steps=steps) if steps else self.family.cpu


def key(family: str, variant: str, sigma_train: int, size: str = "cpu") -> str:
    """The checkpoint key of a (family, variant, σ_train) slot at a size.

    A single-variant family's key omits the variant's repetition
    (``("fdncnn-ne", "ne", 25) → "fdncnn-ne-s25"``); a GPU-trained paper-size
    checkpoint's key ends in ``-gpu`` (``("dncnn", "wne", 25, "gpu") →
    "dncnn-wne-s25-gpu"``).

    Raises:
        ValueError: For an unknown family, a variant it does not have or an unknown size.
    """
    fam = FAMILIES.get(family)
    if fam is None or variant not in fam.variants:
        raise ValueError(f"no {variant!r} variant of family {family!r} in the catalog")
    if size not in SIZES:
        raise ValueError(f"no checkpoint size {size!r}; known: {', '.join(SIZES)}")
    suffix = "" if size == "cpu" else f"-{size}"
    if len(fam.variants) == 1:
        return f"{fam.id}-s{sigma_train:g}{suffix}"
    return f"{fam.id}-{variant}-s{sigma_train:g}{suffix}"


def label(family: str, variant: str) -> str:
    """Display name of a (family, variant) slot, e.g. ``("dncnn", "wne") → "CNN · WNE"``;
    a single-variant family shows its short name alone (``"NE-arch"``)."""
    fam = FAMILIES[family]
    if len(fam.variants) == 1:
        return fam.short
    return f"{fam.short} · {VARIANT_LABELS[variant]}"


def _build() -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for size in SIZES:
        for sigma in (25, *(s for s in SIGMA_TRAINS if s != 25)):
            for fam in FAMILIES.values():
                if sigma in (fam.sigmas if size == "cpu" else fam.gpu):
                    for variant in fam.variants:
                        e = Entry(fam, variant, sigma, size)
                        out[e.key] = e
    return out


_ENTRIES: Mapping[str, Entry] = MappingProxyType(_build())


def keys() -> list[str]:
    """Every zoo key: the CPU-sized ones (σ_train = 25 first, then the other σ values
    ascending), then the GPU-trained ones in the same order."""
    return list(_ENTRIES)


def entries(
    *, sigma_train: int | None = None, family: str | None = None, size: str | None = None
) -> list[Entry]:
    """The zoo's entries, in :func:`keys` order, optionally filtered."""
    return [
        e
        for e in _ENTRIES.values()
        if (sigma_train is None or e.sigma_train == sigma_train)
        and (family is None or e.family.id == family)
        and (size is None or e.size == size)
    ]


def get(key: str) -> Entry:
    """The zoo entry of a key.

    Raises:
        ValueError: If the key is not in the zoo (the message lists the keys).
    """
    try:
        return _ENTRIES[key]
    except KeyError:
        raise ValueError(f"not a zoo key: {key!r}; known: {', '.join(_ENTRIES)}") from None


def families(*, zoo_only: bool = False) -> list[Family]:
    """The families in display order; with ``zoo_only``, those with checkpoints."""
    return [f for f in FAMILIES.values() if f.sigmas or f.gpu or not zoo_only]


def describe(arch: str, wrapper: str = "none") -> tuple[Family, str] | None:
    """(family, variant) of a model from its ``config.json`` fields ``arch`` and
    ``wrapper`` (``"wne"`` or ``"none"``); None for a pair the catalog does not know."""
    for fam in FAMILIES.values():
        if fam.arch != arch:
            continue
        variant = "wne" if wrapper == "wne" else ("ne" if fam.variants == ("ne",) else "plain")
        if variant in fam.variants:
            return fam, variant
    return None


def set12_psnr(metrics: Mapping[str, Any] | None) -> float | None:
    """The Set12 PSNR at σ_train a checkpoint's ``config.json`` metrics record
    (``set12.psnr_matched``, written by the evaluation), if any."""
    set12 = (metrics or {}).get("set12")
    value = set12.get("psnr_matched") if isinstance(set12, Mapping) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def best_size(
    family: str,
    sigma_train: int,
    psnrs: Mapping[str, float | None],
    *,
    device: Any = None,
    seconds: Mapping[str, float] | None = None,
    budget: float | None = None,
) -> str | None:
    """The size whose checkpoints of a family run at ``sigma_train`` (one size for all its
    variants, so plain and WNE twins come from the same training), None without any.

    On a CPU ``device`` a GPU size runs only when ``seconds`` shows it within ``budget``, and
    with a ``budget`` any measured size over it is dropped (nothing left: the fastest
    measured, else the first size). Then: more of the family's variants, recorded PSNRs
    over none, the highest mean PSNR; ties keep :data:`SIZES`' order.

    Args:
        family: A family id.
        sigma_train: The training σ.
        psnrs: Every available key → its recorded Set12 PSNR (:func:`set12_psnr`; None:
            not recorded). Keys outside the zoo are ignored.
        device: Where the models run (None: rank by the recorded numbers alone).
        seconds: Size → measured seconds of the caller's request at that size.
        budget: The latency budget in seconds.
    """
    fam = FAMILIES[family]
    slots = {z: [k for v in fam.variants if (k := key(family, v, sigma_train, z)) in psnrs]
             for z in SIZES}  # fmt: skip
    sizes = [z for z in SIZES if slots[z]]
    seconds = seconds or {}
    on_cpu = device is not None and getattr(device, "type", str(device).split(":")[0]) == "cpu"
    fits = [
        z
        for z in sizes
        if (budget is None or seconds.get(z, 0.0) <= budget)
        and (not on_cpu or z == "cpu" or (budget is not None and z in seconds))
    ]
    if not fits and sizes:
        measured = [z for z in sizes if z in seconds]
        fits = [min(measured, key=seconds.__getitem__)] if measured else sizes[:1]

    def score(z: str) -> tuple[int, bool, float]:
        known = [p for k in slots[z] if (p := psnrs[k]) is not None]
        recorded = len(known) == len(slots[z])
        return len(slots[z]), recorded, sum(known) / len(known) if recorded else -math.inf

    return max(fits, key=score, default=None)


def best_checkpoint(
    family: str, variant: str, sigma_train: int, psnrs: Mapping[str, float | None], **choice: Any
) -> str | None:
    """The key that runs for a (family, variant, σ_train) slot, None without any: the slot's
    key at :func:`best_size` (``choice``: its ``device``, ``seconds`` and ``budget``), else
    its own best available key (highest recorded PSNR; ties: :data:`SIZES`' order).

    >>> best_checkpoint("dncnn", "wne", 25, {"dncnn-wne-s25": 29.2, "dncnn-wne-s25-gpu": 30.0})
    'dncnn-wne-s25-gpu'
    """
    size = best_size(family, sigma_train, psnrs, **choice)
    mine = [k for z in SIZES if (k := key(family, variant, sigma_train, z)) in psnrs]
    if size is not None and (k := key(family, variant, sigma_train, size)) in psnrs:
        return k
    ranked = [
        (p is not None, -math.inf if p is None else p, -i)
        for i, p in enumerate(map(psnrs.get, mine))
    ]
    return max(zip(ranked, mine, strict=True))[1] if mine else None
