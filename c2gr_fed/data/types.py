"""The in-memory form of one task's data, shared by phantoms and real readers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class TaskData:
    """One split of one task.

    images: (N, 3, H, W) float32 in [-1, 1] (grey modalities repeated to 3 channels).
    masks:  (N, H, W) int64 in {0, ..., K}; 0 = background, k = the k-th class in the task's class list.
    ids:    N case identifiers (file stems or phantom indices) for reports; never sent over the wire.
    """

    task: str
    split: Split
    images: torch.Tensor
    masks: torch.Tensor
    num_classes: int
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"task {self.task}/{self.split}: images must be (N, 3, H, W), got {tuple(self.images.shape)}")
        if self.masks.shape != (n, *self.images.shape[2:]):
            raise ValueError(
                f"task {self.task}/{self.split}: masks {tuple(self.masks.shape)} do not match images {tuple(self.images.shape)}"
            )
        if self.images.dtype != torch.float32 or self.masks.dtype != torch.int64:
            raise ValueError(f"task {self.task}/{self.split}: expected float32 images and int64 masks")

    def __len__(self) -> int:
        return int(self.images.shape[0])
