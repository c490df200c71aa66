"""Degradations: seeded, unclipped noise of every kind, low light, JPEG, validated shifts."""

from __future__ import annotations

import math

import pytest
import torch

from wne.degrade import (
    NOISE_KINDS,
    NOISES,
    RAYLEIGH_MEAN,
    add_gaussian_noise,
    add_noise,
    equivalent_sigma,
    gaussian_noise,
    jpeg,
    low_light,
    noise,
    noise_model,
    shift,
)


def test_noise_does_not_depend_on_global_rng_or_dtype() -> None:
    """The draw depends only on shape and seed (not torch's global RNG, nor the dtype)."""
    torch.manual_seed(0)
    a = gaussian_noise((1, 1, 16, 16), 15, seed=3)
    torch.manual_seed(123)
    torch.rand(10)
    b = gaussian_noise((1, 1, 16, 16), 15, seed=3, dtype=torch.float64)
    assert b.dtype == torch.float64
    torch.testing.assert_close(b.float(), a, rtol=0, atol=0)


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


def test_shift_is_affine_unclipped_and_validated() -> None:
    """shift(x, a, b) = a·x + b exactly, never clipped; a must be positive and finite, b finite."""
    x = torch.rand(2, 1, 9, 9, generator=torch.Generator().manual_seed(4))
    assert torch.equal(shift(x, 2.5, -0.7), 2.5 * x - 0.7) and shift(x, 3.0, 0.5).max() > 1
    inf, nan = float("inf"), float("nan")
    bad = [(0.0, 0.0), (-1.0, 0.0), (nan, 0.0), (inf, 0.0), (1.0, nan), (1.0, inf), (1.0, -inf)]
    for a, b in bad:
        with pytest.raises(ValueError, match=r"contrast a|brightness b"):
            shift(x, a, b)


# --- other noise kinds (the paper's App. P), low light, JPEG --------------------------------

N = (1, 1, 400, 500)  # 200k samples: sample mean/std within ~0.5 % of their values


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "laplace", "rayleigh"])
def test_noise_kinds_have_std_sigma_and_their_defining_statistics(kind: str) -> None:
    z = noise(kind, N, 25.0, seed=7).double() * 255 / 25  # unit-std units
    assert z.std().item() == pytest.approx(1.0, abs=0.01)
    if kind == "rayleigh":  # not recentred, as the paper defines it
        assert z.mean().item() == pytest.approx(RAYLEIGH_MEAN, abs=0.01)
        assert abs(RAYLEIGH_MEAN - 1.913) <= 1e-3
        assert z.min().item() >= 0
    else:
        assert abs(z.mean().item()) <= 0.01
    if kind == "uniform":
        assert z.abs().max().item() <= math.sqrt(3)
        assert z.abs().max().item() >= math.sqrt(3) * 0.999
    if kind == "laplace":  # E|z| = b = 1/√2 for Laplace(0, b) with std 1
        assert z.abs().mean().item() == pytest.approx(1 / math.sqrt(2), abs=0.01)
    if kind == "gaussian":
        assert torch.equal(noise(kind, (2, 3), 5.0, 1), gaussian_noise((2, 3), 5.0, 1))
    assert torch.equal(noise(kind, (4, 4), 10.0, 3), noise(kind, (4, 4), 10.0, 3))
    assert not torch.equal(noise(kind, (4, 4), 10.0, 3), noise(kind, (4, 4), 10.0, 4))


def test_add_noise_and_bad_kinds() -> None:
    x = torch.full((1, 1, 8, 8), 0.5)
    torch.testing.assert_close(
        add_noise(x, "laplace", 10.0, 1) - x, noise("laplace", x.shape, 10.0, 1)
    )
    with pytest.raises(ValueError, match="unknown noise kind 'poisson'"):
        noise("poisson", (2, 2), 10.0, 0)
    with pytest.raises(ValueError, match="sigma"):
        noise("uniform", (2, 2), -1.0, 0)


@pytest.mark.parametrize(("photons", "read"), [(5.0, 0.0), (50.0, 2.0), (1000.0, 5.0)])
def test_low_light_is_unbiased_with_signal_dependent_variance(photons: float, read: float) -> None:
    """E[y] = x and Var[y] = x/photons + (read/photons)², per brightness level."""
    levels = torch.tensor([0.05, 0.3, 1.0])
    x = levels.repeat_interleave(60_000).reshape(1, 1, 3, 60_000)
    y = low_light(x, photons, seed=1, read_noise=read).double()
    for i, v in enumerate(levels.tolist()):
        row = y[0, 0, i]
        var = v / photons + (read / photons) ** 2
        assert row.mean().item() == pytest.approx(v, abs=4 * math.sqrt(var / row.numel()))
        assert row.var().item() == pytest.approx(var, rel=0.03)
    # Dark pixels are relatively noisier: the SNR grows like √(photons·x).
    snr = [levels[i].item() / y[0, 0, i].std().item() for i in range(3)]
    assert snr[0] < snr[1] < snr[2]
    sigma = equivalent_sigma(y, x)
    assert sigma == pytest.approx(255 * y.sub(x.double()).square().mean().sqrt().item())


def test_low_light_seeding_clipping_and_errors() -> None:
    x = torch.rand(1, 1, 16, 16)
    assert torch.equal(low_light(x, 10.0, 3), low_light(x, 10.0, 3))
    assert low_light(x, 2.0, 0, clip=True).max() <= 1.0
    assert low_light(x, 2.0, 0).max() > 1.0  # not clipped unless asked
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="photons"):
            low_light(x, bad, 0)
    with pytest.raises(ValueError, match="read noise"):
        low_light(x, 10.0, 0, read_noise=-1.0)


def test_jpeg_round_trips_and_degrades_with_quality() -> None:
    gen = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    x = (0.5 + 0.4 * torch.sin(8 * xx) * torch.cos(6 * yy))[None, None]
    noisy = x + 0.05 * torch.randn(x.shape, generator=gen)
    errs = [float((jpeg(noisy, q) - noisy.clamp(0, 1)).square().mean()) for q in (5, 30, 90)]
    assert errs[0] > errs[1] > errs[2] > 0
    out = jpeg(noisy, 90)
    assert out.shape == noisy.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out * 255, (out * 255).round())  # 8-bit values
    rgb = torch.rand(3, 32, 32, generator=gen)
    assert jpeg(rgb, 50).shape == (3, 32, 32)
    for q in (0, 96, 50.5, True):
        with pytest.raises(ValueError, match="quality"):
            jpeg(x, q)
    with pytest.raises(ValueError, match="C in"):
        jpeg(torch.rand(1, 2, 8, 8), 50)


# --- the noise table ------------------------------------------------------------------------


def test_noise_table_applies_exactly_the_primitives() -> None:
    """Each entry's apply() is bit for bit the primitive it stands for (the published numbers
    depend on these streams), with its defaults filling missing parameters."""
    x = torch.rand(3, 17, 23, generator=torch.Generator().manual_seed(1))
    for kind in NOISE_KINDS:
        assert torch.equal(NOISES[kind].apply(x, 3, sigma=10), x + noise(kind, x.shape, 10, 3))
    assert torch.equal(NOISES["gaussian"].apply(x, 3), x + gaussian_noise(x.shape, 25, 3))
    assert torch.equal(NOISES["lowlight"].apply(x, 3, photons=5, read_noise=2),
                       low_light(x, 5, 3, read_noise=2))  # fmt: skip
    assert torch.equal(NOISES["jpeg"].apply(x, 3, quality=40, sigma=20),
                       jpeg(x + gaussian_noise(x.shape, 20, 3), 40))  # fmt: skip
    assert torch.equal(NOISES["jpeg"].apply(x, 3, quality=40, sigma=0), jpeg(x, 40))
    assert [n.level.name for n in NOISES.values()] == ["sigma"] * 4 + ["photons", "quality"]


def test_noise_table_parameters_notes_and_errors() -> None:
    """values() picks a noise's own parameters from a wider mapping; bad names, fractional
    integers and impossible levels raise ValueErrors naming the problem."""
    jp = noise_model("jpeg")
    settings = {"sigma": 5.0, "photons": 3.0, "quality": 50.0}
    assert jp.values(settings) == {"quality": 50, "sigma": 5.0}
    assert jp.values(settings, quality=7) == {"quality": 7, "sigma": 5.0}
    assert "quality 50" in jp.describe(eq=12.3, **jp.values(settings)) and "12.3" in jp.describe(
        12.3
    )
    assert NOISES["gaussian"].describe() == ""
    x, y = torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8)
    assert NOISES["uniform"].equivalent_sigma(y, x, sigma=7) == 7.0
    assert NOISES["lowlight"].equivalent_sigma(y, x) == pytest.approx(255.0)
    with pytest.raises(ValueError, match="jpeg noise takes quality, sigma"):
        jp.apply(x, 0, photons=3)
    with pytest.raises(ValueError, match="whole number"):
        jp.values(quality=40.5)
    with pytest.raises(ValueError, match="quality"):
        jp.apply(x, 0, quality=0)
    with pytest.raises(ValueError, match="photons"):
        noise_model("lowlight").apply(x, 0, photons=0)
    with pytest.raises(ValueError, match="unknown noise type 'pink'"):
        noise_model("pink")
