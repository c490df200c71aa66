"""Fast inference paths equal the eager reference: the frozen CNN graphs of
:mod:`wne.fast` on every bundled checkpoint, and the gather/SDPA Swin block of
:mod:`wne.models.swinir` against timm's roll + partition + WindowAttention path."""

from __future__ import annotations

import pytest
import torch
from timm.models.swin_transformer import window_partition, window_reverse

import wne
from wne import checkpoints
from wne.fast import ACCELERATED_ARCHS, accelerate, is_accelerated
from wne.models.swinir import SwinBlock, SwinIR, _shift_mask, window_attention

SIZES = [(3, 37, 53), (1, 130, 97), (2, 64, 64)]
"""(batch, H, W): odd sizes, a colour image's three channels, the probe-free sizes."""


def _keys() -> list[str]:
    return sorted(checkpoints.available_checkpoints(checkpoints.default_root()))


@pytest.mark.parametrize("key", _keys())
def test_accelerated_checkpoint_equals_eager(key: str) -> None:
    """Every bundled checkpoint: the accelerated model (compiled or not) gives the eager
    output to 1e-5 on odd sizes and batches, and the measured-faster architectures are
    actually compiled."""
    eager = wne.load(key).eval()
    fast = accelerate(wne.load(key).eval())
    assert is_accelerated(fast) == (eager.wne_config.arch in ACCELERATED_ARCHS)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for b, h, w in SIZES:
            x = 0.2 + 0.6 * torch.rand(b, 1, h, w, generator=gen)
            y = x + 0.1 * torch.randn(b, 1, h, w, generator=gen)
            assert (fast(y) - eager(y)).abs().max() <= 1e-5, (key, b, h, w)


@pytest.mark.parametrize("key", [k for k in _keys() if "-wne-" in k])
def test_accelerated_wrapper_stays_equivariant(key: str) -> None:
    """The wrapper runs eagerly around the compiled backbone: f(a·y + b) = a·f(y) + b
    to float round-off."""
    fast = accelerate(wne.load(key).eval())
    y = torch.rand(2, 1, 45, 38, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for a, b in [(0.3, 0.2), (4.0, -1.5)]:
            lhs, rhs = fast(a * y + b), a * fast(y) + b
            assert (lhs - rhs).abs().max() <= 2e-5 * max(1.0, a), (key, a, b)


def test_frozen_backbone_keeps_clear_input_errors() -> None:
    """Tracing turns the input checks into constants; the frozen stand-in still runs
    them: a colour tensor for a grayscale net is refused with a message."""
    fast = accelerate(wne.load("dncnn-plain-s25").eval())
    assert is_accelerated(fast)
    with pytest.raises(ValueError, match="channel"):
        fast(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError):
        fast(torch.rand(1, 1, 4, 32))


def test_accelerate_leaves_other_models_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Transformers, training mode and WNE_FAST=0 keep the eager module."""
    swin = wne.load("swinir-wne-s25").eval()
    assert accelerate(swin) is swin and not is_accelerated(swin)
    cnn = wne.load("dncnn-wne-s25").train()
    assert not is_accelerated(accelerate(cnn))
    monkeypatch.setenv("WNE_FAST", "0")
    assert not is_accelerated(accelerate(wne.load("dncnn-wne-s25").eval()))


def _timm_block(blk: SwinBlock, x: torch.Tensor) -> torch.Tensor:
    """The reference: timm's Swin block computation (roll, partition, WindowAttention
    with the −100 shift mask, reverse, roll back), on the block's own weights."""
    _b, h, w, c = x.shape
    ws, s = blk.window_size, blk.shift
    y = blk.norm1(x)
    mask = None
    if s:
        y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        mask = _shift_mask(h, w, ws, s, x.device)
    win = window_partition(y, (ws, ws)).view(-1, ws * ws, c)
    win = blk.attn(win, mask=mask)
    y = window_reverse(win.view(-1, ws, ws, c), (ws, ws), h, w)
    if s:
        y = torch.roll(y, shifts=(s, s), dims=(1, 2))
    x = x + y
    return x + blk.mlp(blk.norm2(x))


@pytest.mark.parametrize("shift", [0, 4])
@pytest.mark.parametrize("path", ["fused", "plain", 64, 192, 10**9])
def test_swin_block_equals_timm_path(shift: int, path: str | int, monkeypatch) -> None:
    """One gather for shift + partition, SDPA with a broadcast bias, and the shift mask on
    the border windows only: timm's block output with gradients (against timm's fused or
    plain attention); CPU inference a few windows at a time (chunks of one window, of three
    so that border windows fall on chunk edges, and all at once) gives it too."""
    import wne.models.swinir as swin

    torch.manual_seed(0)
    blk = SwinBlock(24, 3, 8, shift, 2.0, 0.0)
    x = torch.randn(2, 24, 40, 24)
    if isinstance(path, int):
        monkeypatch.setattr(swin, "CHUNK_TOKENS", path)
        with torch.inference_mode():
            assert (blk.eval()(x) - _timm_block(blk, x)).abs().max() <= 1e-5
        return
    for m in blk.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = path == "fused"
    x.requires_grad_(True)
    ref, out = _timm_block(blk, x), blk(x)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), x)
    (g_out,) = torch.autograd.grad(out.square().sum(), x)
    assert (out - ref).abs().max() <= 1e-5
    assert (g_out - g_ref).abs().max() <= 1e-4 * g_ref.abs().max()


@pytest.mark.parametrize("align", [8, 16])
def test_head_padded_attention_equals_unpadded(align: int) -> None:
    """The CUDA path's zero-padded head size (10 → a multiple of 8 or 16, so that fused
    kernels apply) computes the same attention, forward and backward, with the true
    size's 1/√d scale; on CPU no padding is applied by default."""
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(6, 3, 64, 10, generator=g).requires_grad_(True) for _ in range(3))
    bias = torch.randn(1, 3, 64, 64, generator=g)
    ref = torch.softmax(q @ k.transpose(-1, -2) / 10**0.5 + bias, -1) @ v
    refs = torch.autograd.grad(ref.square().sum(), (q, k, v))
    out = window_attention(q, k, v, bias, align=align)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= 1e-5
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    assert all((a - b).abs().max() <= 1e-4 for a, b in zip(grads, refs, strict=True))
    assert torch.equal(window_attention(q, k, v, bias), window_attention(q, k, v, bias, 1))


def test_swinir_checkpoint_matches_timm_path() -> None:
    """A bundled SwinIR with every block routed through timm's path gives the same image
    as the fast blocks (odd size: padding and border windows included)."""
    model = wne.load("swinir-plain-s25").eval()
    assert isinstance(model, SwinIR)
    x = torch.rand(1, 1, 53, 37, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        fast = model(x)
        originals = {}
        for blk in model.modules():
            if isinstance(blk, SwinBlock):
                originals[blk] = blk.forward
                blk.forward = (lambda b: lambda t: _timm_block(b, t))(blk)  # type: ignore[method-assign]
        ref = model(x)
        for blk, fwd in originals.items():
            blk.forward = fwd  # type: ignore[method-assign]
    assert (fast - ref).abs().max() <= 1e-5


def test_swin_caches_serve_autograd_after_inference_mode() -> None:
    """The block's cached index tensors and masks are made outside inference mode, so a
    model first run under ``torch.inference_mode()`` (the demo) still trains (the lab)."""
    torch.manual_seed(0)
    model = SwinIR(embed_dim=12, depths=[2], num_heads=2, window_size=4).eval()
    x = torch.rand(1, 1, 28, 20)  # a size no other test uses: fresh cache entries
    with torch.inference_mode():
        model(x)
    model.train()
    model(x).square().mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_swinir_exports_with_dynamic_sides_and_leaves_eager_calls_intact() -> None:
    """torch.export with symbolic H, W equals eager at an unseen size; eager calls still work."""
    from torch.export import Dim, export

    torch.manual_seed(0)
    model = wne.models.build("swinir", embed_dim=8, depths=[2], num_heads=2, window_size=4).eval()
    h, w = Dim("h", min=2, max=64), Dim("w", min=2, max=64)
    program = export(model, (torch.rand(1, 1, 16, 24),), dynamic_shapes={"x": {2: 4 * h, 3: 4 * w}})
    y = torch.rand(1, 1, 20, 28)
    with torch.no_grad():
        assert torch.equal(program.module()(y), model(y))
        assert model(torch.rand(1, 1, 16, 24)).shape == (1, 1, 16, 24)
