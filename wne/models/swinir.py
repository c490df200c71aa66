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

from collections.abc import Callable, Sequence
from functools import lru_cache, wraps
from typing import Any

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models.swin_transformer import WindowAttention, window_partition
from torch import Tensor, nn

from wne.models._common import check_input, pad_to_multiple
from wne.models.registry import register

CHUNK_TOKENS = 4096
"""Tokens per chunk of the CPU inference path (:meth:`SwinBlock._forward_chunked`): the
chunk's widest intermediate (4096 × the MLP width × 4 bytes) stays within a core's L2."""

HEAD_ALIGN = 8
"""Head size CUDA's fused attention kernels need a multiple of (the paper's 60 / 6 heads =
10 is not, and would fall back to the slow unfused kernel)."""


def window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, align: int = 0
) -> torch.Tensor:
    """``softmax(q·kᵀ/√d + bias)·v`` over windows (``[B·windows, heads, N, d]``).

    The head size is zero-padded to a multiple of ``align`` (0: :data:`HEAD_ALIGN` on
    CUDA, none elsewhere) so that the fused kernels apply: zeros leave every ``q·k``
    unchanged and only add output columns, which are dropped; the scale stays ``1/√d``.
    """
    d = q.shape[-1]
    align = align or (HEAD_ALIGN if q.is_cuda else 1)
    pad = -d % align
    if not pad:
        return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    q, k, v = (nn.functional.pad(t, (0, pad)) for t in (q, k, v))
    out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=d**-0.5)
    return out[..., :d]


def _cached(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``lru_cache`` by image size, bypassed while ``torch.export`` traces (symbolic sizes
    are not hashable, and traced tensors must never be served to eager calls)."""
    cached = lru_cache(maxsize=64)(fn)

    @wraps(fn)
    def call(*args: Any) -> Any:
        return fn(*args) if torch.compiler.is_exporting() else cached(*args)

    return call


@_cached
def _window_order(
    h: int, w: int, window: int, shift: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel gathers between an ``[H·W]`` image and its windows, the cyclic shift included.

    ``x.flatten(1, 2).index_select(1, into)`` is ``window_partition(torch.roll(x, (−s, −s)))``
    flattened, and ``index_select(1, back)`` undoes it: one copy each way.

    Returns:
        ``(into, back)``, two permutations of ``range(H·W)``.
    """
    with torch.inference_mode(False):  # cached: must also serve autograd later
        rows = (torch.arange(h) + shift) % h
        cols = (torch.arange(w) + shift) % w
        flat = rows[:, None] * w + cols[None, :]
        into = flat.view(h // window, window, w // window, window).permute(0, 2, 1, 3)
        into = into.reshape(-1)
        return into.to(device), torch.argsort(into).to(device)


@_cached
def _border_windows(
    h: int, w: int, window: int, shift: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows in the last window row or column (after the cyclic shift, the only ones
    whose pixels come from different image regions) and their shift masks.

    Returns:
        ``(indices, masks)``: window indices and their ``[n, N, N]`` rows of
        :func:`_shift_mask`.
    """
    nh, nw = h // window, w // window
    with torch.inference_mode(False):  # cached: must also serve autograd later
        last_col = torch.arange(nh - 1) * nw + nw - 1  # arithmetic, not nonzero: exportable
        edge = torch.cat([last_col, (nh - 1) * nw + torch.arange(nw)]).to(device)
        return edge, _shift_mask(h, w, window, shift, device).index_select(0, edge)


@_cached
def _shift_mask(h: int, w: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """Attention mask of shifted windows, ``[num_windows, N, N]`` with 0 / −100."""
    with torch.inference_mode(False):  # cached: must also serve autograd later
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
    """One Swin transformer block on ``[B, H, W, C]`` (H, W multiples of the window): ``dim``
    channels, ``shift`` 0 or ``window_size // 2``, the MLP ``mlp_ratio`` times wider."""

    def __init__(
        self, dim: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float,
        drop_path: float,
    ) -> None:  # fmt: skip
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
        """timm's Swin block on ``x`` (``[B, H, W, C]``) with fewer memory passes: shift and
        partition are one gather (:func:`_window_order`), attention is SDPA with the bias
        broadcast over windows, and the shift mask (non-zero only in the last window row and
        column) is applied by recomputing those windows alone."""
        if x.device.type == "cpu" and not self.training and not torch.is_grad_enabled():
            return self._forward_chunked(x)
        b, h, w, c = x.shape
        tokens, back, bias, edge, mask = self._windows(x)
        pick = masks = None
        if edge is not None and mask is not None:
            nwin = tokens.shape[0] // b
            pick = (torch.arange(b, device=x.device)[:, None] * nwin + edge).reshape(-1)
            masks = mask.repeat(b, 1, 1)
        y = self._attend(self.norm1(tokens), bias, pick, masks).view(b, h * w, c)
        x = x + self.drop_path(y.index_select(1, back).view(b, h, w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def _windows(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
        """``x`` ``[B, H, W, C]`` as tokens in window order ``[B·windows, N, C]`` (the cyclic
        shift included), the gather back, the relative-position bias ``[1, heads, N, N]``
        and the border windows with their shift masks (None, None without a shift)."""
        b, h, w, c = x.shape
        ws, s = self.window_size, self.shift
        into, back = _window_order(h, w, ws, s, x.device)
        tokens = x.reshape(b, h * w, c).index_select(1, into).view(-1, ws * ws, c)
        bias = self.attn._get_rel_pos_bias().to(x.dtype)
        if not s:
            return tokens, back, bias, None, None
        edge, mask = _border_windows(h, w, ws, s, x.device)
        return tokens, back, bias, edge, mask.to(x.dtype)

    def _attend(
        self, win: torch.Tensor, bias: torch.Tensor, pick: Tensor | None, masks: Tensor | None
    ) -> torch.Tensor:
        """Window attention and its projection on tokens after ``norm1`` (``[windows, N, C]``
        in window order), with the bias ``[1, heads, N, N]``; the windows ``pick`` also
        take their shift ``masks`` ``[len(pick), N, N]``."""
        m, n, c = win.shape
        heads = self.attn.num_heads
        qkv = self.attn.qkv(win).view(m, n, 3, heads, c // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [windows, heads, N, d]
        # 4-D inputs: the fused CPU/CUDA kernels (a 5-D call falls back to plain math)
        attn = window_attention(q, k, v, bias)
        if pick is not None and masks is not None and pick.numel():
            edge = [t.index_select(0, pick) for t in (q, k, v)]
            attn.index_copy_(0, pick, window_attention(*edge, bias + masks[:, None]))
        return self.attn.proj(attn.transpose(1, 2).reshape(m, n, c))

    def _forward_chunked(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for CPU inference, :data:`CHUNK_TOKENS` tokens at a time in window
        order: every step is per token or per window, so each chunk's intermediates stay in
        the CPU's cache instead of a pass through memory per step. Window by window the
        same arithmetic as :meth:`forward`."""
        b, h, w, c = x.shape
        tokens, back, bias, edge, mask = self._windows(x)
        out = torch.empty_like(tokens)
        n, nwin = tokens.shape[1], tokens.shape[0] // b
        slot = None  # per window, its row in the border masks (−1 inside)
        if edge is not None:
            slot = torch.full((nwin,), -1, dtype=torch.long, device=x.device)
            slot[edge] = torch.arange(edge.numel(), device=x.device)
            slot = slot.repeat(b)
        step = max(1, CHUNK_TOKENS // n)
        for i in range(0, b * nwin, step):
            t = tokens[i : i + step]
            pick = masks = None
            if slot is not None and mask is not None:
                rows = slot[i : i + t.shape[0]]
                pick = (rows >= 0).nonzero().squeeze(1)
                masks = mask.index_select(0, rows.index_select(0, pick))
            y = t + self._attend(self.norm1(t), bias, pick, masks)
            out[i : i + t.shape[0]] = y + self.mlp(self.norm2(y))
        return out.view(b, h * w, c).index_select(1, back).view(b, h, w, c)


class RSTB(nn.Module):
    """Residual Swin transformer block: ``depth`` Swin blocks (every second one shifted,
    one stochastic-depth rate each in ``drop_paths``), a 3×3 conv and a skip."""

    def __init__(
        self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float,
        drop_paths: Sequence[float],
    ) -> None:  # fmt: skip
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

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

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
