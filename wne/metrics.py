"""Image quality metrics in torch: PSNR and SSIM, and a no-reference noise estimate.

SSIM follows Wang et al. (2004) with the standard settings: an 11×11 Gaussian
window (σ = 1.5), ``K1 = 0.01``, ``K2 = 0.03``, population covariances, mean over
the valid region and over channels. This equals scikit-image's
``structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=R)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["estimate_sigma", "psnr", "ssim"]


def _check_pair(x: torch.Tensor, y: torch.Tensor, data_range: float) -> None:
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {tuple(x.shape)} vs {tuple(y.shape)}")
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """Peak signal-to-noise ratio ``10·log10(R² / MSE)`` per image in dB, ``[B]`` (a scalar
    for one image; ``inf`` if equal).

    Args:
        x: Estimate, ``[B, C, H, W]`` (or ``[C, H, W]`` / ``[H, W]``: one image).
        y: Reference, same shape.
        data_range: The dynamic range ``R`` (1 for [0, 1] images).
    """
    _check_pair(x, y, data_range)
    single = x.ndim < 4
    x4 = x.reshape(1, -1) if single else x.flatten(1)
    y4 = y.reshape(1, -1) if single else y.flatten(1)
    mse = (x4.double() - y4.double()).square().mean(dim=1)
    out = 10 * torch.log10(data_range**2 / mse)
    return out[0] if single else out


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalized 1-D Gaussian; the 2-D window is its outer product (separable)."""
    coords = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """Structural similarity per image (mean over channels) as the module docstring defines
    it: ``[B]`` (a scalar for one image), from a separable float32 filter on values centred
    by the reference's mean (which keeps float32 accurate), the ratio in float64.

    Args:
        x: Estimate, ``[B, C, H, W]`` (or ``[C, H, W]`` / ``[H, W]``), sides >= 11.
        y: Reference, same shape.
        data_range: The dynamic range ``R``.

    Raises:
        ValueError: On mismatched shapes, a bad range or sides below 11 pixels.
    """
    _check_pair(x, y, data_range)
    single = x.ndim < 4
    if single:
        x = x.reshape((1,) * (4 - x.ndim) + tuple(x.shape))
        y = y.reshape(x.shape)
    if min(x.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs sides >= 11 pixels, got {tuple(x.shape[-2:])}")
    b, c, h, w = x.shape
    center = y.double().mean(dim=(1, 2, 3), keepdim=True)
    xs = (x.double() - center).float().reshape(b * c, 1, h, w)
    ys = (y.double() - center).float().reshape(b * c, 1, h, w)
    g = _gaussian_window().float().to(xs.device)
    # One batched, separable ("valid") filtering of the five maps.
    maps = torch.cat([xs, ys, xs * xs, ys * ys, xs * ys])
    maps = F.conv2d(F.conv2d(maps, g.view(1, 1, 11, 1)), g.view(1, 1, 1, 11))
    mu_x, mu_y, exx, eyy, exy = (m.double() for m in maps.chunk(5))
    sxx = exx - mu_x**2
    syy = eyy - mu_y**2
    sxy = exy - mu_x * mu_y
    # The luminance term uses the un-centred means.
    cen = center.repeat_interleave(c, dim=0)
    mx, my = mu_x + cen, mu_y + cen
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    out = s.mean(dim=(1, 2, 3)).view(b, c).mean(dim=1)
    return out[0] if single else out


MAD_TO_SIGMA = 0.6744897501960817
"""The median of ``|N(0, 1)|``: a Gaussian's MAD over this is its σ."""


def estimate_sigma(image: torch.Tensor) -> float:
    """The Gaussian noise level of an image without a reference: the wavelet MAD estimate
    (Donoho & Johnstone 1994), ``median(|HH|) / 0.6745`` of the finest diagonal detail of the
    orthonormal Haar transform, per channel, averaged over the channels (as scikit-image's
    ``estimate_sigma(..., average_sigmas=True)``, which uses the db2 wavelet). In the image's
    units; robust to edges, which leave most HH coefficients near zero.

    Args:
        image: ``[C, H, W]`` or ``[H, W]``, sides >= 2.

    Raises:
        ValueError: If a side is below 2.
    """
    x = image.detach().to(torch.float64)
    x = x[None] if x.ndim == 2 else x
    h, w = (x.shape[-2] // 2) * 2, (x.shape[-1] // 2) * 2
    if min(h, w) < 2:
        raise ValueError(f"estimate_sigma needs sides >= 2, got {tuple(image.shape)}")
    x = x[..., :h, :w]
    hh = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    per_channel = hh.abs().flatten(1).median(dim=1).values / MAD_TO_SIGMA
    return float(per_channel.mean())
