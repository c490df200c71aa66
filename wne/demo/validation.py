"""The demo's single validation layer: raw UI/API values → typed, checked settings.

Every value that reaches the demo from a browser or an API client passes
through :func:`parse_settings` (or one of the small parsers below) before any
work is done. Problems raise :class:`DemoInputError`, whose message names the
offending argument and the accepted range; the app turns it into a
``gr.Error`` in one place (:func:`wne.demo.errors.user_facing`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "A_RANGE",
    "BACKBONE_IDS",
    "B_RANGE",
    "MAX_SIDE_RANGE",
    "ORDERS",
    "SEED_RANGE",
    "SIGMA_RANGE",
    "SIGMA_TRAIN_CHOICES",
    "DemoInputError",
    "Settings",
    "parse_choice",
    "parse_choices",
    "parse_flag",
    "parse_number",
    "parse_settings",
]

A_RANGE = (0.1, 4.0)
"""Contrast factor ``a`` (the UI slider's range)."""
B_RANGE = (-1.0, 1.0)
"""Brightness offset ``b`` in [0, 1] units."""
SIGMA_RANGE = (0.0, 100.0)
"""Test noise level σ on the 0–255 scale."""
SEED_RANGE = (0, 2**31 - 1)
MAX_SIDE_RANGE = (32, 2048)
"""Working size (longest side in pixels) accepted by the API."""
SIGMA_TRAIN_CHOICES = (10, 25, 50)
BACKBONE_IDS = ("dncnn", "swinir", "fdncnn-ne")
ORDERS = {
    "shift-then-noise": "shift the clean scene, then add noise",
    "noise-then-shift": "add noise, then shift the noisy image",
}


class DemoInputError(ValueError):
    """A problem with a user's request; the message names it and is shown as is."""


@dataclass(frozen=True)
class Settings:
    """One validated request.

    Attributes:
        a: Contrast factor, ``x → a·x + b``.
        b: Brightness offset in [0, 1] units.
        sigma: Test noise level on the 0–255 scale.
        seed: Noise seed.
        sigma_train: The models' training noise level (selects checkpoints).
        backbones: Backbone ids to show, in display order.
        order: ``"shift-then-noise"`` (target ``a·x+b`` observed with noise σ) or
            ``"noise-then-shift"`` (the noisy image ``x+n`` is shifted, so the
            noise becomes ``a·σ``).
        max_side: Working size: longest side of the processed image in pixels.
        clip: Clip the model inputs (and outputs) to [0, 1], as an 8-bit image
            would be; this breaks exact equivariance where values saturate.
    """

    a: float = 1.0
    b: float = 0.0
    sigma: float = 25.0
    seed: int = 0
    sigma_train: int = 25
    backbones: tuple[str, ...] = field(default=("dncnn", "swinir"))
    order: str = "shift-then-noise"
    max_side: int = 256
    clip: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the backbones as a list)."""
        out = asdict(self)
        out["backbones"] = list(self.backbones)
        return out


def parse_number(
    value: Any,
    name: str,
    lo: float,
    hi: float,
    *,
    integer: bool = False,
) -> float | int:
    """Parses a finite number within ``[lo, hi]``.

    Accepts ints, floats and numeric strings (API clients send either).

    Args:
        value: The raw value.
        name: The argument's name, used in the message.
        lo: Smallest accepted value.
        hi: Largest accepted value.
        integer: Require an integral value and return an ``int``.

    Returns:
        The number.

    Raises:
        DemoInputError: If the value is missing, not numeric, not finite, not
            integral when required, or out of range.
    """
    if value is None or isinstance(value, bool):
        raise DemoInputError(f"{name} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            raise DemoInputError(
                f"{name} must be a number in [{lo:g}, {hi:g}], got {text[:40]!r}"
            ) from None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DemoInputError(
            f"{name} must be a number in [{lo:g}, {hi:g}], got a {type(value).__name__}"
        ) from None
    if not math.isfinite(number):
        raise DemoInputError(f"{name} must be a finite number, got {number}")
    if integer and number != int(number):
        raise DemoInputError(f"{name} must be a whole number, got {number:g}")
    if not lo <= number <= hi:
        raise DemoInputError(f"{name} must be in [{lo:g}, {hi:g}], got {number:g}")
    return int(number) if integer else number


def parse_flag(value: Any, name: str) -> bool:
    """Parses a boolean (``True/False``, ``0/1``, ``"true"/"false"``).

    Raises:
        DemoInputError: On anything else.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise DemoInputError(f"{name} must be true or false, got {value!r}")


def parse_choice(value: Any, name: str, allowed: Iterable[str]) -> str:
    """Parses one value from ``allowed``.

    Raises:
        DemoInputError: If ``value`` is not one of them.
    """
    allowed = list(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise DemoInputError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def parse_choices(
    values: Any, name: str, allowed: Sequence[str], *, min_count: int = 1
) -> tuple[str, ...]:
    """Parses a list of distinct values from ``allowed``, returned in ``allowed``'s order.

    A single string is accepted as a one-element list.

    Raises:
        DemoInputError: On unknown values or fewer than ``min_count`` of them.
    """
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple):
        raise DemoInputError(f"{name} must be a list drawn from {list(allowed)}, got {values!r}")
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise DemoInputError(f"{name}: unknown value(s) {unknown}; choose from {list(allowed)}")
    if len(set(values)) < min_count:
        raise DemoInputError(f"{name}: choose at least {min_count} of {list(allowed)}")
    return tuple(v for v in allowed if v in values)


def parse_settings(
    a: Any = 1.0,
    b: Any = 0.0,
    sigma: Any = 25.0,
    seed: Any = 0,
    sigma_train: Any = 25,
    backbones: Any = ("dncnn", "swinir"),
    order: Any = "shift-then-noise",
    max_side: Any = 256,
    clip: Any = False,
    *,
    max_side_limit: int | None = None,
) -> Settings:
    """Validates the raw controls of a request.

    Args:
        a: Contrast factor, in :data:`A_RANGE`.
        b: Brightness offset, in :data:`B_RANGE`.
        sigma: Noise level (0–255 scale), in :data:`SIGMA_RANGE`.
        seed: Whole number in :data:`SEED_RANGE`.
        sigma_train: One of :data:`SIGMA_TRAIN_CHOICES` (number or string).
        backbones: Non-empty list of ids from :data:`BACKBONE_IDS`.
        order: A key of :data:`ORDERS`.
        max_side: Working size in pixels, in :data:`MAX_SIDE_RANGE`.
        clip: Boolean.
        max_side_limit: A lower upper bound for ``max_side`` (e.g. on CPU).

    Returns:
        The settings.

    Raises:
        DemoInputError: Naming the first invalid argument.
    """
    hi_side = (
        MAX_SIDE_RANGE[1] if max_side_limit is None else min(max_side_limit, MAX_SIDE_RANGE[1])
    )
    st = parse_number(sigma_train, "training sigma", 0, 1000)
    if st not in SIGMA_TRAIN_CHOICES:
        raise DemoInputError(
            f"training sigma must be one of {list(SIGMA_TRAIN_CHOICES)}, got {st:g}"
        )
    return Settings(
        a=float(parse_number(a, "contrast a", *A_RANGE)),
        b=float(parse_number(b, "brightness b", *B_RANGE)),
        sigma=float(parse_number(sigma, "noise sigma", *SIGMA_RANGE)),
        seed=int(parse_number(seed, "seed", *SEED_RANGE, integer=True)),
        sigma_train=int(st),
        backbones=parse_choices(backbones, "backbones", BACKBONE_IDS),
        order=parse_choice(order, "order of operations", ORDERS),
        max_side=int(
            parse_number(max_side, "working size", MAX_SIDE_RANGE[0], hi_side, integer=True)
        ),
        clip=parse_flag(clip, "clip to [0,1]"),
    )
