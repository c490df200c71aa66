"""Scale-equivariant FDnCNN (the paper's SE-arch baseline, §5.2): the plain FDnCNN of
:mod:`wne.models.fdncnn` with every bias removed.

Bias-free convolutions with zero padding and ReLU are positively 1-homogeneous, so
``f(a·y) = a·f(y)`` for every ``a > 0`` by construction (Mohan et al., "Robust and
Interpretable Blind Image Denoising via Bias-Free Convolutional Neural Networks", ICLR 2020);
a brightness offset ``y + b`` is not followed.
"""

from __future__ import annotations

from wne.models._common import conv_stack
from wne.models.fdncnn import FDnCNN
from wne.models.registry import register


@register("fdncnn_se")
class FDnCNNSE(FDnCNN):
    """Blind bias-free FDnCNN: the :class:`~wne.models.fdncnn.FDnCNN` stack with no bias
    anywhere, so ``f(a·y) = a·f(y)`` for ``a > 0`` (scale-equivariant, not shift-equivariant).

    Args:
        channels: Image channels.
        depth: Number of conv layers (>= 3).
        width: Feature channels.
    """

    def __init__(self, channels: int = 1, depth: int = 12, width: int = 32) -> None:
        super().__init__(channels, depth, width)
        self.body = conv_stack(channels, depth, width, bias=False, last_bias=False)
