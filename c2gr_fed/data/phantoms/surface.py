"""Surface-imaging phantoms: colonoscopy (polyp) and dermoscopy (skin lesion), both RGB.

Renderers: (anatomy rng, appearance rng, n, size, variant) -> images (N, 3, H, W) in [-1, 1], masks (N, H, W).
"""

from __future__ import annotations

import math

import torch

from .appearance import blur, finish, gaussian_noise, paint, vignette
from .sampling import Rng, col
from .shapes import Profile, blob, ellipse, grid, rasterise_curves, smooth_field, walk_curves


def endoscopy(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = grid(size)
    fov = ellipse(yy, xx, anat.uniform(n, -0.05, 0.05), anat.uniform(n, -0.05, 0.05), anat.uniform(n, 1.0, 1.2), anat.uniform(n, 1.05, 1.25)) < 1
    # lumen: dark hole; illumination falls with distance from the camera (closer to lumen = farther)
    ly, lx = anat.uniform(n, -0.6, 0.6), anat.uniform(n, -0.6, 0.6)
    d_lum = blob(yy, xx, ly, lx, anat.uniform(n, 0.12, 0.3), anat.uniform(n, 0.12, 0.3), None, Profile.random(anat, n, 0.25, 4))
    rad = torch.sqrt((yy - col(ly)) ** 2 + (xx - col(lx)) ** 2)
    folds = 0.5 + 0.5 * torch.sin(rad * col(anat.uniform(n, 9, 16)) + 2.0 * smooth_field(anat, n, size, 4)[:, 0])
    light = 1.2 * (0.35 + 0.65 * (rad / 1.2).clamp(0, 1)) * (0.85 + 0.15 * folds)
    # polyp: dome away from the lumen centre
    pa = anat.uniform(n, 0, 2 * math.pi)
    pd = anat.uniform(n, 0.35, 0.7)
    pcy, pcx = (ly + pd * torch.sin(pa)).clamp(-0.6, 0.6), (lx + pd * torch.cos(pa)).clamp(-0.6, 0.6)
    pr = anat.uniform(n, 0.15, 0.35)
    d_p = blob(yy, xx, pcy, pcx, pr * anat.uniform(n, 0.7, 1.0), pr, anat.uniform(n, 0, 3.14), Profile.random(anat, n, 0.12, 5))
    polyp = (d_p < 1) & fov
    dome = torch.sqrt((1 - d_p.clamp(max=1) ** 2).clamp_min(0))
    # vessels
    start = anat.uniform(n, -1, 1, 6, 2)
    ves = rasterise_curves(walk_curves(anat, n, start, anat.uniform(n, 0, 6.28, 6), anat.uniform(n, 0.4, 0.9, 6), 3.0), size)

    base = torch.stack([app.uniform(n, 0.8, 0.95), app.uniform(n, 0.38, 0.5), app.uniform(n, 0.32, 0.42)], 1)
    img = base[:, :, None, None] * (1 + 0.08 * smooth_field(app, n, size, 10))
    img = paint(img, ves, torch.tensor([0.55, 0.15, 0.12]), 0.5)
    pcol = base * torch.stack([app.uniform(n, 0.9, 1.08), app.uniform(n, 0.8, 1.2), app.uniform(n, 0.85, 1.2)], 1)
    ptex = 1 + 0.12 * smooth_field(app, n, size, 22)
    img = paint(img, polyp, pcol[:, :, None, None] * ptex * (0.45 + 0.75 * dome[:, None]))
    img = img * light[:, None]
    img = paint(img, d_lum < 1, 0.15 * base[:, :, None, None] * (1 + 0.3 * smooth_field(app, n, size, 8)))
    # specular highlights: small saturated spots on mucosa and on the polyp crest
    spec = (smooth_field(app, n, size, 24)[:, 0] > col(app.uniform(n, 2.4, 3.0))) & (d_lum > 1.3)
    spec |= polyp & (d_p < 0.4) & (smooth_field(app, n, size, 24)[:, 0] > 1.2)
    img = paint(img, spec, 1.0, 0.9)
    img = img * vignette(yy, xx, app.uniform(n, 0.3, 0.6), 1.4) * col(app.uniform(n, 0.8, 1.15))[:, None]
    img = img * fov[:, None]
    img = gaussian_noise(blur(img, 0.006), app, 0.025)
    return finish(img), polyp.to(torch.int64)


def dermoscopy(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = grid(size)
    lcy, lcx = anat.uniform(n, -0.25, 0.25), anat.uniform(n, -0.25, 0.25)
    lr = anat.uniform(n, 0.28, 0.6)
    d_l = blob(yy, xx, lcy, lcx, lr * anat.uniform(n, 0.7, 1.0), lr, anat.uniform(n, 0, 3.14), Profile.random(anat, n, anat.uniform(n, 0.15, 0.4), 14, decay=0.7))
    d_l = d_l * (1 + 0.06 * smooth_field(anat, n, size, 20)[:, 0])
    lesion = d_l < 1
    # hairs: dark thin curves across the field
    nh = 10
    start = anat.uniform(n, -1.2, 1.2, nh, 2)
    hair_on = anat.uniform(n, 0, 1, nh) < anat.uniform(n, 0, 1)[:, None]
    curves = walk_curves(anat, n, start, anat.uniform(n, 0, 6.28, nh), anat.uniform(n, 0.6, 1.6, nh), 0.8)
    curves = torch.where(hair_on[..., None, None], curves, torch.full_like(curves, 5.0))
    hairs = rasterise_curves(curves, size)
    fov_r = anat.uniform(n, 1.05, 1.5)
    fov = (yy**2 + xx**2) < col(fov_r) ** 2

    skin = torch.stack([app.uniform(n, 0.75, 0.95), app.uniform(n, 0.55, 0.72), app.uniform(n, 0.45, 0.62)], 1)
    tone = col(app.uniform(n, 0.65, 1.05))[:, None]
    img = skin[:, :, None, None] * tone * (1 + 0.06 * smooth_field(app, n, size, 12) + 0.04 * smooth_field(app, n, size, 3))
    # lesion: brown, darker centre, globules, lighter regression areas; contrast varies per case
    depth = (1 - d_l.clamp(max=1))[:, None]
    brown = torch.stack([app.uniform(n, 0.42, 0.62), app.uniform(n, 0.24, 0.34), app.uniform(n, 0.12, 0.2)], 1)[:, :, None, None] * tone
    inner = brown * (1 - col(app.uniform(n, 0.1, 0.5))[:, None] * depth) * (1 + 0.18 * smooth_field(app, n, size, 14))
    alpha = col(app.uniform(n, 0.45, 0.95))[:, None] * (0.7 + 0.3 * depth.clamp(0, 0.3) / 0.3)
    img = paint(img, lesion, inner, alpha)
    glob = lesion & (smooth_field(app, n, size, 24)[:, 0] > 1.3)
    img = paint(img, glob, torch.tensor([0.25, 0.15, 0.12]), 0.6)
    regress = lesion & (smooth_field(app, n, size, 8)[:, 0] > 1.0)
    img = paint(img, regress, torch.tensor([0.75, 0.7, 0.8]), 0.35)
    img = paint(img, hairs, torch.tensor([0.12, 0.08, 0.06]), 0.85)
    img = img * vignette(yy, xx, app.uniform(n, 0.2, 0.5), 1.45)
    img = img * fov[:, None] if fov.ndim == 3 else img
    img = gaussian_noise(blur(img, 0.005), app, 0.03)
    return finish(img), lesion.to(torch.int64)
