"""Ultrasound phantoms: breast (curvilinear fan, hypoechoic tumour with posterior shadow) and thyroid
(linear probe, nodule inside the lobe). Speckle is multiplicative Rayleigh noise with lateral grain.

Renderers: (anatomy rng, appearance rng, n, size, variant) -> images (N, 3, H, W) in [-1, 1], masks (N, H, W).
"""

from __future__ import annotations

import math

import torch

from .appearance import blur, finish, gaussian_noise, paint, speckle
from .sampling import Rng, col
from .shapes import Profile, blob, ellipse, grid, smooth_field


def _echo(img: torch.Tensor, app: Rng, n: int, size: int, gain: torch.Tensor) -> torch.Tensor:
    """Speckle, log-like compression and electronic noise: (N, 1, H, W) -> (N, 1, H, W)."""
    img = img * speckle(app, n, size, 0.01, aniso=1.6)
    img = img.clamp_min(0) ** 0.8 * 0.85 * gain.view(-1, 1, 1, 1)
    return gaussian_noise(blur(img, 0.004), app, 0.03)


def breast_us(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = grid(size)
    apex_y = -1.6
    rho = torch.sqrt((yy - apex_y) ** 2 + xx**2)
    theta = torch.atan2(xx, yy - apex_y)  # 0 = straight down
    half = anat.uniform(n, 0.45, 0.6)
    r0, r1 = 0.6, 2.65
    fov = (theta.abs() < col(half)) & (rho > r0) & (rho < r1)
    depth = ((rho - r0) / (r1 - r0)).expand(n, -1, -1)
    wav = 0.04 * smooth_field(anat, n, size, (2, 5))[:, 0]
    d1, d2, d3 = col(anat.uniform(n, 0.18, 0.3)), col(anat.uniform(n, 0.55, 0.7)), col(anat.uniform(n, 0.75, 0.88))
    skin = depth < 0.04
    subq = (depth >= 0.04) & (depth < d1 + wav)
    gland = (depth >= d1 + wav) & (depth < d2 + wav)
    muscle = (depth >= d3 + wav)
    lobules = subq & (smooth_field(anat, n, size, 10)[:, 0] > 0.6)
    # tumour in the glandular layer
    ta = anat.uniform(n, -0.6, 0.6) * half
    td = anat.uniform(n, 0.3, 0.55)
    tr = anat.uniform(n, 0.12, 0.28)
    rc = r0 + td * (r1 - r0)
    tcy, tcx = apex_y + rc * torch.cos(ta), rc * torch.sin(ta)
    rough = anat.uniform(n, 0.1, 0.35)
    d_t = blob(yy, xx, tcy, tcx, tr * anat.uniform(n, 0.55, 0.9), tr, anat.uniform(n, -0.3, 0.3), Profile.random(anat, n, rough, 10, decay=0.6))
    tumour = (d_t < 1) & fov
    shadow = ((theta - col(ta)).abs() < col(tr / rc * 0.8)) & (rho > col(rc)) & ~tumour
    # cyst-like distractor: anechoic round with posterior enhancement, elsewhere
    ca = -ta.sign() * anat.uniform(n, 0.3, 0.8) * half
    cr = anat.uniform(n, 0.05, 0.12)
    crc = r0 + anat.uniform(n, 0.25, 0.6) * (r1 - r0)
    cyst = (ellipse(yy, xx, apex_y + crc * torch.cos(ca), crc * torch.sin(ca), cr * 0.8, cr) < 1) & ~tumour & col(anat.uniform(n, 0, 1) < 0.6)
    enhance = ((theta - col(ca)).abs() < col(cr / crc * 0.8)) & (rho > col(crc)) & ~cyst & col(cyst.flatten(1).any(1))

    img = torch.zeros(n, 1, size, size)
    img = paint(img, fov, 0.45)
    img = paint(img, skin, 0.85)
    img = paint(img, subq, 0.3 + 0.1 * smooth_field(app, n, size, 12))
    img = paint(img, lobules, 0.18)
    img = paint(img, gland, 0.62 * (1 + 0.25 * smooth_field(app, n, size, (6, 14))))
    mstr = 0.4 * (1 + 0.3 * torch.sin(depth * 60.0 + 3 * smooth_field(app, n, size, 4)[:, 0]))
    img = paint(img, muscle, mstr[:, None])
    img = paint(img, tumour, col(app.uniform(n, 0.06, 0.16))[:, None] * (1 + 0.5 * (smooth_field(app, n, size, 16) > 1.0).float()))
    img = img * (1 - col(app.uniform(n, 0.3, 0.65))[:, None] * shadow[:, None].float())
    img = img * (1 + 0.5 * enhance[:, None].float())
    img = paint(img, cyst, 0.04)
    tgc = 1.1 - 0.35 * depth[:, None] * col(app.uniform(n, 0.5, 1.2))[:, None]
    img = img * tgc
    img = _echo(img, app, n, size, app.uniform(n, 0.8, 1.2)) * fov[:, None]
    return finish(img), tumour.to(torch.int64)


def thyroid_us(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = grid(size)
    margin = col(anat.uniform(n, 0.0, 0.15))
    fov = ((xx.abs() < 1 - margin) & (yy > -0.9)).expand(n, -1, -1)
    depth = ((yy + 0.9) / 1.9).expand(n, -1, -1)
    wav = 0.04 * smooth_field(anat, n, size, (2, 5))[:, 0]
    side = anat.sign(n)  # trachea side
    strap = (depth > 0.05) & (depth < col(anat.uniform(n, 0.15, 0.22)) + wav)
    # thyroid lobe: wide ellipse; trachea at one side; carotid on the other
    lcy, lcx = anat.uniform(n, -0.1, 0.15), anat.uniform(n, -0.15, 0.15)
    lry, lrx = anat.uniform(n, 0.3, 0.45), anat.uniform(n, 0.5, 0.75)
    d_lobe = blob(yy, xx, lcy, lcx, lry, lrx, anat.uniform(n, -0.2, 0.2), Profile.random(anat, n, 0.08, 4))
    lobe = (d_lobe < 1) & ~strap
    tr_r = anat.uniform(n, 0.25, 0.35)
    d_tr = ellipse(yy, xx, lcy + 0.05, lcx + side * (lrx + tr_r * 0.6), tr_r, tr_r)
    trachea_wall = (d_tr < 1) & (d_tr > 0.85) & (yy < col(lcy + 0.05))
    trachea_shadow = (d_tr < 1) & ~trachea_wall | ((xx - col(lcx + side * (lrx + tr_r * 0.6))).abs() < col(tr_r) * 0.8) & (yy > col(lcy + 0.05))
    car_r = anat.uniform(n, 0.12, 0.2)
    carotid = ellipse(yy, xx, lcy + anat.uniform(n, -0.05, 0.15), lcx - side * (lrx + car_r * 0.7), car_r, car_r) < 1
    lobe &= ~carotid & ~(d_tr < 1)
    # nodule inside the lobe, with a halo; echogenicity varies per case
    na = anat.uniform(n, 0, 2 * math.pi)
    nr = anat.uniform(n, 0.12, 0.25)
    ncy, ncx = lcy + 0.3 * lry * torch.sin(na), lcx + 0.4 * lrx * torch.cos(na)
    d_n = blob(yy, xx, ncy, ncx, nr * anat.uniform(n, 0.7, 1.0), nr, anat.uniform(n, -0.4, 0.4), Profile.random(anat, n, anat.uniform(n, 0.05, 0.25), 6))
    nodule = (d_n < 1) & fov
    halo = nodule & (d_n > 0.82)
    cystic = nodule & (smooth_field(anat, n, size, 10)[:, 0] > 0.5) & col(anat.uniform(n, 0, 1) < 0.4)

    img = torch.zeros(n, 1, size, size)
    img = paint(img, fov, 0.35 + 0.08 * smooth_field(app, n, size, 8))
    img = paint(img, fov & (depth < 0.05), 0.8)
    img = paint(img, strap, 0.25)
    img = paint(img, lobe, col(app.uniform(n, 0.55, 0.75))[:, None] * (1 + 0.1 * smooth_field(app, n, size, 14)))
    kind = app.uniform(n, 0, 1)
    echo = torch.where(kind < 0.45, 0.25, torch.where(kind < 0.8, 0.55, 0.8)) * app.uniform(n, 0.85, 1.15)
    img = paint(img, nodule, col(echo)[:, None] * (1 + 0.2 * smooth_field(app, n, size, 16)))
    img = paint(img, halo, 0.15)
    img = paint(img, cystic, 0.05)
    img = paint(img, carotid, 0.04)
    img = paint(img, trachea_shadow & fov, 0.08)
    img = paint(img, trachea_wall & fov, 0.9)
    img = img * (1.1 - 0.3 * depth[:, None])
    img = _echo(img, app, n, size, app.uniform(n, 0.8, 1.2)) * fov[:, None]
    return finish(img), nodule.to(torch.int64)
