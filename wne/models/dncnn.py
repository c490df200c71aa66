"""DnCNN-style blind denoiser (conv-BN-ReLU stack with a global residual).

After K. Zhang et al., "Beyond a Gaussian Denoiser: Residual Learning of Deep
CNN for Image Denoising", IEEE TIP 2017. Paper size: ``depth=20, width=64``.
"""

from __future__ import annotations

import torch
from torch import nn

from wne.models._common import check_input, conv_stack
from wne.models.registry import register


@register("dncnn")
class DnCNN(nn.Module):
    """DnCNN: ``f(x) = x − r(x)`` with ``r`` a conv-BN-ReLU stack.

    Any ``H, W >= 8`` (zero padding keeps the size).

    Args:
        channels: Image channels (1 for grayscale).
        depth: Number of conv layers (>= 3).
        width: Feature channels.
        batch_norm: BatchNorm after each middle conv.
    """

    def __init__(
        self, channels: int = 1, depth: int = 12, width: int = 32, batch_norm: bool = True
    ) -> None:
        super().__init__()
        self.channels = channels
        self.body = conv_stack(channels, depth, width, batch_norm=batch_norm)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.body[-1].weight, std=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoises ``x`` (``[B, C, H, W]``)."""
        check_input(x, self.channels)
        return x - self.body(x)
