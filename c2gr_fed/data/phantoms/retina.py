"""Ophthalmic phantoms: colour fundus (optic disc/cup; vessel tree) and OCT B-scans (retinal layers).

All renderers: (anatomy rng, appearance rng, n, size, variant) -> images (N, 3, H, W) in [-1, 1],
masks (N, H, W) int64.
"""

from __future__ import annotations

import math

import torch

from .appearance import blur, finish, gaussian_noise, paint, speckle, vignette
from .sampling import Rng, col
from .shapes import Profile, blob, branch_starts, ellipse, grid, rasterise_curves, smooth_field, walk_curves

# camera/site appearance: retina colour, disc colour, brightness, vignetting, blur, noise, FOV radius, gamma
FUNDUS_SITES: dict[str, dict] = {
    "aravind": dict(bg=(0.62, 0.22, 0.08), disc=(0.95, 0.62, 0.30), cup=(1.0, 0.80, 0.55), gain=0.85, vig=0.55, blur=0.012, noise=0.05, fov=1.25, gamma=1.1),
    "nidek": dict(bg=(0.85, 0.42, 0.18), disc=(1.0, 0.80, 0.50), cup=(1.0, 0.93, 0.75), gain=1.0, vig=0.30, blur=0.006, noise=0.035, fov=1.45, gamma=0.9),
    "canon": dict(bg=(0.72, 0.30, 0.22), disc=(0.98, 0.70, 0.52), cup=(1.0, 0.86, 0.72), gain=0.95, vig=0.42, blur=0.004, noise=0.04, fov=1.35, gamma=1.0),
    "zeiss": dict(bg=(0.55, 0.38, 0.28), disc=(0.85, 0.75, 0.55), cup=(0.95, 0.90, 0.75), gain=0.9, vig=0.25, blur=0.009, noise=0.03, fov=1.6, gamma=1.0),
}


def _vessel_tree(anat: Rng, n: int, size: int, cy: torch.Tensor, cx: torch.Tensor, scale: float, temporal: torch.Tensor, arcade: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Vessels leaving the disc at (cy, cx): returns (thick, thin) bool masks (N, H, W).

    Four arcade vessels head up/down towards the temporal side (direction `temporal`, +1 = right), plus two
    nasal ones, each with branches; `scale` sets lengths (units of the image half-side)."""
    base = torch.where(temporal > 0, 0.0, math.pi)  # heading towards temporal side
    sgn = temporal
    head = torch.stack(
        [base - sgn * 1.2, base + sgn * 1.2, base - sgn * 0.55, base + sgn * 0.55, base - sgn * 2.4, base + sgn * 2.4], 1
    ) + anat.uniform(n, -0.25, 0.25, 6)
    drift = torch.stack([sgn * 1.0, -sgn * 1.0, sgn * 0.4, -sgn * 0.4, torch.zeros_like(sgn), torch.zeros_like(sgn)], 1)
    if not arcade:
        drift = drift * 0.3
    drift = drift + anat.uniform(n, -0.3, 0.3, 6)
    length = anat.uniform(n, 1.0, 1.6, 6) * scale
    start = torch.stack([cy, cx], -1)[:, None, :] + anat.uniform(n, -0.04, 0.04, 6, 2)
    main = walk_curves(anat, n, start, head, length, wiggle=0.8, drift=drift)
    bs, bh = branch_starts(main, anat, 3, 0.2, 0.85)
    bh = bh + anat.sign(n, bs.shape[1]) * anat.uniform(n, 0.5, 1.1, bs.shape[1])
    br = walk_curves(anat, n, bs, bh, anat.uniform(n, 0.3, 0.8, bs.shape[1]) * scale, wiggle=1.2)
    thick = rasterise_curves(main, size, width=0.03)
    thin = rasterise_curves(br, size, width=0.0) | rasterise_curves(main, size, width=0.0)
    return thick, thin


def fundus(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Disc-centred fundus crop. Labels: 1 = disc rim (disc minus cup), 2 = cup (always inside the disc)."""
    p = FUNDUS_SITES[variant]
    yy, xx = grid(size)
    cy, cx = anat.uniform(n, -0.18, 0.18), anat.uniform(n, -0.18, 0.18)
    rd = anat.uniform(n, 0.34, 0.52)
    asp = anat.uniform(n, 0.9, 1.12)
    ang = anat.uniform(n, -0.4, 0.4)
    d_disc = blob(yy, xx, cy, cx, rd * asp, rd, ang, Profile.random(anat, n, 0.05, 4))
    disc = d_disc < 1
    ratio = anat.uniform(n, 0.35, 0.72)
    temporal = anat.sign(n)
    off_r = (1 - ratio) * rd * anat.uniform(n, 0.0, 0.5)
    off_a = anat.uniform(n, -0.8, 0.8) + torch.where(temporal > 0, 0.0, math.pi)
    d_cup = blob(yy, xx, cy + off_r * torch.sin(off_a), cx + off_r * torch.cos(off_a), rd * ratio * asp, rd * ratio * anat.uniform(n, 0.85, 1.1), ang, Profile.random(anat, n, 0.12, 4))
    cup = (d_cup < 1) & disc
    thick, thin = _vessel_tree(anat, n, size, cy, cx, 1.0, temporal, arcade=True)
    # peripapillary atrophy crescent on the temporal side (bright distractor, unlabelled)
    theta = torch.atan2(yy - col(cy), (xx - col(cx)) * col(temporal))
    ppa = (d_disc >= 1) & (d_disc < col(anat.uniform(n, 1.15, 1.5))) & (theta.abs() < col(anat.uniform(n, 0.5, 1.4))) & col(anat.uniform(n, 0, 1) < 0.6)
    # macula: dark spot ~2.5 disc radii temporal
    mac = ellipse(yy, xx, cy + anat.uniform(n, -0.1, 0.1), cx + temporal * rd * anat.uniform(n, 2.2, 2.8), rd * 1.3, rd * 1.3)
    # exudate / drusen spots (bright distractors)
    drusen = (smooth_field(anat, n, size, 14)[:, 0] > col(anat.uniform(n, 2.0, 3.2))) & ~disc

    bg = torch.tensor(p["bg"]).view(1, 3, 1, 1)
    tex = 1.0 + 0.10 * smooth_field(app, n, size, 10) + 0.05 * smooth_field(app, n, size, 24)
    bright = 1.0 + 0.12 * torch.exp(-((d_disc - 1).clamp_min(0) ** 2) / 0.8)[:, None] - 0.35 * torch.exp(-mac**2)[:, None]
    img = bg * tex * bright
    # disc: per-sample contrast, with a temporal-to-nasal brightness gradient
    grad = (0.75 + 0.25 * torch.tanh(((xx - col(cx)) * col(temporal)) / col(rd) * 1.5))
    a_disc = col(app.uniform(n, 0.55, 0.9)) * grad
    img = paint(img, disc, torch.tensor(p["disc"]), a_disc[:, None])
    a_cup = col(app.uniform(n, 0.25, 0.75)) * (0.8 + 0.2 * torch.exp(-d_cup**2))
    img = paint(img, cup, torch.tensor(p["cup"]), a_cup[:, None])
    img = paint(img, ppa, torch.tensor(p["disc"]), col(app.uniform(n, 0.4, 0.9))[:, None])
    img = paint(img, drusen, torch.tensor(p["cup"]), 0.7)
    vcol = torch.tensor([0.40, 0.08, 0.04])
    img = paint(img, thin & ~thick, vcol, col(app.uniform(n, 0.35, 0.6))[:, None])
    img = paint(img, thick, vcol, col(app.uniform(n, 0.6, 0.85))[:, None])
    # camera: exposure, vignetting, FOV, blur, noise
    img = img * col(app.uniform(n, 0.75, 1.2) * p["gain"])[:, None]
    img = img * vignette(yy, xx, p["vig"])
    fov = ellipse(yy, xx, anat.uniform(n, -0.1, 0.1), anat.uniform(n, -0.1, 0.1), torch.full((n,), p["fov"]), torch.full((n,), p["fov"]))
    img = img * (fov < 1)[:, None]
    img = blur(img, p["blur"])
    img = gaussian_noise(img, app, p["noise"])
    mask = torch.zeros(n, size, size, dtype=torch.int64)
    mask[disc] = 1
    mask[cup] = 2
    return finish(img, p["gamma"]), mask


def retinal_vessels(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Wide-field fundus with disc off-centre and macula in the middle. Label 1 = vessel tree."""
    yy, xx = grid(size)
    side = anat.sign(n)
    cy, cx = anat.uniform(n, -0.15, 0.15), side * anat.uniform(n, 0.4, 0.6)
    rd = anat.uniform(n, 0.12, 0.17)
    disc = ellipse(yy, xx, cy, cx, rd * 1.1, rd) < 1
    thick, thin = _vessel_tree(anat, n, size, cy, cx, 1.4, -side, arcade=True)
    bs, bh = branch_starts(walk_curves(anat, n, torch.stack([cy, cx], -1)[:, None, :].expand(n, 4, 2), anat.uniform(n, 0, 6.28, 4), anat.uniform(n, 0.8, 1.4, 4), 0.6), anat, 2)
    extra = rasterise_curves(walk_curves(anat, n, bs, bh, anat.uniform(n, 0.3, 0.6, bs.shape[1]), 1.5), size)
    vessels = thick | thin | extra
    mac = ellipse(yy, xx, cy + anat.uniform(n, -0.1, 0.1), cx - side * anat.uniform(n, 0.5, 0.7), torch.full((n,), 0.3), torch.full((n,), 0.3))
    bg = torch.tensor([0.78, 0.34, 0.14]).view(1, 3, 1, 1) * col(app.uniform(n, 0.7, 1.15))[:, None]
    img = bg * (1 + 0.12 * smooth_field(app, n, size, 8) + 0.06 * smooth_field(app, n, size, 20))
    img = img * (1 - 0.45 * torch.exp(-mac**2 * 1.5))[:, None]
    img = paint(img, disc, torch.tensor([1.0, 0.85, 0.6]), 0.85)
    vcol = torch.tensor([0.42, 0.1, 0.05])
    img = paint(img, vessels, vcol, col(app.uniform(n, 0.5, 0.75))[:, None])
    img = paint(img, thick, vcol, 0.3)
    img = img * vignette(yy, xx, 0.45, 1.1)
    fov = (yy * yy + xx * xx) < 0.97**2
    img = img * fov[:, None] if fov.ndim == 3 else img * fov[None, None]
    img = gaussian_noise(blur(img, 0.006), app, 0.04)
    mask = (vessels & fov).to(torch.int64)
    return finish(img), mask


def oct_layers(anat: Rng, app: Rng, n: int, size: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    """OCT B-scan: three retinal layer bands (1 = inner retina, 2 = outer nuclear band, 3 = RPE/photoreceptors)
    on a dark vitreous above and textured choroid below, with multiplicative speckle."""
    yy, xx = grid(size)
    x = xx[0, 0][None]  # (1, W)

    def wave(amp: float) -> torch.Tensor:
        k = torch.arange(1, 4, dtype=torch.float32).view(1, 3, 1)
        a = anat.uniform(n, 0, amp, 3)[..., None] / k
        ph = anat.uniform(n, 0, 6.28, 3)[..., None]
        return (a * torch.sin(k * x[:, None] * math.pi * col(anat.uniform(n, 0.5, 1.0))[:, 0][..., None] + ph)).sum(1)  # (N, W)

    xf = anat.uniform(n, -0.5, 0.5)[:, None]
    pit = torch.exp(-((x - xf) ** 2) / col(anat.uniform(n, 0.03, 0.08))[:, 0])
    y0 = col(anat.uniform(n, -0.45, -0.05))[:, 0] + col(anat.uniform(n, -0.25, 0.25))[:, 0] * x + wave(0.12) + anat.uniform(n, 0.08, 0.18)[:, None] * pit
    y1 = y0 + anat.uniform(n, 0.16, 0.28)[:, None] * (1 - 0.85 * pit) + wave(0.03).abs()
    y2 = y1 + anat.uniform(n, 0.18, 0.28)[:, None] + wave(0.03).abs() + 0.05 * pit
    y3 = y2 + anat.uniform(n, 0.08, 0.13)[:, None] + wave(0.015).abs()
    y4 = y3 + anat.uniform(n, 0.2, 0.35)[:, None] + wave(0.05).abs()
    Y = yy.expand(n, -1, -1)
    band = lambda a, b: (Y >= a[:, None, :]) & (Y < b[:, None, :])  # noqa: E731
    l1, l2, l3, ch = band(y0, y1), band(y1, y2), band(y2, y3), band(y3, y4)
    # intensities (before speckle); inner retina brightest at its top (nerve fibre layer), striated
    depth1 = ((Y - y0[:, None, :]) / (y1 - y0 + 1e-3)[:, None, :]).clamp(0, 1)
    img = torch.full((n, 1, size, size), 0.04)
    i1 = col(app.uniform(n, 0.45, 0.75)) * (1.0 - 0.45 * depth1) + 0.08 * torch.sin(depth1 * col(app.uniform(n, 9, 14)))
    img = paint(img, l1, i1[:, None])
    img = paint(img, l2, col(app.uniform(n, 0.2, 0.32))[:, None])
    img = paint(img, l3, col(app.uniform(n, 0.6, 0.9))[:, None])
    chor = col(app.uniform(n, 0.4, 0.7)) * (1 + 0.5 * smooth_field(anat, n, size, (6, 18))[:, 0])
    img = paint(img, ch, chor[:, None].clamp(0.05, 1))
    below = Y >= y4[:, None, :]
    img = paint(img, below, (0.18 * (1 + 0.4 * smooth_field(app, n, size, 8)))[:, 0:1].clamp_min(0))
    # vessel shadows: dark vertical stripes below retinal vessels
    stripes = smooth_field(anat, n, size, (1, 20))[:, 0] > col(anat.uniform(n, 1.2, 1.8))
    img = img * (1 - 0.45 * (stripes & (Y > y0[:, None, :] + 0.05)).float())[:, None]
    # depth attenuation and floaters in vitreous
    img = img * (1.15 - 0.35 * (yy + 1) / 2)[:, None]
    img = img * speckle(app, n, size, 0.012, aniso=2.0) ** 0.8
    img = gaussian_noise(img, app, 0.04) * col(app.uniform(n, 0.8, 1.2))[:, None]
    mask = torch.zeros(n, size, size, dtype=torch.int64)
    mask[l1] = 1
    mask[l2] = 2
    mask[l3] = 3
    return finish(img), mask
