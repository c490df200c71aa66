"""Helpers shared by the backbones."""

from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_SIZE = 8


def check_input(x: torch.Tensor, channels: int) -> None:
    """Raises a clear error for inputs a backbone cannot take.

    Args:
        x: Input, expected ``[B, channels, H, W]`` with ``H, W >= 8``.
        channels: The backbone's channel count.

    Raises:
        ValueError: On a wrong rank, channel count or a side below 8 pixels.
    """
    if x.ndim != 4:
        raise ValueError(f"expected [B, C, H, W], got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"expected {channels} channel(s), got {x.shape[1]}")
    if min(x.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"image sides must be >= {MIN_SIZE} pixels, got {tuple(x.shape[-2:])}")


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pads the bottom and right of ``x`` to a multiple of ``multiple``.

    Args:
        x: ``[B, C, H, W]``.
        multiple: The required divisor of H and W.

    Returns:
        The padded tensor and the original ``H`` and ``W`` (for cropping back).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # reflect needs pad < size; sides >= 8 and pads < multiple (8) make it valid.
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return x, h, w
