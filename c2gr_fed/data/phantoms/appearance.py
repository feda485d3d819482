"""Appearance models: blur, noise (Gaussian, Rician, speckle), bias fields, vignetting, colour and output.

Images inside generators are (N, C, H, W) float32 with C = 1 (grey) or 3 (RGB), nominally in [0, 1].
Blur widths are fractions of the image side, so a variant looks the same at every image size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .sampling import Rng, col
from .shapes import smooth_field


def blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W); sigma as a fraction of the image side (reflect padding)."""
    size = img.shape[-1]
    s = sigma * size
    if s < 0.25:
        return img
    r = max(1, min(int(math.ceil(2.5 * s)), size - 1))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / s) ** 2)
    k = k / k.sum()
    n, c, h, w = img.shape
    x = img.reshape(n * c, 1, h, w)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return x.reshape(n, c, h, w)


def gaussian_noise(img: torch.Tensor, rng: Rng, sd: float | torch.Tensor) -> torch.Tensor:
    """Additive white Gaussian noise; sd scalar or (N,)."""
    sd_t = sd if isinstance(sd, torch.Tensor) else torch.tensor(float(sd))
    return img + rng.normal(*img.shape) * sd_t.reshape(-1, 1, 1, 1)


def rician_noise(img: torch.Tensor, rng: Rng, sd: float) -> torch.Tensor:
    """Magnitude-MR noise: |img + n1 + i n2| with n1, n2 ~ N(0, sd^2)."""
    a = img + rng.normal(*img.shape) * sd
    b = rng.normal(*img.shape) * sd
    return torch.sqrt(a * a + b * b)


def speckle(rng: Rng, n: int, size: int, grain: float, aniso: float = 1.0) -> torch.Tensor:
    """Fully developed speckle (N, 1, H, W): the magnitude of a smoothed complex Gaussian field (Rayleigh
    distributed), normalised to mean 1. `grain` is the correlation width (fraction of the side); `aniso`
    stretches the grain laterally (ultrasound)."""
    z = rng.normal(n, 2, size, size)
    s = grain * size
    if s >= 0.3:
        z = blur(z, grain)
        if aniso > 1.0:
            r = max(1, int(math.ceil(s * aniso)))
            k = torch.ones(1, 1, 1, 2 * r + 1) / (2 * r + 1)
            z = F.conv2d(F.pad(z.reshape(2 * n, 1, size, size), (r, r, 0, 0), mode="reflect"), k).reshape(n, 2, size, size)
    mag = torch.sqrt(z[:, :1] ** 2 + z[:, 1:] ** 2 + 1e-12)
    return mag / mag.mean(dim=(2, 3), keepdim=True)


def bias_field(rng: Rng, n: int, size: int, strength: float, cells: int = 2) -> torch.Tensor:
    """Smooth multiplicative field (N, 1, H, W) = exp(strength * smooth noise)."""
    return torch.exp(strength * smooth_field(rng, n, size, cells))


def vignette(yy: torch.Tensor, xx: torch.Tensor, strength: float | torch.Tensor, radius: float = 1.4) -> torch.Tensor:
    """Radial fall-off (1 or N, 1, H, W): 1 at the centre, 1 - strength at distance `radius`."""
    s = strength if isinstance(strength, torch.Tensor) else torch.tensor([float(strength)])
    r2 = (yy * yy + xx * xx) / radius**2
    return (1.0 - col(s) * r2.clamp(max=1.5))[:, None]


def paint(canvas: torch.Tensor, mask: torch.Tensor, value: torch.Tensor | float, alpha: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Composite `value` over `canvas` (N, C, H, W) where mask (N, H, W) is True, with opacity alpha.

    value: scalar, (C,) colour, (N,) per-sample, (N, C) per-sample colour, or a full (N, C|1, H, W) field;
    alpha: scalar, (N,) or (N, 1|C, H, W)."""
    v = _expand(value, canvas)
    a = _expand(alpha, canvas)
    m = mask[:, None].to(canvas.dtype) * a
    return canvas * (1 - m) + v * m


def _expand(x: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        return torch.tensor(float(x))
    n, c = like.shape[:2]
    if x.ndim == 0 or x.ndim == 4:
        return x
    if x.ndim == 1 and x.shape[0] == c and c != n:
        return x.view(1, c, 1, 1)
    if x.ndim == 1:
        return x.view(-1, 1, 1, 1)
    if x.ndim == 2:
        return x.view(x.shape[0], x.shape[1], 1, 1)
    if x.ndim == 3:
        return x[:, None]
    raise ValueError(f"cannot broadcast value of shape {tuple(x.shape)} onto {tuple(like.shape)}")


def colourise(grey: torch.Tensor, lo: tuple[float, float, float], hi: tuple[float, float, float]) -> torch.Tensor:
    """Map grey (N, 1, H, W) in [0, 1] linearly from colour `lo` to colour `hi` -> (N, 3, H, W)."""
    lo_t = torch.tensor(lo).view(1, 3, 1, 1)
    hi_t = torch.tensor(hi).view(1, 3, 1, 1)
    return lo_t + (hi_t - lo_t) * grey


def finish(img: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """Clamp to [0, 1], apply display gamma, repeat grey to 3 channels, map to [-1, 1]: (N, 3, H, W)."""
    x = img.clamp(0.0, 1.0)
    if gamma != 1.0:
        x = x.clamp_min(1e-6) ** gamma
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return (x * 2.0 - 1.0).contiguous().float()
