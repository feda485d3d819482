"""Vectorised primitive shapes on a coordinate grid, batched over N samples.

Coordinates: `grid(size)` returns (yy, xx), each (1, H, W) float32 at pixel centres in [-1, 1]; y grows
downwards, x to the right. Shape functions take per-sample parameters as (N,) tensors and return (N, H, W)
fields: a *normalised radius* (< 1 inside the shape) or a boolean mask. Curves are rasterised by stamping
densely resampled points, so no per-pixel Python loop exists anywhere.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .sampling import Rng, col


def grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates (yy, xx), each (1, H, W) in [-1, 1]."""
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2.0 - 1.0
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return yy[None], xx[None]


def rotate(
    yy: torch.Tensor, xx: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, angle: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates relative to (cy, cx), rotated by -angle: returns (v, u), each (N, H, W)."""
    dy, dx = yy - col(cy), xx - col(cx)
    c, s = torch.cos(col(angle)), torch.sin(col(angle))
    return -dx * s + dy * c, dx * c + dy * s


def ellipse(
    yy: torch.Tensor,
    xx: torch.Tensor,
    cy: torch.Tensor,
    cx: torch.Tensor,
    ry: torch.Tensor,
    rx: torch.Tensor,
    angle: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalised elliptic radius (N, H, W); < 1 inside. `angle` rotates the x semi-axis (radians)."""
    if angle is None:
        angle = torch.zeros_like(cy)
    v, u = rotate(yy, xx, cy, cx, angle)
    return torch.sqrt((u / col(rx)) ** 2 + (v / col(ry)) ** 2 + 1e-12)


class Profile:
    """An irregular radial border r(theta) = 1 + sum_k a_k cos(k theta + phi_k); amps, phases are (N, K)."""

    def __init__(self, amps: torch.Tensor, phases: torch.Tensor, k0: int = 2) -> None:
        self.amps, self.phases, self.k0 = amps, phases, k0

    @staticmethod
    def random(rng: Rng, n: int, roughness: float | torch.Tensor, harmonics: int = 6, k0: int = 2, decay: float = 1.0) -> "Profile":
        """Random border: amplitude of harmonic k ~ roughness * U(0.2, 1) / (k - k0 + 1) ** decay."""
        k = torch.arange(harmonics, dtype=torch.float32)
        rough = roughness if isinstance(roughness, torch.Tensor) else torch.full((n,), float(roughness))
        amps = rng.uniform(n, 0.2, 1.0, harmonics) * rough.reshape(-1, 1) / (k + 1.0) ** decay
        phases = rng.uniform(n, 0.0, 2 * math.pi, harmonics)
        return Profile(amps, phases, k0)

    TABLE = 256
    """Angular samples of the border table; the border is interpolated linearly between them."""

    def table(self) -> torch.Tensor:
        """r(theta) sampled at TABLE + 1 angles in [0, 2 pi] (last = first): (N, TABLE + 1)."""
        t = torch.linspace(0, 2 * math.pi, self.TABLE + 1)
        k = (self.k0 + torch.arange(self.amps.shape[1], dtype=torch.float32)).view(1, -1, 1)
        r = 1.0 + (self.amps[..., None] * torch.cos(k * t.view(1, 1, -1) + self.phases[..., None])).sum(1)
        return r.clamp_min(0.3)

    def __call__(self, v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Border radius factor (N, H, W) at the angles atan2(v, u) of the (N, H, W) offsets (v, u).

        Evaluated by table look-up, so the cost does not grow with the number of harmonics."""
        n = v.shape[0]
        tab = self.table()
        pos = (torch.atan2(v, u) * (self.TABLE / (2 * math.pi))) % self.TABLE
        i0 = pos.floor()
        w = (pos - i0).reshape(n, -1)
        i0 = i0.long().reshape(n, -1).clamp_(0, self.TABLE - 1)
        r0 = torch.gather(tab, 1, i0)
        r1 = torch.gather(tab, 1, i0 + 1)
        return torch.lerp(r0, r1, w).reshape(v.shape)


def blob(
    yy: torch.Tensor,
    xx: torch.Tensor,
    cy: torch.Tensor,
    cx: torch.Tensor,
    ry: torch.Tensor,
    rx: torch.Tensor,
    angle: torch.Tensor | None,
    profile: Profile | None,
) -> torch.Tensor:
    """Normalised radius (N, H, W) of an ellipse with an irregular border; nested shapes with the same
    centre, axes and profile are `blob < f` for f < 1, so they always nest."""
    if angle is None:
        angle = torch.zeros_like(cy)
    v, u = rotate(yy, xx, cy, cx, angle)
    u, v = u / col(rx), v / col(ry)
    rho = torch.sqrt(u * u + v * v + 1e-12)
    if profile is None:
        return rho
    return rho / profile(v, u)


def smooth_field(rng: Rng, n: int, size: int, cells: int | tuple[int, int], channels: int = 1) -> torch.Tensor:
    """Smooth random field (N, C, H, W), roughly zero mean and unit variance, correlation length ~ 2/cells.

    `cells` may be (cells_y, cells_x) for anisotropic texture. Drawn at a fixed low resolution, so the
    same seed gives the same field at every image size.
    """
    cy, cx = (cells, cells) if isinstance(cells, int) else cells
    low = rng.normal(n, channels, cy + 3, cx + 3)
    up = F.interpolate(low, size=(size + size * 3 // cy, size + size * 3 // cx), mode="bicubic", align_corners=False)
    oy, ox = (up.shape[2] - size) // 2, (up.shape[3] - size) // 2
    f = up[:, :, oy : oy + size, ox : ox + size]
    return f / 0.8


def walk_curves(
    rng: Rng,
    n: int,
    start: torch.Tensor,
    heading: torch.Tensor,
    length: torch.Tensor,
    wiggle: float,
    drift: torch.Tensor | None = None,
    steps: int = 48,
) -> torch.Tensor:
    """Smooth random-walk curves: returns control points (N, C, steps, 2) as (y, x).

    start (N, C, 2); heading (N, C) radians (0 = +x, pi/2 = +y down); length (N, C); drift (N, C) = total
    turn over the curve (radians); wiggle = sd of the random turn per unit length.
    """
    c = start.shape[1]
    ds = length / (steps - 1)  # (N, C)
    turn = rng.normal(n, c, steps) * wiggle * torch.sqrt(ds)[..., None]
    turn = F.avg_pool1d(turn.reshape(n * c, 1, steps), 5, 1, 2, count_include_pad=False).reshape(n, c, steps)
    h = heading[..., None] + torch.cumsum(turn, -1)
    if drift is not None:
        h = h + drift[..., None] * torch.linspace(0, 1, steps)
    step = torch.stack([torch.sin(h), torch.cos(h)], -1) * ds[..., None, None]
    step[:, :, 0] = 0.0
    return start[:, :, None, :] + torch.cumsum(step, 2)


def rasterise_curves(points: torch.Tensor, size: int, width: float = 0.0) -> torch.Tensor:
    """Stamp curves given by control points (N, C, S, 2) (y, x in [-1, 1]) into a boolean (N, H, W) mask.

    Points are resampled to a spacing under half a pixel before stamping. `width` is the line width as a
    fraction of the image side; it is turned into an odd pixel kernel (1 px at least).
    """
    n, c, s, _ = points.shape
    per_pixel = max(2, int(math.ceil(size / 16)))
    dense = F.interpolate(points.permute(0, 1, 3, 2).reshape(n * c, 2, s), size=(s - 1) * per_pixel * 4 + 1, mode="linear", align_corners=True)
    dense = dense.reshape(n, c, 2, -1)
    py = torch.floor((dense[:, :, 0] + 1.0) * 0.5 * size).long()
    px = torch.floor((dense[:, :, 1] + 1.0) * 0.5 * size).long()
    ok = (py >= 0) & (py < size) & (px >= 0) & (px < size)
    base = (torch.arange(n) * size * size)[:, None, None]
    flat = torch.where(ok, base + py * size + px, torch.full_like(py, n * size * size))
    canvas = torch.zeros(n * size * size + 1, dtype=torch.float32)
    canvas[flat.reshape(-1)] = 1.0
    img = canvas[:-1].reshape(n, 1, size, size)
    return dilate(img[:, 0] > 0.5, int(round(width * size)))


def dilate(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Square dilation of a bool (N, H, W) mask by a k x k window (k may be even; k <= 1 is a no-op)."""
    if k <= 1:
        return mask
    x = F.pad(mask[:, None].float(), ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2))
    return F.max_pool2d(x, k, 1)[:, 0] > 0.5


def branch_starts(curves: torch.Tensor, rng: Rng, per_curve: int, lo: float = 0.15, hi: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick `per_curve` branch points on each curve (N, C, S, 2): returns starts (N, C*per_curve, 2) and the
    parent's local heading there (N, C*per_curve)."""
    n, c, s, _ = curves.shape
    idx = (rng.uniform(n, lo, hi, c, per_curve) * (s - 2)).long()  # (N, C, B)
    g = idx[..., None].expand(n, c, per_curve, 2)
    p0 = torch.gather(curves, 2, g)
    p1 = torch.gather(curves, 2, g + 1)
    d = p1 - p0
    heading = torch.atan2(d[..., 0], d[..., 1])
    return p0.reshape(n, c * per_curve, 2), heading.reshape(n, c * per_curve)


def sparse_dots(rng: Rng, density: torch.Tensor, dot_px: int) -> torch.Tensor:
    """Random dots: Bernoulli impulses with per-pixel probability `density` (N, H, W), each grown to a
    `dot_px` x `dot_px` square. Returns bool (N, H, W)."""
    return dilate(rng.bernoulli(density), dot_px)
