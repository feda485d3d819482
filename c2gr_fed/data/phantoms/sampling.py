"""Seeded random draws for the phantom generators.

Every generator gets two independent streams: an *anatomy* stream (shapes, sizes, positions, counts) that
depends only on (generator, seed), and an *appearance* stream (noise realisations, per-sample exposure) that
also depends only on (generator, seed). Variants change appearance parameters, never the draws, so the same
seed gives the same anatomy under every site/vendor/sequence variant.
"""

from __future__ import annotations

import zlib

import torch


class Rng:
    """A thin wrapper over a CPU `torch.Generator` with batched draws.

    Shapes: `uniform(n, lo, hi)` -> (n,); `uniform(n, lo, hi, k)` -> (n, k); `normal(*shape)` -> shape.
    """

    def __init__(self, seed: int) -> None:
        self.gen = torch.Generator(device="cpu")
        self.gen.manual_seed(int(seed) % (2**63 - 1))

    def uniform(self, n: int, lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand((n, *shape), generator=self.gen)

    def normal(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen)

    def bernoulli(self, p: torch.Tensor) -> torch.Tensor:
        """Boolean tensor of p's shape, True with probability p (elementwise)."""
        return torch.rand(p.shape, generator=self.gen) < p

    def sign(self, n: int, *shape: int) -> torch.Tensor:
        return torch.where(torch.rand((n, *shape), generator=self.gen) < 0.5, -1.0, 1.0)

    def integers(self, n: int, lo: int, hi: int) -> torch.Tensor:
        """(n,) int64 uniform in [lo, hi] inclusive."""
        return torch.randint(lo, hi + 1, (n,), generator=self.gen)


def stream_seed(generator: str, seed: int, stream: str) -> int:
    """A stable 62-bit seed for one named stream of one generator (independent of Python's hash salt)."""
    h = zlib.crc32(f"{generator}/{stream}".encode())
    return (int(seed) * 1_000_003 + h * 7_919 + 17) % (2**62)


def col(t: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1, 1) for broadcasting against (N, H, W) fields."""
    return t.reshape(-1, 1, 1)
