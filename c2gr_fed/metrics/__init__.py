"""Dice, the train-test matrix and Overall/BWT/TL/FWT. Leaves: torch and MONAI only."""

from .dice import DiceAccumulator, case_dice, confusion_counts, dice_per_class, mean_dice
from .matrix import TrainTestMatrix, stream_metrics

__all__ = ["DiceAccumulator", "case_dice", "TrainTestMatrix", "confusion_counts", "dice_per_class", "mean_dice", "stream_metrics"]
