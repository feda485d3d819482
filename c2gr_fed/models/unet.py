"""A prompt-conditioned encoder-decoder UNet with skip connections, shared by the segmentor and the denoiser.

Level i works at resolution H / 2**i with ``cfg.channels[i]`` channels. Each encoder level has
``cfg.layers_per_block`` ResBlocks; the skip of a level is its last encoder output. The coarsest level is the
bottom: its encoder blocks are followed by one middle ResBlock (which plays the decoder role of that level).
Decoder level i (< last) upsamples, concatenates level i's skip and applies ``layers_per_block`` ResBlocks.
Cross-attention to the prompt tokens follows every ResBlock of a level in ``cfg.attention_levels``, on the
encoder and on the decoder (the middle block for the bottom level).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from c2gr_fed.scenario.schema import UNetConfig

from .blocks import CrossAttention, Downsample, ResBlock, Upsample, _groups


class _Stage(nn.Module):
    """ResBlocks at one level, each optionally followed by cross-attention."""

    def __init__(
        self, in_ch: int, out_ch: int, layers: int, cfg: UNetConfig, emb_dim: int | None, context_dim: int, attn: bool
    ) -> None:
        super().__init__()
        self.res = nn.ModuleList(
            ResBlock(in_ch if i == 0 else out_ch, out_ch, cfg.groups, emb_dim) for i in range(layers)
        )
        self.attn = nn.ModuleList(
            CrossAttention(out_ch, context_dim, cfg.heads, cfg.groups) for _ in range(layers if attn else 0)
        )

    def forward(self, h: Tensor, emb: Tensor | None, context: Tensor) -> Tensor:
        for i, block in enumerate(self.res):
            h = block(h, emb)
            if self.attn:
                h = self.attn[i](h, context)
        return h


class PromptUNet(nn.Module):
    """(B, in_ch, H, W) + context (B, L, D) [+ conditioning vector (B, emb_dim)] -> (B, out_ch, H, W)."""

    def __init__(
        self, cfg: UNetConfig, in_ch: int, out_ch: int, context_dim: int, emb_dim: int | None = None
    ) -> None:
        super().__init__()
        if context_dim < 1:
            raise ValueError(f"context_dim must be >= 1, got {context_dim}")
        ch = list(cfg.channels)
        attn = set(cfg.attention_levels)
        n = len(ch)
        self.levels = n
        self.stem = nn.Conv2d(in_ch, ch[0], 3, padding=1)
        self.down_stages = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i in range(n):
            in_c = ch[0] if i == 0 else ch[i - 1]
            self.down_stages.append(_Stage(in_c, ch[i], cfg.layers_per_block, cfg, emb_dim, context_dim, i in attn))
            if i < n - 1:
                self.downs.append(Downsample(ch[i]))
        self.mid = _Stage(ch[-1], ch[-1], 1, cfg, emb_dim, context_dim, (n - 1) in attn)
        self.ups = nn.ModuleList()
        self.up_stages = nn.ModuleList()
        for i in reversed(range(n - 1)):
            self.ups.append(Upsample(ch[i + 1], ch[i]))
            self.up_stages.append(_Stage(2 * ch[i], ch[i], cfg.layers_per_block, cfg, emb_dim, context_dim, i in attn))
        self.out_norm = nn.GroupNorm(_groups(cfg.groups, ch[0]), ch[0])
        self.out_conv = nn.Conv2d(ch[0], out_ch, 3, padding=1)

    def check_size(self, h: int, w: int) -> None:
        f = 2 ** (self.levels - 1)
        if h % f or w % f:
            raise ValueError(
                f"image size {h}x{w} is not divisible by 2**(levels-1) = {f} for a UNet with {self.levels} levels: "
                f"use a multiple of {f} or fewer channel levels"
            )

    def forward(self, x: Tensor, context: Tensor, emb: Tensor | None = None) -> Tensor:
        self.check_size(x.shape[-2], x.shape[-1])
        h = self.stem(x)  # (B, C0, H, W)
        skips: list[Tensor] = []
        for i, stage in enumerate(self.down_stages):
            h = stage(h, emb, context)  # (B, C_i, H / 2**i, W / 2**i)
            if i < self.levels - 1:
                skips.append(h)
                h = self.downs[i](h)
        h = self.mid(h, emb, context)
        for up, stage in zip(self.ups, self.up_stages):
            h = up(h)
            h = stage(torch.cat([h, skips.pop()], dim=1), emb, context)
        return self.out_conv(torch.nn.functional.silu(self.out_norm(h)))
