"""Prostate T2 MR phantom: pelvis with fat, bones, muscles, bladder, rectum; label 1 = prostate.

The prostate has a bright peripheral zone and a darker nodular transition zone, so neither a bright nor a
dark threshold finds it. Renderer: (anatomy rng, appearance rng, n, size, variant) -> images (N, 3, H, W)
in [-1, 1], masks (N, H, W).
"""

from __future__ import annotations

import torch

from .appearance import bias_field, blur, finish, paint, rician_noise
from .sampling import Rng, col
from .shapes import Profile, blob, ellipse, grid, smooth_field


def prostate_mr(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = grid(size)
    bcy, bcx = anat.uniform(n, -0.05, 0.05), anat.uniform(n, -0.05, 0.05)
    bry, brx = anat.uniform(n, 0.7, 0.85), anat.uniform(n, 0.9, 1.05)
    d_body = blob(yy, xx, bcy, bcx, bry, brx, None, Profile.random(anat, n, 0.04, 4))
    body = d_body < 1
    inner = d_body < col(anat.uniform(n, 0.8, 0.9))
    # prostate
    py, px = bcy + anat.uniform(n, -0.05, 0.12), bcx + anat.uniform(n, -0.06, 0.06)
    pry, prx = anat.uniform(n, 0.14, 0.22), anat.uniform(n, 0.18, 0.28)
    prof = Profile.random(anat, n, 0.07, 4)
    d_p = blob(yy, xx, py, px, pry, prx, anat.uniform(n, -0.15, 0.15), prof)
    prostate = d_p < 1
    tz = blob(yy, xx, py - pry * 0.25, px, pry * anat.uniform(n, 0.5, 0.7), prx * anat.uniform(n, 0.55, 0.75), None, Profile.random(anat, n, 0.1, 4)) < 1
    tz &= prostate
    pz = prostate & ~tz
    capsule = (d_p >= 1) & (d_p < 1.12)
    periprost = (d_p >= 1.12) & (d_p < col(anat.uniform(n, 1.4, 1.9))) & (smooth_field(anat, n, size, 10)[:, 0] > -0.2)
    # rectum posterior, bladder anterior (sometimes), bones and obturator muscles laterally
    rr = anat.uniform(n, 0.1, 0.15)
    d_rect = ellipse(yy, xx, py + pry + rr * 1.2 + 0.03, px + anat.uniform(n, -0.05, 0.05), rr * 0.8, rr * 1.2)
    bl = ellipse(yy, xx, py - pry - anat.uniform(n, 0.15, 0.25), px, anat.uniform(n, 0.12, 0.22), anat.uniform(n, 0.2, 0.35)) < 1
    bl &= col(anat.uniform(n, 0, 1) < 0.6) & inner
    bones = torch.zeros_like(body)
    marrow = torch.zeros_like(body)
    musc = torch.zeros_like(body)
    for sgn in (-1.0, 1.0):
        br = anat.uniform(n, 0.13, 0.18)
        cxb = bcx + sgn * brx * anat.uniform(n, 0.55, 0.65)
        d_b = ellipse(yy, xx, bcy + anat.uniform(n, -0.05, 0.1), cxb, br, br)
        bones |= d_b < 1
        marrow |= d_b < 0.75
        musc |= ellipse(yy, xx, py, cxb - sgn * br * 1.6, pry * 1.6, br * 0.7, sgn * 0.2 * torch.ones(n)) < 1
    pubis = ellipse(yy, xx, py - pry - anat.uniform(n, 0.12, 0.2), px, torch.full((n,), 0.06), torch.full((n,), 0.14)) < 1
    musc &= ~prostate & ~capsule

    img = torch.zeros(n, 1, size, size)
    img = paint(img, body, 0.78 * (1 + 0.1 * smooth_field(app, n, size, 16)))  # subcutaneous fat bright on T2
    img = paint(img, inner, 0.42 * (1 + 0.15 * smooth_field(app, n, size, 12)))
    img = paint(img, periprost, 0.68 * (1 + 0.2 * smooth_field(app, n, size, 16)))
    img = paint(img, musc, 0.26)
    img = paint(img, bones, 0.1)
    img = paint(img, marrow, 0.6 * (1 + 0.1 * smooth_field(app, n, size, 14)))
    img = paint(img, pubis & ~bones, 0.2)
    img = paint(img, bl & ~prostate & ~capsule, 0.95)
    img = paint(img, d_rect < 1, 0.3)
    img = paint(img, d_rect < 0.6, torch.where(anat.uniform(n, 0, 1) < 0.5, 0.03, 0.8))
    img = paint(img, capsule & ~(d_rect < 1), 0.2)
    img = paint(img, pz, col(app.uniform(n, 0.55, 0.85))[:, None] * (1 + 0.12 * smooth_field(app, n, size, 14)))
    img = paint(img, tz, col(app.uniform(n, 0.3, 0.45))[:, None] * (1 + 0.3 * smooth_field(app, n, size, 18)))
    img = img * bias_field(app, n, size, 0.3) * col(app.uniform(n, 0.85, 1.15))[:, None]
    img = rician_noise(blur(img, 0.006), app, 0.05)
    mask = prostate.to(torch.int64)
    return finish(img), mask
