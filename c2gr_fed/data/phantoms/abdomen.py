"""Abdominal CT phantom (objective shift): the same kind of slice, the variant picks the organ to segment.

Variants: pancreas, kidney, liver. Label 1 = that organ (minus its tumour), label 2 = a tumour inside it.
Only the target organ carries a tumour; the contrast phase follows the task (pancreatic, nephrographic,
portal-venous). Renderer: (anatomy rng, appearance rng, n, size, organ) -> images (N, 3, H, W) in [-1, 1],
masks (N, H, W).
"""

from __future__ import annotations

import math

import torch

from .appearance import blur, finish, gaussian_noise, paint
from .sampling import Rng, col
from .shapes import Profile, blob, ellipse, grid, smooth_field

# window-mapped densities: fat, soft tissue, muscle, liver, spleen, kidney cortex/medulla, pancreas, vessels,
# bone, tumour offset (relative to the organ)
PHASES: dict[str, dict[str, float]] = {
    "pancreas": dict(liver=0.58, spleen=0.62, cortex=0.82, medulla=0.5, pancreas=0.64, vessel=0.9, tumour=-0.24),
    "kidney": dict(liver=0.6, spleen=0.6, cortex=0.74, medulla=0.72, pancreas=0.56, vessel=0.72, tumour=-0.22),
    "liver": dict(liver=0.66, spleen=0.64, cortex=0.72, medulla=0.66, pancreas=0.56, vessel=0.78, tumour=-0.15),
}


def abdominal_ct(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    ph = PHASES[variant]
    yy, xx = grid(size)
    bcy, bcx = anat.uniform(n, -0.05, 0.08), anat.uniform(n, -0.06, 0.06)
    bry, brx = anat.uniform(n, 0.6, 0.78), anat.uniform(n, 0.85, 1.0)
    d_body = blob(yy, xx, bcy, bcx, bry, brx, anat.uniform(n, -0.05, 0.05), Profile.random(anat, n, 0.04, 4))
    body = d_body < 1
    inner = d_body < col(anat.uniform(n, 0.82, 0.92))
    # spine and paraspinal muscles (posterior = +y)
    sy, sx = bcy + bry * 0.55, bcx
    vr = anat.uniform(n, 0.09, 0.12)
    vert = ellipse(yy, xx, sy, sx, vr, vr * 1.1)
    para = torch.zeros_like(body)
    for sgn in (-1.0, 1.0):
        para |= ellipse(yy, xx, sy + vr * 0.9, sx + sgn * vr * 2.0, vr * 1.1, vr * 1.0) < 1
    # aorta and IVC
    ar = anat.uniform(n, 0.045, 0.065)
    aorta = ellipse(yy, xx, sy - vr - ar * 1.3, sx + ar * 1.2, ar, ar) < 1
    ivc = ellipse(yy, xx, sy - vr - ar * 1.2, sx - ar * 2.4, ar * 0.9, ar * 1.3) < 1
    # liver (image left), spleen (image right, posterior), kidneys either side of spine
    lprof = Profile.random(anat, n, 0.12, 5)
    d_liver = blob(yy, xx, bcy + anat.uniform(n, -0.2, 0.0), bcx - brx * anat.uniform(n, 0.38, 0.5), bry * anat.uniform(n, 0.55, 0.7), brx * anat.uniform(n, 0.3, 0.42), anat.uniform(n, -0.4, 0.2), lprof)
    liver = (d_liver < 1) & inner
    spleen = (blob(yy, xx, bcy + bry * 0.2, bcx + brx * 0.6, bry * 0.28, brx * 0.17, anat.uniform(n, -0.8, -0.3), Profile.random(anat, n, 0.1, 3)) < 1) & inner
    kid = []
    for sgn in (-1.0, 1.0):
        kry, krx = anat.uniform(n, 0.1, 0.15), anat.uniform(n, 0.07, 0.1)
        d_k = blob(yy, xx, sy - anat.uniform(n, 0.0, 0.1), sx + sgn * anat.uniform(n, 0.3, 0.4), kry, krx, sgn * anat.uniform(n, 0.2, 0.6), Profile.random(anat, n, 0.06, 3))
        kid.append(d_k)
    d_kid = torch.minimum(kid[0], kid[1])
    kidneys = (d_kid < 1) & inner & ~liver
    medulla = kidneys & (d_kid < 0.6)
    # pancreas: elongated lobulated band from the head (near the IVC) to the tail (near the spleen)
    pang = anat.uniform(n, -0.45, -0.15)
    pr = anat.uniform(n, 0.06, 0.09)
    d_panc = blob(yy, xx, sy - vr - ar * 3.2 + anat.uniform(n, -0.05, 0.02), bcx + anat.uniform(n, 0.05, 0.18), pr, anat.uniform(n, 0.28, 0.4), pang, Profile.random(anat, n, 0.1, 10, decay=0.5))
    pancreas = (d_panc < 1) & inner & ~liver & ~kidneys & ~aorta & ~ivc
    # bowel loops / stomach: several circles with air, fluid or oral contrast
    bowel = torch.zeros(n, 1, size, size)
    bowel_m = torch.zeros_like(body)
    occupied = liver | spleen | kidneys | pancreas | aorta | ivc | (vert < 1.3) | para
    for _ in range(7):
        r = anat.uniform(n, 0.05, 0.12)
        d_b = ellipse(yy, xx, bcy + anat.uniform(n, -0.55, 0.2) * bry, bcx + anat.uniform(n, -0.6, 0.7) * brx, r, r * anat.uniform(n, 0.8, 1.3))
        kind = anat.uniform(n, 0, 1)
        content = torch.where(kind < 0.3, 0.02, torch.where(kind < 0.55, 0.92, 0.45))
        m = (d_b < 1) & inner & ~occupied & ~bowel_m
        bowel = paint(bowel, m & (d_b < 0.75), content)
        bowel = paint(bowel, m & (d_b >= 0.75), 0.55)
        bowel_m |= m
    # tumours: one per candidate organ is drawn (same draws for every variant); only the target gets it
    targets = {"liver": (liver, d_liver, lprof), "kidney": (kidneys, d_kid, None), "pancreas": (pancreas, d_panc, None)}
    organ = targets[variant][0]
    tumours = {}
    for name in ("liver", "kidney", "pancreas"):
        om = targets[name][0]
        # pick the tumour centre at a random pixel of the organ via a random score argmax
        score = torch.rand(om.shape, generator=anat.gen) + om.float() * 2.0
        idx = score.reshape(n, -1).argmax(1)
        ty, tx = yy.reshape(-1)[idx], xx.reshape(-1)[idx]
        rt = anat.uniform(n, 0.06, 0.1) * {"liver": 1.5, "kidney": 1.4, "pancreas": 1.35}[name]
        t_m = blob(yy, xx, ty, tx, rt, rt * anat.uniform(n, 0.8, 1.2), None, Profile.random(anat, n, 0.15, 4)) < 1
        # kidney and pancreas tumours may bulge out of the organ contour (exophytic); liver ones stay inside
        room = om if name == "liver" else (targets[name][1] < 1.5) & inner & ~(occupied & ~om) & ~(vert < 1.3)
        tumours[name] = t_m & room
    tumour = tumours[variant]
    organ = organ | tumour

    fat = 0.28
    img = torch.zeros(n, 1, size, size)
    img = paint(img, body, fat * (1 + 0.15 * smooth_field(app, n, size, 18)))
    img = paint(img, inner, 0.5 + 0.06 * smooth_field(app, n, size, 10))
    img = paint(img, para, 0.52)
    img = paint(img, vert < 1, 0.97)
    img = paint(img, vert < 0.75, 0.72 + 0.05 * smooth_field(app, n, size, 20))
    img = paint(img, liver, ph["liver"] * (1 + 0.04 * smooth_field(app, n, size, 12)))
    # portal / hepatic vessels inside the liver (bright dots, distractor)
    lv = liver & (smooth_field(anat, n, size, 14)[:, 0] > 1.6)
    img = paint(img, lv, ph["vessel"] * 0.95)
    img = paint(img, spleen, ph["spleen"])
    img = paint(img, kidneys, ph["cortex"])
    img = paint(img, medulla, ph["medulla"])
    peri = ((d_panc >= 1) & (d_panc < 1.35) | (d_kid >= 1) & (d_kid < 1.45)) & inner & ~occupied & ~bowel_m
    img = paint(img, peri, fat + 0.05)
    img = paint(img, pancreas, ph["pancreas"] * (1 + 0.08 * smooth_field(app, n, size, 24)))
    img = paint(img, aorta, ph["vessel"])
    img = paint(img, ivc, ph["vessel"] * 0.85)
    img = img * (1 - bowel_m[:, None].float()) + bowel * bowel_m[:, None].float()
    base = {"liver": ph["liver"], "kidney": ph["cortex"], "pancreas": ph["pancreas"]}[variant]
    img = paint(img, tumour, (base + ph["tumour"] * col(app.uniform(n, 0.7, 1.3))[:, None]) * (1 + 0.1 * smooth_field(app, n, size, 16)))
    img = img * col(app.uniform(n, 0.9, 1.1))[:, None] + col(app.uniform(n, -0.05, 0.05))[:, None]
    img = gaussian_noise(blur(img, 0.006), app, 0.045)
    mask = torch.zeros(n, size, size, dtype=torch.int64)
    mask[organ] = 1
    mask[tumour] = 2
    return finish(img), mask
