"""Degradations: contrast/brightness shifts and seeded Gaussian noise.

Images live on the [0, 1] scale; noise levels σ are given on the 0–255 scale
(as in the literature) and divided by 255. Noisy images are never clipped.
"""

from __future__ import annotations

import math

import torch

__all__ = ["add_gaussian_noise", "gaussian_noise", "shift"]


def shift(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """Contrast/brightness shift ``a·x + b`` (no clipping).

    Args:
        x: Images on the [0, 1] scale.
        a: Contrast factor, > 0.
        b: Brightness offset in [0, 1] units.

    Returns:
        ``a·x + b``.

    Raises:
        ValueError: If ``a`` is not a positive finite number or ``b`` is not finite.
    """
    if not (math.isfinite(a) and a > 0):
        raise ValueError(f"contrast a must be a positive finite number, got {a}")
    if not math.isfinite(b):
        raise ValueError(f"brightness b must be finite, got {b}")
    return a * x + b


def gaussian_noise(
    shape: torch.Size | tuple[int, ...],
    sigma: float,
    seed: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Seeded white Gaussian noise of standard deviation ``sigma / 255``.

    The draw depends only on ``shape`` and ``seed`` (a CPU generator is used and
    the result moved to ``device``), so every model in a comparison gets the
    same noise.

    Args:
        shape: Output shape.
        sigma: Standard deviation on the 0–255 scale, >= 0.
        seed: Random seed.
        dtype: Output dtype.
        device: Output device.

    Returns:
        The noise tensor.

    Raises:
        ValueError: If ``sigma`` is negative or not finite, or ``dtype`` is not
            floating point.
    """
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"noise sigma must be a finite number >= 0, got {sigma}")
    if not dtype.is_floating_point:
        raise ValueError(f"noise dtype must be floating point, got {dtype}")
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(tuple(shape), generator=gen, dtype=torch.float32) * (sigma / 255.0)
    return noise.to(dtype=dtype, device=device)


def add_gaussian_noise(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """``x`` plus seeded Gaussian noise of std ``sigma / 255``, never clipped.

    Args:
        x: Images on the [0, 1] scale.
        sigma: Standard deviation on the 0–255 scale.
        seed: Random seed.

    Returns:
        The noisy images (same shape, dtype and device as ``x``).

    Raises:
        ValueError: If ``x`` is not floating point (integer images would
            truncate the noise; convert to [0, 1] floats first).
    """
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point image on the [0, 1] scale, got {x.dtype}")
    return x + gaussian_noise(x.shape, sigma, seed, dtype=x.dtype, device=x.device)
