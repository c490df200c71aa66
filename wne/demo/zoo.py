"""Discovering the demo's checkpoints and loading each model once.

Model keys follow ``{dncnn|swinir}-{plain|wne}-s{σ}`` and ``fdncnn-ne-s{σ}``
(the NE-arch baseline has a single variant). Checkpoints come from
:func:`wne.available_checkpoints` (``$WNE_CHECKPOINT_DIR`` or ``checkpoints/``);
with ``$WNE_HUB_REPO`` set, the standard keys missing locally are also tried on
the Hub through :func:`wne.load`. A missing or broken checkpoint never stops
the app: its (backbone, variant, σ) slot is reported as unavailable with the
reason.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import wne
from wne.checkpoints import CheckpointNotFoundError, HubError
from wne.demo.validation import SIGMA_TRAIN_CHOICES, DemoInputError
from wne.device import pick_device

__all__ = [
    "BACKBONES",
    "Backbone",
    "ModelUnavailableError",
    "Zoo",
    "model_key",
    "parse_key",
    "pick_device",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backbone:
    """A backbone family shown in the demo.

    Attributes:
        id: Identifier used by the UI and the API (``"dncnn"``, ...).
        label: Human-readable name.
        short: Short name for tables and plots.
        variants: The variants that exist for it, in display order.
    """

    id: str
    label: str
    short: str
    variants: tuple[str, ...]


BACKBONES: dict[str, Backbone] = {
    "dncnn": Backbone("dncnn", "CNN (DnCNN)", "CNN", ("plain", "wne")),
    "swinir": Backbone("swinir", "Transformer (SwinIR)", "Transformer", ("plain", "wne")),
    "fdncnn-ne": Backbone("fdncnn-ne", "NE-arch baseline (FDnCNN-NE)", "NE-arch", ("ne",)),
}

VARIANT_LABELS = {"plain": "plain", "wne": "WNE", "ne": "NE-arch"}
_KEY_RE = re.compile(r"^(?:(dncnn|swinir)-(plain|wne)|(fdncnn)-(ne))-s(\d{1,3})$")


class ModelUnavailableError(DemoInputError):
    """The requested (backbone, variant, σ_train) has no loadable checkpoint."""


def model_key(backbone: str, variant: str, sigma_train: int) -> str:
    """The checkpoint key of a slot, e.g. ``("dncnn", "wne", 25) → "dncnn-wne-s25"``."""
    if backbone == "fdncnn-ne":
        return f"fdncnn-ne-s{sigma_train}"
    return f"{backbone}-{variant}-s{sigma_train}"


def parse_key(key: str) -> tuple[str, str, int] | None:
    """``"swinir-plain-s10" → ("swinir", "plain", 10)``; None for keys the demo does not use."""
    m = _KEY_RE.match(key)
    if m is None:
        return None
    if m.group(1):
        return m.group(1), m.group(2), int(m.group(5))
    return "fdncnn-ne", "ne", int(m.group(5))


class Zoo:
    """The loaded models, indexed by (backbone, variant, σ_train).

    Args:
        models: Loaded models by key.
        device: The device they live on.
        errors: Reasons why keys failed to load, by key.
    """

    def __init__(
        self,
        models: dict[str, nn.Module],
        device: torch.device,
        errors: dict[str, str] | None = None,
    ) -> None:
        self.models = dict(models)
        self.device = device
        self.errors = dict(errors or {})
        for model in self.models.values():
            model.eval()

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
            device: Where to put the models (default: :func:`pick_device`).
            hub_repo: Hub repo to try for standard keys missing locally
                (default: ``$WNE_HUB_REPO``; none: local only).

        Returns:
            The zoo (possibly empty; failures are recorded in ``errors``).
        """
        dev = pick_device(device)
        hub_repo = hub_repo if hub_repo is not None else os.environ.get("WNE_HUB_REPO") or None
        local = [k for k in wne.available_checkpoints(root) if parse_key(k) is not None]
        skipped = sorted(set(wne.available_checkpoints(root)) - set(local))
        if skipped:
            log.info("ignoring checkpoints the demo does not use: %s", ", ".join(skipped))
        keys = list(local)
        if hub_repo:
            keys += [k for k in cls.standard_keys() if k not in local]
        models: dict[str, nn.Module] = {}
        errors: dict[str, str] = {}
        hub_down = False
        for key in keys:
            if hub_down and key not in local:
                continue
            try:
                models[key] = wne.load(
                    key, device=dev, root=root, repo=hub_repo, source="auto", timeout=10.0
                )
            except CheckpointNotFoundError as exc:
                if key in local:
                    errors[key] = str(exc)
                log.debug("no checkpoint %s: %s", key, exc)
            except HubError as exc:  # unreachable Hub: stop asking it for the other keys
                hub_down = True
                log.warning(
                    "Hub repo %s unavailable (%s); using local checkpoints only", hub_repo, exc
                )
            except Exception as exc:  # a broken checkpoint must not stop the app
                errors[key] = f"{type(exc).__name__}: {exc}"
                log.warning("could not load checkpoint %s: %s", key, exc)
        log.info("demo models on %s: %s", dev, ", ".join(sorted(models)) or "none")
        return cls(models, dev, errors)

    @staticmethod
    def standard_keys() -> list[str]:
        """Every key the demo knows how to show."""
        return [
            model_key(b.id, v, s)
            for s in SIGMA_TRAIN_CHOICES
            for b in BACKBONES.values()
            for v in b.variants
        ]

    def has(self, backbone: str, variant: str, sigma_train: int) -> bool:
        """Whether that slot has a loaded model."""
        return model_key(backbone, variant, sigma_train) in self.models

    def unavailable_reason(self, backbone: str, variant: str, sigma_train: int) -> str | None:
        """Why a slot has no model (None when it has one)."""
        key = model_key(backbone, variant, sigma_train)
        if key in self.models:
            return None
        name = f"{BACKBONES[backbone].label} {VARIANT_LABELS[variant]} at training σ={sigma_train}"
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
        return self.models[model_key(backbone, variant, sigma_train)]

    def sigmas(self, backbones: Iterable[str] | None = None) -> list[int]:
        """Training σ values with at least one model (of the given backbones)."""
        wanted = set(backbones) if backbones is not None else set(BACKBONES)
        found = {p[2] for k in self.models if (p := parse_key(k)) and p[0] in wanted}
        return sorted(found)

    def backbones(self) -> list[str]:
        """Backbone ids with at least one model, in display order."""
        have = {p[0] for k in self.models if (p := parse_key(k))}
        return [b for b in BACKBONES if b in have]

    def default_sigma(self) -> int:
        """25 when available, else the smallest available σ_train (25 for an empty zoo)."""
        sigmas = self.sigmas()
        return 25 if 25 in sigmas or not sigmas else sigmas[0]

    def summary_markdown(self) -> str:
        """A Markdown table of which (backbone, σ_train) pairs are available."""
        head = "| backbone | " + " | ".join(f"σ_train={s}" for s in SIGMA_TRAIN_CHOICES) + " |"
        rows = [head, "|---|" + "---|" * len(SIGMA_TRAIN_CHOICES)]
        for b in BACKBONES.values():
            cells = []
            for s in SIGMA_TRAIN_CHOICES:
                have = [VARIANT_LABELS[v] for v in b.variants if self.has(b.id, v, s)]
                cells.append(" + ".join(have) if have else "unavailable")
            rows.append(f"| {b.label} | " + " | ".join(cells) + " |")
        if self.errors:
            rows.append("")
            rows += [f"- `{k}` failed to load: {msg}" for k, msg in sorted(self.errors.items())]
        return "\n".join(rows)
