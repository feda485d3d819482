"""2D image/mask folders (PNG, JPEG, BMP, TIFF, GIF), paired by file stem; the extensions may differ.

Files are decoded by `decode.read_raster` (MONAI's readers); a GIF mask reads as the values an image viewer shows.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...scenario.schema import Folder2DSource
from .decode import RASTER_EXTENSIONS, read_raster
from .preprocess import (
    check_mask_classes,
    encode_mask,
    normalise_intensity,
    resize_image,
    resize_mask,
    select_channels,
    select_mask_channel,
    to_three_channels,
)

IMAGE_EXTENSIONS = RASTER_EXTENSIONS


@dataclass(frozen=True)
class Pair:
    stem: str
    image: Path
    mask: Path


def _check_dir(folder: Path, what: str) -> None:
    if not folder.exists():
        raise DataError(f"{folder}: {what} folder not found")
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} should be a folder, found a file")


def list_files(folder: Path, what: str, extensions: tuple[str, ...], glob: str = "*") -> dict[str, Path]:
    """stem -> path for every file in `folder` matching `glob`. Hidden files (".*") and subfolders are skipped;
    any other file with an unsupported extension, or two files sharing a stem, is an error."""
    _check_dir(folder, what)
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if not fnmatch.fnmatch(path.name, glob):
            continue
        ext = next((e for e in extensions if path.name.lower().endswith(e)), None)
        if ext is None:
            raise DataError(
                f"{path}: unsupported file extension {''.join(path.suffixes) or '(none)'!r} in the {what} folder; "
                f"supported: {', '.join(extensions)}"
            )
        stem = path.name[: -len(ext)]
        if stem in found:
            raise DataError(f"{path}: two {what} files share the stem {stem!r} ({found[stem].name} and {path.name})")
        found[stem] = path
    return found


def match_pairs(images: dict[str, Path], masks: dict[str, Path], image_dir: Path, mask_dir: Path,
                masks_may_be_extra: bool = False) -> list[Pair]:
    """Pair by stem. An image without a mask (or a mask without an image) is an error naming the files."""
    lonely_images = sorted(set(images) - set(masks))
    if lonely_images:
        names = ", ".join(images[s].name for s in lonely_images[:8])
        more = f" ... ({len(lonely_images)} in all)" if len(lonely_images) > 8 else ""
        raise DataError(f"{image_dir}: image(s) without a mask of the same stem in {mask_dir}: {names}{more}")
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_masks and not masks_may_be_extra:
        names = ", ".join(masks[s].name for s in lonely_masks[:8])
        more = f" ... ({len(lonely_masks)} in all)" if len(lonely_masks) > 8 else ""
        raise DataError(f"{mask_dir}: mask(s) without an image of the same stem in {image_dir}: {names}{more}")
    if not images:
        raise DataError(f"{image_dir}: no image files found (supported: {', '.join(IMAGE_EXTENSIONS)})")
    return [Pair(s, images[s], masks[s]) for s in sorted(images)]


def keyed(files: dict[str, Path], pattern: str, folder: Path, what: str) -> dict[str, Path]:
    """Re-key stem -> path by the `pair_key` regex: its first group (or the whole match) in each stem. A stem it does
    not match, or two files with one key, is an error naming the files."""
    rx = re.compile(pattern)
    out: dict[str, Path] = {}
    for stem, path in files.items():
        m = rx.search(stem)
        if m is None:
            raise DataError(f"{path}: the {what} file name does not match pair_key {pattern!r} (searched in the stem "
                            f"{stem!r}); fix pair_key or narrow the files with image_glob")
        key = m.group(1) if rx.groups else m.group(0)
        if key in out:
            raise DataError(f"{folder}: {what} files {out[key].name} and {path.name} have the same pair_key {key!r}; "
                            "make pair_key capture what tells the cases apart")
        out[key] = path
    return out


def _subset_pairs(src: Folder2DSource, base: Path) -> list[Pair]:
    image_dir, mask_dir = base / src.images, base / src.masks
    images = list_files(image_dir, "image", IMAGE_EXTENSIONS, src.image_glob)
    masks = list_files(mask_dir, "mask", IMAGE_EXTENSIONS, src.mask_glob)
    if images and not masks:
        raise DataError(f"{mask_dir}: the mask folder (data.masks {src.masks!r}) holds no mask files"
                        f"{'' if src.mask_glob == '*' else f' matching mask_glob {src.mask_glob!r}'}; expected one "
                        f"mask per image ({len(images)} images in {image_dir}; supported: {', '.join(IMAGE_EXTENSIONS)})")
    if src.pair_key is not None:
        images = keyed(images, src.pair_key, image_dir, "image")
        masks = keyed(masks, src.pair_key, mask_dir, "mask")
    return match_pairs(images, masks, image_dir, mask_dir, masks_may_be_extra=src.image_glob != "*")


def list_pairs(src: Folder2DSource, root: Path) -> list[Pair]:
    """All (key, image, mask) pairs of a folder source, sorted by key, cut to `limit`. The key is the file stem, or
    what `pair_key` captures in it when images and masks are named differently; with `subsets` it is prefixed by
    the subset folder ("train/ROIs/g0001"), so split patterns can name the subset."""
    _check_dir(root, f"data root of source {src.root!r}")
    if not src.subsets:
        pairs = _subset_pairs(src, root)
    else:
        pairs = []
        for subset in src.subsets:
            _check_dir(root / subset, f"subset {subset!r} (data.subsets)")
            pairs += [Pair(f"{subset}/{p.stem}", p.image, p.mask) for p in _subset_pairs(src, root / subset)]
        pairs.sort(key=lambda p: p.stem)
    if src.limit is not None:
        pairs = pairs[: src.limit]
    return pairs


def read_image(path: Path, src: Folder2DSource) -> np.ndarray:
    """-> (H, W, 3) float32 in [-1, 1] at the original size."""
    raw, alpha = read_raster(path)
    arr = select_channels(raw, src.channels, str(path), alpha_last=alpha)
    img = normalise_intensity(arr, src.intensity, str(path), percentiles=src.percentiles, source_dtype=raw.dtype)
    return to_three_channels(img, src.image_channels)


def read_mask(path: Path, src: Folder2DSource) -> np.ndarray:
    """-> (H, W) int64 class indices at the original size."""
    raw, _ = read_raster(path)
    return encode_mask(select_mask_channel(raw, src.mask, str(path)), src.mask, str(path))


def read_pair(pair: Pair, src: Folder2DSource, image_size: int, num_classes: int, task: str) -> tuple[np.ndarray, np.ndarray]:
    """One pair -> image (3, S, S) float32 in [-1, 1], mask (S, S) int64 in 0..num_classes."""
    img = read_image(pair.image, src)
    mask = read_mask(pair.mask, src)
    if img.shape[:2] != mask.shape:
        raise DataError(
            f"{pair.mask}: mask size {mask.shape[1]}x{mask.shape[0]} (WxH) does not match its image {pair.image.name} "
            f"({img.shape[1]}x{img.shape[0]})"
        )
    check_mask_classes(mask, num_classes, str(pair.mask), task)
    return resize_image(img, image_size), resize_mask(mask, image_size)
