"""Joint image-mask diffusion: mask code, noise schedule, NJD/BJD objectives, samplers (leaf package)."""

from .masks import decode_masks, encode_masks
from .objectives import (
    TERM_NAMES,
    bjd_terms,
    distillation_terms,
    generator_distillation_loss,
    joint_diffusion_loss,
)
from .samplers import SAMPLERS, make_scheduler, sample_generator, sample_masks_given_images, sample_pairs
from .schedule import NoiseSchedule

__all__ = [
    "NoiseSchedule",
    "SAMPLERS",
    "TERM_NAMES",
    "bjd_terms",
    "decode_masks",
    "distillation_terms",
    "encode_masks",
    "generator_distillation_loss",
    "joint_diffusion_loss",
    "make_scheduler",
    "sample_generator",
    "sample_masks_given_images",
    "sample_pairs",
]
