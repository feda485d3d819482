"""Building blocks shared by the segmentor and the denoiser.

Every block follows the device and dtype of its input (no tensors are created on a fixed device), and runs
under ``torch.autocast``. Layouts: feature maps are (B, C, H, W); prompt context is (B, L, D).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of integer timesteps: (B,) -> (B, dim) float32 on t's device."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.to(torch.float32)[:, None] * freqs[None, :]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)  # (B, 2 * half)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepMLP(nn.Module):
    """Sinusoidal features of a timestep followed by a two-layer MLP: (B,) int -> (B, emb_dim)."""

    def __init__(self, base_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.base_dim = base_dim
        self.mlp = nn.Sequential(nn.Linear(base_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t, self.base_dim))


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with a residual path; an optional conditioning vector is added in between."""

    def __init__(self, in_ch: int, out_ch: int, groups: int, emb_dim: int | None = None) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(groups, in_ch), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, out_ch) if emb_dim is not None else None
        self.norm2 = nn.GroupNorm(_groups(groups, out_ch), out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, out, H, W)
        if self.emb_proj is not None:
            if emb is None:
                raise ValueError("this ResBlock was built with a conditioning vector but got none")
            h = h + self.emb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class CrossAttention(nn.Module):
    """Multi-head cross-attention from feature-map positions (queries) to prompt tokens (keys/values), residual.

    Cost is O(H W L) with L prompt tokens, so it is cheap even at fine levels (unlike self-attention).
    The output projection is not zero-initialised so that the context receives gradients from the first step.
    """

    def __init__(self, channels: int, context_dim: int, heads: int, groups: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"cross-attention: channels={channels} not divisible by heads={heads}")
        self.heads = heads
        self.norm = nn.GroupNorm(_groups(groups, channels), channels)
        self.to_q = nn.Linear(channels, channels, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * channels, bias=False)
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        b, c, h, w = x.shape
        if context.dim() != 3 or context.shape[0] != b:
            raise ValueError(f"context must be (B={b}, L, D), got {tuple(context.shape)}")
        q = self.to_q(self.norm(x).flatten(2).transpose(1, 2))  # (B, HW, C)
        k, v = self.to_kv(context).chunk(2, dim=-1)  # (B, L, C) each
        d = c // self.heads
        q = q.view(b, h * w, self.heads, d).transpose(1, 2)  # (B, heads, HW, d)
        k = k.reshape(b, -1, self.heads, d).transpose(1, 2)  # (B, heads, L, d)
        v = v.reshape(b, -1, self.heads, d).transpose(1, 2)
        if k.dtype != q.dtype:  # context may arrive in fp32 while features are bf16 outside autocast
            k, v = k.to(q.dtype), v.to(q.dtype)
        a = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, d)
        a = a.transpose(1, 2).reshape(b, h * w, c)
        return x + self.to_out(a).transpose(1, 2).reshape(b, c, h, w)


class Downsample(nn.Module):
    """Strided 3x3 convolution: (B, C, H, W) -> (B, C, H/2, W/2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then 3x3 convolution: (B, C_in, H, W) -> (B, C_out, 2H, 2W)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _groups(groups: int, channels: int) -> int:
    """The configured GroupNorm groups, or the largest divisor of `channels` below it (for odd input widths)."""
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return g
