"""Device choice and mixed precision, in one place."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


def pick_device(setting: str = "auto") -> torch.device:
    """auto: CUDA when this process sees a GPU (Ray sets CUDA_VISIBLE_DEVICES per department node), else CPU."""
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from ..errors import ScenarioError

            raise ScenarioError("training.device is 'cuda' but this department node sees no GPU; use 'auto' or 'cpu'")
        return torch.device("cuda")
    return torch.device("cpu")


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """bf16 autocast where asked for (CPU and CUDA); a no-op for fp32."""
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
