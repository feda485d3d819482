"""The joint image + mask denoiser with two timesteps (C2GR Eq. 1-3).

Input: concat of noisy image x (B, 3, H, W) and noisy mask code y (B, K_max, H, W) -> (B, 3 + K_max, H, W).
Two timestep embeddings (one per part, each sinusoidal + MLP) are summed into one conditioning vector that every
ResBlock receives; a clean part is fed with timestep 0. The prompt tokens enter by cross-attention.
Output: (out_x (B, 3, H, W), out_y (B, K_max, H, W)): the noise estimates (or v / x0 estimates when
diffusion.prediction_type says so). The output convolution is zero-initialised, so at
initialisation the prediction is 0 and no gradient flows upstream (the context gets gradients after one step).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from c2gr_fed.scenario.schema import UNetConfig

from .blocks import TimestepMLP
from .input_checks import check_joint_inputs, check_model_sizes
from .unet import PromptUNet


class JointDenoiser(nn.Module):
    def __init__(self, cfg: UNetConfig, max_classes: int, context_dim: int) -> None:
        super().__init__()
        check_model_sizes(max_classes)
        self.cfg = cfg
        self.max_classes = max_classes
        self.context_dim = context_dim
        base = cfg.channels[0]
        emb_dim = 4 * base
        self.time_image = TimestepMLP(base, emb_dim)
        self.time_mask = TimestepMLP(base, emb_dim)
        self.unet = PromptUNet(cfg, in_ch=3 + max_classes, out_ch=3 + max_classes, context_dim=context_dim, emb_dim=emb_dim)
        nn.init.zeros_(self.unet.out_conv.weight)
        nn.init.zeros_(self.unet.out_conv.bias)

    def forward(self, x: Tensor, y: Tensor, t_x: Tensor, t_y: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        check_joint_inputs(x, y, self.max_classes)
        emb = self.time_image(t_x) + self.time_mask(t_y)  # (B, 4 C0)
        xy = _cat_same_dtype(x, y)  # (B, 3 + K_max, H, W)
        out = self.unet(xy, context, emb)  # (B, 3 + K_max, H, W)
        return out[:, :3], out[:, 3:]


def _cat_same_dtype(x: Tensor, y: Tensor) -> Tensor:
    if x.dtype != y.dtype:
        y = y.to(x.dtype)
    return torch.cat([x, y], dim=1)
