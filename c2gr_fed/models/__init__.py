"""Segmentor and joint denoiser (leaf package: torch only)."""

from .blocks import CrossAttention, Downsample, ResBlock, TimestepMLP, Upsample, timestep_embedding
from .denoiser import JointDenoiser
from .factory import build_denoiser, build_segmentor
from .profiles import CPU_DENOISER, CPU_SEGMENTOR, PAPER_DENOISER, PAPER_SEGMENTOR, count_parameters
from .segmentor import MASKED_LOGIT, PromptedSegmentor, predict_masks, restrict_logits, segmentation_loss
from .unet import PromptUNet

__all__ = [
    "CPU_DENOISER",
    "CPU_SEGMENTOR",
    "CrossAttention",
    "Downsample",
    "JointDenoiser",
    "MASKED_LOGIT",
    "PAPER_DENOISER",
    "PAPER_SEGMENTOR",
    "PromptUNet",
    "PromptedSegmentor",
    "ResBlock",
    "TimestepMLP",
    "Upsample",
    "build_denoiser",
    "build_segmentor",
    "count_parameters",
    "predict_masks",
    "restrict_logits",
    "segmentation_loss",
    "timestep_embedding",
]
