"""Time to render 200 phantom pairs at 64 x 64 per generator and variant (target: < 1 s each on 2 cores).

Usage: python benchmarks/phantom_speed.py [--threads 2] [--n 200] [--size 64] [--repeats 3]
Prints the best of `repeats` wall-clock times (after one warm-up call) per generator/variant.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from c2gr_fed.data.phantoms import SPECS, generate_phantom, phantom_variants


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, n={a.n}, size={a.size}, best of {a.repeats}")
    # machine-load context: the load average and the time of one elementwise op on an (n, size, size) tensor
    x = torch.rand(a.n, a.size, a.size)
    t = time.perf_counter()
    for _ in range(50):
        x.mul(1.1)
    ref = (time.perf_counter() - t) / 50 * 1000
    print(f"cpus={os.cpu_count()} loadavg={os.getloadavg()[0]:.1f}  reference elementwise op: {ref:.2f} ms")
    worst = 0.0
    for g in SPECS:
        for v in phantom_variants(g):
            generate_phantom(g, v, 4, a.size, 0)
            best = min(_time(g, v, a.n, a.size, s) for s in range(a.repeats))
            worst = max(worst, best)
            print(f"{g:16s} {v:9s} {best:6.3f} s  {'OK' if best < 1.0 else 'SLOW'}")
    print(f"slowest: {worst:.3f} s")


def _time(g: str, v: str, n: int, size: int, seed: int) -> float:
    t = time.perf_counter()
    generate_phantom(g, v, n, size, seed)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
