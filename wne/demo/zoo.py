"""Discovering the demo's checkpoints and loading each model once.

What the demo can show comes from :mod:`wne.catalog`: the families with
checkpoints (``families(zoo_only=True)``), their variants and the training σ
values. Checkpoints come from :func:`wne.available_checkpoints`
(``$WNE_CHECKPOINT_DIR`` or ``checkpoints/``); with ``$WNE_HUB_REPO`` set, the
catalogued keys missing locally are also tried on the Hub through
:func:`wne.load`. A loaded model is filed under the (family, variant, σ_train)
slot its own ``config.json`` describes (:func:`wne.catalog.describe`), never by
parsing its key. A missing or broken checkpoint never stops the app: its slot is
reported as unavailable with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

import wne
from wne import catalog
from wne.checkpoints import CheckpointNotFoundError, HubError
from wne.demo.settings import DemoInputError
from wne.device import pick_device

__all__ = ["ModelUnavailableError", "Slot", "Zoo", "describe_model", "run_label"]

log = logging.getLogger(__name__)

Slot = tuple[str, str, int]
"""``(family id, variant, σ_train)``."""


class ModelUnavailableError(DemoInputError):
    """The requested (backbone, variant, σ_train) has no loadable checkpoint."""


def describe_model(model: nn.Module) -> Slot | None:
    """The slot of a loaded model, from its ``wne_config`` (arch, wrapper, σ_train).

    Returns:
        ``(family, variant, sigma_train)``, or None for a model the demo's
        catalog families do not cover (or one without a config).
    """
    cfg = getattr(model, "wne_config", None)
    if cfg is None or cfg.sigma_train is None:
        return None
    found = catalog.describe(cfg.arch, cfg.wrapper)
    if found is None or not found[0].sigmas:
        return None
    family, variant = found
    return family.id, variant, round(float(cfg.sigma_train))


def run_label(backbone: str, variant: str) -> str:
    """Display name of a model (:func:`wne.catalog.label`)."""
    return catalog.label(backbone, variant)


class Zoo:
    """The loaded models, indexed by (backbone, variant, σ_train).

    Args:
        models: Loaded models (each with its ``wne_config``), by any name; each is
            filed under the slot its config describes, named by
            :func:`wne.catalog.key`. Models the catalog does not describe are
            left out (logged).
        device: The device they live on.
        errors: Reasons why checkpoints failed to load, by key.
        notes: Start-up notes for the page (e.g. a device fallback).
    """

    def __init__(
        self,
        models: dict[str, nn.Module],
        device: torch.device,
        errors: dict[str, str] | None = None,
        notes: list[str] | None = None,
    ) -> None:
        self.models: dict[str, nn.Module] = {}
        self.device = device
        self.errors = dict(errors or {})
        self.notes = list(notes or [])
        self._slots: set[Slot] = set()
        self._digests: dict[str, str] = {}
        for name, model in models.items():
            slot = describe_model(model)
            if slot is None:
                log.info("ignoring model %s: not one of the demo's catalogued families", name)
                continue
            model.eval()
            self.models[catalog.key(*slot)] = model
            self._slots.add(slot)

    @classmethod
    def discover(
        cls,
        root: str | Path | None = None,
        *,
        device: str | torch.device | None = None,
        hub_repo: str | None = None,
    ) -> Zoo:
        """Finds the demo's checkpoints and loads each one once.

        Args:
            root: Checkpoint folder (default: the bundled one, see
                :func:`wne.checkpoints.default_root`).
            device: Where to put the models (default: :func:`wne.device.pick_device`,
                i.e. ``$WNE_DEVICE`` or CUDA when available). A device that is not
                available falls back to the CPU with a logged error and a note.
            hub_repo: Hub repo to try for catalogued keys missing locally
                (default: ``$WNE_HUB_REPO``; none: local only).

        Returns:
            The zoo (possibly empty; failures are recorded in ``errors``).
        """
        notes: list[str] = []
        try:
            dev = pick_device(device)
        except ValueError as exc:
            log.error("%s; running the models on the CPU", exc)
            notes.append(f"{exc}; the models run on the CPU.")
            dev = torch.device("cpu")
        hub_repo = hub_repo if hub_repo is not None else os.environ.get("WNE_HUB_REPO") or None
        known = cls.standard_keys()
        found = wne.available_checkpoints(root)
        local = [k for k in known if k in found]
        skipped = sorted(set(found) - set(local))
        if skipped:
            log.info("ignoring checkpoints the demo does not use: %s", ", ".join(skipped))
        keys = list(local)
        if hub_repo:
            keys += [k for k in known if k not in local]
        models: dict[str, nn.Module] = {}
        errors: dict[str, str] = {}
        hub_down = False
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
            slot = describe_model(model)
            if slot is None or catalog.key(*slot) != key:
                errors[key] = (
                    f"its config.json describes {catalog.key(*slot) if slot else 'another model'}"
                )
                log.warning("checkpoint %s: %s", key, errors[key])
                continue
            models[key] = model
        log.info("demo models on %s: %s", dev, ", ".join(sorted(models)) or "none")
        return cls(models, dev, errors, notes)

    @staticmethod
    def standard_keys() -> list[str]:
        """Every key of the catalog's zoo (the checkpoints the demo can show)."""
        return catalog.keys()

    def has(self, backbone: str, variant: str, sigma_train: int) -> bool:
        """Whether that slot has a loaded model."""
        return (backbone, variant, sigma_train) in self._slots

    def unavailable_reason(self, backbone: str, variant: str, sigma_train: int) -> str | None:
        """Why a slot has no model (None when it has one)."""
        if self.has(backbone, variant, sigma_train):
            return None
        key = catalog.key(backbone, variant, sigma_train)
        family = catalog.FAMILIES[backbone]
        name = f"{family.label} {catalog.VARIANT_LABELS[variant]} at training σ={sigma_train}"
        if key in self.errors:
            return f"{name} is unavailable: checkpoint {key!r} failed to load ({self.errors[key]})"
        return f"{name} is unavailable: no checkpoint {key!r} is installed"

    def get(self, backbone: str, variant: str, sigma_train: int) -> nn.Module:
        """The model of a slot.

        Raises:
            ModelUnavailableError: With the reason, if there is none.
        """
        reason = self.unavailable_reason(backbone, variant, sigma_train)
        if reason is not None:
            raise ModelUnavailableError(reason)
        return self.models[catalog.key(backbone, variant, sigma_train)]

    def fingerprint(self, backbone: str, variant: str, sigma_train: int) -> str:
        """The sha256 of a slot's weights (``"none"`` when it has no model).

        Read from the checkpoint's ``config.json`` (verified when it was loaded); a
        model without one is hashed from its state dict, once.
        """
        if not self.has(backbone, variant, sigma_train):
            return "none"
        model = self.models[catalog.key(backbone, variant, sigma_train)]
        digest = getattr(getattr(model, "wne_config", None), "sha256", "")
        if digest:
            return str(digest)
        key = catalog.key(backbone, variant, sigma_train)
        if key not in self._digests:
            h = hashlib.sha256()
            for name, tensor in sorted(model.state_dict().items()):
                h.update(name.encode())
                flat = tensor.detach().cpu().contiguous().reshape(-1)
                h.update(flat.view(torch.uint8).numpy().tobytes())
            self._digests[key] = "state:" + h.hexdigest()
        return self._digests[key]

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
        """A Markdown table of which (backbone, σ_train) pairs are available."""
        sigmas = catalog.SIGMA_TRAINS
        head = "| backbone | " + " | ".join(f"σ_train={s}" for s in sigmas) + " |"
        rows = [head, "|---|" + "---|" * len(sigmas)]
        for f in catalog.families(zoo_only=True):
            cells = []
            for s in sigmas:
                have = [catalog.VARIANT_LABELS[v] for v in f.variants if self.has(f.id, v, s)]
                cells.append(" + ".join(have) if have else "unavailable")
            rows.append(f"| {f.label} | " + " | ".join(cells) + " |")
        if self.errors or self.notes:
            rows.append("")
            rows += [f"- `{k}` failed to load: {msg}" for k, msg in sorted(self.errors.items())]
            rows += [f"- {n}" for n in self.notes]
        return "\n".join(rows)
