"""Dice per foreground class, as a function plus an accumulator over batches, on MONAI's confusion matrices.

Convention (nnU-Net, MONAI `include_background=False`): Dice of class k is computed on the whole split
(sum of intersections over sum of sizes across all cases), and is NaN when the class is absent from both the
reference and the prediction of every case. The task's Dice is the mean over its classes that are not NaN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def confusion_counts(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per case and class 1..K, MONAI's (tp, fp, tn, fn) pixel counts.

    pred, target: (B, H, W) int64 labels (labels above K count as background). Returns (B, K, 4) float64.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and reference {tuple(target.shape)} differ in shape")
    from monai.metrics import get_confusion_matrix

    cm = get_confusion_matrix(_one_hot(pred, num_classes), _one_hot(target, num_classes), include_background=False)
    return cm.to(torch.float64)  # (B, K, 4); counts are exact integers


def _one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, H, W) int64 -> (B, K + 1, H, W) float32 one-hot of labels 0..K; other labels give all-zero rows."""
    inside = (labels >= 0) & (labels <= num_classes)
    oh = F.one_hot(torch.where(inside, labels, num_classes + 1), num_classes + 2)[..., : num_classes + 1]
    return oh.permute(0, 3, 1, 2).float()


def _dice(counts: torch.Tensor) -> torch.Tensor:
    """(..., 4) (tp, fp, tn, fn) -> (...) Dice = F1 = 2 tp / (2 tp + fp + fn), NaN where that denominator is 0."""
    from monai.metrics import compute_confusion_matrix_metric

    return compute_confusion_matrix_metric("f1 score", counts)


class DiceAccumulator:
    """update(pred, target) per batch, then aggregate() -> per-class Dice (NaN for an empty class)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self._counts = torch.zeros(self.num_classes, 4, dtype=torch.float64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        # pooled counts over the split, not MONAI DiceMetric's mean of per-case Dice: the paper's split-level Dice
        self._counts += confusion_counts(pred.cpu(), target.cpu(), self.num_classes).sum(dim=0)  # (K, 4)

    def per_class(self) -> list[float]:
        return [float(v) for v in _dice(self._counts)]

    def mean(self) -> float:
        vals = [v for v in self.per_class() if not math.isnan(v)]
        return float(sum(vals) / len(vals)) if vals else math.nan


def dice_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> list[float]:
    acc = DiceAccumulator(num_classes)
    acc.update(pred, target)
    return acc.per_class()


def mean_dice(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    acc = DiceAccumulator(num_classes)
    acc.update(pred, target)
    return acc.mean()


def case_dice(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Dice of every case on its own: (B,) float, the mean over the classes 1..K present in pred or target.

    pred, target: (B, H, W) int64 labels. A case where no class is present in either counts as full
    agreement (1.0): both say "nothing here".
    """
    per = _dice(confusion_counts(pred, target, num_classes))  # (B, K), NaN where a class is in neither
    present = ~torch.isnan(per)
    mean = torch.where(present, per, 0.0).sum(1) / present.sum(1).clamp(min=1)
    return torch.where(present.any(1), mean, torch.ones_like(mean)).float().to(pred.device)
