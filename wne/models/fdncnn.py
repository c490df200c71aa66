"""Plain FDnCNN (no BatchNorm, no global residual): the unconstrained twin of
:mod:`wne.models.fdncnn_ne`, used as its same-size baseline.

After Herbreteau et al., "Normalization-Equivariant Neural Networks with
Application to Image Denoising", NeurIPS 2023 (blind FDnCNN).
"""

from __future__ import annotations

import torch
from torch import nn

from wne.models._common import check_input, conv_stack
from wne.models.registry import register


@register("fdncnn")
class FDnCNN(nn.Module):
    """Blind FDnCNN: conv-ReLU stack predicting the clean image directly.

    Args:
        channels: Image channels.
        depth: Number of conv layers (>= 3).
        width: Feature channels.
    """

    def __init__(self, channels: int = 1, depth: int = 12, width: int = 32) -> None:
        super().__init__()
        self.channels = channels
        self.body = conv_stack(channels, depth, width, last_bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoises ``x`` (``[B, C, H, W]``)."""
        check_input(x, self.channels)
        return self.body(x)
