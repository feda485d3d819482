"""The one mask encoding of the project: K_max fixed {-1, +1} channels, background = all channels -1.

Channel k-1 is +1 exactly where the label is k. The code never depends on which labels a sample contains
(no per-sample min-max scaling). Decoding applies one rule for every task: among the task's first K_b channels
take the largest; label = 1 + its index if it is > 0, else background.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def encode_masks(masks: Tensor, max_classes: int) -> Tensor:
    """(B, H, W) int64 labels in 0..K_max -> (B, K_max, H, W) float32 in {-1, +1}."""
    if masks.dim() != 3:
        raise ValueError(f"masks must be (B, H, W), got {tuple(masks.shape)}")
    if masks.numel() and (int(masks.min()) < 0 or int(masks.max()) > max_classes):
        raise ValueError(
            f"mask labels must lie in 0..{max_classes} (max_classes), got range "
            f"{int(masks.min())}..{int(masks.max())}"
        )
    onehot = F.one_hot(masks.long(), max_classes + 1)[..., 1:]  # (B, H, W, K_max)
    return onehot.permute(0, 3, 1, 2).to(torch.float32) * 2.0 - 1.0  # (B, K_max, H, W)


def decode_masks(code: Tensor, num_classes: Tensor | int) -> Tensor:
    """(B, K_max, H, W) code -> (B, H, W) int64 labels in 0..K_b, using only the first K_b channels of sample b."""
    if code.dim() != 4:
        raise ValueError(f"mask code must be (B, K_max, H, W), got {tuple(code.shape)}")
    b, k_max = code.shape[:2]
    if isinstance(num_classes, int):
        num_classes = torch.full((b,), num_classes, dtype=torch.long)
    num_classes = num_classes.to(code.device)
    if num_classes.shape != (b,):
        raise ValueError(f"num_classes must be an int or shape ({b},), got {tuple(num_classes.shape)}")
    if int(num_classes.min()) < 1 or int(num_classes.max()) > k_max:
        raise ValueError(f"num_classes must lie in 1..{k_max}, got {num_classes.tolist()}")
    k = torch.arange(k_max, device=code.device)
    absent = (k[None, :] >= num_classes[:, None])[:, :, None, None]  # (B, K_max, 1, 1)
    masked = code.float().masked_fill(absent, float("-inf"))
    best, idx = masked.max(dim=1)  # (B, H, W)
    return torch.where(best > 0, idx + 1, torch.zeros_like(idx))
