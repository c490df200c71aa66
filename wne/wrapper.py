"""The normalization-equivariance wrapper (WNE) and its defect measure.

This module holds the whole of the method's math and depends on nothing else in
the package, so any ``torch.nn.Module`` mapping ``[B, C, H, W]`` to
``[B, C, H, W]`` can be wrapped.

Reference: Y. Saied, F. Fleuret, "Normalization Equivariance for Arbitrary
Backbones, with Application to Image Denoising", ICML 2026.
"""

from __future__ import annotations

import inspect
from typing import Literal

import torch
from torch import nn

__all__ = ["Mode", "NormEquivariant", "ne_defect", "normalization_stats"]

Mode = Literal["direct", "residual"]
_MODES: tuple[str, ...] = ("direct", "residual")


def normalization_stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample mean and population standard deviation over all of C×H×W.

    Statistics are computed in at least float32 (float64 inputs stay float64),
    jointly over every channel and pixel of each sample, never across the batch.

    Args:
        y: Images, ``[B, C, H, W]``.

    Returns:
        ``(mean, std)``, each ``[B, 1, 1, 1]`` in the statistics dtype.
    """
    dtype = torch.promote_types(y.dtype, torch.float32)
    y = y.to(dtype)
    dims = (1, 2, 3)
    # Shift by each sample's first entry before averaging: a constant image then
    # gives exactly mean == c and std == 0 (a plain fp32 mean of c·1 is often off
    # by an ulp, which made std tiny but nonzero and bypassed the constant
    # guardrail), and the shift moves with y -> a·y + b, so round-off stays
    # relative to the spread of y rather than to its offset.
    ref = y.flatten(1)[:, :1].reshape(-1, 1, 1, 1)
    d = y - ref
    mean_d = d.mean(dim=dims, keepdim=True)
    mean = ref + mean_d
    # Two-pass variance (centre first), scaled by the largest deviation so the
    # squares neither overflow nor underflow. The scale is a constant for
    # autograd (std is homogeneous in it), and sqrt never sees 0, so a constant
    # image has finite gradients.
    centred = d - mean_d
    scale = centred.detach().abs().amax(dim=dims, keepdim=True)
    safe_scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    var = (centred / safe_scale).square().mean(dim=dims, keepdim=True)
    std = scale * torch.where(var > 0, var, torch.ones_like(var)).sqrt()
    return mean, std


_SIGMA_HINTS = ("sigma", "noise", "std", "level")


def _takes_sigma(module: nn.Module) -> bool:
    """Whether ``module.forward`` takes a noise level as its second argument.

    True when the second positional parameter's name mentions the noise level
    (``sigma``, ``noise_level``, ``noise_std``, ...): a second argument such as
    timm's ``attn_mask`` or a ``return_features`` flag must not receive σ.
    """
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2:
        return False
    name = positional[1].name.lower()
    return any(hint in name for hint in _SIGMA_HINTS)


class NormEquivariant(nn.Module):
    """Makes any image-to-image backbone exactly normalization-equivariant.

    With ``m = mean(y)`` and ``s = std(y)`` taken per sample over all C×H×W
    entries (population std, ``s = ‖y − m‖₂ / √(CHW)``) and the normalized input
    ``T(y) = (y − m) / s`` (and ``T(y) = 0`` when ``s = 0``, the constant-image
    guardrail), the wrapped model computes

    - ``mode="direct"``:   ``f(y) = s · g(T(y)) + m``
    - ``mode="residual"``: ``f(y) = y − s · h(T(y))``  (``h`` predicts the
      normalized noise)

    so that ``f(a·y + b) = a·f(y) + b`` for every ``a > 0`` and real ``b``, for any
    backbone ``g``/``h``. No ``eps`` is added to ``s``: a constant image ``c·1``
    maps exactly to itself, and every other input is normalized exactly, so the
    identity holds up to floating-point round-off.

    Precision: the statistics and the de-normalization run in float32 (float64
    for float64 inputs) even under ``torch.autocast`` or with a half-precision
    backbone; the backbone receives ``T(y)`` in the input's dtype and the output
    is cast back to it.

    Noise level: a backbone whose ``forward`` takes ``(x, sigma)`` (see
    ``takes_sigma``) receives ``sigma / s`` (the noise level of the normalized
    input), which keeps ``f`` equivariant jointly in
    ``(y, sigma) -> (a·y + b, a·sigma)``. A blind backbone receives ``x`` only
    and any ``sigma`` passed to the wrapper is ignored.

    Args:
        backbone: The module ``g`` (or ``h`` in residual mode).
        mode: ``"direct"`` or ``"residual"``.
        takes_sigma: Whether the backbone takes a noise level as second
            argument; by default, detected from its ``forward`` signature (a
            second parameter named like ``sigma`` / ``noise_level``).

    Raises:
        ValueError: On an unknown ``mode``.
        TypeError: If ``backbone`` is not a ``torch.nn.Module``.
    """

    def __init__(
        self, backbone: nn.Module, *, mode: Mode = "direct", takes_sigma: bool | None = None
    ) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone)}")
        self.backbone = backbone
        self.mode: Mode = mode
        self.takes_sigma = _takes_sigma(backbone) if takes_sigma is None else bool(takes_sigma)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, takes_sigma={self.takes_sigma}"

    def forward(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None) -> torch.Tensor:
        """Applies the wrapped backbone.

        Args:
            y: Images, ``[B, C, H, W]``, finite.
            sigma: Noise standard deviation on ``y``'s scale, a number or a
                tensor broadcastable to ``[B, 1, 1, 1]``; used only by
                non-blind backbones.

        Returns:
            The output, ``[B, C, H, W]``, in ``y``'s dtype.

        Raises:
            ValueError: If ``y`` is not a 4-D floating-point tensor or holds NaN
                or infinite values.
        """
        if y.ndim != 4:
            raise ValueError(f"expected images of shape [B, C, H, W], got {tuple(y.shape)}")
        if not y.is_floating_point():
            raise ValueError(f"expected a floating-point tensor, got {y.dtype}")
        if not torch.isfinite(y).all():
            raise ValueError("input holds NaN or infinite values; NE statistics are undefined")
        mean, std = normalization_stats(y)
        stat_dtype = mean.dtype
        constant = std == 0
        safe_std = torch.where(constant, torch.ones_like(std), std)
        z = torch.where(constant, torch.zeros_like(std), (y.to(stat_dtype) - mean) / safe_std)

        if self.takes_sigma and sigma is not None:
            sigma_t = torch.as_tensor(sigma, dtype=stat_dtype, device=y.device)
            if sigma_t.ndim > 0:
                sigma_t = sigma_t.reshape(-1, 1, 1, 1)
            out = self.backbone(z.to(y.dtype), (sigma_t / safe_std).to(y.dtype))
        else:
            out = self.backbone(z.to(y.dtype))
        if out.shape != y.shape:
            raise ValueError(
                f"backbone returned shape {tuple(out.shape)} for input {tuple(y.shape)}"
            )
        out = out.to(stat_dtype)

        if self.mode == "direct":
            res = std * out + mean
            res = torch.where(constant, mean.expand_as(res), res)
        else:
            y_s = y.to(stat_dtype)
            res = y_s - std * out
            res = torch.where(constant, y_s, res)
        return res.to(y.dtype)


@torch.no_grad()
def ne_defect(
    model: nn.Module,
    y: torch.Tensor,
    a: float | torch.Tensor,
    b: float | torch.Tensor,
) -> torch.Tensor:
    """Relative normalization-equivariance defect, per sample (the paper's ε_NE).

    ``ε = ‖f(a·y + b) − (a·f(y) + b)‖₂ / ‖a·f(y) + b‖₂``, computed on the
    model's raw (unclamped) outputs.

    Args:
        model: Any image-to-image module (wrapped or not), used as is
            (call ``.eval()`` first for deterministic layers).
        y: Images, ``[B, C, H, W]``.
        a: Contrast factor(s), > 0; a number or a tensor broadcastable to
            ``[B, 1, 1, 1]``.
        b: Brightness offset(s); same conventions.

    Returns:
        Relative defects, ``[B]``.

    Raises:
        ValueError: If any ``a`` is not positive.
    """
    a_t = torch.as_tensor(a, dtype=y.dtype, device=y.device)
    b_t = torch.as_tensor(b, dtype=y.dtype, device=y.device)
    if not bool((a_t > 0).all()):
        raise ValueError("contrast factor a must be > 0")
    if a_t.ndim > 0:
        a_t = a_t.reshape(-1, 1, 1, 1)
    if b_t.ndim > 0:
        b_t = b_t.reshape(-1, 1, 1, 1)
    expected = a_t * model(y) + b_t
    got = model(a_t * y + b_t)
    num = (got - expected).flatten(1).norm(dim=1)
    den = expected.flatten(1).norm(dim=1)
    return num / den.clamp_min(torch.finfo(den.dtype).tiny)
