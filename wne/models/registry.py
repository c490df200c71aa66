"""A small name → constructor registry for backbones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

__all__ = ["available", "build", "register"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
T = TypeVar("T", bound=Callable[..., nn.Module])


def register(name: str) -> Callable[[T], T]:
    """Class decorator that registers a backbone constructor under ``name``.

    Args:
        name: The architecture name used by :func:`build` and in checkpoints.

    Returns:
        The decorator, which returns the constructor unchanged.

    Raises:
        ValueError: If ``name`` is already registered.
    """

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
    """Builds a registered backbone with random weights.

    Args:
        arch: A name from :func:`available`.
        **kwargs: Constructor arguments of that backbone.

    Returns:
        The backbone module.

    Raises:
        ValueError: If ``arch`` is unknown.
        TypeError: If a keyword is not accepted by the backbone.
    """
    try:
        ctor = _REGISTRY[arch]
    except KeyError:
        raise ValueError(
            f"unknown architecture {arch!r}; available: {', '.join(available())}"
        ) from None
    return ctor(**kwargs)
