"""Architecturally normalization-equivariant FDnCNN (the NE-arch baseline).

Re-implements the construction of S. Herbreteau, E. Moebel, C. Kervrann,
"Normalization-Equivariant Neural Networks with Application to Image
Denoising", NeurIPS 2023: every convolution is affine (kernel re-parameterized to
sum to one per output channel, no bias, reflect padding) and ReLU is replaced by
SortPool on channel pairs, so ``f(a·x + b) = a·f(x) + b`` holds by construction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wne.models._common import check_input
from wne.models.registry import register


class AffineConv2d(nn.Module):
    """Bias-free 2-D convolution whose kernels each sum to exactly one.

    With ``W`` the free parameter of one output channel flattened to ``n``
    entries, the applied kernel is ``roll(W, 1) − W + 1/n``: its entries sum to
    ``1`` for any ``W``, so a constant image maps to the same constant. Reflect
    padding keeps that true at the borders. ``kernel_size`` must be odd.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def affine_weight(self) -> torch.Tensor:
        """The applied kernels, each summing to one."""
        w = self.weight.flatten(1)
        w = torch.roll(w, 1, dims=1) - w + 1.0 / w.shape[1]
        return w.view_as(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolves ``x`` (``[B, C_in, H, W]``) with reflect padding."""
        p = self.padding
        x = F.pad(x, (p, p, p, p), mode="reflect")
        return F.conv2d(x, self.affine_weight())


class SortPool(nn.Module):
    """Sorts adjacent channel pairs: ``(x₀, x₁) → (min, max)``.

    Commutes with ``x → a·x + b`` for ``a > 0``; needs an even channel count.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sorts channel pairs of ``x`` (``[B, 2k, H, W]``)."""
        b, c, h, w = x.shape
        pairs = x.view(b, c // 2, 2, h, w)
        x1, x2 = pairs[:, :, 0], pairs[:, :, 1]
        d = F.relu(x1 - x2)
        return torch.stack((x1 - d, x2 + d), dim=2).view(b, c, h, w)


@register("fdncnn_ne")
class FDnCNNNE(nn.Module):
    """Normalization-equivariant FDnCNN: AffineConv2d + SortPool, direct output.

    Args:
        channels: Image channels.
        depth: Number of conv layers (>= 3).
        width: Feature channels (even, for SortPool pairs).
    """

    def __init__(self, channels: int = 1, depth: int = 12, width: int = 32) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"depth must be >= 3, got {depth}")
        if width % 2:
            raise ValueError(f"width must be even for SortPool, got {width}")
        self.channels = channels
        layers: list[nn.Module] = [AffineConv2d(channels, width), SortPool()]
        for _ in range(depth - 2):
            layers += [AffineConv2d(width, width), SortPool()]
        layers.append(AffineConv2d(width, channels))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoises ``x`` (``[B, C, H, W]``)."""
        check_input(x, self.channels)
        return self.body(x)
