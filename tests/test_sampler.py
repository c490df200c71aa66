"""The denoiser-as-prior sampler: projectors, determinism, stopping, divergence, a tiny run."""

from __future__ import annotations

import math

import pytest
import torch

from wne.sampler import TASKS, Measurement, paper_parameters, problem, sample, walk


def _clean(h: int = 32, w: int = 32) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return (0.5 + 0.3 * torch.sin(6 * xx) * torch.cos(4 * yy))[None, None]


def _measurements(x: torch.Tensor) -> list[Measurement]:
    return [
        Measurement.denoise(x.shape),
        Measurement.inpaint(x, 0.1, seed=3),
        Measurement.center_hole(x, 0.25),
        Measurement.superres(x, 4),
    ]


@pytest.mark.parametrize("i", range(4))
def test_projectors_are_idempotent_symmetric_and_keep_the_observation(i: int) -> None:
    x = _clean()
    m = _measurements(x)[i]
    gen = torch.Generator().manual_seed(0)
    y, v = torch.randn(x.shape, generator=gen), torch.randn(x.shape, generator=gen)
    torch.testing.assert_close(m.project(m.project(y)), m.project(y))  # P² = P
    torch.testing.assert_close((m.project(y) * v).sum(), (y * m.project(v)).sum())  # Pᵀ = P
    torch.testing.assert_close(m.project(x), m.observed)  # x_c = P·x*
    # The result x_c + (I − P)·y agrees with the observation: P·x̂ = x_c.
    xhat = m.observed + y - m.project(y)
    torch.testing.assert_close(m.project(xhat), m.observed)


def test_inpaint_keeps_the_requested_fraction_of_pixels_exactly() -> None:
    x = torch.rand(1, 3, 100, 100)
    m = Measurement.inpaint(x, 0.1, seed=0)
    assert m.mask is not None and m.mask.shape == (1, 1, 100, 100)
    assert abs(float(m.mask.mean()) - 0.1) < 0.01
    kept = m.mask.bool().expand_as(x)
    assert torch.equal(m.observed[kept], x[kept]) and (m.observed[~kept] == 0).all()
    assert torch.equal(Measurement.inpaint(x, 0.1, seed=0).mask, m.mask)
    assert not torch.equal(Measurement.inpaint(x, 0.1, seed=1).mask, m.mask)
    hole = Measurement.center_hole(x, 0.25).mask
    assert hole is not None and float(1 - hole.mean()) == pytest.approx(0.25, abs=0.01)


def test_bad_arguments_are_refused() -> None:
    x = _clean()
    with pytest.raises(ValueError, match="keep fraction"):
        Measurement.inpaint(x, 0.0, 0)
    with pytest.raises(ValueError, match="divide"):
        Measurement.superres(x, 5)
    with pytest.raises(ValueError, match="one image"):
        Measurement.denoise((2, 1, 8, 8))
    with pytest.raises(ValueError, match="h0"):
        sample(lambda y: y, Measurement.denoise(x.shape), h0=0)


def _oracle(x: torch.Tensor):
    """A perfect denoiser: D(y) = x*. The walk then contracts towards x* geometrically."""
    return lambda y: x.clone()


def test_an_oracle_prior_restores_the_image_and_the_walk_is_deterministic() -> None:
    x = _clean()
    m = Measurement.inpaint(x, 0.1, seed=1)
    a = sample(_oracle(x), m, h0=0.1, beta=0.5, seed=5, frame_every=10)
    b = sample(_oracle(x), m, h0=0.1, beta=0.5, seed=5)
    assert a.stop == "converged" and a.sigmas[-1] <= 0.01 < a.sigmas[-2]
    assert torch.equal(a.image, b.image) and a.sigmas == b.sigmas
    assert float((a.image - x).abs().max()) < 0.05
    assert [f[0] for f in a.frames] == list(range(0, a.steps + 1, 10))
    c = sample(_oracle(x), m, h0=0.1, beta=0.5, seed=6)
    assert not torch.equal(a.image, c.image)


def test_stopping_rule_and_step_budget() -> None:
    x = _clean()
    m = Measurement.denoise(x.shape)
    noisy = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    res = sample(_oracle(x), m, beta=1.0, init=noisy, max_steps=7)
    assert res.stop == "max_steps" and res.steps == 7 and len(res.sigmas) == 7
    # β = 1: no injected noise; σ̂_1 is the RMS of the initial residual.
    assert res.sigmas[0] == pytest.approx(float((x - noisy).norm()) / math.sqrt(x.numel()))
    assert all(s1 > s2 for s1, s2 in zip(res.sigmas, res.sigmas[1:], strict=False))


def test_a_diverging_denoiser_is_reported_not_crashing() -> None:
    x = _clean()

    def explode(y: torch.Tensor) -> torch.Tensor:
        return y * 1e30

    res = sample(explode, Measurement.inpaint(x, 0.1, 0), h0=0.5)
    assert res.stop == "diverged"
    assert torch.isfinite(res.image).all()


def test_walk_yields_every_state_and_sample_is_its_summary() -> None:
    """``walk`` yields the start, each update (with the σ̂ that drove it) and a last item
    with the stop reason; ``sample`` returns exactly what the walk ends with."""
    x = _clean()
    m = Measurement.inpaint(x, 0.1, seed=1)
    items = list(walk(_oracle(x), m, h0=0.1, beta=0.5, seed=5))
    res = sample(_oracle(x), m, h0=0.1, beta=0.5, seed=5)
    assert [i.step for i in items[:-1]] == list(range(res.steps + 1))
    assert all(i.stop is None for i in items[:-1]) and items[-1].stop == res.stop == "converged"
    assert items[0].sigma is None
    assert [i.sigma for i in items if i.sigma is not None] == res.sigmas
    assert torch.equal(items[-1].image, res.image)
    assert torch.equal(m.project(items[3].image), m.observed)  # every state honours x_c
    capped = list(walk(_oracle(x), m, h0=0.1, beta=0.5, seed=5, max_steps=4))
    assert capped[-1].stop == "max_steps" and capped[-1].step == 4 and capped[-1].sigma is None
    with pytest.raises(ValueError, match="beta"):
        next(walk(_oracle(x), m, beta=2.0))


def test_problem_sets_each_task_up_as_the_demo_and_the_lab_did() -> None:
    """problem() builds today's measurements and starts bit for bit (denoise: x + σ0·z with z
    seeded by ``seed``; inpaint's mask by ``mask_seed``), with the paper's parameters."""
    x = _clean()
    z = torch.randn(tuple(x.shape), generator=torch.Generator().manual_seed(7))
    den = problem("denoise", x, 25 / 255, seed=7)
    assert den.init is not None and torch.equal(den.init, x + 25 / 255 * z)
    assert torch.equal(den.shown, den.init)
    assert den.params == {**paper_parameters("denoise"), "sigma0": 25 / 255} and den.seed == 7
    inp = problem("inpaint", x, 0.2, seed=1, mask_seed=9)
    assert torch.equal(inp.measurement.mask, Measurement.inpaint(x, 0.2, 9).mask)
    assert inp.init is None and torch.equal(inp.shown, inp.measurement.observed)
    assert problem("center_hole", x).measurement.mask.mean() == pytest.approx(0.75, abs=0.01)
    assert problem("superres", x, 8).measurement.factor == 8
    assert [TASKS[t].level for t in TASKS] == ["keep", "hole", "factor", "sigma0"]
    a = list(inp.walk(_oracle(x), max_steps=5))
    b = list(walk(_oracle(x), inp.measurement, **paper_parameters("inpaint"), seed=1, max_steps=5))
    assert torch.equal(a[-1].image, b[-1].image)
    assert inp.sample(_oracle(x), max_steps=5).steps == 5
    for task, level, match in [
        ("paint", None, "unknown sampler task 'paint'"),
        ("superres", 2.5, "whole number"),
        ("denoise", -1.0, "sigma0"),
        ("inpaint", 0.0, "keep fraction"),
    ]:
        with pytest.raises(ValueError, match=match):
            problem(task, x, level)
