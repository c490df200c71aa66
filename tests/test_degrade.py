"""Degradations: seeded, unclipped Gaussian noise and validated contrast/brightness shifts."""

from __future__ import annotations

import math

import pytest
import torch

from wne.degrade import add_gaussian_noise, gaussian_noise, shift


def test_noise_is_seeded() -> None:
    """Same seed → identical noise; different seeds → different noise."""
    a = gaussian_noise((2, 1, 32, 32), 25, seed=7)
    assert torch.equal(a, gaussian_noise((2, 1, 32, 32), 25, seed=7))
    assert not torch.equal(a, gaussian_noise((2, 1, 32, 32), 25, seed=8))


def test_noise_does_not_depend_on_global_rng_or_dtype() -> None:
    """The draw depends only on shape and seed (not torch's global RNG, nor the dtype)."""
    torch.manual_seed(0)
    a = gaussian_noise((1, 1, 16, 16), 15, seed=3)
    torch.manual_seed(123)
    torch.rand(10)
    b = gaussian_noise((1, 1, 16, 16), 15, seed=3, dtype=torch.float64)
    assert b.dtype == torch.float64
    torch.testing.assert_close(b.float(), a, rtol=0, atol=0)


@pytest.mark.parametrize("sigma", [5.0, 25.0, 50.0, 100.0])
def test_noise_std_is_sigma_over_255(sigma: float) -> None:
    """Sample std of 2^18 draws is σ/255 within 1 %; mean ≈ 0."""
    n = gaussian_noise((4, 1, 256, 256), sigma, seed=1).double()
    assert float(n.std()) == pytest.approx(sigma / 255, rel=0.01)
    assert abs(float(n.mean())) < 5 * sigma / 255 / math.sqrt(n.numel())


def test_noisy_images_are_never_clipped() -> None:
    """Values below 0 and above 1 survive; the result is exactly x + noise."""
    x = torch.cat([torch.zeros(1, 1, 32, 32), torch.ones(1, 1, 32, 32)])
    y = add_gaussian_noise(x, 50, seed=2)
    assert (y < 0).any() and (y > 1).any()
    assert torch.equal(y, x + gaussian_noise(x.shape, 50, seed=2))
    assert y.dtype == x.dtype and y.shape == x.shape


def test_zero_sigma_and_invalid_noise_arguments() -> None:
    """σ = 0 gives zeros; negative or non-finite σ, integer images/dtypes → ValueError."""
    assert torch.equal(gaussian_noise((3, 4), 0, seed=0), torch.zeros(3, 4))
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma"):
            gaussian_noise((3, 4), bad, seed=0)
    with pytest.raises(ValueError, match="floating"):
        add_gaussian_noise(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), 25, seed=0)
    with pytest.raises(ValueError, match="floating"):
        gaussian_noise((2, 2), 25, seed=0, dtype=torch.int32)


def test_shift_is_affine_and_unclipped() -> None:
    """shift(x, a, b) = a·x + b exactly, with no clipping."""
    torch.manual_seed(4)
    x = torch.rand(2, 1, 9, 9)
    torch.testing.assert_close(shift(x, 2.5, -0.7), 2.5 * x - 0.7, rtol=0, atol=0)
    out = shift(x, 3.0, 0.5)
    assert out.max() > 1


@pytest.mark.parametrize(
    ("a", "b"),
    [(0.0, 0.0), (-1.0, 0.0), (float("nan"), 0.0), (float("inf"), 0.0), (1.0, float("nan")),
     (1.0, float("inf")), (1.0, -float("inf"))],
)  # fmt: skip
def test_shift_validates_its_arguments(a: float, b: float) -> None:
    """a must be positive and finite, b finite."""
    with pytest.raises(ValueError):
        shift(torch.rand(1, 1, 8, 8), a, b)
