"""Shared preprocessing: channel handling, intensity scaling to [-1, 1] and resizing (MONAI transforms), mask
encodings.

Images travel as float32 arrays (H, W, C); masks as int64 (H, W) class indices. Every failure is a DataError that
names the file (`where`) and what was expected.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch

from ...errors import DataError
from ...scenario.schema import MaskEncoding


def _fmt_values(values: Sequence[float], limit: int = 12) -> str:
    shown = [int(v) if float(v).is_integer() else float(v) for v in values[:limit]]
    more = f" ... ({len(values)} in all)" if len(values) > limit else ""
    return f"{shown}{more}"


# ---------------------------------------------------------------------------------------------- channels


def select_channels(arr: np.ndarray, channels: Sequence[int] | None, where: str, alpha_last: bool = False) -> np.ndarray:
    """(H, W) or (H, W, C) -> (H, W, 1) or (H, W, 3); `channels` picks and orders channels explicitly.

    Without an explicit choice: 1 and 3 channels are kept, 2 (grey + alpha) and 4 (RGB + alpha, only when the
    decoder says so: `alpha_last`) drop the alpha channel, anything else is an error asking for `channels`.
    """
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise DataError(f"{where}: expected a 2D image (H, W) or (H, W, C), got an array of shape {arr.shape}")
    c = arr.shape[2]
    if channels is not None:
        bad = [i for i in channels if not 0 <= i < c]
        if bad:
            raise DataError(f"{where}: channels {list(channels)} asked for, but the image has {c} channel(s) (0..{c - 1})")
        if len(channels) not in (1, 3):
            raise DataError(f"{where}: channels must list 1 or 3 channel indices, got {list(channels)}")
        return arr[:, :, list(channels)]
    if c in (1, 3):
        return arr
    if c == 2 and alpha_last:
        return arr[:, :, :1]
    if c == 4 and alpha_last:
        return arr[:, :, :3]
    raise DataError(
        f"{where}: the image has {c} channels; say which to use with the source field `channels` (1 or 3 indices)"
    )


def to_three_channels(arr: np.ndarray, mode: Literal["rgb", "grey", "as_is"]) -> np.ndarray:
    """(H, W, 1|3) -> (H, W, 3). grey: luminance repeated; rgb/as_is: grey repeated, colour kept."""
    arr = arr.astype(np.float32, copy=False)
    if mode == "grey" and arr.shape[2] == 3:
        lum = 0.299 * arr[:, :, 0] + 0.587 * arr[:, :, 1] + 0.114 * arr[:, :, 2]
        arr = lum[:, :, None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr


# --------------------------------------------------------------------------------------------- intensity


def normalise_intensity(
    arr: np.ndarray,
    mode: str,
    where: str,
    percentiles: tuple[float, float] = (0.5, 99.5),
    window: tuple[float, float] | None = None,
    source_dtype: np.dtype | None = None,
) -> np.ndarray:
    """Scale to [-1, 1] float32.

    uint8: x / 127.5 - 1 (fixed, so 8-bit photographs keep their absolute brightness);
    minmax: per array (image or volume); percentile: clip to the per-array percentiles, then min-max;
    a window (low, high) clips to it and scales it to [-1, 1]. auto: the window if given, uint8 for 8-bit data,
    else percentile. A constant array becomes all -1.
    """
    x = np.asarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{where}: the image holds NaN or infinite values")
    dtype = np.dtype(source_dtype) if source_dtype is not None else np.asarray(arr).dtype
    if mode == "auto":
        if window is not None:
            mode = "window"
        elif dtype == np.uint8:
            mode = "uint8"
        else:
            mode = "percentile"
    if mode == "window":
        if window is None:
            raise DataError(f"{where}: intensity window requested but none given")
        lo, hi = float(window[0]), float(window[1])
        if not hi > lo:
            raise DataError(f"{where}: window must be (low, high) with high > low, got {list(window)}")
    elif mode == "uint8":
        if dtype != np.uint8:
            raise DataError(f"{where}: intensity 'uint8' expects 8-bit pixels, the file holds {dtype}; use 'auto' or 'percentile'")
        lo, hi = 0.0, 255.0
    elif mode == "minmax":
        lo, hi = float(x.min()), float(x.max())
    elif mode == "percentile":
        p_lo, p_hi = percentiles
        if not 0.0 <= p_lo < p_hi <= 100.0:
            raise DataError(f"{where}: percentiles must satisfy 0 <= low < high <= 100, got {list(percentiles)}")
        lo, hi = (float(v) for v in np.percentile(x, [p_lo, p_hi]))
        if hi <= lo:  # very peaked histogram: fall back to the full range
            lo, hi = float(x.min()), float(x.max())
    else:
        raise DataError(f"{where}: unknown intensity mode {mode!r}; allowed: auto, uint8, minmax, percentile")
    if hi <= lo:
        return np.full_like(x, -1.0)
    from monai.transforms import ScaleIntensityRange

    scale = ScaleIntensityRange(a_min=lo, a_max=hi, b_min=-1.0, b_max=1.0, clip=True, dtype=np.float32)
    return np.asarray(scale(x), dtype=np.float32)


# ------------------------------------------------------------------------------------------------- masks


def select_mask_channel(arr: np.ndarray, encoding: MaskEncoding, where: str) -> np.ndarray:
    """(H, W) or (H, W, C) -> (H, W) using encoding.channel."""
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3:
        c = arr.shape[2]
        ch = 0 if encoding.channel is None else encoding.channel
        if not 0 <= ch < c:
            raise DataError(f"{where}: mask.channel = {ch} but the mask has {c} channel(s) (0..{c - 1})")
        return arr[:, :, ch]
    raise DataError(f"{where}: expected a 2D mask (H, W) or (H, W, C), got an array of shape {arr.shape}")


def encode_mask(raw: np.ndarray, encoding: MaskEncoding, where: str) -> np.ndarray:
    """Pixel values (H, W) -> class indices int64 (H, W) following the MaskEncoding.

    threshold: value > t is class 1 (invert: value <= t); value_map: exact lookup (or within nearest_tolerance),
    any other value is the `default` class when one is given, else an error listing the bad values and the allowed
    keys; neither: the values are the class indices and must be non-negative integers.
    """
    v = np.asarray(raw)
    if v.ndim != 2:
        raise DataError(f"{where}: expected a 2D mask, got shape {v.shape}")
    if encoding.threshold is not None:
        fg = v <= encoding.threshold if encoding.invert else v > encoding.threshold
        return fg.astype(np.int64)
    if encoding.value_map is not None:
        keys = np.array(sorted(encoding.value_map), dtype=np.float64)
        classes = np.array([encoding.value_map[int(k)] for k in keys], dtype=np.int64)
        uniq, inverse = np.unique(v, return_inverse=True)
        uniq_f = uniq.astype(np.float64)
        # nearest key for each distinct value
        idx = np.abs(uniq_f[:, None] - keys[None, :]).argmin(axis=1)
        dist = np.abs(uniq_f - keys[idx])
        unlisted = dist > encoding.nearest_tolerance
        if encoding.default is not None:  # values the map does not list are the default class
            return np.where(unlisted, encoding.default, classes[idx])[inverse.reshape(v.shape)]
        bad = uniq[unlisted]
        if bad.size:
            tol = f" (nearest_tolerance {encoding.nearest_tolerance})" if encoding.nearest_tolerance else ""
            raise DataError(
                f"{where}: mask values {_fmt_values(bad.tolist())} are not in mask.value_map{tol}; "
                f"allowed keys: {_fmt_values(sorted(encoding.value_map), 24)} (mask.default gives unlisted values a class)"
            )
        return classes[idx][inverse.reshape(v.shape)]
    # identity: values are class indices
    if np.issubdtype(v.dtype, np.floating):
        if not np.all(np.isfinite(v)):
            raise DataError(f"{where}: the mask holds NaN or infinite values")
        rounded = np.rint(v)
        if np.any(np.abs(v - rounded) > 1e-3):
            bad = np.unique(v[np.abs(v - rounded) > 1e-3])
            raise DataError(
                f"{where}: mask values {_fmt_values(bad.tolist())} are not integer class indices; "
                "declare mask.value_map or mask.threshold"
            )
        v = rounded
    v = v.astype(np.int64)
    if v.size and v.min() < 0:
        bad = np.unique(v[v < 0])
        raise DataError(f"{where}: negative mask values {_fmt_values(bad.tolist())}; class indices start at 0")
    return v


def check_mask_classes(mask: np.ndarray, num_classes: int, where: str, task: str) -> None:
    """Class indices must lie in 0..num_classes (0 = background)."""
    if mask.size and int(mask.max()) > num_classes:
        bad = np.unique(mask[mask > num_classes])
        raise DataError(
            f"{where}: mask classes {_fmt_values(bad.tolist())} exceed the {num_classes} class(es) of task {task!r} "
            f"(allowed 0..{num_classes}); fix mask.value_map / mask.threshold or the task's classes"
        )


# ------------------------------------------------------------------------------------------------ resize


def resize_image(img: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) float32 -> (3, size, size) by MONAI's Resize: area averaging when both axes shrink by 2 or more
    (a box filter: no aliasing, and fast where a Gaussian would need a wide kernel), else bilinear with MONAI's
    Gaussian anti-aliasing (closest to the torch triangle filter used before; benchmarks/reader_equivalence.py)."""
    from monai.transforms import Resize

    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))  # (3, H, W)
    h, w = t.shape[-2:]
    if (h, w) != (size, size):
        shrink = h >= 2 * size and w >= 2 * size
        resize = Resize((size, size), mode="area") if shrink else Resize(
            (size, size), mode="bilinear", anti_aliasing=True, dtype=torch.float32)
        t = resize(t)
        t = t.as_tensor() if hasattr(t, "as_tensor") else t
    return t.clamp(-1.0, 1.0).numpy().astype(np.float32, copy=False)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """(H, W) int64 -> (size, size) by MONAI's Resize, nearest neighbour on pixel centres (keeps the overlay aligned)."""
    if mask.shape == (size, size):
        return mask.astype(np.int64, copy=False)
    from monai.transforms import Resize

    t = torch.from_numpy(np.ascontiguousarray(mask.astype(np.float32)))[None]  # (1, H, W)
    out = Resize((size, size), mode="nearest-exact", dtype=torch.float32)(t)
    out = out.as_tensor() if hasattr(out, "as_tensor") else out
    return out[0].round().to(torch.int64).numpy()
