"""The universal prompted segmentor, its loss and its prediction rule.

Head layout (fixed for every task): K_max + 1 channels; channel 0 = background, channel k = the k-th class
of the prompted task (its class list fixes the order). A task with K_b classes never predicts channels > K_b:
`restrict_logits` is applied in the loss and in the prediction alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from c2gr_fed.scenario.schema import UNetConfig

from .input_checks import check_model_sizes
from .unet import PromptUNet

MASKED_LOGIT = -1.0e4
"""Value given to channels a task does not have; representable in fp16/bf16 and exp() of it is 0."""


class PromptedSegmentor(nn.Module):
    """images (B, 3, H, W) in [-1, 1], context (B, L, D) -> logits (B, K_max + 1, H, W)."""

    def __init__(self, cfg: UNetConfig, max_classes: int, context_dim: int) -> None:
        super().__init__()
        check_model_sizes(max_classes)
        self.cfg = cfg
        self.max_classes = max_classes
        self.context_dim = context_dim
        self.unet = PromptUNet(cfg, in_ch=3, out_ch=max_classes + 1, context_dim=context_dim)

    def forward(self, images: Tensor, context: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        return self.unet(images, context)  # (B, K_max + 1, H, W)


def restrict_logits(logits: Tensor, num_classes: Tensor) -> Tensor:
    """Set channels k > K_b of sample b to MASKED_LOGIT. logits (B, K_max + 1, H, W); num_classes (B,) int."""
    k = torch.arange(logits.shape[1], device=logits.device)
    absent = k[None, :] > num_classes.to(logits.device)[:, None]  # (B, K_max + 1)
    return logits.masked_fill(absent[:, :, None, None], MASKED_LOGIT)


def segmentation_loss(logits: Tensor, masks: Tensor, num_classes: Tensor, smooth: float = 1.0) -> dict[str, Tensor]:
    """Dice + CE on restricted logits, computed in float32 (MONAI's ``DiceLoss`` for the Dice part).

    logits (B, K_max + 1, H, W); masks (B, H, W) int64 in 0..K_b; num_classes (B,) int64.
    dice: 1 - mean over samples b and foreground classes 1..K_b of the soft Dice
    (2 sum(p g) + s) / (sum p + sum g + s); a class absent from the mask and not predicted scores ~1.
    ce: cross-entropy over every pixel (what MONAI's ``DiceCELoss`` adds, with torch's ``cross_entropy``).
    """
    restricted = restrict_logits(logits, num_classes).float()
    ce = F.cross_entropy(restricted, masks)
    per_class = _dice_loss(smooth)(restricted, masks[:, None]).flatten(1)  # (B, K_max): 1 - Dice of (b, k)
    # DiceCELoss averages over every (b, k); a task with K_b < K_max has no channels K_b+1.., so those are masked out
    k = torch.arange(1, logits.shape[1], device=logits.device)
    valid = (k[None, :] <= num_classes.to(logits.device)[:, None]).to(per_class.dtype)  # (B, K_max)
    dice_loss = (per_class * valid).sum() / valid.sum().clamp_min(1.0)
    return {"loss": dice_loss + ce, "dice": dice_loss, "ce": ce}


def _dice_loss(smooth: float):
    """MONAI's soft Dice loss per (sample, foreground class), softmax over the channels, unreduced: (B, K, 1, 1)."""
    from monai.losses import DiceLoss

    return DiceLoss(include_background=False, to_onehot_y=True, softmax=True, reduction="none",
                    smooth_nr=smooth, smooth_dr=smooth)


def predict_masks(logits: Tensor, num_classes: Tensor) -> Tensor:
    """(B, K_max + 1, H, W) logits -> (B, H, W) int64 labels in 0..K_b."""
    return restrict_logits(logits, num_classes).argmax(dim=1)
