"""Why normalization equivariance works: the paper's two explanations, measured.

1. **Adaptive filters** (paper §4.5). A differentiable normalization-equivariant ``f``
   satisfies ``f(y) = J_f(y)·y`` (Euler's theorem for ``f(a·y) = a·f(y)``) and
   ``J_f(y)·1 = 1`` (from ``f(y + b) = f(y) + b``): each output pixel is a weighted average
   of the input whose weights, a row of the Jacobian, sum to one. :func:`filter_view`
   computes one row with a vector-Jacobian product, :func:`filter_sum_map` every row's sum
   and :func:`rho` the *literalness* ``ρ(y) = ‖f(y) − J_f(y)·y‖₂ / ‖f(y)‖₂`` with one
   Jacobian-vector product (0 up to round-off for a WNE model, not for a plain one).
2. **Δ overlap** (paper §5, model-free). In the normalized coordinates
   ``ỹ = (y − mean(y)) / std(y)``, ``x̃ = (x − mean(y)) / std(y)`` (unbiased std, as the
   paper's code) the difficulty of a noisy patch is ``Δ = ‖ỹ − x̃‖₂``. Its distributions
   overlap across noise levels (:func:`coverage_table`, paper Table 3), and a WNE model's
   normalized error ``Q = −10·log10‖x̂_n − x̃‖²`` depends on ``Δ`` alone, whatever σ
   produced it (:func:`q_vs_delta`, :func:`bin_q`, :func:`curve_spread`; paper Figs. 6, 11).

Noise levels σ are on the 0–255 scale of images in [0, 1].
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from wne.models._common import MIN_SIZE

__all__ = [
    "Coverage",
    "FilterView",
    "QBins",
    "bin_q",
    "coverage_from_deltas",
    "coverage_table",
    "crop",
    "curve_spread",
    "delta",
    "delta_at_sigma",
    "euler_terms",
    "filter_sum_map",
    "filter_view",
    "normalized_coordinates",
    "q_vs_delta",
    "rho",
]

log = logging.getLogger(__name__)

Image = torch.Tensor | np.ndarray
"""One image, ``[H, W]`` or ``[C, H, W]``, a tensor or an array."""

EPS = 1e-6
"""Floor of the unbiased std in the normalized coordinates (the paper's ``clamp_min``)."""


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True, eq=False)
class FilterView:
    """One output pixel of ``f`` as an adaptive filter: a row of the Jacobian ``J_f(y)``.

    Attributes:
        pixel: ``(row, col)`` of the output pixel.
        channel: Its channel.
        filter: The row ``∂f(y)[channel, row, col] / ∂y``, ``[H, W]`` for a
            single-channel image, else ``[C, H, W]``.
        filter_sum: The sum of the row, ``(J_f(y)·1)[pixel]``; 1 for an NE model.
        output: ``f(y)`` at the pixel.
        euler: ``J_f(y)[pixel, :]·y``, the filter applied to the input; equals
            ``output`` for an NE model (Euler's theorem).
    """

    pixel: tuple[int, int]
    channel: int
    filter: np.ndarray
    filter_sum: float
    output: float
    euler: float

    @property
    def euler_gap(self) -> float:
        """``output − euler``: what the filter leaves unexplained at this pixel."""
        return self.output - self.euler

    def window(self, radius: int) -> np.ndarray:
        """The filter's ``(2·radius + 1)²`` window centred on the pixel (zeros beyond the
        image, so the shape is fixed), ``[2r+1, 2r+1]`` or ``[C, 2r+1, 2r+1]``.

        Args:
            radius: Half side of the window, >= 0.

        Raises:
            ValueError: If ``radius`` is negative.
        """
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        row, col = self.pixel
        pad = [(0, 0)] * (self.filter.ndim - 2) + [(radius, radius), (radius, radius)]
        padded = np.pad(self.filter, pad)
        side = 2 * radius + 1
        return padded[..., row : row + side, col : col + side].copy()


def crop(image: Image, size: int, offset: int | tuple[int, int] = 0) -> np.ndarray:
    """The ``size × size`` square of ``image`` whose top-left corner is at ``offset``, on the
    last two axes (paper Fig. 5: ``crop(img, 96, 50)`` is ``img[50:146, 50:146]``).

    Args:
        image: ``[H, W]`` or ``[..., H, W]``.
        size: Side of the square.
        offset: ``top`` (= ``left``) or ``(top, left)``.

    Raises:
        ValueError: If the square is not inside the image.
    """
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    top, left = (offset, offset) if isinstance(offset, int) else offset
    h, w = arr.shape[-2:]
    if size < 1 or top < 0 or left < 0 or top + size > h or left + size > w:
        raise ValueError(f"a {size}² crop at ({top}, {left}) does not fit in a {h}×{w} image")
    return arr[..., top : top + size, left : left + size].copy()


def _model_dtype(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    for t in [*model.parameters(), *model.buffers()]:
        if t.is_floating_point():
            return t.dtype, t.device
    return torch.float32, torch.device("cpu")


def _prepare(
    model: nn.Module, y: Image, dtype: torch.dtype | None
) -> tuple[nn.Module, torch.Tensor, bool]:
    """``(model in dtype, y as [1, C, H, W] in dtype on the model's device, y was 2-D)``.

    A model in another dtype is deep-copied first: the caller's model is never changed.
    """
    model_dtype, device = _model_dtype(model)
    dtype = dtype or model_dtype
    if dtype != model_dtype:
        log.debug("running a copy of the model in %s", dtype)
        model = copy.deepcopy(model).to(dtype)
    if model.training:
        log.warning("the model is in training mode: BatchNorm and dropout change f; .eval() it")
    t = torch.as_tensor(np.asarray(y)) if isinstance(y, np.ndarray) else y.detach()
    flat = t.ndim == 2
    if t.ndim not in (2, 3):
        raise ValueError(f"expected an image [H, W] or [C, H, W], got shape {tuple(t.shape)}")
    if min(t.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"image sides must be >= {MIN_SIZE} pixels, got {tuple(t.shape[-2:])}")
    t = t.reshape(1, -1, *t.shape[-2:]).to(device=device, dtype=dtype)
    if not bool(torch.isfinite(t).all()):
        raise ValueError("the image holds NaN or infinite values")
    return model, t, flat


@contextlib.contextmanager
def _differentiable() -> Iterator[None]:
    """Gradients on, attention through the plain-math kernel: the fused CPU kernel has no
    forward-mode derivative, and its saved output must not be modified in place."""
    with torch.enable_grad(), sdpa_kernel([SDPBackend.MATH]):
        yield


def _squeeze(t: torch.Tensor, flat: bool) -> np.ndarray:
    arr = t.detach().to(torch.float64).cpu().numpy()[0]
    return arr[0] if flat and arr.shape[0] == 1 else arr


def _call(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the model returned {shape} for an input {tuple(x.shape)}")
    return out


def _jvp(model: nn.Module, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(x), J_f(x)·v)``: one forward-mode pass, else (an op without a forward-mode
    derivative) the double-backward identity ``J·v = ∂/∂u (Jᵀu)·v``."""
    with _differentiable():
        try:
            return torch.func.jvp(lambda z: _call(model, z), (x,), (v,))
        except (NotImplementedError, RuntimeError) as exc:
            if "forward" not in str(exc).lower() and "jvp" not in str(exc).lower():
                raise
            log.info("no forward-mode derivative (%s); using double backward", exc)
        xg = x.detach().requires_grad_(True)
        out = _call(model, xg)
        u = torch.zeros_like(out, requires_grad=True)
        (jt_u,) = torch.autograd.grad(out, xg, u, create_graph=True)
        (jv,) = torch.autograd.grad(jt_u, u, v)
        return out.detach(), jv


def filter_view(
    model: nn.Module,
    y: Image,
    pixel: tuple[int, int],
    *,
    channel: int = 0,
    dtype: torch.dtype | None = None,
) -> FilterView:
    """The adaptive filter of one output pixel: the Jacobian row ``J_f(y)[pixel, :]``, by one
    vector-Jacobian product (the gradient of that output pixel with respect to ``y``).

    Args:
        model: ``[B, C, H, W] → [B, C, H, W]`` module (e.g. a :class:`wne.NormEquivariant`),
            in eval mode; never modified.
        y: The noisy image, ``[H, W]`` or ``[C, H, W]``, sides >= 8.
        pixel: ``(row, col)`` of the output pixel.
        channel: Its channel.
        dtype: Arithmetic dtype (default: the model's); ``torch.float64`` shows the
            identities at round-off level. The model is copied when it differs.

    Raises:
        ValueError: On a bad image shape, non-finite values, or a pixel outside the image.
    """
    model, x, flat = _prepare(model, y, dtype)
    _, c, h, w = x.shape
    row, col = (int(v) for v in pixel)
    if not (0 <= row < h and 0 <= col < w and 0 <= channel < c):
        raise ValueError(f"pixel {pixel} / channel {channel} outside a {c}×{h}×{w} image")
    with _differentiable():
        xg = x.detach().requires_grad_(True)
        out = _call(model, xg)
        (grad,) = torch.autograd.grad(out[0, channel, row, col], xg)
    g64, x64 = grad.to(torch.float64), x.to(torch.float64)
    return FilterView(
        pixel=(row, col),
        channel=channel,
        filter=_squeeze(grad, flat),
        filter_sum=float(g64.sum()),
        output=float(out[0, channel, row, col].detach()),
        euler=float((g64 * x64).sum()),
    )


def filter_sum_map(model: nn.Module, y: Image, *, dtype: torch.dtype | None = None) -> np.ndarray:
    """Every output pixel's filter sum, ``J_f(y)·1``, by one Jacobian-vector product in the
    direction of the all-ones image; 1 everywhere for an NE model.

    Args:
        model: As :func:`filter_view`.
        y: As :func:`filter_view`.
        dtype: As :func:`filter_view`.

    Returns:
        ``[H, W]`` (single-channel ``y`` given as ``[H, W]``) or ``[C, H, W]``, float64.
    """
    model, x, flat = _prepare(model, y, dtype)
    _, j1 = _jvp(model, x, torch.ones_like(x))
    return _squeeze(j1, flat)


def euler_terms(
    model: nn.Module, y: Image, *, dtype: torch.dtype | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(f(y), J_f(y)·y)``, the second by one Jacobian-vector product in the direction ``y``.

    Args:
        model: As :func:`filter_view`.
        y: As :func:`filter_view`.
        dtype: As :func:`filter_view`.

    Returns:
        Two arrays shaped like ``y``, float64.
    """
    model, x, flat = _prepare(model, y, dtype)
    out, jy = _jvp(model, x, x)
    return _squeeze(out, flat), _squeeze(jy, flat)


def rho(model: nn.Module, y: Image, *, dtype: torch.dtype | None = None) -> float:
    """The literalness ``ρ(y) = ‖f(y) − J_f(y)·y‖₂ / ‖f(y)‖₂`` over the whole image (paper
    eq. 12): 0 up to round-off for an NE model, whose output is its adaptive filters
    applied to the input; for a plain one, the share of the output they leave unexplained.

    Args:
        model: As :func:`filter_view`.
        y: As :func:`filter_view`.
        dtype: As :func:`filter_view`.
    """
    out, jy = euler_terms(model, y, dtype=dtype)
    den = float(np.linalg.norm(out))
    return float(np.linalg.norm(out - jy)) / den if den > 0 else 0.0


# --------------------------------------------------------------------------- Δ overlap


def _batch_array(a: Image) -> np.ndarray:
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if arr.ndim < 2:
        raise ValueError(f"expected a batch [N, ...] of patches, got shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


def normalized_coordinates(clean: Image, noisy: Image) -> tuple[np.ndarray, np.ndarray]:
    """``(ỹ, x̃)`` with the noisy patch's statistics: ``ỹ = (y − mean(y)) / std(y)`` and
    ``x̃ = (x − mean(y)) / std(y)``, per patch over all its entries, unbiased std (N − 1)
    floored at :data:`EPS`, as the paper's code.

    Args:
        clean: Clean patches ``x``, batch first: ``[N, H, W]`` or ``[N, C, H, W]``.
        noisy: Noisy patches ``y``, same shape.

    Returns:
        Two float64 arrays shaped like the inputs.

    Raises:
        ValueError: On shapes that differ or have no batch axis.
    """
    x, y = _batch_array(clean), _batch_array(noisy)
    if x.shape != y.shape:
        raise ValueError(f"clean {x.shape} and noisy {y.shape} differ in shape")
    axes = tuple(range(1, y.ndim))
    mean = y.mean(axis=axes, keepdims=True)
    std = np.maximum(y.std(axis=axes, ddof=1, keepdims=True), EPS)
    return (y - mean) / std, (x - mean) / std


def delta(clean: Image, noisy: Image) -> np.ndarray:
    """``Δ = ‖ỹ − x̃‖₂`` per patch (:func:`normalized_coordinates`), ``[N]`` float64.

    ``Δ = ‖y − x‖₂ / std(y)``: the noise in units of the noisy patch's own spread, about
    ``√(d / (1 + SNR))`` for ``d`` entries, and ``→ √d`` as σ grows.
    """
    y_t, x_t = normalized_coordinates(clean, noisy)
    return np.sqrt(((y_t - x_t) ** 2).reshape(len(y_t), -1).sum(axis=1))


def _rng(seed: int, sigma: float, stream: int) -> np.random.Generator:
    """A generator determined by ``(seed, σ, stream)`` alone: a σ's draws do not depend on
    which other levels are computed."""
    return np.random.default_rng([int(seed), round(float(sigma) * 1000), int(stream)])


def delta_at_sigma(
    patches: Image,
    sigma: float,
    seed: int = 0,
    *,
    stream: int = 0,
    batch_size: int = 1024,
) -> np.ndarray:
    """``Δ`` of every patch under fresh Gaussian noise of level ``sigma``.

    Args:
        patches: Clean patches in [0, 1], batch first (``[N, H, W]`` or ``[N, C, H, W]``).
        sigma: Noise std on the 0–255 scale.
        seed: Run seed.
        stream: Independent noise draw index (the same ``(seed, sigma, stream)`` always
            gives the same noise).
        batch_size: Patches per vectorized step (memory bound only).

    Returns:
        ``[N]`` float64.

    Raises:
        ValueError: If ``sigma`` is not positive.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    x = _batch_array(patches)
    rng = _rng(seed, sigma, stream)
    out = np.empty(len(x))
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        noisy = chunk + (sigma / 255.0) * rng.standard_normal(chunk.shape)
        out[i : i + batch_size] = delta(chunk, noisy)
    return out


@dataclass(frozen=True, eq=False)
class Coverage:
    """The Δ-overlap table (paper Table 3).

    Attributes:
        sigmas_train: Rows: the levels ``σ_train`` whose Δ intervals are taken.
        sigmas_test: Columns: the levels ``σ_test`` whose Δ samples are tested.
        coverage: ``m(σ_test; σ_train)``, the fraction of Δ at ``σ_test`` inside
            ``I(σ_train)``, ``[len(sigmas_train), len(sigmas_test)]`` in [0, 1].
        lower: ``I(σ_train)``'s lower end, the ``quantiles[0]`` quantile of Δ, per row.
        upper: Its upper end, the ``quantiles[1]`` quantile, per row.
        quantiles: The interval's quantile levels (paper: 0.025, 0.975).
        n_interval: Δ samples per level defining the intervals.
        n_test: Δ samples per level tested.
        held_out: Whether the tested samples are a noise draw independent of the one
            defining the intervals (else the paper's protocol: the same sample, so the
            diagonal is the quantile range by construction).
    """

    sigmas_train: tuple[float, ...]
    sigmas_test: tuple[float, ...]
    coverage: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    quantiles: tuple[float, float]
    n_interval: int
    n_test: int
    held_out: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists of floats)."""
        return {
            "sigmas_train": list(self.sigmas_train),
            "sigmas_test": list(self.sigmas_test),
            "coverage": self.coverage.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "quantiles": list(self.quantiles),
            "n_interval": self.n_interval,
            "n_test": self.n_test,
            "held_out": self.held_out,
        }


def coverage_from_deltas(
    interval_deltas: Mapping[float, np.ndarray],
    test_deltas: Mapping[float, np.ndarray],
    *,
    quantiles: tuple[float, float] = (0.025, 0.975),
    held_out: bool = True,
) -> Coverage:
    """The coverage table from Δ samples per level (paper eqs. 24–25): rows are the keys of
    ``interval_deltas`` (``I(σ) = [q_lo, q_hi]`` of its Δ, linear interpolation, both ends
    included), columns the keys of ``test_deltas``.

    Args:
        interval_deltas: ``σ_train → Δ`` samples.
        test_deltas: ``σ_test → Δ`` samples.
        quantiles: The interval's quantile levels.
        held_out: Recorded in the result (:attr:`Coverage.held_out`).

    Raises:
        ValueError: On empty samples or quantiles not in ``0 <= lo <= hi <= 1``.
    """
    lo_q, hi_q = quantiles
    if not 0 <= lo_q <= hi_q <= 1:
        raise ValueError(f"quantiles must satisfy 0 <= lo <= hi <= 1, got {quantiles}")
    if not interval_deltas or not test_deltas:
        raise ValueError("no Δ samples")
    rows = [np.asarray(d, dtype=np.float64) for d in interval_deltas.values()]
    cols = [np.asarray(d, dtype=np.float64) for d in test_deltas.values()]
    if any(d.size == 0 for d in rows + cols):
        raise ValueError("empty Δ sample")
    bounds = np.array([np.quantile(d, [lo_q, hi_q]) for d in rows])
    table = np.array([[float(np.mean((d >= lo) & (d <= hi))) for d in cols] for lo, hi in bounds])
    return Coverage(
        sigmas_train=tuple(float(s) for s in interval_deltas),
        sigmas_test=tuple(float(s) for s in test_deltas),
        coverage=table,
        lower=bounds[:, 0].copy(),
        upper=bounds[:, 1].copy(),
        quantiles=(float(lo_q), float(hi_q)),
        n_interval=min(d.size for d in rows),
        n_test=min(d.size for d in cols),
        held_out=held_out,
    )


def coverage_table(
    patches: Image,
    sigmas_train: Sequence[float],
    sigmas_test: Sequence[float],
    seed: int = 0,
    *,
    quantiles: tuple[float, float] = (0.025, 0.975),
    held_out: bool = True,
    batch_size: int = 1024,
) -> Coverage:
    """Model-free Δ overlap between noise levels (paper Table 3, §5.5): for each
    ``σ_train`` the interval ``I(σ_train)`` of Δ over ``patches`` with Gaussian noise of that
    level, and for each ``σ_test`` the fraction ``m(σ_test; σ_train)`` of Δ at ``σ_test`` in it.

    Args:
        patches: Clean training patches in [0, 1], batch first (paper: 70×70 crops).
        sigmas_train: Row levels, 0–255 scale.
        sigmas_test: Column levels, 0–255 scale.
        seed: Noise seed.
        quantiles: The interval's quantile levels.
        held_out: Test a second, independent noise draw (the diagonal is then an honest
            estimate of the nominal 95 %); ``False`` tests the very sample that defines the
            intervals, as the paper's code.
        batch_size: Patches per vectorized step.
    """
    levels = dict.fromkeys([*map(float, sigmas_train), *map(float, sigmas_test)])
    first = {s: delta_at_sigma(patches, s, seed, stream=0, batch_size=batch_size) for s in levels}
    second = (
        {s: delta_at_sigma(patches, s, seed, stream=1, batch_size=batch_size) for s in levels}
        if held_out
        else first
    )
    return coverage_from_deltas(
        {float(s): first[float(s)] for s in sigmas_train},
        {float(s): second[float(s)] for s in sigmas_test},
        quantiles=quantiles,
        held_out=held_out,
    )


@torch.no_grad()
def q_vs_delta(
    model: nn.Module, clean: Image, noisy: Image, *, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Per patch, the difficulty ``Δ`` and the model's normalized quality
    ``Q = −10·log10‖x̂_n − x̃‖²`` with ``x̂_n = (f(y) − mean(y)) / std(y)`` (paper eq. 18 and
    App. G, defined for plain models too; the squared norm is a sum over the patch).

    Args:
        model: ``[B, C, H, W] → [B, C, H, W]`` module in eval mode, run in its own dtype.
        clean: Clean patches, ``[N, H, W]`` or ``[N, C, H, W]``.
        noisy: Noisy patches, same shape.
        batch_size: Patches per forward pass.

    Returns:
        ``(Δ, Q)``, each ``[N]`` float64 (Q in dB; ``inf`` for an exact output).
    """
    x, y = _batch_array(clean), _batch_array(noisy)
    if x.shape != y.shape:
        raise ValueError(f"clean {x.shape} and noisy {y.shape} differ in shape")
    if x.ndim == 3:
        x, y = x[:, None], y[:, None]
    if x.ndim != 4:
        raise ValueError(f"expected patches [N, H, W] or [N, C, H, W], got {x.shape}")
    dtype, device = _model_dtype(model)
    outs = []
    for i in range(0, len(y), batch_size):
        t = torch.from_numpy(y[i : i + batch_size]).to(device=device, dtype=dtype)
        outs.append(_call(model, t).to(torch.float64).cpu().numpy())
    f_y = np.concatenate(outs) if outs else np.empty_like(y)
    axes = (1, 2, 3)
    mean = y.mean(axis=axes, keepdims=True)
    std = np.maximum(y.std(axis=axes, ddof=1, keepdims=True), EPS)
    err = (((f_y - mean) / std - (x - mean) / std) ** 2).reshape(len(y), -1).sum(axis=1)
    with np.errstate(divide="ignore"):
        q = -10.0 * np.log10(err)
    return delta(x, y), q


@dataclass(frozen=True, eq=False)
class QBins:
    """Q against Δ in fixed-width bins (paper: 40 bins, mean ± std per bin).

    Attributes:
        edges: The ``bins + 1`` bin edges.
        centers: Centre of each non-empty bin.
        mean: Mean of Q in each non-empty bin.
        std: Population std of Q in each non-empty bin.
        count: Patches in each non-empty bin.
    """

    edges: np.ndarray
    centers: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray


def bin_q(
    deltas: np.ndarray,
    q: np.ndarray,
    *,
    bins: int = 40,
    value_range: tuple[float, float] | None = None,
) -> QBins:
    """Bins ``(Δ, Q)`` pairs by Δ into ``bins`` equal-width bins over ``value_range``
    (default: the samples' min and max; pass the same range to compare curves bin by bin).
    Samples outside the range and non-finite Q are dropped; the last bin includes its end.

    Raises:
        ValueError: On ``bins < 1``, an empty range, or arrays of different lengths.
    """
    d, v = np.asarray(deltas, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if d.shape != v.shape or d.ndim != 1:
        raise ValueError(f"deltas {d.shape} and q {v.shape} must be equal-length 1-D arrays")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    keep = np.isfinite(d) & np.isfinite(v)
    d, v = d[keep], v[keep]
    if value_range is not None:
        lo, hi = value_range
    else:
        lo, hi = (float(d.min()), float(d.max())) if d.size else (0.0, 1.0)
    if not hi > lo:
        hi = lo + 1e-6
    edges = np.linspace(float(lo), float(hi), bins + 1)
    inside = (d >= lo) & (d <= hi)
    idx = np.clip(np.searchsorted(edges, d[inside], side="right") - 1, 0, bins - 1)
    vals = v[inside]
    count = np.bincount(idx, minlength=bins)
    total = np.bincount(idx, weights=vals, minlength=bins)
    squares = np.bincount(idx, weights=vals**2, minlength=bins)
    full = count > 0
    mean = total[full] / count[full]
    var = np.maximum(squares[full] / count[full] - mean**2, 0.0)
    centers = 0.5 * (edges[:-1] + edges[1:])
    return QBins(edges, centers[full], mean, np.sqrt(var), count[full])


def curve_spread(curves: Mapping[float, QBins], *, min_count: int = 20) -> float:
    """How far apart the Q-vs-Δ curves of several ``σ_test`` lie: the mean, over the Δ bins
    that at least two curves fill with ``min_count`` patches, of the std (across σ_test)
    of the bin means, in dB. Near 0 when the curves collapse onto one (paper Fig. 11's WNE);
    NaN when no bin is shared. The curves must come from :func:`bin_q` with one range.

    Raises:
        ValueError: If the curves were binned with different edges.
    """
    binned = list(curves.values())
    if not binned:
        return math.nan
    edges = binned[0].edges
    if any(b.edges.shape != edges.shape or not np.allclose(b.edges, edges) for b in binned):
        raise ValueError("curves binned with different edges: pass bin_q one value_range")
    table: dict[float, list[float]] = {}
    for b in binned:
        for c, m, n in zip(b.centers, b.mean, b.count, strict=True):
            if n >= min_count:
                table.setdefault(round(float(c), 9), []).append(float(m))
    spreads = [float(np.std(ms)) for ms in table.values() if len(ms) >= 2]
    return float(np.mean(spreads)) if spreads else math.nan
