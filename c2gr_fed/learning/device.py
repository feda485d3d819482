"""Device choice and mixed precision, in one place.

The device policy of a department node:
  - `federation.gpus_per_department: 0` means CPU everywhere: the department picks the CPU whatever torch sees
    (and the federation layer hides GPUs from its actors, CUDA_VISIBLE_DEVICES=""); `training.device: cuda` with
    it is a contradiction and refused.
  - granted a GPU (> 0): CUDA when torch sees one (Ray sets CUDA_VISIBLE_DEVICES per actor); when torch sees none
    (a CPU build of torch, a fake GPU declared to Ray) the department runs on the CPU and says so
    (`gpu_unseen`, a round metric the coordinator turns into one warning in the summary and report).
  - without a federation setting (a round called directly): `training.device` alone (auto: CUDA when visible).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


def pick_device(setting: str = "auto", gpus_granted: float | None = None) -> torch.device:
    """The device a department computes on, from `training.device` (auto/cpu/cuda) and the GPUs the federation
    granted it (`federation.gpus_per_department`; None when not run by the federation)."""
    from ..errors import ScenarioError

    if gpus_granted is not None and gpus_granted <= 0:
        if setting == "cuda":
            raise ScenarioError("training.device is 'cuda' but federation.gpus_per_department is 0 (CPU everywhere): "
                                "set training.device to 'auto' or 'cpu', or grant GPUs (federation.gpus_per_department)")
        return torch.device("cpu")
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ScenarioError("training.device is 'cuda' but this department node sees no GPU; use 'auto' or 'cpu'")
        return torch.device("cuda")
    return torch.device("cpu")


def gpu_unseen(setting: str, gpus_granted: float | None, device: torch.device) -> bool:
    """True when the department was granted a GPU, was not told to use the CPU, and computes on the CPU because
    torch sees no GPU: the waste the run must report."""
    return bool(gpus_granted) and gpus_granted > 0 and setting != "cpu" and device.type != "cuda"


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window (a round's `peak_gpu_mem_mb` is that round's, not the process's)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def sampling_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype of replay synthesis: bf16 on CUDA when training.precision is bf16; None (fp32) on the CPU,
    where bf16 without native support is 10-100x slower and CPU runs keep their results."""
    return torch.bfloat16 if device.type == "cuda" and precision == "bf16" else None


@contextlib.contextmanager
def sampling_autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Autocast around the sampler's network calls (see sampling_dtype); the sampler's update arithmetic stays in
    the dtype of its fp32 state."""
    dtype = sampling_dtype(device, precision)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """bf16 autocast where asked for (CPU and CUDA); a no-op for fp32."""
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
