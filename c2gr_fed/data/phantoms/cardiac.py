"""Cardiac cine MR short-axis phantom: LV blood pool (1), myocardium (2), RV (3).

Renderer: (anatomy rng, appearance rng, n, size, vendor) -> images (N, 3, H, W) in [-1, 1], masks (N, H, W).
"""

from __future__ import annotations

import math

import torch

from .appearance import bias_field, blur, finish, paint, rician_noise
from .sampling import Rng, col
from .shapes import Profile, blob, ellipse, grid, smooth_field

# vendor: blood/myocardium/fat contrast, gamma, bias-field strength, Rician noise sd, blur (fraction of side)
CARDIAC_VENDORS: dict[str, dict] = {
    "siemens": dict(blood=0.85, myo=0.28, fat=0.8, gamma=1.0, bias=0.25, noise=0.05, blur=0.006),
    "philips": dict(blood=0.95, myo=0.32, fat=0.7, gamma=0.8, bias=0.35, noise=0.06, blur=0.0),
    "ge": dict(blood=0.75, myo=0.22, fat=0.85, gamma=1.2, bias=0.3, noise=0.07, blur=0.01),
    "canon": dict(blood=0.8, myo=0.35, fat=0.75, gamma=1.0, bias=0.45, noise=0.045, blur=0.014),
}


def cardiac_mr(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    v = CARDIAC_VENDORS[variant]
    yy, xx = grid(size)
    # body, subcutaneous fat, lungs, liver, aorta
    bcy, bcx = anat.uniform(n, -0.05, 0.15), anat.uniform(n, -0.1, 0.1)
    bry, brx = anat.uniform(n, 0.65, 0.85), anat.uniform(n, 0.95, 1.15)
    d_body = blob(yy, xx, bcy, bcx, bry, brx, anat.uniform(n, -0.1, 0.1), Profile.random(anat, n, 0.04, 4))
    body = d_body < 1
    fat = body & (d_body > col(anat.uniform(n, 0.82, 0.92)))
    # heart geometry
    hy, hx = bcy + anat.uniform(n, -0.2, 0.05), bcx + anat.uniform(n, -0.05, 0.2)
    r_lv = anat.uniform(n, 0.14, 0.26)
    t_myo = anat.uniform(n, 0.06, 0.1)
    prof = Profile.random(anat, n, 0.06, 3)
    d_lv = blob(yy, xx, hy, hx, r_lv, r_lv * anat.uniform(n, 0.9, 1.1), None, prof)
    lv = d_lv < 1
    epi = blob(yy, xx, hy, hx, r_lv + t_myo, (r_lv + t_myo) * anat.uniform(n, 0.95, 1.05), None, prof) < 1
    myo = epi & ~lv
    # RV: ellipse offset towards the patient's right (image left, anterior), minus the epicardium
    ra = math.pi + anat.uniform(n, -0.6, 0.1)
    dist = (r_lv + t_myo) * anat.uniform(n, 0.7, 1.0)
    rv_ry, rv_rx = (r_lv + t_myo) * anat.uniform(n, 1.0, 1.4), (r_lv + t_myo) * anat.uniform(n, 0.7, 1.1)
    d_rv = blob(yy, xx, hy + dist * torch.sin(ra), hx + dist * torch.cos(ra), rv_ry, rv_rx, ra + math.pi / 2, Profile.random(anat, n, 0.08, 3))
    epi_out = blob(yy, xx, hy, hx, r_lv + t_myo * 1.35, (r_lv + t_myo * 1.35), None, prof) < 1
    rv = (d_rv < 1) & ~epi_out
    rv_wall = (d_rv < 1.18) & ~(d_rv < 1) & ~epi
    # papillary muscles: small dark dots inside the LV (labelled LV)
    pa = anat.uniform(n, 0, 2 * math.pi, 2)
    pap = torch.zeros_like(lv)
    for i in range(2):
        pr = r_lv * anat.uniform(n, 0.15, 0.25)
        pd = r_lv * 0.65
        pap |= ellipse(yy, xx, hy + pd * torch.sin(pa[:, i]), hx + pd * torch.cos(pa[:, i]), pr, pr) < 1
    pap &= lv
    # pericardial fat (bright, unlabelled) along part of the heart border
    heart = epi | (d_rv < 1.18)
    d_heart = blob(yy, xx, hy, hx, (r_lv + t_myo) * 1.8, (r_lv + t_myo) * 2.0, ra, None)
    peri = (d_heart < 1.05) & ~heart & (smooth_field(anat, n, size, 6)[:, 0] > 0.3)
    # lungs, liver, aorta, spine
    lungs = torch.zeros_like(lv)
    for s in (-1.0, 1.0):
        lungs |= blob(yy, xx, bcy - 0.05 + anat.uniform(n, -0.05, 0.05), bcx + s * brx * 0.52, bry * 0.6, brx * 0.32, anat.uniform(n, -0.3, 0.3), Profile.random(anat, n, 0.08, 3)) < 1
    lungs &= ~(d_heart < 1.0) & (d_body < 0.8)
    liver = (ellipse(yy, xx, bcy + bry * 0.9, bcx - brx * 0.35, bry * 0.45, brx * 0.5) < 1) & body & ~fat
    ao_r = anat.uniform(n, 0.05, 0.075)
    aorta = ellipse(yy, xx, hy + r_lv + t_myo + anat.uniform(n, 0.08, 0.2), hx + anat.uniform(n, 0.1, 0.3), ao_r, ao_r) < 1
    spine = ellipse(yy, xx, bcy + bry * 0.72, bcx + anat.uniform(n, -0.05, 0.05), ao_r * 1.6, ao_r * 1.8) < 1

    img = torch.zeros(n, 1, size, size)
    tissue = 0.38 * (1 + 0.15 * smooth_field(app, n, size, 12))
    img = paint(img, body, tissue)
    img = paint(img, fat, torch.tensor(v["fat"]) * (1 + 0.1 * smooth_field(app, n, size, 16)))
    img = paint(img, liver, 0.45)
    img = paint(img, lungs, 0.06 + 0.08 * (smooth_field(app, n, size, 20) > 1.2).float())
    img = paint(img, peri, v["fat"])
    img = paint(img, spine, 0.55)
    img = paint(img, aorta, v["blood"])
    blood = col(app.uniform(n, 0.85, 1.1) * v["blood"])[:, None] * (1 + 0.08 * smooth_field(app, n, size, 10))
    img = paint(img, lv | rv, blood)
    img = paint(img, myo | rv_wall, v["myo"] * (1 + 0.2 * smooth_field(app, n, size, 14)))
    img = paint(img, pap, v["myo"] * 1.2)
    img = img * bias_field(app, n, size, v["bias"]) * col(app.uniform(n, 0.8, 1.15))[:, None]
    img = blur(img, v["blur"])
    img = rician_noise(img, app, v["noise"])
    mask = torch.zeros(n, size, size, dtype=torch.int64)
    mask[lv] = 1
    mask[myo] = 2
    mask[rv] = 3
    return finish(img, v["gamma"]), mask
