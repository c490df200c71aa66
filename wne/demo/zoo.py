"""The demo's models: the catalogued checkpoints found (local or ``$WNE_HUB_REPO``), each
loaded once and filed under the slot its ``config.json`` describes; a broken one is reported
with its reason, never fatal. :data:`CHOICES` picks which size of a slot runs.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import wne
from wne import catalog
from wne.checkpoints import CheckpointNotFoundError, HubError
from wne.demo.errors import DemoInputError
from wne.device import pick_device
from wne.fast import accelerate, is_accelerated
from wne.settings import EnvSettings

log = logging.getLogger(__name__)

Slot = tuple[str, str, int]
"""``(family id, variant, σ_train)``."""
BEST = "best"
CHECKPOINTS: dict[str, str] = {
    BEST: "best available (highest Set12 PSNR)",
    **{size: catalog.SIZE_LABELS[size] for size in catalog.SIZES},
}
"""Which checkpoint fills a slot (:meth:`Zoo.select`): the best available one, or one size."""
CHOICES: tuple[str, ...] = tuple(CHECKPOINTS)


class ModelUnavailableError(DemoInputError):
    """The requested (backbone, variant, σ_train) has no loadable checkpoint."""


def describe_model(model: nn.Module) -> Slot | None:
    """``(family, variant, sigma_train)`` from a model's ``wne_config``, or None if the
    demo's catalog families do not cover it."""
    cfg = getattr(model, "wne_config", None)
    if cfg is None or cfg.sigma_train is None:
        return None
    found = catalog.describe(cfg.arch, cfg.wrapper)
    if found is None or not (found[0].sigmas or found[0].gpu):
        return None
    family, variant = found
    return family.id, variant, round(float(cfg.sigma_train))


def rival_mismatch(key: str, model: nn.Module) -> str | None:
    """Why a loaded rival's ``config.json`` does not describe the rival ``key`` (None: it does)."""
    cfg, e = getattr(model, "wne_config", None), catalog.get(key)
    if cfg is None:
        return "it has no config.json"
    want = (e.arch, e.wrapper, e.sigma_train, list(e.sigma_range or []) or None, e.augment)
    rng = list(cfg.sigma_range) if cfg.sigma_range else None
    train = None if cfg.sigma_train is None else round(float(cfg.sigma_train))
    got = (
        cfg.arch,
        cfg.wrapper,
        train if e.sigma_range is None else None,
        rng,
        cfg.augment or None,
    )
    return None if got == want else f"its config.json describes {got}, not {want}"


def set12_psnr(model: nn.Module) -> float | None:
    """The Set12 PSNR at σ_train its ``config.json`` records (:func:`wne.catalog.set12_psnr`)."""
    cfg = getattr(model, "wne_config", None)
    return catalog.set12_psnr(cfg.metrics if cfg is not None else None)


class Zoo:
    """The loaded models, indexed by (backbone, variant, σ_train) and size.

    Args:
        models: Loaded models by name; a catalog key gives the size (else the CPU size).
        device: The device they live on.
        errors: Why checkpoints failed to load, by key.
        notes: Start-up notes for the page.
        choice: Which checkpoint of a slot :meth:`get` returns (:data:`CHOICES`).
        rivals: Loaded rivals (:func:`wne.catalog.rivals`) by key, outside the slots.

    Attributes:
        psnrs: Each loaded key's recorded Set12 PSNR (None: not recorded).
    """

    def __init__(
        self,
        models: dict[str, nn.Module],
        device: torch.device,
        errors: dict[str, str] | None = None,
        notes: list[str] | None = None,
        choice: str = BEST,
        rivals: dict[str, nn.Module] | None = None,
    ) -> None:
        self.models: dict[str, nn.Module] = {}
        self._eager: dict[str, nn.Module] = {}
        self.rivals: dict[str, nn.Module] = {}
        for key, model in (rivals or {}).items():
            eager = copy.deepcopy(model.eval())
            self.rivals[key] = accelerate(model)
            self._eager[key] = eager if is_accelerated(self.rivals[key]) else self.rivals[key]
        self.device = device
        self.errors = dict(errors or {})
        self.notes = list(notes or [])
        self.choice = _check_choice(choice)
        self._slots: dict[Slot, dict[str, str]] = {}
        for name, model in models.items():
            slot = describe_model(model)
            if slot is None:
                log.info("ignoring model %s: not one of the demo's catalogued families", name)
                continue
            size = next((z for z in catalog.SIZES if catalog.key(*slot, z) == name), "cpu")
            key = catalog.key(*slot, size)
            # CPU models of the measured-faster architectures run a frozen graph (wne.fast);
            # the eager twin is kept for what needs gradients (the Why page's filters)
            eager = copy.deepcopy(model.eval())
            self.models[key] = accelerate(model.eval())
            self._eager[key] = eager if is_accelerated(self.models[key]) else self.models[key]
            self._slots.setdefault(slot, {})[size] = key
        self.psnrs = {k: set12_psnr(m) for k, m in self.models.items()}
        for slot, sizes in self._slots.items():  # the catalog's size order
            self._slots[slot] = {z: sizes[z] for z in catalog.SIZES if z in sizes}

    def select(self, choice: str) -> Zoo:
        """The same models with another ``choice``; ValueError outside :data:`CHOICES`."""
        view = copy.copy(self)
        view.choice = _check_choice(choice)
        return view

    @classmethod
    def discover(
        cls,
        root: str | Path | None = None,
        *,
        device: str | torch.device | None = None,
        hub_repo: str | None = None,
    ) -> Zoo:
        """Finds the catalogued checkpoints in ``root`` (default: the bundled folder) and on
        ``hub_repo`` (default ``$WNE_HUB_REPO``; none: local only) and loads each once on
        ``device`` (default :func:`wne.device.pick_device`; an unavailable one falls back to
        the CPU with a note). Failures are recorded in ``errors``, never raised."""
        notes: list[str] = []
        try:
            dev = pick_device(device)
        except ValueError as exc:
            log.error("%s; running the models on the CPU", exc)
            notes.append(f"{exc}; the models run on the CPU.")
            dev = torch.device("cpu")
        hub_repo = hub_repo if hub_repo is not None else EnvSettings.from_env().hub_repo
        known, found = catalog.keys(), wne.available_checkpoints(root)
        local = [k for k in known if k in found]
        rival_keys = [k for k in catalog.rival_keys() if k in found]
        if skipped := sorted(set(found) - set(local) - set(rival_keys)):
            log.info("ignoring checkpoints the demo does not use: %s", ", ".join(skipped))
        keys = local + ([k for k in known if k not in local] if hub_repo else [])
        models: dict[str, nn.Module] = {}
        errors: dict[str, str] = {}
        hub_down, entries = False, {e.key: e for e in catalog.entries()}
        for key in keys:
            if hub_down and key not in local:
                continue
            try:
                model = wne.load(
                    key, device=dev, root=root, repo=hub_repo, source="auto", timeout=10.0
                )
            except CheckpointNotFoundError as exc:
                if key in local:
                    errors[key] = str(exc)
                log.debug("no checkpoint %s: %s", key, exc)
                continue
            except HubError as exc:  # unreachable Hub: stop asking it for the other keys
                hub_down = True
                log.warning(
                    "Hub repo %s unavailable (%s); using local checkpoints only", hub_repo, exc
                )
                continue
            except Exception as exc:  # a broken checkpoint must not stop the app
                errors[key] = f"{type(exc).__name__}: {exc}"
                log.warning("could not load checkpoint %s: %s", key, exc)
                continue
            slot, size = describe_model(model), entries[key].size
            described = catalog.key(*slot, size) if slot else "another model"
            if described != key:
                errors[key] = f"its config.json describes {described}"
                log.warning("checkpoint %s: %s", key, errors[key])
                continue
            models[key] = model
        rivals = {}
        for key in rival_keys:  # the Why-not-simpler page's, local only
            try:
                model = wne.load(key, device=dev, root=root, source="local")
            except Exception as exc:  # a broken checkpoint must not stop the app
                errors[key] = f"{type(exc).__name__}: {exc}"
                log.warning("could not load rival %s: %s", key, exc)
                continue
            if (why := rival_mismatch(key, model)) is not None:
                errors[key] = why
                log.warning("rival %s: %s", key, why)
                continue
            rivals[key] = model
        log.info("demo models on %s: %s", dev, ", ".join(sorted(models)) or "none")
        return cls(models, dev, errors, notes, rivals=rivals)

    def has(self, backbone: str, variant: str, sigma_train: int) -> bool:
        """Whether that slot has a loaded model (of any size)."""
        return bool(self._slots.get((backbone, variant, sigma_train)))

    def sizes(self) -> list[str]:
        """The sizes with at least one loaded model, in the catalog's order."""
        have = {z for sizes in self._slots.values() for z in sizes}
        return [z for z in catalog.SIZES if z in have]

    def checkpoint(self, backbone: str, variant: str, sigma_train: int) -> str | None:
        """The key of the checkpoint :meth:`get` returns for a slot under this zoo's choice
        (None when there is none)."""
        sizes = self._slots.get((backbone, variant, sigma_train), {})
        if self.choice != BEST:
            return sizes.get(self.choice)
        return (
            catalog.best_checkpoint(backbone, variant, sigma_train, self.psnrs) if sizes else None
        )

    def unavailable_reason(self, backbone: str, variant: str, sigma_train: int) -> str | None:
        """Why a slot has no model under this zoo's choice (None when it has one)."""
        if self.checkpoint(backbone, variant, sigma_train) is not None:
            return None
        family = catalog.FAMILIES[backbone]
        name = f"{family.label} {catalog.VARIANT_LABELS[variant]} at training σ={sigma_train}"
        sizes = [self.choice] if self.choice != BEST else list(catalog.SIZES)
        keys = [catalog.key(backbone, variant, sigma_train, z) for z in sizes]
        failed = [k for k in keys if k in self.errors]
        if failed:
            k = failed[0]
            return f"{name} is unavailable: checkpoint {k!r} failed to load ({self.errors[k]})"
        if self.choice != BEST and self.has(backbone, variant, sigma_train):
            others = ", ".join(
                catalog.SIZE_LABELS[z] for z in self._slots[(backbone, variant, sigma_train)]
            )
            return (
                f"{name} has no {catalog.SIZE_LABELS[self.choice]} checkpoint ({keys[0]!r} is "
                f"not installed); choose {others} or the best available under 'checkpoints'"
            )
        return f"{name} is unavailable: no checkpoint {keys[0]!r} is installed"

    def get(self, backbone: str, variant: str, sigma_train: int) -> nn.Module:
        """The model of a slot under this zoo's choice; ModelUnavailableError with the reason."""
        key = self.checkpoint(backbone, variant, sigma_train)
        if key is None:
            reason = self.unavailable_reason(backbone, variant, sigma_train)
            raise ModelUnavailableError(reason or "unavailable")
        return self.models[key]

    def differentiable(self, backbone: str, variant: str, sigma_train: int) -> nn.Module:
        """The model of a slot, as :meth:`get`, in eager PyTorch (gradients flow through it)."""
        self.get(backbone, variant, sigma_train)  # the same choice, and the same refusal
        return self._eager[self.checkpoint(backbone, variant, sigma_train)]

    def by_key(self, key: str) -> nn.Module:
        """A loaded zoo checkpoint or rival by its key (whatever the choice);
        ModelUnavailableError with the reason."""
        found = self.models.get(key) or self.rivals.get(key)
        if found is not None:
            return found
        why = self.errors.get(key)
        name = catalog.get(key).label if key in {*catalog.keys(), *catalog.rival_keys()} else key
        raise ModelUnavailableError(
            f"{name} ({key!r}) is unavailable: "
            + (
                f"its checkpoint failed to load ({why})"
                if why
                else "no such checkpoint is installed"
            )
        )

    def differentiable_key(self, key: str) -> nn.Module:
        """A checkpoint by key, as :meth:`by_key`, in eager PyTorch (gradients flow through it)."""
        self.by_key(key)  # the same refusal
        return self._eager[key]

    def choice_notes(self, backbones: Iterable[str], sigma_train: int) -> list[str]:
        """Which checkpoints run for each backbone that has more than one size at
        ``sigma_train``, and why (for the page and the API's notes)."""
        notes = []
        for bid in backbones:
            family = catalog.FAMILIES[bid]
            slots = [self._slots.get((bid, v, sigma_train), {}) for v in family.variants]
            if len({z for s in slots for z in s}) < 2:
                continue
            ran = [k for v in family.variants if (k := self.checkpoint(bid, v, sigma_train))]
            if not ran:
                continue  # the unavailable slots say why
            sizes = sorted({catalog.get(k).size for k in ran}, key=catalog.SIZES.index)
            what = " and ".join(catalog.SIZE_LABELS[z] for z in sizes)
            why = "best available" if self.choice == BEST else "as chosen"
            scores = "; ".join(
                f"{catalog.SIZE_LABELS[z]} "
                + " / ".join(_db(self.psnrs[s[z]], "") if z in s else "–" for s in slots)
                + " dB"
                for z in catalog.SIZES
                if any(z in s for s in slots)
            )
            names = ", ".join(f"`{k}`" for k in ran)
            variants = " / ".join(catalog.VARIANT_LABELS[v] for v in family.variants)
            notes.append(
                f"{family.label}: {what} checkpoints {names} ({why}; Set12 PSNR at "
                f"σ_train = {sigma_train}, {variants}: {scores})."
            )
        return notes

    def sigmas(self, backbones: Iterable[str] | None = None) -> list[int]:
        """Training σ values with at least one model (of the given backbones)."""
        wanted = set(backbones) if backbones is not None else None
        return sorted({s for b, _, s in self._slots if wanted is None or b in wanted})

    def backbones(self) -> list[str]:
        """Backbone ids with at least one model, in display order."""
        have = {b for b, _, _ in self._slots}
        return [f.id for f in catalog.families(zoo_only=True) if f.id in have]

    def default_sigma(self) -> int:
        """25 when available, else the smallest available σ_train (25 for an empty zoo)."""
        sigmas = self.sigmas()
        return 25 if 25 in sigmas or not sigmas else sigmas[0]

    def summary_markdown(self) -> str:
        """A Markdown table of which (backbone, σ_train) pairs are available (and at which
        sizes), with the recorded Set12 PSNR that "best available" ranks by."""
        sigmas = catalog.SIGMA_TRAINS
        several = len(self.sizes()) > 1
        head = "| backbone | " + " | ".join(f"σ_train={s}" for s in sigmas) + " |"
        rows = [head, "|---|" + "---|" * len(sigmas)]

        def cell(f: catalog.Family, s: int) -> str:
            parts = []
            for z in catalog.SIZES:
                have = [v for v in f.variants if z in self._slots.get((f.id, v, s), {})]
                label = " + ".join(catalog.VARIANT_LABELS[v] for v in have)
                parts += [label + (f" ({catalog.SIZE_LABELS[z]})" if several else "")] * bool(have)
            return "; ".join(parts) or "unavailable"

        for f in catalog.families(zoo_only=True):
            rows.append(f"| {f.label} | " + " | ".join(cell(f, s) for s in sigmas) + " |")
        if several:
            ranks = '(what "best available" ranks by)'
            rows.append(f"\nSet12 PSNR at σ_train recorded in each checkpoint {ranks}:\n")
            rows += [f"- `{k}`: {_db(p)}" for k, p in sorted(self.psnrs.items())]
        rows += [""] if self.errors or self.notes else []
        rows += [f"- `{k}` failed to load: {msg}" for k, msg in sorted(self.errors.items())]
        return "\n".join(rows + [f"- {n}" for n in self.notes])


def _db(value: float | None, unit: str = " dB") -> str:
    return "not recorded" if value is None else f"{value:.2f}{unit}"


def _check_choice(choice: Any) -> str:
    if choice not in CHOICES:
        raise ValueError(f"checkpoint choice must be one of {list(CHOICES)}, got {choice!r}")
    return str(choice)
