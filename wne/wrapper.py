"""The normalization-equivariance wrapper (WNE) and its defect measure: the whole of the
method's math, depending on nothing else in the package; beside it, on the same
normalization, the input-only rival the paper shows failing (:class:`InputNormalized`).

Reference: Y. Saied, F. Fleuret, "Normalization Equivariance for Arbitrary
Backbones, with Application to Image Denoising", ICML 2026.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

__all__ = [
    "InputNormalized",
    "Mode",
    "NormEquivariant",
    "WrapperSteps",
    "ne_defect",
    "ne_defect_map",
    "normalization_stats",
]

Mode = Literal["direct", "residual"]
Shift = float | torch.Tensor
"""A contrast factor or brightness offset: a number or a tensor broadcastable to [B, 1, 1, 1]."""
_MODES: tuple[str, ...] = ("direct", "residual")


def _stats(
    y: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shared statistics pass: ``(y_s, d, ref, mean_d, std)`` with ``d = y_s − ref``.

    ``y_s`` is ``y`` in the statistics dtype, ``ref`` each sample's first entry,
    ``mean = ref + mean_d`` and ``std`` the population standard deviation.
    """
    dtype = torch.promote_types(y.dtype, torch.float32)
    y_s = y.to(dtype)
    dims = (1, 2, 3)
    # Shift by each sample's first entry: a constant image gives exactly std == 0 (a
    # plain fp32 mean of c·1 can be off by an ulp), and the shift moves with a·y + b,
    # so round-off stays relative to the spread of y rather than to its offset.
    ref = y_s.flatten(1)[:, :1].reshape(-1, 1, 1, 1)
    d = y_s - ref
    var, mean_d = torch.var_mean(d, dim=dims, correction=0, keepdim=True)
    if not bool(torch.isfinite(var).all()) and bool(torch.isfinite(mean_d).all()):
        # Finite but huge inputs: the squares overflowed. Redo the variance scaled
        # by the largest deviation (the scale is a constant for autograd).
        centred = d - mean_d
        scale = centred.detach().abs().amax(dim=dims, keepdim=True)
        safe_scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        var_s = (centred / safe_scale).square().mean(dim=dims, keepdim=True)
        pos = var_s > 0
        std = scale * torch.where(pos, var_s, torch.ones_like(var_s)).sqrt() * pos
    else:
        # sqrt never sees 0, so a constant image (std = 0) has finite gradients.
        pos = var > 0
        std = torch.where(pos, var, torch.ones_like(var)).sqrt() * pos
    return y_s, d, ref, mean_d, std


def normalization_stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``(mean, std)`` (population) of ``y`` ``[B, C, H, W]`` over all of C×H×W,
    each ``[B, 1, 1, 1]`` in at least float32; a constant image gives exactly ``std == 0``."""
    _, _, ref, mean_d, std = _stats(y)
    return ref + mean_d, std


def _normalize(
    y: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The checked normalization step shared by every wrapper: ``(y_s, mean, std, safe_std,
    z)`` with ``z = T(y) = (y − mean) / std`` (exactly 0 where ``std = 0``) in the statistics
    dtype and ``safe_std`` the std with 1 where it is 0.

    Raises:
        ValueError: If ``y`` is not a 4-D floating-point tensor or holds NaN or infinite values.
    """
    if y.ndim != 4:
        raise ValueError(f"expected images of shape [B, C, H, W], got {tuple(y.shape)}")
    if not y.is_floating_point():
        raise ValueError(f"expected a floating-point tensor, got {y.dtype}")
    y_s, d, ref, mean_d, std = _stats(y)
    mean = ref + mean_d
    # NaN/inf anywhere in y make these [B, 1, 1, 1] statistics non-finite: checking
    # them is as strict as checking y and costs no extra pass over the image.
    if not bool(torch.isfinite(mean).all() and torch.isfinite(std).all()):
        raise ValueError("input holds NaN or infinite values; NE statistics are undefined")
    constant = std == 0
    safe_std = torch.where(constant, torch.ones_like(std), std)
    inv_std = torch.where(constant, torch.zeros_like(std), 1.0 / safe_std)
    return y_s, mean, std, safe_std, (d - mean_d) * inv_std


def _check_output(out: torch.Tensor, y: torch.Tensor) -> None:
    if out.shape != y.shape:
        raise ValueError(f"backbone returned shape {tuple(out.shape)} for input {tuple(y.shape)}")


_SIGMA_HINTS = ("sigma", "noise", "std", "level")


def _takes_sigma(module: nn.Module) -> bool:
    """Whether ``module.forward``'s second positional parameter is named like a noise level
    (``sigma``, ``noise_level``...; timm's ``attn_mask`` must not receive σ)."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2:
        return False
    name = positional[1].name.lower()
    return any(hint in name for hint in _SIGMA_HINTS)


@dataclass(frozen=True)
class WrapperSteps:
    """The wrapper's pipeline on one input, step by step (:meth:`NormEquivariant.steps`).

    Attributes:
        mean: ``m = mean(y)`` per sample, ``[B, 1, 1, 1]``, statistics dtype.
        std: ``s = std(y)`` (population) per sample, ``[B, 1, 1, 1]``, statistics dtype.
        normalized: ``T(y) = (y − m) / s`` as given to the backbone (0 where ``s = 0``).
        backbone_output: ``g(T(y))`` (``h(T(y))`` in residual mode), statistics dtype.
        output: ``f(y)``: ``s·g(T(y)) + m`` (direct) or ``y − s·h(T(y))`` (residual),
            in ``y``'s dtype; the very tensor :meth:`NormEquivariant.forward` returns.
    """

    mean: torch.Tensor
    std: torch.Tensor
    normalized: torch.Tensor
    backbone_output: torch.Tensor
    output: torch.Tensor


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

    The statistics and the de-normalization run in at least float32 (even under
    autocast); the backbone receives ``T(y)`` in the input's dtype. A backbone taking
    ``(x, sigma)`` receives ``sigma / s``, so ``f`` stays equivariant jointly in
    ``(y, sigma) → (a·y + b, a·sigma)``; a blind one ignores ``sigma``.

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
        """``f(y)`` in ``y``'s dtype (:meth:`steps`)."""
        return self.steps(y, sigma).output

    def steps(self, y: torch.Tensor, sigma: float | torch.Tensor | None = None) -> WrapperSteps:
        """Runs the wrapper, every intermediate step kept: the one implementation of the
        pipeline (:meth:`forward` returns its ``output``).

        Args:
            y: Images, ``[B, C, H, W]``, finite.
            sigma: Noise std on ``y``'s scale, a number or a tensor broadcastable to
                ``[B, 1, 1, 1]``; used only by non-blind backbones.

        Raises:
            ValueError: If ``y`` is not a 4-D floating-point tensor or holds NaN or
                infinite values.
        """
        y_s, mean, std, safe_std, z = _normalize(y)
        stat_dtype = mean.dtype

        if self.takes_sigma and sigma is not None:
            sigma_t = torch.as_tensor(sigma, dtype=stat_dtype, device=y.device)
            if sigma_t.ndim > 0:
                sigma_t = sigma_t.reshape(-1, 1, 1, 1)
            out = self.backbone(z.to(y.dtype), (sigma_t / safe_std).to(y.dtype))
        else:
            out = self.backbone(z.to(y.dtype))
        _check_output(out, y)
        out = out.to(stat_dtype)

        # std = 0 for a constant image, so both forms return it exactly (0·g + c).
        if self.mode == "direct":
            res = torch.addcmul(mean, std, out)
        else:
            res = torch.addcmul(y_s, std, out, value=-1.0)
        return WrapperSteps(mean, std, z.to(y.dtype), out, res.to(y.dtype))


class InputNormalized(nn.Module):
    """Input-only normalization, the paper's failing rival (App. O, "DnCNN-IN"):
    ``f(y) = g(T(y))`` with ``T(y) = (y − mean(y)) / std(y)`` as in :class:`NormEquivariant`
    (the same statistics, the same constant-image guardrail), never de-normalized.

    ``f`` is invariant, not equivariant: ``f(a·y + b) = f(y)`` for ``a > 0``, so the output
    cannot follow the input's brightness or contrast. Trained on the raw clean target (the
    paper's raw-space MSE), ``g`` must guess the image's mean and spread from ``T(y)`` alone.

    Args:
        backbone: The module ``g``.

    Raises:
        TypeError: If ``backbone`` is not a ``torch.nn.Module``.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone)}")
        self.backbone = backbone

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``g(T(y))`` in ``y``'s dtype.

        Raises:
            ValueError: If ``y`` is not a 4-D floating-point tensor or holds NaN or
                infinite values.
        """
        z = _normalize(y)[4]
        out = self.backbone(z.to(y.dtype))
        _check_output(out, y)
        return out.to(y.dtype)


def _shift(
    a: Shift, b: Shift, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``a`` and ``b`` as tensors broadcastable to ``[B, 1, 1, 1]``; checks ``a > 0``."""
    a_t = torch.as_tensor(a, dtype=dtype, device=device)
    b_t = torch.as_tensor(b, dtype=dtype, device=device)
    if not bool((a_t > 0).all()):
        raise ValueError("contrast factor a must be > 0")
    a_t, b_t = (t.reshape(-1, 1, 1, 1) if t.ndim > 0 else t for t in (a_t, b_t))
    return a_t, b_t


@torch.no_grad()
def ne_defect(model: nn.Module, y: torch.Tensor, a: Shift, b: Shift) -> torch.Tensor:
    """Relative normalization-equivariance defect per sample (the paper's ε_NE),
    ``‖f(a·y + b) − (a·f(y) + b)‖₂ / ‖a·f(y) + b‖₂`` on the raw outputs (:func:`ne_defect_map`).

    Args:
        model: Any image-to-image module, used as is (``.eval()`` it first).
        y: Images, ``[B, C, H, W]``.
        a: Contrast factor(s), > 0 (:data:`Shift`).
        b: Brightness offset(s) (:data:`Shift`).

    Returns:
        Relative defects, ``[B]``, in ``y``'s dtype.

    Raises:
        ValueError: If any ``a`` is not positive.
    """
    a_t, b_t = _shift(a, b, y.dtype, y.device)
    return ne_defect_map(model(y), model(a_t * y + b_t), a, b)[1].to(y.dtype)


@torch.no_grad()
def ne_defect_map(
    f_y: torch.Tensor, f_shifted: torch.Tensor, a: Shift, b: Shift
) -> tuple[torch.Tensor, torch.Tensor]:
    """The defect of one model from its outputs ``f(y)`` and ``f(a·y + b)``, per entry and
    relative per sample, in float64 (float32 on MPS, which has none).

    Args:
        f_y: ``f(y)``, ``[B, C, H, W]`` (or ``[1, C, H, W]``, shared by every shift).
        f_shifted: ``f(a·y + b)``, ``[B, C, H, W]``.
        a: Contrast factor(s), > 0 (:data:`Shift`).
        b: Brightness offset(s) (:data:`Shift`).

    Returns:
        ``(error, relative)``: ``|f(a·y + b) − (a·f(y) + b)|`` per entry, ``[B, C, H, W]``,
        and ``‖f(a·y + b) − (a·f(y) + b)‖₂ / ‖a·f(y) + b‖₂`` per sample, ``[B]``.

    Raises:
        ValueError: If any ``a`` is not positive, or the outputs are not 4-D.
    """
    if f_y.ndim != 4 or f_shifted.ndim != 4:
        raise ValueError(
            f"expected outputs [B, C, H, W], got {tuple(f_y.shape)} and {tuple(f_shifted.shape)}"
        )
    dtype = torch.float32 if f_y.device.type == "mps" else torch.float64
    a_t, b_t = _shift(a, b, dtype, f_y.device)
    expected = a_t * f_y.to(dtype) + b_t
    diff = f_shifted.to(dtype) - expected
    den = expected.flatten(1).norm(dim=1).clamp_min(torch.finfo(dtype).tiny)
    return diff.abs(), diff.flatten(1).norm(dim=1) / den
