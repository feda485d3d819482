"""Build the segmentor and the denoiser on the backbone a `UNetConfig` names (``native`` or ``diffusers``)."""

from __future__ import annotations

from torch import nn

from c2gr_fed.scenario.schema import UNetConfig

from .denoiser import JointDenoiser
from .segmentor import PromptedSegmentor


def build_segmentor(cfg: UNetConfig, max_classes: int, context_dim: int) -> nn.Module:
    """images (B, 3, H, W), context (B, L, D) -> logits (B, K_max + 1, H, W), on ``cfg.backbone``."""
    if cfg.backbone == "diffusers":
        from .diffusers_unet import DiffusersPromptedSegmentor

        return DiffusersPromptedSegmentor(cfg, max_classes, context_dim)
    return PromptedSegmentor(cfg, max_classes, context_dim)


def build_denoiser(cfg: UNetConfig, max_classes: int, context_dim: int) -> nn.Module:
    """(x (B, 3, H, W), y (B, K_max, H, W), t_x (B,), t_y (B,), context (B, L, D)) -> (eps_x, eps_y), on ``cfg.backbone``."""
    if cfg.backbone == "diffusers":
        from .diffusers_unet import DiffusersJointDenoiser

        return DiffusersJointDenoiser(cfg, max_classes, context_dim)
    return JointDenoiser(cfg, max_classes, context_dim)
