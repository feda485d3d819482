"""Microscopy phantoms: H&E colon histology (glands) and phase-contrast-like cell culture (cytoplasm,
nucleus). H&E colour uses a Beer-Lambert stain model: RGB = exp(-(h * H + e * E)).

Renderers: (anatomy rng, appearance rng, n, size, variant) -> images (N, 3, H, W) in [-1, 1], masks (N, H, W).
"""

from __future__ import annotations

import math

import torch

from .appearance import blur, finish, gaussian_noise, paint
from .sampling import Rng, col
from .shapes import Profile, blob, grid, smooth_field, sparse_dots

H_OD = torch.tensor([0.65, 0.70, 0.29]) * 1.6  # haematoxylin optical density per unit stain
E_OD = torch.tensor([0.05, 0.95, 0.45]) * 0.9  # eosin


def histology(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = grid(size)
    gland = torch.zeros(n, size, size, dtype=torch.bool)
    lumen = torch.zeros_like(gland)
    ring_nuc_zone = torch.zeros_like(gland)
    for g in range(5):
        on = anat.uniform(n, 0, 1) < (1.0 if g < 2 else 0.55)
        r = anat.uniform(n, 0.22, 0.42)
        d = blob(yy, xx, anat.uniform(n, -0.85, 0.85), anat.uniform(n, -0.85, 0.85), r * anat.uniform(n, 0.55, 1.0), r, anat.uniform(n, 0, 3.14), Profile.random(anat, n, 0.15, 5))
        m = (d < 1) & col(on)
        gland |= m
        lumen |= m & (d < col(anat.uniform(n, 0.35, 0.7)))
        ring_nuc_zone |= m & (d > 0.72)
    lumen &= ~ring_nuc_zone
    px = max(1, round(size / 28))
    dens = torch.where(ring_nuc_zone, 0.3, torch.where(gland & ~lumen, 0.04, 0.012))
    infl = smooth_field(anat, n, size, 6)[:, 0] > col(anat.uniform(n, 1.0, 1.8))  # inflammatory clusters
    dens = torch.where(infl & ~gland, 0.3, dens)
    nuclei = sparse_dots(anat, dens / px**2, px) & ~lumen
    tears = (smooth_field(anat, n, size, 10)[:, 0] > col(anat.uniform(n, 1.6, 2.4))) & ~gland  # white spaces

    fib = 0.6 * smooth_field(app, n, size, (6, 12))[:, 0] + 0.5 * smooth_field(app, n, size, 16)[:, 0]
    e = col(app.uniform(n, 0.35, 0.65)) * (1 + 0.3 * fib)
    h = torch.full_like(e, 0.06)
    e = torch.where(gland & ~lumen, col(app.uniform(n, 0.3, 0.5)), e)
    h = torch.where(gland & ~lumen, col(app.uniform(n, 0.18, 0.32)), h)
    mucin = lumen & (smooth_field(app, n, size, 10)[:, 0] > 0.5)
    e = torch.where(lumen, 0.04, e)
    h = torch.where(lumen, 0.02, h)
    e = torch.where(mucin, 0.2, e)
    h = torch.where(mucin, 0.12, h)
    e = torch.where(tears, 0.02, e)
    h = torch.where(tears, 0.01, h)
    h = torch.where(nuclei, col(app.uniform(n, 0.7, 1.1)) * (1 + 0.2 * smooth_field(app, n, size, 30)[:, 0]), h)
    stain = col(app.uniform(n, 0.75, 1.3))
    od = (h * stain)[:, None] * H_OD.view(1, 3, 1, 1) + e[:, None] * E_OD.view(1, 3, 1, 1)
    img = torch.exp(-od.clamp_min(0))
    img = gaussian_noise(blur(img, 0.005), app, 0.03)
    return finish(img), gland.to(torch.int64)


def cells(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Phase-contrast-like culture: cytoplasm slightly darker than the medium with a bright halo outside
    the border (unlabelled), nuclei of variable tone with nucleoli. Later cells overlap earlier ones."""
    yy, xx = grid(size)
    mask = torch.zeros(n, size, size, dtype=torch.int64)
    bgv = col(app.uniform(n, 0.45, 0.6))[:, None]
    img = bgv * (1 + 0.1 * smooth_field(app, n, size, 3)) * torch.ones(1, 3, 1, 1) * torch.tensor([0.9, 1.0, 0.92]).view(1, 3, 1, 1)
    tex_c = 1 + 0.15 * smooth_field(app, n, size, 20)
    tex_n = 1 + 0.12 * smooth_field(app, n, size, 28)
    nucleoli_f = smooth_field(anat, n, size, 30)[:, 0] > 1.0
    for c in range(7):
        on = anat.uniform(n, 0, 1) < (1.0 if c < 3 else 0.6)
        r = anat.uniform(n, 0.14, 0.28)
        cy, cx = anat.uniform(n, -0.8, 0.8), anat.uniform(n, -0.8, 0.8)
        ang = anat.uniform(n, 0, 3.14)
        d = blob(yy, xx, cy, cx, r * anat.uniform(n, 0.5, 1.0), r, ang, Profile.random(anat, n, 0.25, 5))
        cell = (d < 1) & col(on)
        halo = (d >= 1) & (d < 1.25) & col(on) & (mask == 0)
        nf = anat.uniform(n, 0.3, 0.5)
        na = anat.uniform(n, 0, 2 * math.pi)
        no = r * 0.25 * anat.uniform(n, 0, 1)
        d_n = blob(yy, xx, cy + no * torch.sin(na), cx + no * torch.cos(na), r * nf * 0.9, r * nf, ang, Profile.random(anat, n, 0.06, 3))
        nuc = (d_n < 1) & cell
        tone = col(app.uniform(n, -0.18, 0.08))[:, None]
        img = paint(img, halo, bgv + 0.25 * (1.25 - d)[:, None] / 0.25 * col(app.uniform(n, 0.3, 1.0))[:, None])
        img = paint(img, cell, (bgv + tone) * tex_c)
        ntone = col(app.uniform(n, -0.2, 0.2))[:, None]
        img = paint(img, nuc, (bgv + tone + ntone) * tex_n)
        nucleoli = nuc & (d_n < 0.5) & nucleoli_f
        img = paint(img, nucleoli, bgv * 0.5)
        mask[cell] = 1
        mask[nuc] = 2
    img = gaussian_noise(blur(img, 0.006), app, 0.04)
    return finish(img), mask
