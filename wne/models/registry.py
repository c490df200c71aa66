"""A small name → constructor registry for backbones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

__all__ = ["available", "build", "register"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
T = TypeVar("T", bound=Callable[..., nn.Module])


def register(name: str) -> Callable[[T], T]:
    """Class decorator registering a backbone constructor under ``name`` (the name
    :func:`build` and checkpoints use); a name registered twice raises ValueError."""

    def deco(ctor: T) -> T:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is already registered")
        _REGISTRY[name] = ctor
        return ctor

    return deco


def available() -> list[str]:
    """Names of the registered backbones, sorted."""
    return sorted(_REGISTRY)


def build(arch: str, **kwargs: Any) -> nn.Module:
    """Builds the registered backbone ``arch`` with random weights.

    Raises:
        ValueError: If ``arch`` is unknown.
        TypeError: If the backbone does not take a keyword of ``kwargs``.
    """
    try:
        ctor = _REGISTRY[arch]
    except KeyError:
        raise ValueError(
            f"unknown architecture {arch!r}; available: {', '.join(available())}"
        ) from None
    return ctor(**kwargs)
