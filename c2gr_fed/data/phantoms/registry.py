"""The table of phantom generators: variants (first = default), class names and the renderer of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .abdomen import PHASES, abdominal_ct
from .cardiac import CARDIAC_VENDORS, cardiac_mr
from .histology import cells, histology
from .neuro import SEQUENCES, brain_mr
from .pelvis import prostate_mr
from .retina import FUNDUS_SITES, fundus, oct_layers, retinal_vessels
from .sampling import Rng
from .surface import dermoscopy, endoscopy
from .ultrasound import breast_us, thyroid_us
from .xray import chest_xray

Renderer = Callable[[Rng, Rng, int, int, str], tuple[torch.Tensor, torch.Tensor]]
"""(anatomy rng, appearance rng, n, image size, variant) -> (images (N, 3, H, W) in [-1, 1], masks (N, H, W) int64)."""


@dataclass(frozen=True)
class PhantomSpec:
    """One phantom department kind.

    objective_shift: True when variants change *what is segmented* (masks differ across variants for the
    same seed); False when variants change appearance only (masks identical across variants).
    """

    name: str
    variants: tuple[str, ...]
    class_names: tuple[str, ...]
    render: Renderer
    objective_shift: bool = False


_D = ("default",)

SPECS: dict[str, PhantomSpec] = {
    s.name: s
    for s in (
        PhantomSpec("fundus", tuple(FUNDUS_SITES), ("optic disc", "optic cup"), fundus),
        PhantomSpec("cardiac_mr", tuple(CARDIAC_VENDORS), ("left ventricle", "myocardium", "right ventricle"), cardiac_mr),
        PhantomSpec("brain_mr", tuple(SEQUENCES), ("necrotic core", "oedema", "enhancing tumour"), brain_mr),
        PhantomSpec("abdominal_ct", tuple(PHASES), ("organ", "tumour"), abdominal_ct, objective_shift=True),
        PhantomSpec("histology", _D, ("gland",), histology),
        PhantomSpec("breast_us", _D, ("breast tumour",), breast_us),
        PhantomSpec("chest_xray", _D, ("infection",), chest_xray),
        PhantomSpec("endoscopy", _D, ("polyp",), endoscopy),
        PhantomSpec("dermoscopy", _D, ("skin lesion",), dermoscopy),
        PhantomSpec("retinal_vessels", _D, ("vessel",), retinal_vessels),
        PhantomSpec("oct_layers", _D, ("inner retina", "outer nuclear layer", "retinal pigment epithelium"), oct_layers),
        PhantomSpec("cells", _D, ("cytoplasm", "nucleus"), cells),
        PhantomSpec("thyroid_us", _D, ("thyroid nodule",), thyroid_us),
        PhantomSpec("prostate_mr", _D, ("prostate",), prostate_mr),
    )
}
