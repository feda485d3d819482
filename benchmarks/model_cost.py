"""CPU cost of the segmentor and the joint denoiser: parameters, training ms per sample, sampling pairs/s.

Training = forward + backward + Adam step on a batch (default 32) at 32 x 32, K_max = 3, 4 prompt tokens of
dim 128, fp32 and bf16 autocast. The denoiser is timed for NJD, BJD-full (3 terms, one call on a 3B batch),
BJD-full as three separate calls (for comparison), and BJD-stochastic (one term per sample). Sampling: DDIM-10
pairs/s with chunk 64 (fp32). bf16 autocast is timed for the segmentor and NJD only, with fewer repeats:
on CPUs without AVX512-BF16/AMX it is emulated and several times slower than fp32. Reports the median (and min) over --repeats timed steps after one warm-up step.

    python benchmarks/model_cost.py [--threads 2] [--batch 32] [--repeats 5] [--size 32]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch

from c2gr_fed.diffusion import NoiseSchedule, bjd_terms, encode_masks, joint_diffusion_loss, sample_pairs
from c2gr_fed.models import JointDenoiser, PromptedSegmentor, count_parameters, segmentation_loss
from c2gr_fed.scenario.schema import DiffusionConfig, UNetConfig

K_MAX, TOKENS, CTX_DIM = 3, 4, 128
DENOISERS = [
    UNetConfig(channels=[32, 64, 64], attention_levels=[2]),
    UNetConfig(channels=[32, 64, 128], attention_levels=[1, 2]),
]
SEGMENTORS = [UNetConfig(channels=[16, 32, 64, 128], attention_levels=[2, 3])]


def _time(step, repeats: int) -> tuple[float, float]:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def _autocast(precision: str):
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _data(batch: int, size: int):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    masks = torch.randint(0, K_MAX + 1, (batch, size, size), generator=g)
    ctx = torch.randn(batch, TOKENS, CTX_DIM, generator=g)
    return x, masks, ctx


def bench_denoiser(cfg: UNetConfig, args, rows: list[str]) -> None:
    den = JointDenoiser(cfg, K_MAX, CTX_DIM)
    opt = torch.optim.Adam(den.parameters(), lr=1e-4)
    sched = NoiseSchedule(DiffusionConfig())
    x, masks, ctx = _data(args.batch, args.size)
    y = encode_masks(masks, K_MAX)
    b = args.batch
    name = f"denoiser {cfg.channels} attn {cfg.attention_levels}"
    params = count_parameters(den)

    def loss_three_calls():
        total = 0.0
        for k in range(3):
            t = torch.randint(0, 1000, (b,))
            total = total + bjd_terms(
                den, x, y, ctx, sched, t, torch.randn_like(x), torch.randn_like(y), torch.full((b,), k)
            ).mean()
        return total

    variants = {
        "njd": lambda: joint_diffusion_loss(den, x, y, ctx, sched, "njd")["loss"],
        "bjd full (one 3B call)": lambda: joint_diffusion_loss(den, x, y, ctx, sched, "bjd", "full")["loss"],
        "bjd full (3 calls)": loss_three_calls,
        "bjd stochastic": lambda: joint_diffusion_loss(den, x, y, ctx, sched, "bjd", "stochastic")["loss"],
    }
    for precision in ("fp32", "bf16"):
        for vname, fn in variants.items():
            if precision == "bf16" and (vname != "njd" or not args.bf16_denoiser):
                continue  # bf16 is emulated on CPUs without AVX512-BF16/AMX: ~10x slower, measure NJD only

            def step():
                with _autocast(precision):
                    loss = fn()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            med, mn = _time(step, args.repeats if precision == "fp32" else args.bf16_repeats)
            rows.append(
                f"| {name} | {params / 1e6:.2f}M | {vname} | {precision} | {1e3 * med / b:.1f} | {1e3 * mn / b:.1f} |"
            )
            print(rows[-1], flush=True)


def bench_sampling(cfg: UNetConfig, args, rows: list[str]) -> None:
    den = JointDenoiser(cfg, K_MAX, CTX_DIM)
    torch.nn.init.normal_(den.unet.out_conv.weight, std=0.01)
    sched = NoiseSchedule(DiffusionConfig())
    ctx = torch.randn(args.pairs, TOKENS, CTX_DIM)
    for precision in ("fp32",):  # bf16 sampling skipped: see the bf16 training rows
        with _autocast(precision):
            t0 = time.perf_counter()
            sample_pairs(den, ctx, args.size, K_MAX, sched, "ddim", steps=10, seed=0, chunk_size=64)
            dt = time.perf_counter() - t0
        rows.append(
            f"| denoiser {cfg.channels} attn {cfg.attention_levels} | DDIM-10, {args.pairs} pairs, chunk 64 "
            f"| {precision} | {args.pairs / dt:.1f} pairs/s |"
        )
        print(rows[-1], flush=True)


def bench_segmentor(cfg: UNetConfig, args, rows: list[str]) -> None:
    seg = PromptedSegmentor(cfg, K_MAX, CTX_DIM)
    opt = torch.optim.Adam(seg.parameters(), lr=1e-3)
    x, masks, ctx = _data(args.batch, args.size)
    k = torch.full((args.batch,), K_MAX)
    for precision in ("fp32", "bf16"):

        def step():
            with _autocast(precision):
                loss = segmentation_loss(seg(x, ctx), masks, k)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        med, mn = _time(step, args.repeats if precision == "fp32" else args.bf16_repeats)
        rows.append(
            f"| segmentor {cfg.channels} attn {cfg.attention_levels} | {count_parameters(seg) / 1e6:.2f}M "
            f"| dice + ce | {precision} | {1e3 * med / args.batch:.1f} | {1e3 * mn / args.batch:.1f} |"
        )
        print(rows[-1], flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--bf16-repeats", type=int, default=2)
    p.add_argument("--bf16-denoiser", type=int, default=1, help="1: also time the denoiser (NJD) in bf16")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {args.threads}, batch {args.batch}, {args.size}x{args.size}, "
          f"K_max {K_MAX}, context {TOKENS}x{CTX_DIM}, {args.repeats} timed repeats, "
          f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    train_rows = ["| model | params | loss | precision | median ms/sample | min ms/sample |", "|---|---|---|---|---|---|"]
    print("\n".join(train_rows), flush=True)
    for cfg in SEGMENTORS:
        bench_segmentor(cfg, args, train_rows)
    for cfg in DENOISERS:
        bench_denoiser(cfg, args, train_rows)
    sample_rows = ["", "| model | sampling | precision | throughput |", "|---|---|---|---|"]
    print("\n".join(sample_rows), flush=True)
    for cfg in DENOISERS:
        bench_sampling(cfg, args, sample_rows)
    print(f"\nload average at end {os.getloadavg()[0]:.1f} (other processes share these CPUs)")


if __name__ == "__main__":
    main()
