"""The model catalog: every backbone family and zoo checkpoint, as data; the one place that
builds checkpoint keys (``dncnn-wne-s25``, ``dncnn-wne-s25-gpu``, ``swinir-plain-s0-55``) and
picks the one that runs (:func:`best_checkpoint`). Loaded models are described by
``config.json`` (:func:`describe`), never by their key. A backbone is one :class:`Family` here
plus a file in :mod:`wne.models`.

Beside the zoo, the **rivals** (:func:`rivals`, :data:`RIVAL_FAMILIES`): the simpler ideas the
paper shows falling short of WNE (input-only normalization, soft-NE augmentation, multi-noise
training, the SE-arch and the FDnCNN twins of Table 7), trained by the same CPU recipe. They
have keys (:func:`get`, :func:`wne.load`, ``wne zoo --print KEY``) but are not in
:func:`keys`, :func:`entries` or :func:`families`, which list the zoo only (the demo's).

>>> from wne import catalog
>>> catalog.get("swinir-wne-s25").wrapper
'wne'
>>> catalog.get("swinir-plain-s0-55").sigma_range
(0, 55)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

__all__ = [
    "FAMILIES",
    "RIVAL_FAMILIES",
    "RIVAL_VARIANT_LABELS",
    "ROLES",
    "SIGMA_TRAINS",
    "SIZES",
    "SIZE_LABELS",
    "SOFT_NE",
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
    "rival_keys",
    "rivals",
    "set12_psnr",
]

VARIANTS: tuple[str, ...] = ("plain", "wne", "ne")
"""``plain``: the bare backbone; ``wne``: wrapped in :class:`wne.NormEquivariant`;
``ne``: an architecturally normalization-equivariant backbone (no wrapper)."""
VARIANT_LABELS: Mapping[str, str] = MappingProxyType(
    {"plain": "plain", "wne": "WNE", "ne": "NE-arch"}
)
RIVAL_VARIANT_LABELS: Mapping[str, str] = MappingProxyType(
    {"in": "input-normalized", "softne": "soft-NE", "se": "SE-arch"}
)
"""Variants of the rivals' own families: ``in``, input-only normalization
(:class:`wne.wrapper.InputNormalized`, config ``wrapper: "input"``); ``softne``, the plain
backbone trained with the soft-NE augmentation (:data:`SOFT_NE`); ``se``, an architecturally
scale-equivariant backbone."""
ROLES: tuple[str, ...] = ("zoo", "rival")
"""``zoo``: a checkpoint of :func:`keys` (the demo's); ``rival``: one of :func:`rivals`."""
SOFT_NE: Mapping[str, tuple[float, float]] = MappingProxyType(
    {"alpha": (0.0, 1.0), "mu": (0.0, 1.0)}
)
"""The soft-NE augmentation's ranges (paper App. D, ``soft_ne_{alpha,mu}_{min,max}``): each
training pair (y, x) becomes (α·y + μ, α·x + μ) with α ~ U(alpha), μ ~ U(mu) per patch."""
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
    """One checkpoint of the zoo, or of the rivals.

    Attributes:
        family: Its backbone family.
        variant: One of the family's variants (:data:`VARIANTS`, :data:`RIVAL_VARIANT_LABELS`).
        sigma_train: Training noise level (0–255 scale); None when trained on a range.
        size: One of :data:`SIZES`.
        sigma_range: ``(lo, hi)``: trained with σ ~ U[lo, hi] per patch (paper App. E).
        sigma_eval: The σ_test of a range-trained checkpoint's "matched" numbers (the
            σ_train of the zoo checkpoints whose recipe it shares).
        role: One of :data:`ROLES`.
    """

    family: Family
    variant: str
    sigma_train: int | None
    size: str = "cpu"
    sigma_range: tuple[int, int] | None = None
    sigma_eval: int | None = None
    role: str = "zoo"

    @property
    def key(self) -> str:
        """The checkpoint key, e.g. ``"dncnn-wne-s25"`` (:func:`key`)."""
        return key(
            self.family.id, self.variant, self.sigma_train, self.size, sigma_range=self.sigma_range
        )

    @property
    def arch(self) -> str:
        """The registered backbone name."""
        return self.family.arch

    @property
    def wrapper(self) -> str:
        """``"wne"``, ``"input"`` (input-only normalization) or ``"none"``, as ``config.json``
        records it."""
        return {"wne": "wne", "in": "input"}.get(self.variant, "none")

    @property
    def augment(self) -> dict[str, Any] | None:
        """The training augmentation beyond the dihedral ones, as ``config.json`` records it
        (``{"soft_ne": {"alpha": [lo, hi], "mu": [lo, hi]}}``), None without one."""
        if self.variant != "softne":
            return None
        return {"soft_ne": {k: list(v) for k, v in SOFT_NE.items()}}

    @property
    def matched_sigma(self) -> int:
        """The σ_test of its "matched" numbers: σ_train, or :attr:`sigma_eval` for a range."""
        sigma = self.sigma_train if self.sigma_train is not None else self.sigma_eval
        if sigma is None:
            raise ValueError(f"{self.key} has neither sigma_train nor sigma_eval")
        return sigma

    @property
    def label(self) -> str:
        """Display name, e.g. ``"Transformer · plain, σ ~ U[0, 55]"``."""
        text = label(self.family.id, self.variant)
        return text + (
            f", σ ~ U[{self.sigma_range[0]}, {self.sigma_range[1]}]" if self.sigma_range else ""
        )

    def recipe(self, paper: bool = False) -> Recipe:
        """The recipe the bundled checkpoint was trained by (its size's), or the paper's
        full recipe with ``paper``."""
        if paper:
            return self.family.paper
        if self.size == "gpu":
            return self.family.gpu[self.sigma_train]
        steps = self.family.cpu_steps.get(self.sigma_train)
        return replace(self.family.cpu, steps=steps) if steps else self.family.cpu


def key(
    family: str,
    variant: str,
    sigma_train: int | None,
    size: str = "cpu",
    *,
    sigma_range: tuple[int, int] | None = None,
) -> str:
    """The checkpoint key of a (family, variant, σ_train) slot at a size.

    A single-variant family's key omits the variant's repetition
    (``("fdncnn-ne", "ne", 25) → "fdncnn-ne-s25"``); a GPU-trained paper-size
    checkpoint's key ends in ``-gpu`` (``("dncnn", "wne", 25, "gpu") →
    "dncnn-wne-s25-gpu"``); one trained on a noise range names it instead of σ_train
    (``("swinir", "plain", None, sigma_range=(0, 55)) → "swinir-plain-s0-55"``).

    Raises:
        ValueError: For an unknown family, a variant it does not have, an unknown size, or
            neither (or both of) σ_train and a range.
    """
    fam = FAMILIES.get(family) or RIVAL_FAMILIES.get(family)
    if fam is None or variant not in fam.variants:
        raise ValueError(f"no {variant!r} variant of family {family!r} in the catalog")
    if size not in SIZES:
        raise ValueError(f"no checkpoint size {size!r}; known: {', '.join(SIZES)}")
    if (sigma_train is None) == (sigma_range is None):
        raise ValueError("give either sigma_train or sigma_range")
    suffix = "" if size == "cpu" else f"-{size}"
    noise = f"{sigma_train:g}" if sigma_range is None else "{:g}-{:g}".format(*sigma_range)
    if len(fam.variants) == 1:
        return f"{fam.id}-s{noise}{suffix}"
    return f"{fam.id}-{variant}-s{noise}{suffix}"


def label(family: str, variant: str) -> str:
    """Display name of a (family, variant) slot, e.g. ``("dncnn", "wne") → "CNN · WNE"``;
    a single-variant family shows its short name alone (``"NE-arch"``)."""
    fam = FAMILIES.get(family) or RIVAL_FAMILIES[family]
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


def _rival_family(id: str, arch: str, label: str, short: str, variant: str, sigma: int,
                  like: Family, paper_column: str | None = None) -> Family:  # fmt: skip
    """A rival's own single-variant family, trained by ``like``'s CPU recipe at ``sigma``
    (``paper_column``: its column of the paper's mismatch tables, if it has one)."""
    steps = like.cpu_steps.get(sigma, like.cpu.steps)
    columns = {variant: paper_column} if paper_column else {}
    return Family(id, arch, label, short, (variant,), sigmas=(sigma,),
                  cpu=replace(like.cpu, steps=steps), paper=like.paper,
                  paper_columns=columns)  # fmt: skip


RIVAL_FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        f.id: f
        for f in (
            _rival_family("dncnn-in", "dncnn", "DnCNN, input-only normalization (App. O)",
                          "DnCNN-IN", "in", 10, FAMILIES["dncnn"]),
            _rival_family("swinir-softne", "swinir", "SwinIR-lite, soft-NE augmentation (App. D)",
                          "SwinIR soft-NE", "softne", 10, FAMILIES["swinir"]),
            _rival_family("fdncnn-se", "fdncnn_se", "FDnCNN SE-arch (bias-free, §5.2)",
                          "SE-arch", "se", 25, FAMILIES["fdncnn"], "se_fdncnn"),
        )
    }
)  # fmt: skip
"""The rivals' own families (their variants are not the zoo's), by id. The rivals trained as
a zoo family's plain or WNE variant (multi-noise SwinIR, Table 7's FDnCNN twins) use the zoo
family, outside its :attr:`Family.sigmas`."""


def _rivals() -> dict[str, Entry]:
    r, f = RIVAL_FAMILIES, FAMILIES
    found = (
        Entry(r["dncnn-in"], "in", 10, role="rival"),
        Entry(r["fdncnn-se"], "se", 25, role="rival"),
        Entry(f["fdncnn"], "plain", 25, role="rival"),
        Entry(f["fdncnn"], "wne", 25, role="rival"),
        Entry(r["swinir-softne"], "softne", 10, role="rival"),
        Entry(f["swinir"], "plain", None, sigma_range=(0, 55), sigma_eval=25, role="rival"),
        Entry(f["swinir"], "wne", None, sigma_range=(0, 55), sigma_eval=25, role="rival"),
    )
    return {e.key: e for e in found}


_RIVALS: Mapping[str, Entry] = MappingProxyType(_rivals())


def rivals() -> list[Entry]:
    """The rivals' entries, in training order: ``dncnn-in-s10``, ``fdncnn-se-s25``,
    ``fdncnn-plain-s25``, ``fdncnn-wne-s25``, ``swinir-softne-s10``, ``swinir-plain-s0-55``,
    ``swinir-wne-s0-55``."""
    return list(_RIVALS.values())


def rival_keys() -> list[str]:
    """The rivals' keys (:func:`rivals`' order); none of them is in :func:`keys`."""
    return list(_RIVALS)


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
    """The entry of a zoo key or a rival's key (:attr:`Entry.role` tells which).

    Raises:
        ValueError: If the key is in neither (the message lists the keys).
    """
    found = _ENTRIES.get(key) or _RIVALS.get(key)
    if found is None:
        known = ", ".join([*_ENTRIES, *_RIVALS])
        raise ValueError(f"not a zoo key: {key!r}; known: {known}")
    return found


def families(*, zoo_only: bool = False) -> list[Family]:
    """The families in display order; with ``zoo_only``, those with checkpoints."""
    return [f for f in FAMILIES.values() if f.sigmas or f.gpu or not zoo_only]


def describe(
    arch: str, wrapper: str = "none", *, augment: Mapping[str, Any] | None = None
) -> tuple[Family, str] | None:
    """(family, variant) of a model from its ``config.json`` fields ``arch``, ``wrapper``
    (``"wne"``, ``"input"`` or ``"none"``) and ``augment`` (``{"soft_ne": ...}``); a zoo
    family first, then a rival's (:data:`RIVAL_FAMILIES`); None for what the catalog does not
    know. A noise range (``sigma_range``) changes the checkpoint, not the (family, variant)."""
    if augment:
        if set(augment) != {"soft_ne"} or wrapper != "none":
            return None
        want: str | None = "softne"
    else:
        want = {"wne": "wne", "input": "in", "none": None}.get(wrapper, "?")
    for fam in (*FAMILIES.values(), *RIVAL_FAMILIES.values()):
        if fam.arch != arch:
            continue
        own = fam.variants[0] if fam.variants in (("ne",), ("se",)) else "plain"
        variant = want or own
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
