"""Readers for real data declared in a scenario: 2D image/mask folders and 3D NIfTI volumes."""

from .folder2d import IMAGE_EXTENSIONS, Pair, list_pairs, read_pair
from .nifti3d import NIFTI_EXTENSIONS, list_volume_pairs, read_volume_pair
from .splits import split_items, stable_seed

__all__ = [
    "IMAGE_EXTENSIONS", "NIFTI_EXTENSIONS", "Pair", "list_pairs", "list_volume_pairs", "read_pair",
    "read_volume_pair", "split_items", "stable_seed",
]
