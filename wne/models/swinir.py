"""SwinIR-style blind denoiser built from timm's Swin layers.

After J. Liang et al., "SwinIR: Image Restoration Using Swin Transformer", ICCV
Workshops 2021 (Apache-2.0), in the "lite" form used by the WNE paper: shallow
conv, residual Swin transformer blocks (RSTB: Swin blocks with softmax window
attention and LayerNorm, then a 3×3 conv and a skip), final LayerNorm, conv
after body, conv to image, global residual. Attention, MLP, DropPath and window
partitioning come from ``timm``; the input is reflect-padded to a multiple of
the window and cropped back, so any ``H, W >= 8`` works exactly.

Paper size: ``embed_dim=60, depths=(6, 6, 6, 6), num_heads=6, window_size=8,
mlp_ratio=2, drop_path_rate=0.1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models.swin_transformer import WindowAttention, window_partition, window_reverse
from torch import nn

from wne.models._common import check_input, pad_to_multiple
from wne.models.registry import register


@lru_cache(maxsize=64)
def _shift_mask(h: int, w: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """Attention mask of shifted windows, ``[num_windows, N, N]`` with 0 / −100."""
    img = torch.zeros(1, h, w, 1, device=device)
    cnt = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            img[:, hs, ws, :] = cnt
            cnt += 1
    win = window_partition(img, (window, window)).view(-1, window * window)
    mask = win.unsqueeze(1) - win.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class SwinBlock(nn.Module):
    """One Swin transformer block on ``[B, H, W, C]`` (H, W multiples of the window).

    Args:
        dim: Channels.
        num_heads: Attention heads.
        window_size: Window side.
        shift: Cyclic shift (0 or ``window_size // 2``).
        mlp_ratio: MLP hidden size / dim.
        drop_path: Stochastic depth rate.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift: int,
        mlp_ratio: float,
        drop_path: float,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(
            dim, num_heads=num_heads, window_size=window_size, qkv_bias=True
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the block to ``x`` (``[B, H, W, C]``)."""
        _b, h, w, c = x.shape
        ws, s = self.window_size, self.shift
        y = self.norm1(x)
        mask = None
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
            mask = _shift_mask(h, w, ws, s, x.device).to(y.dtype)
        win = window_partition(y, (ws, ws)).view(-1, ws * ws, c)
        win = self.attn(win, mask=mask)
        y = window_reverse(win.view(-1, ws, ws, c), (ws, ws), h, w)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class RSTB(nn.Module):
    """Residual Swin transformer block: Swin blocks, a 3×3 conv and a skip.

    Args:
        dim: Channels.
        depth: Number of Swin blocks (shift on every second one).
        num_heads: Attention heads.
        window_size: Window side.
        mlp_ratio: MLP hidden size / dim.
        drop_paths: One stochastic-depth rate per block.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        drop_paths: Sequence[float],
    ) -> None:
        super().__init__()
        shift = window_size // 2
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window_size, shift if i % 2 else 0, mlp_ratio, drop_paths[i])
            for i in range(depth)
        )
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the group to ``x`` (``[B, H, W, C]``)."""
        y = x
        for blk in self.blocks:
            y = blk(y)
        y = self.conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + y


@register("swinir")
class SwinIR(nn.Module):
    """SwinIR-lite blind denoiser, ``f(x) = x + tail(body(head(x)))``.

    Args:
        channels: Image channels.
        embed_dim: Feature channels (divisible by ``num_heads``).
        depths: Swin blocks per RSTB.
        num_heads: Attention heads.
        window_size: Attention window side.
        mlp_ratio: MLP hidden size / embed_dim.
        drop_path_rate: Maximal stochastic depth, linear over all blocks.
    """

    def __init__(
        self,
        channels: int = 1,
        embed_dim: int = 24,
        depths: Sequence[int] = (2, 2),
        num_heads: int = 2,
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
        if window_size < 2 or window_size > 8:
            raise ValueError(
                f"window_size must be in [2, 8] (inputs are >= 8 px), got {window_size}"
            )
        self.channels = channels
        self.window_size = window_size
        depths = list(depths)
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.conv_first = nn.Conv2d(channels, embed_dim, 3, padding=1)
        self.embed_norm = nn.LayerNorm(embed_dim)
        self.layers = nn.ModuleList()
        start = 0
        for d in depths:
            self.layers.append(
                RSTB(embed_dim, d, num_heads, window_size, mlp_ratio, dpr[start : start + d])
            )
            start += d
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        self.conv_last = nn.Conv2d(embed_dim, channels, 3, padding=1)
        self.apply(self._init_weights)
        self.train()

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def train(self, mode: bool = True) -> SwinIR:
        """Sets the mode; eval uses fused (SDPA) attention, faster for inference on CPU."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, WindowAttention):
                m.fused_attn = not mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoises ``x`` (``[B, C, H, W]``, any ``H, W >= 8``)."""
        check_input(x, self.channels)
        xp, h, w = pad_to_multiple(x, self.window_size)
        feat = self.conv_first(xp)
        y = self.embed_norm(feat.permute(0, 2, 3, 1))
        for layer in self.layers:
            y = layer(y)
        y = self.norm(y).permute(0, 3, 1, 2)
        y = self.conv_after_body(y) + feat
        out = xp + self.conv_last(y)
        return out[..., :h, :w]
