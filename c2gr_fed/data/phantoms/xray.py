"""Chest X-ray phantom (QaTa-COV19-like): lungs, ribs, clavicles, mediastinum, heart; label 1 = infection
opacities inside the lungs. Renderer: (anatomy rng, appearance rng, n, size, variant) -> images
(N, 3, H, W) in [-1, 1], masks (N, H, W).
"""

from __future__ import annotations

import torch

from .appearance import blur, finish, gaussian_noise, paint
from .sampling import Rng, col
from .shapes import Profile, blob, ellipse, grid, smooth_field


def chest_xray(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = grid(size)
    cx = anat.uniform(n, -0.06, 0.06)
    cy = anat.uniform(n, -0.05, 0.08)
    thorax = ellipse(yy, xx, cy + 0.1, cx, anat.uniform(n, 1.0, 1.2), anat.uniform(n, 0.85, 1.0)) < 1
    lungs = torch.zeros_like(thorax)
    lung_d = []
    for sgn in (-1.0, 1.0):
        lry, lrx = anat.uniform(n, 0.6, 0.75), anat.uniform(n, 0.26, 0.34)
        d = blob(yy, xx, cy - 0.05, cx + sgn * anat.uniform(n, 0.36, 0.45), lry, lrx, sgn * anat.uniform(n, 0.0, 0.12), Profile.random(anat, n, 0.06, 3))
        lung_d.append(d)
        lungs |= d < 1
    dome = cy + anat.uniform(n, 0.35, 0.5)
    lungs &= yy < col(dome) + 0.12 * torch.cos(xx * 2.5)
    heart = ellipse(yy, xx, cy + anat.uniform(n, 0.2, 0.32), cx + anat.uniform(n, 0.08, 0.18), anat.uniform(n, 0.22, 0.3), anat.uniform(n, 0.28, 0.36)) < 1
    lungs &= ~heart
    medi = (xx - col(cx)).abs() < col(anat.uniform(n, 0.1, 0.16))
    lungs &= ~medi
    # ribs: arcs over each hemithorax; clavicles at the top
    ribs = torch.zeros(n, size, size)
    for k in range(9):
        yk = cy - 0.75 + k * anat.uniform(n, 0.17, 0.21)
        for sgn in (-1.0, 1.0):
            u = ((xx - col(cx)) * sgn).clamp_min(0)
            curve = col(yk) - 0.3 * u + 0.6 * u * u
            band = (yy - curve).abs() < col(anat.uniform(n, 0.025, 0.04))
            band &= ((xx - col(cx)) * sgn > 0.08) & ((xx - col(cx)).abs() < 0.92)
            ribs = ribs + band.float()
    clav = ((yy - (col(cy - 0.72) - 0.18 * (xx - col(cx)).abs())).abs() < 0.035) & ((xx - col(cx)).abs() > 0.12)
    # infection: patchy opacities inside the lungs, biased to lower and peripheral zones
    f = smooth_field(anat, n, size, 6)[:, 0] + 0.5 * smooth_field(anat, n, size, 12)[:, 0]
    f = f + col(anat.uniform(n, 0.2, 0.8)) * (yy - col(cy)) + 0.4 * (xx - col(cx)).abs()
    t = col(anat.uniform(n, 0.3, 1.0))
    inf = lungs & (f > t)
    strength = (0.2 + 0.15 * ((f - t) / 0.6).clamp(0, 1)) * col(app.uniform(n, 0.7, 1.2))

    img = torch.full((n, 1, size, size), 0.08)
    img = paint(img, thorax, 0.55 * (1 + 0.05 * smooth_field(app, n, size, 6)))
    img = paint(img, lungs, (0.18 + 0.06 * smooth_field(app, n, size, 10)).clamp_min(0.05))
    # vascular markings radiating from the hila
    marks = lungs & (smooth_field(anat, n, size, (10, 14))[:, 0].abs() < 0.12)
    img = img + 0.06 * marks[:, None].float()
    img = img + (strength * inf.float())[:, None]
    img = img + 0.13 * ribs[:, None] * thorax[:, None].float()
    img = img + 0.18 * clav[:, None].float()
    img = paint(img, medi & thorax, 0.72)
    img = paint(img, heart, 0.68)
    img = paint(img, thorax & (yy > col(dome) + 0.12 * torch.cos(xx * 2.5) + 0.05) & ~heart & ~medi, 0.62)
    img = img * col(app.uniform(n, 0.8, 1.2))[:, None] + col(app.uniform(n, -0.08, 0.08))[:, None]
    img = gaussian_noise(blur(img, 0.012), app, 0.035)
    return finish(img), inf.to(torch.int64)
