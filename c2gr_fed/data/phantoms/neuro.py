"""Brain tumour MR phantom (BraTS-like): necrotic core (1), oedema (2), enhancing tumour ring (3).

The sequence variant (t1, t1ce, t2, flair) sets each tissue's intensity; anatomy is the same for a seed.
Renderer: (anatomy rng, appearance rng, n, size, sequence) -> images (N, 3, H, W) in [-1, 1], masks (N, H, W).
"""

from __future__ import annotations

import math

import torch

from .appearance import bias_field, blur, finish, paint, rician_noise
from .sampling import Rng, col
from .shapes import Profile, blob, ellipse, grid, smooth_field

# tissue intensities per sequence: wm, gm, csf, scalp fat, skull, core, oedema, enhancing, vessels
SEQUENCES: dict[str, dict[str, float]] = {
    "t1": dict(wm=0.78, gm=0.55, csf=0.12, scalp=0.9, skull=0.08, core=0.22, oed=0.42, enh=0.5, vessel=0.3, noise=0.04, blur=0.004),
    "t1ce": dict(wm=0.72, gm=0.52, csf=0.12, scalp=0.85, skull=0.08, core=0.2, oed=0.4, enh=0.97, vessel=0.95, noise=0.045, blur=0.004),
    "t2": dict(wm=0.33, gm=0.5, csf=0.95, scalp=0.62, skull=0.05, core=0.9, oed=0.78, enh=0.55, vessel=0.05, noise=0.04, blur=0.006),
    "flair": dict(wm=0.42, gm=0.55, csf=0.08, scalp=0.82, skull=0.06, core=0.3, oed=0.85, enh=0.62, vessel=0.1, noise=0.05, blur=0.01),
}


def brain_mr(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    s = SEQUENCES[variant]
    yy, xx = grid(size)
    hcy, hcx = anat.uniform(n, -0.05, 0.05), anat.uniform(n, -0.05, 0.05)
    hry, hrx = anat.uniform(n, 0.85, 0.95), anat.uniform(n, 0.68, 0.8)
    hang = anat.uniform(n, -0.15, 0.15)
    d_head = blob(yy, xx, hcy, hcx, hry, hrx, hang, Profile.random(anat, n, 0.02, 3))
    head = d_head < 1
    skull = head & (d_head >= 0.9)
    scalp = head & (d_head >= 0.96)
    skull = skull & ~scalp
    brain = d_head < 0.86
    csf_rim = brain & (d_head >= 0.83)
    fold = smooth_field(anat, n, size, 8)[:, 0]
    wm = brain & (d_head < 0.62 + 0.12 * fold)
    sulci = brain & ~wm & (d_head > 0.55) & ((smooth_field(anat, n, size, 12)[:, 0]).abs() < 0.07)
    # ventricles: two small tilted ellipses
    vent = torch.zeros_like(brain)
    vr = anat.uniform(n, 0.05, 0.09)
    for sgn in (-1.0, 1.0):
        vent |= ellipse(yy, xx, hcy - 0.05, hcx + sgn * 0.1, vr * 2.2, vr, hang + sgn * 0.35) < 1
    falx = brain & ((xx - col(hcx) - (yy - col(hcy)) * torch.tan(col(hang))).abs() < 0.012) & (d_head > 0.3)
    vessels = brain & (smooth_field(anat, n, size, 16)[:, 0] > col(anat.uniform(n, 2.0, 2.6)))
    # tumour: centre inside the brain; nested core < enhancing ring < tumour; oedema around
    ta = anat.uniform(n, 0, 2 * math.pi)
    tr = anat.uniform(n, 0.0, 0.45)
    tcy, tcx = hcy + tr * hry * torch.sin(ta), hcx + tr * hrx * torch.cos(ta)
    rt = anat.uniform(n, 0.14, 0.28)
    tprof = Profile.random(anat, n, 0.2, 5)
    d_t = blob(yy, xx, tcy, tcx, rt, rt * anat.uniform(n, 0.8, 1.2), anat.uniform(n, 0, 3.14), tprof)
    core_f = anat.uniform(n, 0.4, 0.75)
    tumour = (d_t < 1) & brain
    core = tumour & (d_t < col(core_f))
    enh = tumour & ~core
    re = rt * anat.uniform(n, 1.35, 2.0)
    d_e = blob(yy, xx, tcy, tcx, re, re * anat.uniform(n, 0.7, 1.2), anat.uniform(n, 0, 3.14), Profile.random(anat, n, 0.35, 6))
    oed = (d_e < 1) & brain & ~tumour & ~vent

    img = torch.zeros(n, 1, size, size)
    img = paint(img, scalp, s["scalp"] * (1 + 0.15 * smooth_field(app, n, size, 20)))
    img = paint(img, skull, s["skull"])
    img = paint(img, brain, s["gm"] * (1 + 0.08 * smooth_field(app, n, size, 16)))
    img = paint(img, wm, s["wm"] * (1 + 0.05 * smooth_field(app, n, size, 16)))
    img = paint(img, sulci | csf_rim | vent | falx, s["csf"])
    img = paint(img, vessels, s["vessel"])
    het = 1 + 0.2 * smooth_field(app, n, size, 10)
    img = paint(img, oed, s["oed"] * het * col(app.uniform(n, 0.8, 1.1))[:, None])
    img = paint(img, enh, s["enh"] * het)
    img = paint(img, core, s["core"] * (1 + 0.25 * smooth_field(app, n, size, 12)))
    img = img * bias_field(app, n, size, 0.25) * col(app.uniform(n, 0.8, 1.2))[:, None]
    img = rician_noise(blur(img, s["blur"]), app, s["noise"])
    mask = torch.zeros(n, size, size, dtype=torch.int64)
    mask[core] = 1
    mask[oed] = 2
    mask[enh] = 3
    return finish(img), mask
