"""Helpers shared by the backbones."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MIN_SIZE = 8


def check_input(x: torch.Tensor, channels: int) -> None:
    """Raises a ValueError naming the problem unless ``x`` is ``[B, channels, H, W]``
    with ``H, W >= 8``."""
    if x.ndim != 4:
        raise ValueError(f"expected [B, C, H, W], got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"expected {channels} channel(s), got {x.shape[1]}")
    if min(x.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"image sides must be >= {MIN_SIZE} pixels, got {tuple(x.shape[-2:])}")


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pads the bottom and right of ``x`` ``[B, C, H, W]`` to multiples of
    ``multiple``; returns it with the original ``H`` and ``W`` (to crop back)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # reflect needs pad < size; sides >= 8 and pads < multiple (8) make it valid.
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return x, h, w


def conv_stack(
    channels: int,
    depth: int,
    width: int,
    *,
    batch_norm: bool = False,
    last_bias: bool = True,
    bias: bool = True,
) -> nn.Sequential:
    """The DnCNN-family body: conv-ReLU, ``depth − 2`` × conv(-BN)-ReLU, conv; 3×3, zero padding.

    Args:
        channels: Image channels (input and output).
        depth: Number of conv layers (>= 3).
        width: Feature channels.
        batch_norm: BatchNorm after each middle conv (whose bias is then dropped).
        last_bias: Whether the last conv has a bias.
        bias: Whether the other convs have biases (False: none at all, with ``last_bias``).

    Raises:
        ValueError: If ``depth < 3``.
    """
    if depth < 3:
        raise ValueError(f"depth must be >= 3, got {depth}")
    layers: list[nn.Module] = [
        nn.Conv2d(channels, width, 3, padding=1, bias=bias),
        nn.ReLU(inplace=True),
    ]
    for _ in range(depth - 2):
        layers.append(nn.Conv2d(width, width, 3, padding=1, bias=bias and not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.Conv2d(width, channels, 3, padding=1, bias=last_bias))
    return nn.Sequential(*layers)
