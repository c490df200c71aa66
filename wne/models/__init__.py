"""Backbones, one per module, behind a registry.

Importing this package registers every backbone; :func:`build` makes one by name.
This package never imports :mod:`wne.wrapper`.
"""

from wne.models import dncnn, fdncnn, fdncnn_ne, fdncnn_se, swinir  # noqa: F401  (registration)
from wne.models.registry import available, build, register

__all__ = ["available", "build", "register"]
