"""Throughput per profile and device: training samples/s of the segmentor and the denoiser, sampling pairs/s,
and from those an estimate of the wall time of a whole stream.

    python benchmarks/throughput.py --scenario scenarios/20tasks.yaml --scenario scenarios/20tasks-paper.yaml \
        --out benchmarks/results/throughput-cpu

Each measurement is the median of --repeats timed batches after one warm-up batch. The estimate assumes, per
round t (1-based) of T: training = epochs x (n_train + (t - 1) x replay) samples through segmentor + denoiser
(or max_steps x batch when set), and replay synthesis = (t - 1) x replay pairs x sampling steps denoiser
evaluations. Training is sequential by nature; with N GPUs only evaluation runs in parallel, so the N-GPU
estimate differs from the 1-GPU one by the evaluation time only (small): we report it as such.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from c2gr_fed.diffusion import NoiseSchedule, encode_masks, joint_diffusion_loss, sample_pairs
from c2gr_fed.learning.device import autocast, pick_device
from c2gr_fed.learning.methods import method_spec
from c2gr_fed.models import build_denoiser, build_segmentor, count_parameters, segmentation_loss
from c2gr_fed.scenario import Scenario, load_scenario


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, repeats: int, device: torch.device) -> float:
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(sc: Scenario, device: torch.device, batch: int, repeats: int, sample_pairs_n: int,
            channels_last: bool) -> dict:
    S, K, pc = sc.image_size, sc.model.max_classes, sc.model.prompt
    seg = build_segmentor(sc.model.segmentor, K, pc.token_dim).to(device)
    den = build_denoiser(sc.model.denoiser, K, pc.token_dim).to(device)
    if channels_last:
        seg = seg.to(memory_format=torch.channels_last)
        den = den.to(memory_format=torch.channels_last)
    sched = NoiseSchedule(sc.diffusion).to(device)
    x = torch.randn(batch, 3, S, S, device=device).clamp(-1, 1)
    y = torch.randint(0, K + 1, (batch, S, S), device=device)
    ctx = torch.randn(batch, pc.tokens, pc.token_dim, device=device)
    kb = torch.full((batch,), K, device=device)
    opt_s = torch.optim.Adam(seg.parameters(), 1e-4)
    opt_d = torch.optim.Adam(den.parameters(), 1e-4)
    prec = sc.training.precision if device.type == "cuda" else "fp32"

    def seg_step() -> None:
        with autocast(device, prec):
            loss = segmentation_loss(seg(x, ctx).float(), y, kb)["loss"]
        opt_s.zero_grad()
        loss.backward()
        opt_s.step()

    def den_step() -> None:
        with autocast(device, prec):
            loss = joint_diffusion_loss(den, x, encode_masks(y, K), ctx, sched, objective=method_spec(sc.method).objective or "bjd",
                                        estimator=sc.diffusion.bjd_estimator)["loss"]
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()

    t_seg = _time(seg_step, repeats, device)
    t_den = _time(den_step, repeats, device)
    steps = sc.diffusion.sampling_steps
    sctx = torch.randn(sample_pairs_n, pc.tokens, pc.token_dim, device=device)

    def sample() -> None:
        with autocast(device, prec):
            sample_pairs(den, sctx, S, K, sched, sampler=sc.diffusion.sampler, steps=steps, seed=0,
                         chunk_size=sc.diffusion.chunk_size)

    t_sample = _time(sample, max(1, repeats // 2), device)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {
        "scenario": sc.name, "image_size": S, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(), "precision": prec, "channels_last": channels_last,
        "segmentor_params": count_parameters(seg), "denoiser_params": count_parameters(den),
        "batch": batch, "segmentor_train_samples_per_s": batch / t_seg,
        "denoiser_train_samples_per_s": batch / t_den, "bjd_estimator": sc.diffusion.bjd_estimator,
        "sampler": sc.diffusion.sampler, "sampling_steps": steps,
        "sampling_pairs_per_s": sample_pairs_n / t_sample, "peak_gpu_mem_mb": peak,
    }


def estimate_stream(sc: Scenario, m: dict) -> dict:
    """Wall-time estimate of the whole stream from measured throughput (training + replay synthesis)."""
    tasks = sc.stream()
    train_s = replay_s = 0.0
    for t, task in enumerate(tasks, 1):
        n_train = getattr(task.data, "n_train", 64)
        replay = n_train if sc.diffusion.replay_per_task == "train_size" else int(sc.diffusion.replay_per_task)
        n = n_train + (t - 1) * replay
        samples = sc.training.epochs * n
        if sc.training.max_steps is not None:
            samples = min(samples, sc.training.max_steps * sc.training.batch_size)
        train_s += samples / m["segmentor_train_samples_per_s"] + samples / m["denoiser_train_samples_per_s"]
        replay_s += (t - 1) * replay / m["sampling_pairs_per_s"]
    return {"train_hours": train_s / 3600, "replay_hours": replay_s / 3600, "total_hours": (train_s + replay_s) / 3600}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", action="append", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=None, help="default: the scenario's batch size (CPU: at most 8 at 256x256)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=None, help="pairs per sampling measurement (default: chunk size, CPU <= 16)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--out", type=Path, required=True, help="output stem: writes STEM.json and STEM.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device("auto")
    rows = []
    for path in args.scenario:
        sc = load_scenario(path)
        cpu_big = device.type == "cpu" and sc.image_size > 64
        batch = args.batch or (min(sc.training.batch_size, 4) if cpu_big else sc.training.batch_size)
        pairs = args.pairs or (4 if cpu_big else min(sc.diffusion.chunk_size, 64))
        steps_note = None
        if cpu_big and sc.diffusion.sampling_steps > 10:
            # 200 DDPM steps of the paper denoiser at 256x256 take many minutes per pair on a CPU: time 5 steps
            # and scale (sampling cost is linear in the number of steps)
            steps_full = sc.diffusion.sampling_steps
            sc = sc.model_copy(update={"diffusion": sc.diffusion.model_copy(update={"sampling_steps": 5})})
            steps_note = steps_full
        print(f"measuring {path} on {device} (batch {batch}, {pairs} pairs)...", file=sys.stderr, flush=True)
        m = measure(sc, device, batch, args.repeats, pairs, args.channels_last)
        if steps_note:
            m["sampling_pairs_per_s"] *= 5 / steps_note
            m["sampling_steps"] = steps_note
            m["sampling_note"] = f"timed with 5 steps and scaled to {steps_note}"
            sc = load_scenario(path)
        m["estimate"] = estimate_stream(sc, m)
        m["scenario_file"] = str(path)
        rows.append(m)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cmd = "python benchmarks/" + Path(__file__).name + " " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "results": rows}, indent=1))
    md = [f"# Throughput ({rows[0]['device_name']}, {rows[0]['device']})", "", f"Command: `{cmd}`", "",
          "| scenario | size | seg params | den params | precision | seg train samples/s | den train samples/s | sampler | pairs/s | est. stream train h | est. replay h | est. total h |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in rows:
        e = m["estimate"]
        md.append(f"| {m['scenario']} | {m['image_size']} | {m['segmentor_params'] / 1e6:.1f}M | {m['denoiser_params'] / 1e6:.1f}M | "
                  f"{m['precision']} | {m['segmentor_train_samples_per_s']:.1f} | {m['denoiser_train_samples_per_s']:.2f} | "
                  f"{m['sampler']}-{m['sampling_steps']} | {m['sampling_pairs_per_s']:.3f} | {e['train_hours']:.2f} | "
                  f"{e['replay_hours']:.2f} | {e['total_hours']:.2f} |")
    md += ["", "Estimates: training is sequential (one department at a time), so N GPUs in a Ray cluster shorten only "
           "the evaluations, which run in parallel; the stream's wall time stays about the 1-GPU figure.", ""]
    args.out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
