"""Exponential moving average of the denoiser's weights (for sampling), on torch's ``AveragedModel``."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class Ema:
    """EMA of a module's parameters and floating-point buffers: update(module) after each step, copy_to(module).

    The average starts at the module's weights when the Ema is made. The n-th update (n = 0, 1, ...) uses decay
    ``decay``, or with ``warmup`` min(decay, (1 + n) / (10 + n)), so that early in a round the average follows the
    weights being trained instead of the weights the round started from.
    """

    def __init__(self, module: torch.nn.Module, decay: float, warmup: bool = False) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        bad = [k for k, b in module.named_buffers() if not b.is_floating_point()]
        if bad:
            raise ValueError(f"EMA: buffers {bad} are not floating point and cannot be averaged")
        self.decay = float(decay)
        self.warmup = warmup
        self.updates = 0
        self.averaged = AveragedModel(module, multi_avg_fn=self._average, use_buffers=True)
        self.averaged.update_parameters(module)  # the first call copies: the average starts at the module's weights

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    def _average(self, averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        get_ema_multi_avg_fn(self.current_decay())(averaged, current, num_averaged)

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        self.averaged.update_parameters(module)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, module: torch.nn.Module) -> None:
        for dst, src in zip(list(module.parameters()) + list(module.buffers()),
                            list(self.averaged.module.parameters()) + list(self.averaged.module.buffers()), strict=True):
            dst.copy_(src)
