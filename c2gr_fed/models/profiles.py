"""Named UNet profiles and a parameter counter."""

from __future__ import annotations

from torch import nn

from c2gr_fed.scenario.schema import UNetConfig

PAPER_SEGMENTOR = UNetConfig(channels=[32, 64, 128, 256, 512, 512, 512], attention_levels=[3, 4, 5, 6])
"""The paper's segmentor widths (256 x 256 inputs; needs sizes divisible by 64). GPU only."""

PAPER_DENOISER = UNetConfig(channels=[128, 128, 256, 256, 512, 512], attention_levels=[3, 4, 5])
"""The paper's denoiser widths (256 x 256 inputs; needs sizes divisible by 32). GPU only."""

CPU_SEGMENTOR = UNetConfig(channels=[16, 32, 64, 128], attention_levels=[2, 3])
"""The schema's default segmentor (32 x 32 on CPU)."""

CPU_DENOISER = UNetConfig(channels=[32, 64, 128], attention_levels=[1, 2])
"""The schema's default denoiser (32 x 32 on CPU)."""


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (all of them, trainable or not)."""
    return sum(p.numel() for p in module.parameters())
