"""The backbone registry and every registered backbone (shapes, errors, paper sizes)."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from wne import models
from wne.models.fdncnn_ne import AffineConv2d, SortPool
from wne.models.registry import register

ARCHS = models.available()


@functools.cache
def built(arch: str, channels: int) -> nn.Module:
    """A seeded random-init backbone in eval mode (shared: do not modify it)."""
    torch.manual_seed(0)
    return models.build(arch, channels=channels).eval()


def test_registry_lists_builds_and_refuses() -> None:
    """available() is sorted and holds the documented backbones; an unknown name lists
    them; an unknown keyword is a TypeError; a name is never registered twice."""
    assert sorted(ARCHS) == ARCHS
    assert {"dncnn", "fdncnn", "fdncnn_ne", "swinir"} <= set(ARCHS)
    with pytest.raises(ValueError, match="nope.*" + ".*".join(ARCHS)):
        models.build("nope")
    for arch in ARCHS:
        with pytest.raises(TypeError):
            models.build(arch, no_such_option=3)
    with pytest.raises(ValueError, match="already registered"):
        register("dncnn")(nn.Identity)


@pytest.mark.parametrize("size", [(8, 8), (37, 53), (64, 61)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("arch", ARCHS)
def test_output_shape_equals_input_shape(arch: str, channels: int, size: tuple[int, int]) -> None:
    """[B, C, H, W] → [B, C, H, W] with finite values, odd sizes and 1 or 3 channels."""
    x = torch.rand(2, channels, *size)
    with torch.no_grad():
        out = built(arch, channels)(x)
    assert out.shape == x.shape
    assert out.dtype == x.dtype
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_small_images_wrong_channel_count_and_rank_are_refused(arch: str) -> None:
    """Sides < 8 px, a 3-channel image into a 1-channel model, a 3-D tensor → ValueError."""
    for size in [(7, 16), (16, 7), (4, 4)]:
        with pytest.raises(ValueError, match="8"):
            built(arch, 1)(torch.rand(1, 1, *size))
    with pytest.raises(ValueError, match="channel"):
        built(arch, 1)(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        built(arch, 1)(torch.rand(1, 16, 16))


@pytest.mark.parametrize("arch", ARCHS)
def test_batch_items_are_independent(arch: str) -> None:
    """In eval mode sample i's output does not depend on the other samples."""
    model = built(arch, 1)
    torch.manual_seed(1)
    x = torch.rand(3, 1, 37, 53)
    x2 = x.clone()
    x2[0] = torch.randn(1, 37, 53) * 3
    x2[2] = 0.0
    with torch.no_grad():
        out, out2, alone = model(x), model(x2), model(x[1:2])
    torch.testing.assert_close(out2[1], out[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(alone[0], out[1], rtol=1e-5, atol=1e-5)


def test_dncnn_paper_size_by_keyword() -> None:
    """DnCNN depth=20, width=64 (BN, no bias in the middle convs) has the expected count."""
    model = models.build("dncnn", depth=20, width=64)
    first = 1 * 64 * 9 + 64
    middle = 18 * (64 * 64 * 9 + 2 * 64)  # conv without bias + BN weight/bias
    last = 64 * 1 * 9 + 1
    assert sum(p.numel() for p in model.parameters()) == first + middle + last
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 20


def test_swinir_paper_size_by_keyword() -> None:
    """SwinIR-lite paper size is constructible: 4 RSTBs × 6 blocks, dim 60, ~0.9 M params."""
    from wne.catalog import FAMILIES
    from wne.models.swinir import RSTB, SwinBlock

    model = models.build("swinir", **FAMILIES["swinir"].paper.arch_kwargs)
    rstbs = [m for m in model.modules() if isinstance(m, RSTB)]
    blocks = [m for m in model.modules() if isinstance(m, SwinBlock)]
    assert len(rstbs) == 4 and len(blocks) == 24
    assert [b.shift for b in blocks[:2]] == [0, 4]
    assert blocks[-1].mlp.fc1.out_features == 120
    assert blocks[-1].drop_path.drop_prob == pytest.approx(0.1)
    n_params = sum(p.numel() for p in model.parameters())
    assert 0.8e6 < n_params < 0.95e6, n_params  # the paper's SwinIR-lite is ~0.9 M


@pytest.mark.parametrize(
    ("arch", "kwargs"),
    [
        ("dncnn", {"depth": 2}),
        ("fdncnn", {"depth": 1}),
        ("fdncnn_ne", {"width": 15}),
        ("fdncnn_ne", {"depth": 2}),
        ("swinir", {"embed_dim": 25, "num_heads": 2}),
        ("swinir", {"window_size": 16}),
    ],
)
def test_invalid_hyperparameters_are_refused(arch: str, kwargs: dict) -> None:
    """Impossible configurations fail at construction with ValueError."""
    with pytest.raises(ValueError):
        models.build(arch, **kwargs)


# --- fdncnn_ne building blocks ------------------------------------------------------------


def test_affine_conv_kernels_sum_to_one_per_output_channel() -> None:
    """Every applied kernel sums to 1 for any free weights (fp64: to 1e-12; fp32: to
    round-off of the entries), and a constant image maps to the same constant."""
    torch.manual_seed(2)
    conv = AffineConv2d(5, 7, kernel_size=3)
    n = 5 * 3 * 3
    for _ in range(3):
        w32 = conv.affine_weight()
        bound = 4 * n * torch.finfo(torch.float32).eps * w32.abs().amax().item()
        sums32 = w32.double().sum(dim=(1, 2, 3))
        torch.testing.assert_close(sums32, torch.ones(7, dtype=torch.float64), rtol=0, atol=bound)
        sums64 = conv.double().affine_weight().sum(dim=(1, 2, 3))
        torch.testing.assert_close(sums64, torch.ones(7, dtype=torch.float64), rtol=0, atol=1e-12)
        conv.float()
        with torch.no_grad():
            conv.weight.add_(torch.randn_like(conv.weight))
    x = torch.full((1, 5, 9, 10), -1.7, dtype=torch.float64)
    torch.testing.assert_close(conv.double()(x), torch.full((1, 7, 9, 10), -1.7).double())


def test_sortpool_sorts_pairs_and_commutes_with_affine_maps() -> None:
    """SortPool gives (min, max) per channel pair and SortPool(a·x + b) = a·SortPool(x) + b."""
    torch.manual_seed(3)
    x = torch.randn(2, 6, 5, 4, dtype=torch.float64)
    out = SortPool()(x)
    pairs, sorted_pairs = x.view(2, 3, 2, 5, 4), out.view(2, 3, 2, 5, 4)
    torch.testing.assert_close(sorted_pairs[:, :, 0], pairs.min(dim=2).values)
    torch.testing.assert_close(sorted_pairs[:, :, 1], pairs.max(dim=2).values)
    torch.testing.assert_close(SortPool()(2.5 * x - 1), 2.5 * out - 1)


# --- swinir specifics -----------------------------------------------------------------------


def test_swinir_odd_size_is_finite_and_train_eval_attention_agree() -> None:
    """37×53 (reflect-padded to the window) is finite; fused (eval) and explicit (train)
    attention give the same output when stochastic depth is off."""
    torch.manual_seed(4)
    model = models.build("swinir", drop_path_rate=0.0)
    x = torch.rand(2, 1, 37, 53)
    with torch.no_grad():
        model.eval()
        eval_out = model(x)
        model.train()
        train_out = model(x)
    assert torch.isfinite(eval_out).all()
    torch.testing.assert_close(train_out, eval_out, rtol=1e-4, atol=1e-5)
