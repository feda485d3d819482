"""The forward-noising schedule, built from the scenario's DiffusionConfig.

The betas come from diffusers' DDPMScheduler with the same arguments, so training noise and the samplers'
schedulers agree by construction (one place owns the schedule: `to_diffusers_config`).
"""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler
from torch import Tensor, nn

from c2gr_fed.scenario.schema import DiffusionConfig

BETA_START = 1e-4
BETA_END = 0.02


class NoiseSchedule(nn.Module):
    """Buffers `betas` and `alphas_cumprod` (T,) float32; moves with `.to(device)`."""

    betas: Tensor
    alphas_cumprod: Tensor

    def __init__(self, cfg: DiffusionConfig | None = None, *, timesteps: int | None = None, beta_schedule: str | None = None) -> None:
        super().__init__()
        cfg = cfg or DiffusionConfig()
        self.timesteps = int(timesteps if timesteps is not None else cfg.timesteps)
        self.beta_schedule = str(beta_schedule if beta_schedule is not None else cfg.beta_schedule)
        ref = DDPMScheduler(**self.to_diffusers_config())
        self.register_buffer("betas", ref.betas.to(torch.float32).clone())
        self.register_buffer("alphas_cumprod", ref.alphas_cumprod.to(torch.float32).clone())

    @property
    def num_timesteps(self) -> int:
        return self.timesteps

    def to_diffusers_config(self) -> dict:
        """Arguments shared by every diffusers scheduler built for this schedule."""
        # The DDPM betas (1e-4 .. 0.02) are meant for T = 1000; for another T they are scaled by 1000 / T (as in
        # Nichol & Dhariwal 2021), so that x_T is pure noise for every T and matches the samplers' starting point
        # (unscaled, T = 100 leaves 60% of the signal in x_T).
        scale = 1000.0 / self.timesteps
        return {
            "num_train_timesteps": self.timesteps,
            "beta_schedule": self.beta_schedule,
            "beta_start": BETA_START * scale,
            "beta_end": min(BETA_END * scale, 0.999),
            "prediction_type": "epsilon",
        }

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise; x0, noise (B, ...), t (B,) int64 in [0, T)."""
        a = self.alphas_cumprod.to(x0.device)[t.to(x0.device)].to(x0.dtype)  # (B,)
        a = a.view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1.0 - a).sqrt() * noise.to(x0.dtype)
