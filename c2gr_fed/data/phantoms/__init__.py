"""Procedural phantom departments: seeded, vectorised image/mask generators per modality and objective.

Public API:
    generate_phantom(generator, variant, n, image_size, seed) -> (images (N, 3, H, W) float32 in [-1, 1],
                                                                 masks (N, H, W) int64 in {0..K})
    phantom_variants(generator)    -> allowed variant names, the first is the default
    phantom_num_classes(generator) -> K, the number of foreground classes
    phantom_class_names(generator) -> default class names in label order (label k = names[k - 1])

The anatomy (masks) of a seed is identical under every appearance variant (site, vendor, sequence); for
`abdominal_ct` the variant is the segmentation objective (organ), so its masks differ by design.
"""

from __future__ import annotations

import torch

from .registry import SPECS, PhantomSpec
from .sampling import Rng, stream_seed

__all__ = ["generate_phantom", "phantom_variants", "phantom_num_classes", "phantom_class_names", "PhantomSpec", "SPECS"]


def _spec(generator: str) -> PhantomSpec:
    try:
        return SPECS[generator]
    except KeyError:
        raise ValueError(f"unknown phantom generator {generator!r}; allowed: {', '.join(SPECS)}") from None


def phantom_variants(generator: str) -> tuple[str, ...]:
    """Allowed variant names of `generator`; the first is the default."""
    return _spec(generator).variants


def phantom_num_classes(generator: str) -> int:
    """Number K of foreground classes (mask values 1..K)."""
    return len(_spec(generator).class_names)


def phantom_class_names(generator: str) -> tuple[str, ...]:
    """Default class names in label order."""
    return _spec(generator).class_names


def generate_phantom(generator: str, variant: str, n: int, image_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Render n image/mask pairs.

    Returns images (N, 3, H, W) float32 in [-1, 1] (grey modalities repeated over 3 channels) and masks
    (N, H, W) int64 in {0..K}, 0 = background. Bit-identical for identical arguments.
    """
    spec = _spec(generator)
    if variant not in spec.variants:
        raise ValueError(f"unknown variant {variant!r} for phantom generator {generator!r}; allowed: {', '.join(spec.variants)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    anat = Rng(stream_seed(generator, seed, "anatomy"))
    app = Rng(stream_seed(generator, seed, "appearance"))
    images, masks = spec.render(anat, app, int(n), int(image_size), variant)
    images = images.clamp(-1.0, 1.0).to(torch.float32).contiguous()
    masks = masks.to(torch.int64).contiguous()
    if images.shape != (n, 3, image_size, image_size) or masks.shape != (n, image_size, image_size):
        raise RuntimeError(f"phantom {generator}/{variant} rendered images {tuple(images.shape)}, masks {tuple(masks.shape)}")
    return images, masks
