"""Degradations: contrast/brightness shifts, seeded noise of several kinds, JPEG.

Images live on the [0, 1] scale; noise levels σ are given on the 0–255 scale
(as in the literature) and divided by 255. Noisy images are never clipped, except
by :func:`jpeg`, whose 8-bit format requires it.

Noise kinds (:data:`NOISE_KINDS`, the paper's App. P), each drawn with unit
standard deviation and multiplied by ``σ / 255``:

- ``gaussian``: N(0, 1).
- ``uniform``: U[−√3, √3].
- ``laplace``: Laplace(0, 1/√2).
- ``rayleigh``: Rayleigh(1) / √((4 − π)/2), **not recentred**, as the paper
  defines it: its mean is √(π/2)/√((4 − π)/2) ≈ 1.913 (times σ/255), so it also
  brightens the image.

:func:`low_light` simulates a photo taken in the dark (Poisson–Gaussian noise).
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = [
    "NOISE_KINDS",
    "RAYLEIGH_MEAN",
    "add_gaussian_noise",
    "add_noise",
    "equivalent_sigma",
    "gaussian_noise",
    "jpeg",
    "low_light",
    "noise",
    "shift",
]

NOISE_KINDS: tuple[str, ...] = ("gaussian", "uniform", "laplace", "rayleigh")
_RAYLEIGH_STD = math.sqrt((4 - math.pi) / 2)
RAYLEIGH_MEAN = math.sqrt(math.pi / 2) / _RAYLEIGH_STD
"""Mean of the unit-std (not recentred) Rayleigh noise, ≈ 1.913."""


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
    shape: torch.Size | tuple[int, ...], sigma: float, seed: int, **kwargs: Any
) -> torch.Tensor:
    """Seeded white Gaussian noise of std ``sigma / 255`` (``noise("gaussian", ...)``).

    The draw depends only on ``shape`` and ``seed`` (a CPU generator is used and
    the result moved to ``device``), so every model in a comparison gets the
    same noise.

    Args:
        shape: Output shape.
        sigma: Standard deviation on the 0–255 scale, >= 0.
        seed: Random seed.
        **kwargs: ``dtype`` (floating point, default float32) and ``device``.

    Returns:
        The noise tensor.

    Raises:
        ValueError: If ``sigma`` is negative or not finite, or ``dtype`` is not
            floating point.
    """
    return noise("gaussian", shape, sigma, seed, **kwargs)


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


def noise(
    kind: str,
    shape: torch.Size | tuple[int, ...],
    sigma: float,
    seed: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Seeded noise of a kind from :data:`NOISE_KINDS`, standard deviation ``sigma / 255``.

    ``gaussian`` is exactly :func:`gaussian_noise`; ``rayleigh`` is not zero-mean
    (see the module docstring). The draw depends only on ``kind``, ``shape`` and ``seed``.

    Raises:
        ValueError: For an unknown kind, or ``sigma`` negative or not finite.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"noise sigma must be a finite number >= 0, got {sigma}")
    if not dtype.is_floating_point:
        raise ValueError(f"noise dtype must be floating point, got {dtype}")
    gen = torch.Generator().manual_seed(int(seed))
    if kind == "gaussian":  # float32 draws: the committed results depend on this exact stream
        unit = torch.randn(tuple(shape), generator=gen, dtype=torch.float32)
        return (unit * (sigma / 255.0)).to(dtype=dtype, device=device)
    u = torch.rand(tuple(shape), generator=gen, dtype=torch.float64)
    if kind == "uniform":
        unit = (2 * u - 1) * math.sqrt(3)
    elif kind == "laplace":  # inverse CDF of Laplace(0, b = 1/√2), std 1
        c = u - 0.5
        unit = -torch.sign(c) * torch.log1p(-2 * c.abs()) / math.sqrt(2)
    else:  # rayleigh, inverse CDF √(−2·log(1 − u)), scaled to unit std, not recentred
        unit = torch.sqrt(-2 * torch.log1p(-u)) / _RAYLEIGH_STD
    return (unit * (sigma / 255.0)).to(dtype=dtype, device=device)


def add_noise(x: torch.Tensor, kind: str, sigma: float, seed: int) -> torch.Tensor:
    """``x`` plus seeded noise of ``kind`` (std ``sigma / 255``), never clipped.

    Raises:
        ValueError: If ``x`` is not floating point, or as :func:`noise`.
    """
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point image on the [0, 1] scale, got {x.dtype}")
    return x + noise(kind, x.shape, sigma, seed, dtype=x.dtype, device=x.device)


def low_light(
    x: torch.Tensor,
    photons: float,
    seed: int,
    *,
    read_noise: float = 0.0,
    clip: bool = False,
) -> torch.Tensor:
    """A photo of ``x`` taken in the dark: Poisson–Gaussian noise, brightened back.

    Each pixel of value ``x`` (its relative brightness, white = 1) collects a
    Poisson number of photons with mean ``photons · x``; the sensor adds Gaussian
    read noise of ``read_noise`` photo-electrons; the camera's gain then divides
    by ``photons`` so the image is back on the [0, 1] scale:
    ``y = (Poisson(photons·x) + N(0, read_noise²)) / photons``. So ``E[y] = x``
    and ``Var[y] = x / photons + (read_noise / photons)²``: shot noise grows with
    the signal, so dark regions have a worse signal-to-noise ratio.

    Args:
        x: Clean images on the [0, 1] scale (negative values count as 0 photons).
        photons: Expected photons at white (e.g. 1 for a very dark scene, 1000 for
            a dim one), > 0.
        seed: Random seed.
        read_noise: Standard deviation of the read noise in photo-electrons, >= 0.
        clip: Clip the result to [0, 1] (a camera's 8-bit output would).

    Returns:
        The noisy images, same shape, dtype and device as ``x``.

    Raises:
        ValueError: On a non-floating-point ``x``, ``photons <= 0`` or negative
            ``read_noise`` (or either not finite).
    """
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point image on the [0, 1] scale, got {x.dtype}")
    if not (math.isfinite(photons) and photons > 0):
        raise ValueError(f"photons at white must be a positive number, got {photons}")
    if not (math.isfinite(read_noise) and read_noise >= 0):
        raise ValueError(f"read noise must be a finite number >= 0, got {read_noise}")
    gen = torch.Generator().manual_seed(int(seed))
    rate = x.detach().to("cpu", torch.float64).clamp_min(0) * photons
    counts = torch.poisson(rate, generator=gen)
    if read_noise > 0:
        counts = counts + read_noise * torch.randn(rate.shape, generator=gen, dtype=torch.float64)
    y = (counts / photons).to(dtype=x.dtype, device=x.device)
    return y.clamp(0, 1) if clip else y


def equivalent_sigma(noisy: torch.Tensor, clean: torch.Tensor) -> float:
    """The Gaussian σ (0–255 scale) with the same mean squared error: ``255·RMS(noisy − clean)``."""
    return float(255.0 * (noisy.double() - clean.double()).square().mean().sqrt())


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG compression at ``quality`` (1–95), decoded back to the [0, 1] scale.

    JPEG stores 8 bits per channel, so the input is clipped to [0, 1] and rounded
    to 1/255 first. Each ``[C, H, W]`` image (C = 1 grayscale, 3 RGB) is encoded
    on its own with Pillow (4:2:0 chroma subsampling for colour, Pillow's default).

    Args:
        x: Images ``[B, C, H, W]`` or ``[C, H, W]``, C in (1, 3).
        quality: JPEG quality factor, 1 (worst) to 95.

    Returns:
        The decoded images, same shape, dtype and device as ``x``.

    Raises:
        ValueError: For another quality, channel count or shape.
    """
    import io

    import numpy as np
    from PIL import Image

    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be a whole number in [1, 95], got {quality!r}")
    single = x.ndim == 3
    batch = x[None] if single else x
    if batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise ValueError(
            f"expected [B, C, H, W] or [C, H, W] with C in (1, 3), got {tuple(x.shape)}"
        )
    arr = (batch.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    out = []
    for img in arr:
        pil = Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0))
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=quality)
        with Image.open(io.BytesIO(buf.getvalue())) as dec:
            a = np.asarray(dec.convert(pil.mode), dtype=np.float32) / 255.0
        out.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    res = torch.from_numpy(np.stack(out)).to(dtype=x.dtype, device=x.device)
    return res[0] if single else res
