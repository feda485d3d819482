"""Dice, the train-test matrix and Overall/BWT/TL/FWT. Leaves: torch only."""

from .dice import DiceAccumulator, dice_counts, dice_per_class, mean_dice
from .matrix import TrainTestMatrix, stream_metrics

__all__ = ["DiceAccumulator", "TrainTestMatrix", "dice_counts", "dice_per_class", "mean_dice", "stream_metrics"]
