"""The demo's reported scores against an independent computation (scikit-image).

The handler's PSNR and SSIM must equal ``peak_signal_noise_ratio`` and
``structural_similarity`` of scikit-image on the target ``a·x + b`` (computed here,
not taken from the demo) and the output, with data range ``a``, for a ≠ 1, b ≠ 0,
both orders of operations and clip on and off; the table and the captions must show
those values rounded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from wne.demo import DemoHandlers, Zoo
from wne.imageio import read_image

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "assets" / "examples" / "parrots.png"
SIDE = 48  # the image is 256 px: read at 48 px by the demo (downscaled), rebuilt below


@pytest.fixture(scope="module")
def handlers() -> DemoHandlers:
    zoo = Zoo.discover(ROOT / "checkpoints", device="cpu", hub_repo="")
    return DemoHandlers(zoo)


@pytest.mark.parametrize("order", ["shift-then-noise", "noise-then-shift"])
@pytest.mark.parametrize("clip", [False, True])
def test_reported_scores_equal_scikit_image(handlers: DemoHandlers, order: str, clip: bool) -> None:
    a, b = 0.6, 0.25
    view = handlers.denoise(
        str(IMAGE), a=a, b=b, sigma=30, seed=4, sigma_train=25,
        backbones=["dncnn", "swinir", "fdncnn-ne"], order=order, max_side=SIDE, clip=clip,
    )  # fmt: skip
    res = view.comparison
    assert res is not None
    # The target, computed here from the clean image the demo worked on.
    clean = res.clean.astype(np.float64)
    assert clean.shape[:2] == (SIDE, SIDE) and clean.shape[2] == 3
    target = a * clean + b
    if clip:
        target = target.clip(0, 1)
    np.testing.assert_allclose(res.target, target, rtol=0, atol=1e-6)
    checked = 0
    for run in res.runs:
        assert run.output is not None, run.message
        out = run.output.astype(np.float64)
        if clip:
            assert out.min() >= 0 and out.max() <= 1
        psnr = peak_signal_noise_ratio(target, out, data_range=a)
        ssim = structural_similarity(
            target, out, data_range=a, channel_axis=2,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )  # fmt: skip
        assert run.psnr == pytest.approx(psnr, abs=1e-4), run.key
        assert run.ssim == pytest.approx(ssim, abs=1e-4), run.key
        # The table row and the caption show the same values, rounded.
        row = next(r for r in view.table if r[0] == run.label)
        assert float(row[1]) == round(psnr, 2) and float(row[2]) == round(ssim, 4), row
        caption = next(c for _, c in view.gallery if c.startswith(run.label))
        assert f"PSNR {psnr:.2f} dB" in caption and f"SSIM {ssim:.3f}" in caption, caption
        checked += 1
    assert checked == 5
    noisy_psnr = peak_signal_noise_ratio(target, res.noisy.astype(np.float64), data_range=a)
    assert res.noisy_psnr == pytest.approx(noisy_psnr, abs=1e-4)
    assert f"{noisy_psnr:.2f} dB" in view.noisy_label


def test_demo_reads_the_image_as_the_library_does(handlers: DemoHandlers) -> None:
    """At full size the clean image the demo scores against is the library reader's."""
    view = handlers.denoise(str(IMAGE), sigma_train=25, backbones=["dncnn"], max_side=256)
    assert view.comparison is not None
    np.testing.assert_array_equal(view.comparison.clean, read_image(IMAGE))
