"""PSNR and SSIM against scikit-image's reference implementations; the no-reference noise
estimate against the known noise added to real photos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from wne.metrics import estimate_sigma, psnr, ssim

DATA = Path(os.environ.get("WNE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def sk_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """scikit-image SSIM with the paper's settings; x, y are [C, H, W] or [H, W]."""
    kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    kwargs["data_range"] = data_range
    if x.ndim == 3:
        return structural_similarity(
            np.moveaxis(x, 0, -1), np.moveaxis(y, 0, -1), channel_axis=-1, **kwargs
        )
    return structural_similarity(x, y, **kwargs)


def random_pairs(channels: int, data_range: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of 3 smooth-ish references and noisy estimates (float64), odd sizes."""
    gen = torch.Generator().manual_seed(seed)
    ref = torch.rand(3, channels, 8, 9, generator=gen, dtype=torch.float64)
    ref = torch.nn.functional.interpolate(ref, size=(45, 38), mode="bilinear") * data_range
    noise = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    est = ref + noise * data_range * torch.tensor([0.01, 0.1, 0.5]).view(3, 1, 1, 1)
    return est, ref


@pytest.mark.parametrize("data_range", [1.0, 255.0])
@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_and_ssim_match_skimage_on_random_images(channels: int, data_range: float) -> None:
    """Per-image PSNR within 1e-4 dB and SSIM within 1e-4 of scikit-image."""
    est, ref = random_pairs(channels, data_range, seed=channels)
    p, s = psnr(est, ref, data_range), ssim(est, ref, data_range)
    assert p.shape == s.shape == (3,)
    for i in range(3):
        x, y = est[i].numpy(), ref[i].numpy()
        if channels == 1:
            x, y = x[0], y[0]
        sk_p = peak_signal_noise_ratio(y, x, data_range=data_range)
        assert float(p[i]) == pytest.approx(sk_p, abs=1e-4)
        assert float(s[i]) == pytest.approx(sk_ssim(x, y, data_range), abs=1e-4)


def test_metrics_in_float32_agree_with_float64() -> None:
    """float32 inputs give the same numbers (metrics accumulate in float64)."""
    est, ref = random_pairs(1, 1.0, seed=5)
    torch.testing.assert_close(
        psnr(est.float(), ref.float(), 1.0), psnr(est, ref, 1.0), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        ssim(est.float(), ref.float(), 1.0), ssim(est, ref, 1.0), atol=1e-5, rtol=0
    )


def _real_images() -> list[tuple[np.ndarray, int]]:
    """Two Set12 images (grayscale) and one Kodak crop (RGB), as [C, H, W] uint8 arrays."""
    from PIL import Image

    out = []
    for name in ("set12/01.png", "set12/02.png", "kodak24/kodim01.png"):
        path = DATA / name
        if not path.is_file():
            pytest.skip(f"{path} not present (set WNE_DATA_DIR)")
        arr = np.asarray(Image.open(path))
        arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
        out.append((np.ascontiguousarray(arr[:, :160, :192]), arr.shape[0]))
    return out


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_metrics_match_skimage_on_real_images(data_range: float) -> None:
    """Real photos (Set12 grayscale, Kodak RGB) with seeded noise, quantized and not."""
    for idx, (img, _channels) in enumerate(_real_images()):
        clean = img.astype(np.float64) / 255.0 * data_range
        rng = np.random.default_rng(idx)
        noisy = clean + rng.normal(0, 25 / 255 * data_range, clean.shape)
        for est in (
            noisy,
            np.round(np.clip(noisy, 0, data_range) * 255 / data_range) / 255 * data_range,
        ):
            x, y = est, clean
            tx, ty = torch.from_numpy(x)[None], torch.from_numpy(y)[None]
            sk_x, sk_y = (x[0], y[0]) if x.shape[0] == 1 else (x, y)
            assert float(psnr(tx, ty, data_range)[0]) == pytest.approx(
                peak_signal_noise_ratio(sk_y, sk_x, data_range=data_range), abs=1e-4
            )
            assert float(ssim(tx, ty, data_range)[0]) == pytest.approx(
                sk_ssim(sk_x, sk_y, data_range), abs=1e-4
            )


def test_single_image_shapes_and_edge_cases() -> None:
    """[H, W] and [C, H, W] give scalars; equal images: PSNR inf, SSIM 1; bad input raises."""
    torch.manual_seed(1)
    a = torch.rand(20, 24, dtype=torch.float64)
    b = a + 0.05 * torch.randn(20, 24, dtype=torch.float64)
    assert psnr(b, a, 1.0).ndim == 0 and ssim(b, a, 1.0).ndim == 0
    assert float(psnr(b, a, 1.0)) == pytest.approx(
        peak_signal_noise_ratio(a.numpy(), b.numpy(), data_range=1.0), abs=1e-4
    )
    assert float(ssim(b[None], a[None], 1.0)) == pytest.approx(float(ssim(b, a, 1.0)))
    assert torch.isinf(psnr(a, a, 1.0))
    assert float(ssim(a, a, 1.0)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, a[:10], 1.0)
    with pytest.raises(ValueError, match="data_range"):
        ssim(a, a, 0.0)
    with pytest.raises(ValueError, match="11"):
        ssim(a[:10], a[:10], 1.0)


@pytest.mark.parametrize("sigma", [5, 15, 25, 50])
def test_estimate_sigma_finds_the_noise_added_to_real_photos(sigma: float) -> None:
    """Gaussian noise of σ/255 on Set12 and Kodak: the estimate is within 10 % of σ (at
    σ = 5 up to 2.5 above: a textured photo's finest detail adds to it) and moves with the
    image exactly: estimate(a·y + b) = a·estimate(y) (the Haar detail ignores b)."""
    for idx, (img, _channels) in enumerate(_real_images()):
        clean = img.astype(np.float64) / 255.0
        rng = np.random.default_rng(100 + idx)
        noisy = torch.from_numpy(clean + rng.normal(0, sigma / 255, clean.shape))
        found = estimate_sigma(noisy) * 255
        low = sigma - 0.1 * sigma
        assert low <= found <= sigma + max(2.5, 0.1 * sigma), (idx, found)
        shifted = estimate_sigma(3.0 * noisy + 0.4)
        assert shifted == pytest.approx(3.0 * found / 255, rel=1e-9)
    clean_found = estimate_sigma(torch.from_numpy(_real_images()[0][0] / 255.0)) * 255
    assert clean_found < 3.0  # a clean (8-bit quantized) photo: little noise found


def test_estimate_sigma_shapes() -> None:
    """[H, W] and [C, H, W] work (odd sides are cropped to even); a side under 2 is refused."""
    x = torch.randn(7, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert estimate_sigma(x) == pytest.approx(estimate_sigma(x[None]))
    assert estimate_sigma(torch.zeros(3, 4, 4)) == 0.0
    with pytest.raises(ValueError, match="sides >= 2"):
        estimate_sigma(torch.zeros(1, 1, 8))
