"""Faster CPU inference for loaded models, equal to the eager model to float round-off.

:func:`accelerate` replaces a convolutional backbone (DnCNN, FDnCNN) by a frozen
TorchScript graph (BatchNorm folded, oneDNN weights pre-packed), traced at a probe size
and checked against eager at two others (any failure keeps the eager backbone). A
:class:`~wne.NormEquivariant` runs its eager ``forward`` around it, so stays exactly
equivariant. Transformers stay eager: TorchScript measured slower (see the lab book).
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

from wne.models._common import check_input
from wne.settings import EnvSettings
from wne.wrapper import InputNormalized, NormEquivariant

__all__ = ["ACCELERATED_ARCHS", "accelerate", "is_accelerated"]

log = logging.getLogger(__name__)

ACCELERATED_ARCHS = frozenset({"dncnn", "fdncnn"})
"""Architectures compiled by :func:`accelerate` (measured faster frozen than eager)."""

_PROBE = (1, 1, 48, 48)
_WRAPPERS = (NormEquivariant, InputNormalized)
"""Wrappers that run eagerly around a compiled backbone (their statistics' checks stay)."""
_CHECKS = ((2, 1, 37, 53), (1, 1, 64, 41))


class _Frozen(nn.Module):
    """A frozen TorchScript backbone with the eager module's attributes kept readable."""

    def __init__(self, graph: torch.jit.ScriptModule, eager: nn.Module) -> None:
        super().__init__()
        self.graph = graph
        self.channels = getattr(eager, "channels", 1)
        self.eager_type = type(eager).__name__

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Runs the frozen graph (after the eager model's input checks, which tracing
        records as constants)."""
        check_input(x, self.channels)
        return self.graph(x)


def is_accelerated(model: nn.Module) -> bool:
    """Whether ``model`` (or its wrapped backbone) runs a frozen graph."""
    inner = model.backbone if isinstance(model, _WRAPPERS) else model
    return isinstance(inner, _Frozen)


def _arch(model: nn.Module) -> str | None:
    cfg = getattr(model, "wne_config", None)
    return getattr(cfg, "arch", None)


def _freeze(backbone: nn.Module, channels: int, tolerance: float) -> _Frozen:
    probe = torch.rand(_PROBE[0], channels, *_PROBE[2:])
    with torch.no_grad(), warnings.catch_warnings():
        # The input checks' Python branches become constants in the trace; _Frozen
        # runs them eagerly before the graph.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # TorchScript is deprecated upstream (torch 2.14 warns); if it goes, the
        # failure below keeps the eager backbone.
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(backbone, probe, check_trace=False)
        graph = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        frozen = _Frozen(graph, backbone)
        gen = torch.Generator().manual_seed(0)
        for b, _c, h, w in _CHECKS:
            x = torch.rand(b, channels, h, w, generator=gen)
            diff = float((frozen(x) - backbone(x)).abs().max())
            if not diff <= tolerance:
                raise ValueError(f"frozen graph differs from eager by {diff:.2e} at {h}x{w}")
    return frozen


def accelerate(model: nn.Module, *, tolerance: float = 1e-5) -> nn.Module:
    """Compiles the backbone of a loaded CPU model (from :func:`wne.load`, in eval mode)
    where that is measured faster, to ``tolerance`` (max-abs difference to eager).

    Returns:
        A wrapped model: itself, its backbone replaced in place; a bare backbone: its
        compiled stand-in (same ``wne_config``). Unchanged for other architectures, a
        GPU model, training mode, ``WNE_FAST=0`` or a failed check (logged).
    """
    if not EnvSettings.from_env().fast:
        return model
    wrapped = isinstance(model, _WRAPPERS)
    backbone = model.backbone if wrapped else model
    arch = _arch(model) or _arch(backbone)
    if arch not in ACCELERATED_ARCHS or isinstance(backbone, _Frozen):
        return model
    params = list(backbone.parameters())
    if model.training or (params and params[0].device.type != "cpu"):
        return model
    channels = int(getattr(backbone, "channels", 1))
    try:
        frozen = _freeze(backbone, channels, tolerance)
    except Exception as exc:  # any failure keeps the eager model
        log.warning("kept the eager %s backbone (no frozen graph): %s", arch, exc)
        return model
    if wrapped:
        model.backbone = frozen
        return model
    frozen.wne_config = getattr(model, "wne_config", None)
    return frozen
