"""Argument checks shared by the native and the diffusers-backed models, so each refusal reads the same."""

from __future__ import annotations

from torch import Tensor


def check_model_sizes(max_classes: int, context_dim: int | None = None) -> None:
    """ValueError unless max_classes >= 1 (and context_dim >= 1 where given)."""
    if max_classes < 1:
        raise ValueError(f"max_classes must be >= 1, got {max_classes}")
    if context_dim is not None and context_dim < 1:
        raise ValueError(f"context_dim must be >= 1, got {context_dim}")


def check_joint_inputs(x: Tensor, y: Tensor, max_classes: int) -> None:
    """ValueError unless x is (B, 3, H, W) and the mask code y is (B, K_max, H, W) matching it."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be (B, 3, H, W), got {tuple(x.shape)}")
    if y.shape != (x.shape[0], max_classes, *x.shape[2:]):
        raise ValueError(f"y must be (B, K_max={max_classes}, H, W) matching x, got {tuple(y.shape)}")
