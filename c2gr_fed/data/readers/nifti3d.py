"""3D NIfTI image and label volumes, paired by stem and cut into 2D slices along one axis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...scenario.schema import Nifti3DSource
from .decode import NIFTI_EXTENSIONS, read_volume
from .folder2d import Pair, _check_dir, list_files, match_pairs
from .preprocess import check_mask_classes, encode_mask, normalise_intensity, resize_image, resize_mask


@dataclass(frozen=True)
class Slice:
    case_id: str  # "<volume stem>_s<index>"
    image: np.ndarray  # (3, S, S) float32
    mask: np.ndarray  # (S, S) int64
    index: int = 0  # position along the slicing axis
    of: int = 1  # slices along that axis in the volume (1: a 2D image)


def list_volume_pairs(src: Nifti3DSource, root: Path) -> list[Pair]:
    """All (stem, image volume, label volume) pairs, sorted by stem."""
    _check_dir(root, f"data root of source {src.root!r}")
    image_dir, label_dir = root / src.images, root / src.labels
    images = list_files(image_dir, "image volume", NIFTI_EXTENSIONS)
    labels = list_files(label_dir, "label volume", NIFTI_EXTENSIONS)
    return match_pairs(images, labels, image_dir, label_dir)


def check_same_grid(image: Path, label: Path, vol_shape: tuple[int, ...], lab_shape: tuple[int, ...],
                    image_affine: np.ndarray, label_affine: np.ndarray, atol: float = 1e-3) -> None:
    """A label volume must lie on its image's voxel grid: same shape and the same affine (within `atol` mm)."""
    if tuple(vol_shape) != tuple(lab_shape):
        raise DataError(
            f"{label}: label volume shape {tuple(lab_shape)} does not match its image volume {image.name} shape "
            f"{tuple(vol_shape)}; resample the label onto the image grid"
        )
    if not np.allclose(image_affine, label_affine, atol=atol):
        worst = float(np.abs(image_affine - label_affine).max())
        raise DataError(
            f"{label}: label volume affine differs from its image volume {image.name} by up to {worst:.4g} "
            f"(allowed {atol}); expected the same voxel grid (label affine {np.round(label_affine, 3).tolist()}, "
            f"image affine {np.round(image_affine, 3).tolist()})"
        )


def read_volume_pair(
    pair: Pair, src: Nifti3DSource, image_size: int, num_classes: int, task: str
) -> list[Slice]:
    """One volume pair -> its slices along src.axis (empty ones dropped only if skip_empty_slices)."""
    vol, vol_affine = read_volume(pair.image)
    lab, lab_affine = read_volume(pair.mask)
    check_same_grid(pair.image, pair.mask, vol.shape, lab.shape, vol_affine, lab_affine)
    if src.mask.value_map is None and src.mask.threshold is None and np.issubdtype(lab.dtype, np.floating):
        lab = np.asarray(lab, dtype=np.float64)
    flat = encode_mask(lab.reshape(lab.shape[0], -1), src.mask, str(pair.mask)).reshape(lab.shape)
    check_mask_classes(flat, num_classes, str(pair.mask), task)
    norm = normalise_intensity(
        vol, src.intensity, str(pair.image), percentiles=src.percentiles, window=src.window, source_dtype=vol.dtype
    )
    norm = np.moveaxis(norm, src.axis, 0)
    masks = np.moveaxis(flat, src.axis, 0)
    out: list[Slice] = []
    width = max(2, len(str(norm.shape[0] - 1)))
    for k in range(norm.shape[0]):
        m = masks[k]
        if src.skip_empty_slices and not m.any():
            continue
        img = np.repeat(norm[k][:, :, None], 3, axis=2)
        out.append(Slice(f"{pair.stem}_s{k:0{width}d}", resize_image(img, image_size), resize_mask(m, image_size),
                         k, norm.shape[0]))
    return out
