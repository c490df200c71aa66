"""The NE wrapper: exact normalization equivariance for any backbone, and its guardrails.

Backbones: every registered one (random init, default small configs) and three the
library has never seen: a timm ViT block over H×W pixel tokens (softmax attention +
LayerNorm), a bare ``nn.Conv2d`` and ``nn.Identity``.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from timm.models.vision_transformer import Block
from torch import nn

from wne import NormEquivariant, models, ne_defect, ne_defect_map, normalization_stats


class TimmViTBackbone(nn.Module):
    """Pixels as tokens through one timm ViT block (attention + LayerNorm), back to an image."""

    def __init__(self, channels: int = 1, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.embed = nn.Conv2d(channels, dim, 3, padding=1)
        self.block = Block(dim, heads, mlp_ratio=2.0, qkv_bias=True)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.embed(x).flatten(2).transpose(1, 2)  # [B, H·W, dim]
        tokens = self.head(self.norm(self.block(tokens)))  # [B, H·W, C]
        return tokens.transpose(1, 2).reshape(b, c, h, w)


def _registered(arch: str) -> Callable[[int], nn.Module]:
    return lambda channels: models.build(arch, channels=channels)


FACTORIES: dict[str, Callable[[int], nn.Module]] = {
    **{arch: _registered(arch) for arch in models.available()},
    "timm_vit_block": lambda channels: TimmViTBackbone(channels),
    "conv2d": lambda channels: nn.Conv2d(channels, channels, 3, padding=1),
    "identity": lambda channels: nn.Identity(),
}
ALL = sorted(FACTORIES)
WITH_PARAMS = [n for n in ALL if n != "identity"]


@functools.cache
def wrapped(name: str, channels: int = 1, mode: str = "direct") -> NormEquivariant:
    """A seeded random-init wrapped backbone in eval mode (shared: do not modify it)."""
    torch.manual_seed(0)
    return NormEquivariant(FACTORIES[name](channels), mode=mode).eval()


def fresh(name: str, channels: int = 1, mode: str = "direct") -> NormEquivariant:
    """A private copy, safe to modify (``.double()``, ``.train()``)."""
    return copy.deepcopy(wrapped(name, channels, mode))


KAPPA_CAP = 100.0
"""Largest cancellation allowance: ``tol`` grows at most 100-fold (a broken wrapper's
defects are 1e-2 to 1, so even the capped bound of a 1e-5 check stays far below)."""


def check_equivariant(
    model: nn.Module, y: torch.Tensor, a: float, b: float, tol: float
) -> torch.Tensor:
    """Asserts ``ne_defect(model, y, a, b) <= tol`` (per sample) and returns the defects.

    The relative defect divides by ``‖a·f(y) + b‖``, which cancels when a
    near-constant output sits at ``−b/a`` (random-init nets produce such outputs);
    then even the rounding of ``f(y)`` itself is amplified by the cancellation
    factor ``κ = (a‖f(y)‖ + |b|·√n) / ‖a·f(y) + b‖``. The tolerance is therefore
    ``tol · clamp(κ / 10, 1, 100)``: exactly ``tol`` unless the denominator lost more
    than a factor 10 to cancellation, and never more than 100 · ``tol``. A broken
    wrapper gives defects of order 1e-2 to 1, far above either bound.
    """
    d = ne_defect(model, y, a, b)
    with torch.no_grad():
        f = model(y).flatten(1).double()
    den = (a * f + b).norm(dim=1)
    kappa = (a * f.norm(dim=1) + abs(b) * math.sqrt(f.shape[1])) / den.clamp_min(1e-300)
    allowed = tol * torch.clamp(kappa / 10, min=1.0, max=KAPPA_CAP)
    assert torch.isfinite(d).all()
    assert (d.double() <= allowed).all(), f"defect {d.tolist()} > allowed {allowed.tolist()}"
    return d


@st.composite
def ne_cases(draw: st.DrawFn) -> dict:
    """Random shapes (odd sizes included), batch 1–3, a ∈ [0.05, 20] (log-uniform), b ∈ [−5, 5]."""
    log_a = draw(st.floats(math.log(0.05), math.log(20.0)))
    return {
        "channels": draw(st.sampled_from([1, 3])),
        "batch": draw(st.integers(1, 3)),
        "h": draw(st.integers(8, 32)),
        "w": draw(st.integers(8, 32)),
        "a": min(max(math.exp(log_a), 0.05), 20.0),
        "b": draw(st.floats(-5.0, 5.0)),
        "noise": draw(st.sampled_from([0.0, 0.1, 1.0])),
        "mode": draw(st.sampled_from(["direct", "residual"])),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def make_images(batch: int, channels: int, h: int, w: int, noise: float, seed: int) -> torch.Tensor:
    """Clean uniform images plus Gaussian noise of std ``noise`` (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.rand(batch, channels, h, w, generator=gen)
    return y + noise * torch.randn(batch, channels, h, w, generator=gen)


FAST = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


# --- 1. exact NE for every backbone, seen or not -------------------------------------


@pytest.mark.parametrize("name", ALL)
@FAST
@given(case=ne_cases())
def test_wrapped_backbone_is_normalization_equivariant_fp32(name: str, case: dict) -> None:
    """f(a·y + b) = a·f(y) + b to fp32 round-off (≤ 1e-5) for any backbone, shape, a, b."""
    model = wrapped(name, case["channels"], case["mode"])
    y = make_images(
        case["batch"], case["channels"], case["h"], case["w"], case["noise"], case["seed"]
    )
    check_equivariant(model, y, case["a"], case["b"], tol=1e-5)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("name", ALL)
def test_wrapped_backbone_is_equivariant_at_extreme_shifts(
    name: str, dtype: torch.dtype, tol: float
) -> None:
    """An odd 37×53 batch of 2 with a, b at the ends of their ranges: ≤ 1e-5 in fp32,
    ≤ 1e-12 with ``.double()``."""
    model = fresh(name).to(dtype)
    torch.manual_seed(1)
    y = (torch.rand(2, 1, 37, 53) + 0.1 * torch.randn(2, 1, 37, 53)).to(dtype)
    for a, b in [(0.05, -5.0), (20.0, 5.0), (20.0, -5.0), (3.0, -2.0), (0.2, 0.5)]:
        check_equivariant(model, y, a, b, tol=tol)


@pytest.mark.parametrize("arch", ["dncnn", "fdncnn", "swinir"])
def test_unwrapped_plain_backbones_are_not_equivariant(arch: str) -> None:
    """Without the wrapper, plain CNNs and the transformer break NE (defect ≥ 1e-3)."""
    torch.manual_seed(0)
    model = models.build(arch).eval()
    y = torch.rand(2, 1, 37, 53)
    for a, b in [(3.0, -2.0), (0.2, 0.5)]:
        d = ne_defect(model, y, a, b)
        assert (d >= 1e-3).all(), f"{arch} unwrapped at a={a}, b={b}: defect {d.tolist()}"


@settings(max_examples=10, deadline=None, database=None)
@given(case=ne_cases())
def test_unwrapped_fdncnn_ne_is_architecturally_equivariant(case: dict) -> None:
    """fdncnn_ne needs no wrapper: NE to ≤ 1e-9 in fp64 for any a, b, shape."""
    torch.manual_seed(0)
    model = models.build("fdncnn_ne", channels=case["channels"]).double().eval()
    y = make_images(
        case["batch"], case["channels"], case["h"], case["w"], case["noise"], case["seed"]
    )
    check_equivariant(model, y.double(), case["a"], case["b"], tol=1e-9)


def test_unwrapped_fdncnn_ne_is_equivariant_in_fp32() -> None:
    """... and to ≤ 1e-5 in fp32 at representative (a, b)."""
    torch.manual_seed(0)
    model, y = models.build("fdncnn_ne").eval(), torch.rand(2, 1, 37, 53)
    for a, b in [(0.2, 0.5), (2.0, -0.2), (20.0, 5.0), (0.5, 0.25)]:
        assert (ne_defect(model, y, a, b) <= 1e-5).all()


# --- 2. constants, batch independence, gradients, formulas ----------------------------


@pytest.mark.parametrize("mode", ["direct", "residual"])
@pytest.mark.parametrize("name", ALL)
def test_constant_images_map_exactly_to_themselves(name: str, mode: str) -> None:
    """c·1 → c·1 bit-exactly, no NaN/inf, for c ∈ {0, 0.3, −2, 1e3} (also mixed in a batch)."""
    model = wrapped(name, 1, mode)
    for c in (0.0, 0.3, -2.0, 1e3):
        y = torch.full((2, 1, 37, 53), c)
        out = model(y)
        assert torch.isfinite(out).all()
        assert torch.equal(out, y), f"c={c}: max error {(out - y).abs().max().item()}"
    mixed = torch.cat([torch.full((1, 1, 9, 11), c) for c in (0.0, 0.3, -2.0, 1e3)])
    assert torch.equal(model(mixed), mixed)


def test_constant_image_statistics_are_exact() -> None:
    """mean(c·1) == c and std(c·1) == 0 exactly in fp32 (a plain mean is off by an ulp)."""
    for c in (0.3, 0.1, 1 / 3, 0.7, 123.456, -2.0):
        for shape in [(1, 1, 37, 53), (2, 3, 64, 61), (1, 1, 8, 8)]:
            mean, std = normalization_stats(torch.full(shape, c))
            assert torch.equal(mean, torch.full_like(mean, c))
            assert torch.equal(std, torch.zeros_like(std))


def test_normalization_stats_match_population_std_per_sample() -> None:
    """Stats are per sample over C×H×W, population std, in ≥ fp32; never across the batch."""
    torch.manual_seed(3)
    y = torch.randn(3, 3, 17, 9) * torch.tensor([0.1, 1.0, 30.0]).view(3, 1, 1, 1) + 5
    mean, std = normalization_stats(y)
    ref_std, ref_mean = torch.std_mean(y.double(), dim=(1, 2, 3), correction=0, keepdim=True)
    torch.testing.assert_close(mean.double(), ref_mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(std.double(), ref_std, rtol=1e-6, atol=0)
    assert mean.shape == std.shape == (3, 1, 1, 1)
    m16, s16 = normalization_stats(y.half())
    assert m16.dtype == s16.dtype == torch.float32
    m64, _ = normalization_stats(y.double())
    assert m64.dtype == torch.float64


@pytest.mark.parametrize("name", ALL)
def test_batch_items_are_independent(name: str) -> None:
    """Sample i's output does not change when the other samples of the batch change."""
    model = wrapped(name)
    torch.manual_seed(4)
    y = torch.rand(3, 1, 19, 23)
    out = model(y)
    y2 = y.clone()
    y2[0] = 5 * torch.rand(1, 19, 23) - 2
    y2[2] = 0.7  # a constant neighbour
    out2 = model(y2)
    torch.testing.assert_close(out2[1], out[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(model(y[1:2])[0], out[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["direct", "residual"])
@pytest.mark.parametrize("name", WITH_PARAMS)
def test_gradients_reach_every_parameter(name: str, mode: str) -> None:
    """Train mode: every parameter gets a finite gradient, and (almost) all are nonzero."""
    model = fresh(name, 1, mode).train()
    torch.manual_seed(5)
    clean = torch.rand(2, 1, 16, 16)
    noisy = clean + 0.1 * torch.randn_like(clean)
    loss = (model(noisy) - clean).square().mean()
    loss.backward()
    params = dict(model.named_parameters())
    assert params
    for pname, p in params.items():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
    nonzero = [n for n, p in params.items() if p.grad.abs().sum() > 0]
    assert len(nonzero) >= 0.9 * len(params), sorted(set(params) - set(nonzero))


def test_constant_image_in_a_batch_has_finite_input_gradients() -> None:
    """The std = 0 guardrail does not poison backpropagation (no 0/0 in sqrt's gradient)."""
    model = fresh("dncnn").train()
    y = torch.cat([torch.full((1, 1, 12, 12), c) for c in (0.0, 0.3, -2.0)])
    y = torch.cat([y, torch.rand(1, 1, 12, 12)])
    for mode in ("direct", "residual"):
        model.mode = mode
        yy = y.clone().requires_grad_(True)
        model(yy).square().sum().backward()
        assert torch.isfinite(yy.grad).all()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        model.zero_grad()


@pytest.mark.parametrize("mode", ["direct", "residual"])
def test_direct_and_residual_follow_their_formulas(mode: str) -> None:
    """direct: s·g((y−m)/s) + m; residual: y − s·h((y−m)/s), with m, s by hand."""
    torch.manual_seed(6)
    g = nn.Conv2d(3, 3, 3, padding=1)
    model = NormEquivariant(g, mode=mode).eval()
    y = torch.rand(2, 3, 11, 13) * 4 - 1
    m = y.mean(dim=(1, 2, 3), keepdim=True)
    s = ((y - m) ** 2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
    with torch.no_grad():
        gz = g((y - m) / s)
        expected = s * gz + m if mode == "direct" else y - s * gz
        got = model(y)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    other = "residual" if mode == "direct" else "direct"
    with torch.no_grad():
        assert not torch.allclose(NormEquivariant(g, mode=other)(y), expected, atol=1e-3)


# --- input validation -------------------------------------------------------------------


def test_non_finite_integer_and_wrongly_shaped_inputs_are_refused() -> None:
    """NaN/inf anywhere, integer tensors, non-4-D tensors → ValueError naming the problem;
    bad mode / backbone rejected."""
    model = wrapped("conv2d")
    for bad in (float("nan"), float("inf"), -float("inf")):
        y = torch.rand(2, 1, 12, 12)
        y[1, 0, 3, 4] = bad
        with pytest.raises(ValueError, match=r"NaN|inf"):
            model(y)
    with pytest.raises(ValueError, match="floating"):
        model(torch.randint(0, 255, (1, 1, 12, 12)))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        model(torch.rand(1, 12, 12))
    with pytest.raises(ValueError, match="mode"):
        NormEquivariant(nn.Identity(), mode="scale")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        NormEquivariant(lambda x: x)  # type: ignore[arg-type]


def test_backbone_changing_the_shape_is_reported() -> None:
    """A backbone that does not preserve [B, C, H, W] gives a clear error."""
    model = NormEquivariant(nn.Conv2d(1, 1, 3)).eval()
    with pytest.raises(ValueError, match="shape"):
        model(torch.rand(1, 1, 12, 12))


# --- precision --------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*models.available(), "timm_vit_block", "conv2d"])
def test_bf16_autocast_keeps_statistics_in_fp32(name: str) -> None:
    """Under CPU bf16 autocast: fp32 output, fp32 stats (identical to no autocast),
    constant images still exact, and the defect stays ≤ 1e-2."""
    model = wrapped(name)
    torch.manual_seed(7)
    y = torch.rand(2, 1, 24, 20) + 0.1 * torch.randn(2, 1, 24, 20)
    plain_stats = normalization_stats(y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mean, std = normalization_stats(y)
        out = model(y)
        const = torch.full((1, 1, 24, 20), 0.3)
        const_out = model(const)
        d = ne_defect(model, y, 3.0, -2.0)
    assert mean.dtype == std.dtype == torch.float32
    assert torch.equal(mean, plain_stats[0]) and torch.equal(std, plain_stats[1])
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.equal(const_out, const)
    assert (d <= 1e-2).all(), d.tolist()


# --- noise-level input ------------------------------------------------------------------


class SigmaSpy(nn.Module):
    """A non-blind backbone ``g(x, sigma) = x − sigma·conv(x)`` that records each sigma."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.seen: list[torch.Tensor | None] = []

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        self.seen.append(None if sigma is None else torch.as_tensor(sigma).detach().clone())
        if sigma is None:
            return x
        return x - sigma * self.conv(x)


class MaskSpy(SigmaSpy):
    """Second argument that is not a noise level (like timm's ``attn_mask``)."""

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x, attn_mask)


def test_non_blind_backbone_receives_sigma_over_std() -> None:
    """forward(x, sigma) gets sigma / std(y), per sample ([B, 1, 1, 1]); scalar or [B] sigma."""
    torch.manual_seed(8)
    spy = SigmaSpy()
    model = NormEquivariant(spy).eval()
    assert model.takes_sigma
    y = torch.rand(3, 1, 14, 15) * torch.tensor([1.0, 2.0, 0.5]).view(3, 1, 1, 1)
    _, std = normalization_stats(y)
    model(y, sigma=0.1)
    torch.testing.assert_close(spy.seen[-1], 0.1 / std)
    per_sample = torch.tensor([0.1, 0.2, 0.3])
    model(y, sigma=per_sample)
    torch.testing.assert_close(spy.seen[-1], per_sample.view(3, 1, 1, 1) / std)
    model(y)
    assert spy.seen[-1] is None


def test_non_blind_wrapped_model_is_jointly_equivariant_in_y_and_sigma() -> None:
    """f(a·y + b, a·σ) = a·f(y, σ) + b; passing σ unscaled breaks it (so σ matters)."""
    torch.manual_seed(9)
    model = NormEquivariant(SigmaSpy()).eval()
    y = torch.rand(2, 1, 16, 17) + 0.1 * torch.randn(2, 1, 16, 17)
    sigma = 0.1
    with torch.no_grad():
        for a, b in [(3.0, -2.0), (0.2, 0.5), (20.0, 5.0)]:
            expected = a * model(y, sigma) + b
            got = model(a * y + b, a * sigma)
            rel = (got - expected).flatten(1).norm(dim=1) / expected.flatten(1).norm(dim=1)
            assert (rel <= 1e-5).all(), rel.tolist()
            wrong = model(a * y + b, sigma)
            rel_wrong = (wrong - expected).flatten(1).norm(dim=1) / expected.flatten(1).norm(dim=1)
            assert (rel_wrong >= 1e-3).all(), rel_wrong.tolist()


def test_blind_backbones_ignore_sigma() -> None:
    """A blind backbone is called with x only; sigma changes nothing."""
    for name in ("dncnn", "swinir", "conv2d"):
        model = wrapped(name)
        assert not model.takes_sigma
        y = torch.rand(2, 1, 16, 16)
        assert torch.equal(model(y, sigma=0.5), model(y))


def test_second_argument_that_is_not_a_noise_level_gets_no_sigma() -> None:
    """forward(x, attn_mask=None) is treated as blind unless takes_sigma=True is forced."""
    spy = MaskSpy()
    model = NormEquivariant(spy).eval()
    assert not model.takes_sigma
    model(torch.rand(1, 1, 10, 10), sigma=0.3)
    assert spy.seen[-1] is None
    forced = NormEquivariant(spy, takes_sigma=True).eval()
    forced(torch.rand(1, 1, 10, 10), sigma=0.3)
    assert spy.seen[-1] is not None


# --- the oracle itself: ne_defect ------------------------------------------------------


class _AddConstant(nn.Module):
    """f(y) = y + c: equivariant to a but not to b, with a closed-form defect."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.c


@pytest.mark.parametrize(("a", "b", "c"), [(2.0, 0.5, 0.3), (0.25, -1.0, -2.0), (1.0, 3.0, 0.7)])
def test_ne_defect_has_the_closed_form_for_a_translation(a: float, b: float, c: float) -> None:
    """f(y) = y + c: f(a·y+b) − (a·f(y)+b) = c·(1 − a) at every pixel, so
    ε = |c(1 − a)|·√n / ‖a·y + a·c + b‖, checked to 1e-12 in float64."""
    y = torch.rand(3, 2, 7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    n = y[0].numel()
    expected = abs(c * (1 - a)) * math.sqrt(n) / (a * y + a * c + b).flatten(1).norm(dim=1)
    got = ne_defect(_AddConstant(c), y, a, b)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)
    if a == 1.0:  # a translation is equivariant to brightness alone: only round-off is left
        assert (got <= 1e-15).all()


def test_ne_defect_takes_a_and_b_per_sample() -> None:
    """Tensor a, b apply to their own batch item: equal to three single-sample calls."""
    y = torch.rand(3, 1, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    a = torch.tensor([0.5, 2.0, 4.0], dtype=torch.float64)
    b = torch.tensor([-1.0, 0.0, 0.25], dtype=torch.float64)
    f = _AddConstant(0.3)
    batched = ne_defect(f, y, a, b)
    single = torch.cat([ne_defect(f, y[i : i + 1], float(a[i]), float(b[i])) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-14, atol=0)
    assert len(set(batched.tolist())) == 3


def test_ne_defect_map_is_the_closed_form_per_entry_and_shares_f_y() -> None:
    """From the outputs of f(y) = y + c: the map is |c(1 − a)| at every entry, the relative
    defect is ne_defect's, and one f(y) [1, C, H, W] serves a batch of (a, b) pairs."""
    y = torch.rand(1, 2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    f, a, b = _AddConstant(0.3), torch.tensor([0.5, 2.0, 4.0]), torch.tensor([-1.0, 0.0, 0.5])
    shifted = a.view(-1, 1, 1, 1).double() * y + b.view(-1, 1, 1, 1).double()
    error, rel = ne_defect_map(f(y), f(shifted), a, b)
    assert error.shape == (3, 2, 5, 4) and error.dtype == torch.float64
    torch.testing.assert_close(
        error, (0.3 * (1 - a)).abs().double().view(-1, 1, 1, 1).expand(3, 2, 5, 4)
    )
    single = torch.cat([ne_defect(f, y, float(a[i]), float(b[i])) for i in range(3)])
    torch.testing.assert_close(rel, single, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        ne_defect_map(f(y)[0], f(y)[0], 1.0, 0.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, torch.tensor([1.0, -0.5])])
def test_ne_defect_refuses_non_positive_a(bad: float | torch.Tensor) -> None:
    with pytest.raises(ValueError, match="a must be > 0"):
        ne_defect(_AddConstant(0.1), torch.rand(2, 1, 4, 4), bad, 0.0)


def test_check_equivariant_tolerance_is_bounded() -> None:
    """The helper's cancellation allowance is capped: a broken wrapper cannot hide behind it."""
    y = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with pytest.raises(AssertionError):
        # f(y) = y + 0.5 at a = 2, b = −2·mean: near-total cancellation in ‖a·f(y)+b‖.
        check_equivariant(_AddConstant(0.5), y, 2.0, -2.0 * float(y.mean()) - 1.0, tol=1e-5)


# --- the pipeline step by step -----------------------------------------------------------


@pytest.mark.parametrize("name", ["dncnn", "swinir"])
@pytest.mark.parametrize("mode", ["direct", "residual"])
def test_steps_reproduce_forward_exactly_and_show_why_wne_is_exact(name: str, mode: str) -> None:
    """``steps`` is the forward pass: same output bit for bit, and the normalized inputs
    of ``y`` and ``a·y + b`` agree to float round-off (the reason WNE is exact)."""
    model = wrapped(name, mode=mode)
    y = make_images(2, 1, 24, 20, 0.2, seed=3)
    with torch.no_grad():
        st = model.steps(y)
        assert torch.equal(st.output, model(y))
        mean, std = normalization_stats(y)
        assert torch.equal(st.mean, mean) and torch.equal(st.std, std)
        torch.testing.assert_close(st.normalized, (y - mean) / std, rtol=0, atol=1e-5)
        expected = (
            std * st.backbone_output + mean if mode == "direct" else y - std * st.backbone_output
        )
        torch.testing.assert_close(st.output, expected, rtol=0, atol=1e-6)
        shifted = model.steps(0.3 * y + 0.7)
    assert (shifted.normalized - st.normalized).abs().max() <= 1e-5
    torch.testing.assert_close(shifted.mean, 0.3 * st.mean + 0.7, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(shifted.std, 0.3 * st.std, rtol=1e-6, atol=0)
