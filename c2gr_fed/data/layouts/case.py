"""One case of a published layout, and reading it into the 2D slices a department trains on.

A case is image file(s) and one label file, 2D rasters or 3D NIfTI. 3D volumes are cut along the source's axis;
4D image + 4D label (cine MR, X, Y, Z, T) are one 3D case per time frame; a single 4D image with a 3D label holds
the channels on its last axis (the Decathlon's multi-modal volumes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ...scenario.schema import MaskEncoding
from ..readers.decode import NIFTI_EXTENSIONS, read_raster, read_volume
from ..readers.nifti3d import Slice, check_same_grid
from ..readers.preprocess import (
    check_mask_classes,
    encode_mask,
    normalise_intensity,
    resize_image,
    resize_mask,
    select_channels,
    select_mask_channel,
    to_three_channels,
)


@dataclass(frozen=True)
class Case:
    """One case: `images` holds one file per input channel, or one file holding every channel (`channels` then
    picks from its last axis and `n_channels` is the count the layout declares)."""

    stem: str
    images: tuple[Path, ...]
    mask: Path
    channels: tuple[int, ...] | None = None
    n_channels: int | None = None
    declared_in: str = ""

    @property
    def image(self) -> Path:
        return self.images[0]


@dataclass(frozen=True)
class LabelPlan:
    """How label values become class indices; `declared` (with `declared_in`) are the only values a label may hold."""

    encoding: MaskEncoding
    declared: frozenset[int] | None = None
    declared_in: str = ""


def _check_declared(lab: np.ndarray, plan: LabelPlan, where: Path) -> None:
    if plan.declared is None:
        return
    values = np.unique(lab)
    bad = [v for v in values.tolist() if not float(v).is_integer() or int(v) not in plan.declared]
    if bad:
        shown = [int(v) if float(v).is_integer() else v for v in bad[:12]]
        raise DataError(f"{where}: label values {shown} are not declared in {plan.declared_in} "
                        f"(declared values: {sorted(plan.declared)})")


def _encode(lab: np.ndarray, plan: LabelPlan, where: Path, k: int, task: str) -> np.ndarray:
    """(..., ) label values -> int64 class indices of the same shape."""
    _check_declared(lab, plan, where)
    if lab.ndim == 2:
        flat = encode_mask(lab, plan.encoding, str(where))
    else:
        if np.issubdtype(lab.dtype, np.floating) and plan.encoding.value_map is None and plan.encoding.threshold is None:
            lab = np.asarray(lab, dtype=np.float64)
        flat = encode_mask(lab.reshape(lab.shape[0], -1), plan.encoding, str(where)).reshape(lab.shape)
    check_mask_classes(flat, k, str(where), task)
    return flat


def _slices(stem: str, chans: list[np.ndarray], mask: np.ndarray, src: Any, image_size: int) -> list[Slice]:
    """Channel volumes [(X, Y, Z)] + class volume (X, Y, Z) -> slices along src.axis."""
    moved = [np.moveaxis(c, src.axis, 0) for c in chans]
    masks = np.moveaxis(mask, src.axis, 0)
    n = masks.shape[0]
    width = max(2, len(str(n - 1)))
    out = []
    for i in range(n):
        if src.skip_empty_slices and not masks[i].any():
            continue
        img = to_three_channels(np.stack([c[i] for c in moved], axis=2), src.image_channels)  # (H, W, 3)
        out.append(Slice(f"{stem}_s{i:0{width}d}", resize_image(img, image_size), resize_mask(masks[i], image_size),
                         i, n))
    return out


def _norm(arr: np.ndarray, src: Any, where: Path) -> np.ndarray:
    return normalise_intensity(arr, src.intensity, str(where), percentiles=src.percentiles, window=src.window,
                               source_dtype=arr.dtype)


def _read_3d(case: Case, src: Any, plan: LabelPlan, image_size: int, k: int, task: str) -> list[Slice]:
    lab, lab_affine = read_volume(case.mask, allow_4d=True)
    vols = [(f, *read_volume(f, allow_4d=True)) for f in case.images]
    if case.channels is not None:  # one file, channels on the last axis
        f, arr, affine = vols[0]
        n = arr.shape[3] if arr.ndim == 4 else 1
        if case.n_channels is not None and n != case.n_channels:
            raise DataError(f"{f}: the image holds {n} channel(s) but {case.declared_in} declares {case.n_channels}; "
                            "expected the channels on the last axis (X, Y, Z, C)")
        arr = arr if arr.ndim == 4 else arr[..., None]
        check_same_grid(f, case.mask, arr.shape[:3], lab.shape, affine, lab_affine)
        return _slices(case.stem, [_norm(arr[..., c], src, f) for c in case.channels],
                       _encode(lab, plan, case.mask, k, task), src, image_size)
    for f, arr, affine in vols:
        check_same_grid(f, case.mask, arr.shape, lab.shape, affine, lab_affine)
    if lab.ndim == 3:
        return _slices(case.stem, [_norm(a, src, f) for f, a, _ in vols], _encode(lab, plan, case.mask, k, task),
                       src, image_size)
    classes = _encode(lab, plan, case.mask, k, task)  # (X, Y, Z, T)
    keep = [t for t in range(lab.shape[3]) if getattr(src, "frames", "all") == "all" or classes[..., t].any()]
    if not keep:
        raise DataError(f"{case.mask}: no time frame of the label holds foreground (frames: labelled)")
    out: list[Slice] = []
    for t in keep:
        out += _slices(f"{case.stem}_t{t:02d}", [_norm(a[..., t], src, f) for f, a, _ in vols], classes[..., t],
                       src, image_size)
    return out


def _read_2d(case: Case, src: Any, plan: LabelPlan, image_size: int, k: int, task: str) -> list[Slice]:
    parts = []
    for f in case.images:
        raw, alpha = read_raster(f)
        parts.append(select_channels(raw, None, str(f), alpha_last=alpha))  # (H, W, c)
    img = np.concatenate(parts, axis=2)
    if case.channels is not None:
        if case.n_channels is not None and img.shape[2] != case.n_channels:
            raise DataError(f"{case.image}: the image holds {img.shape[2]} channel(s) but {case.declared_in} declares "
                            f"{case.n_channels}")
        img = img[:, :, list(case.channels)]
    if img.shape[2] not in (1, 3):
        raise DataError(f"{case.image}: {img.shape[2]} image channels; a task uses 1 or 3 (data.channels)")
    raw_mask, _ = read_raster(case.mask)
    lab = select_mask_channel(raw_mask, plan.encoding, str(case.mask))
    if lab.shape != img.shape[:2]:
        raise DataError(f"{case.mask}: label size {lab.shape[1]}x{lab.shape[0]} (WxH) does not match its image "
                        f"{case.image.name} ({img.shape[1]}x{img.shape[0]})")
    mask = _encode(lab, plan, case.mask, k, task)
    image = to_three_channels(_norm(img, src, case.image), src.image_channels)
    return [Slice(case.stem, resize_image(image, image_size), resize_mask(mask, image_size))]


def read_case(case: Case, src: Any, plan: LabelPlan, image_size: int, k: int, task: str) -> list[Slice]:
    """One case -> its slices: images (3, S, S) float32 in [-1, 1], masks (S, S) int64 in 0..k."""
    if case.mask.name.lower().endswith(NIFTI_EXTENSIONS):
        return _read_3d(case, src, plan, image_size, k, task)
    return _read_2d(case, src, plan, image_size, k, task)
