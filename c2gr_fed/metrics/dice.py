"""Dice per foreground class, as a function plus an accumulator over batches.

Convention (nnU-Net, MONAI `include_background=False`): Dice of class k is computed on the whole split
(sum of intersections over sum of sizes across all cases), and is NaN when the class is absent from both the
reference and the prediction of every case. The task's Dice is the mean over its classes that are not NaN.
"""

from __future__ import annotations

import math

import torch


def dice_counts(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-class (intersection, pred size, target size) for classes 1..K.

    pred, target: (B, H, W) int64 labels. Returns (K, 3) int64.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and reference {tuple(target.shape)} differ in shape")
    rows = []
    for k in range(1, num_classes + 1):
        p = pred == k
        t = target == k
        rows.append(torch.stack([(p & t).sum(), p.sum(), t.sum()]))
    return torch.stack(rows).to(torch.int64)


class DiceAccumulator:
    """update(pred, target) per batch, then aggregate() -> per-class Dice (NaN for an empty class)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self._counts = torch.zeros(self.num_classes, 3, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self._counts += dice_counts(pred.cpu(), target.cpu(), self.num_classes)

    def per_class(self) -> list[float]:
        out = []
        for inter, ps, ts in self._counts.tolist():
            out.append(math.nan if ps + ts == 0 else 2.0 * inter / (ps + ts))
        return out

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
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and reference {tuple(target.shape)} differ in shape")
    total = torch.zeros(pred.shape[0], dtype=torch.float64, device=pred.device)
    present = torch.zeros_like(total)
    for k in range(1, num_classes + 1):
        p, t = (pred == k).flatten(1), (target == k).flatten(1)
        size = (p.sum(1) + t.sum(1)).double()
        has = size > 0
        total += torch.where(has, 2.0 * (p & t).sum(1).double() / size.clamp(min=1), 0.0)
        present += has.double()
    return torch.where(present > 0, total / present.clamp(min=1), torch.ones_like(total)).float()
