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

    def __init__(self, cfg: DiffusionConfig | None = None, *, timesteps: int | None = None, beta_schedule: str | None = None,
                 prediction_type: str | None = None) -> None:
        super().__init__()
        cfg = cfg or DiffusionConfig()
        self.prediction_type = str(prediction_type if prediction_type is not None else cfg.prediction_type)
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
            "prediction_type": self.prediction_type,
        }

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise; x0, noise (B, ...), t (B,) int64 in [0, T)."""
        a = self.alphas_cumprod.to(x0.device)[t.to(x0.device)].to(x0.dtype)  # (B,)
        a = a.view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1.0 - a).sqrt() * noise.to(x0.dtype)

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """What the denoiser is trained to output for x_t = add_noise(x0, noise, t), per `prediction_type`:
        epsilon -> noise; sample -> x0; v_prediction -> sqrt(a_t) noise - sqrt(1 - a_t) x0. Same layout as x0."""
        if self.prediction_type == "epsilon":
            return noise.to(x0.dtype)
        if self.prediction_type == "sample":
            return x0
        a = self.alphas_cumprod.to(x0.device)[t.to(x0.device)].to(x0.dtype)
        a = a.view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * noise.to(x0.dtype) - (1.0 - a).sqrt() * x0
