"""Wall-time estimate of the paper-scale 20-task stream on GPUs, from counted FLOPs (no GPU needed).

Counts the floating-point operations of the real models of a scenario (default `scenarios/20tasks-paper.yaml`) with
torch.utils.flop_counter on the meta device (shapes only, nothing is computed): segmentor training per sample
(forward + backward), denoiser training per sample (forward + backward; BJD full = three denoiser passes per
sample, stochastic/NJD = one), one denoiser forward per pair per sampling step, segmentor evaluation per sample.
It then adds up the stream the way `run_round` runs it (round t: epochs x (n_train + (t - 1) x replay) training
samples; (t - 1) x replay pairs x sampling steps of synthesis; every department evaluates every task each round)
and divides by an assumed sustained throughput. Convolution and matmul FLOPs only (norms, activations and
optimiser updates are memory-bound extras), so treat the hours as a lower bound at the assumed throughput.

    python benchmarks/paper_scale_estimate.py --out benchmarks/results/paper_scale_estimate

When a GPU is available, `benchmarks/throughput.py` measures the real samples per second instead; this estimate
is what can be said without one. N GPUs in a Ray cluster: training and synthesis stay sequential (one department
holds the models at a time), evaluations of the departments run in parallel.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from c2gr_fed.diffusion import NoiseSchedule, joint_diffusion_loss
from c2gr_fed.learning.methods import method_spec
from c2gr_fed.models import JointDenoiser, PromptedSegmentor, count_parameters, segmentation_loss
from c2gr_fed.scenario import load_scenario


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def count(sc) -> dict[str, float]:
    S, K, pc = sc.image_size, sc.model.max_classes, sc.model.prompt
    with torch.device("meta"):
        seg = PromptedSegmentor(sc.model.segmentor, K, pc.token_dim)
        den = JointDenoiser(sc.model.denoiser, K, pc.token_dim)
        x = torch.empty(1, 3, S, S)
        y = torch.zeros(1, S, S, dtype=torch.int64)
        ctx = torch.empty(1, pc.tokens, pc.token_dim)
        t = torch.zeros(1, dtype=torch.int64)
    sched = NoiseSchedule(sc.diffusion).to("meta")
    kb = torch.full((1,), K, device="meta")

    def seg_train() -> None:
        segmentation_loss(seg(x, ctx).float(), y, kb)["loss"].backward()

    def den_fwd() -> None:
        with torch.no_grad():
            den(x, torch.empty(1, K, S, S, device="meta"), t, t, ctx)

    def den_train_one_pass() -> None:
        joint_diffusion_loss(den, x, torch.empty(1, K, S, S, device="meta"), ctx, sched, objective="njd")["loss"].backward()

    def seg_eval() -> None:
        with torch.no_grad():
            seg(x, ctx)

    passes = 3 if (method_spec(sc.method).objective == "bjd" and sc.diffusion.bjd_estimator == "full") else 1
    return {"segmentor_params": count_parameters(seg), "denoiser_params": count_parameters(den),
            "seg_train_flops": _flops(seg_train), "den_train_flops": passes * _flops(den_train_one_pass),
            "den_forward_flops": _flops(den_fwd), "seg_eval_flops": _flops(seg_eval), "bjd_passes": passes}


def stream_flops(sc, c: dict) -> dict[str, float]:
    train = synth = evaluation = 0.0
    tasks = sc.stream()
    n_test_all = sum(getattr(t.data, "n_test", 64) for t in tasks)
    for r, task in enumerate(tasks, 1):
        n_train = getattr(task.data, "n_train", 64)
        replay = n_train if sc.diffusion.replay_per_task == "train_size" else int(sc.diffusion.replay_per_task)
        samples = sc.training.epochs * (n_train + (r - 1) * replay)
        if sc.training.max_steps is not None:
            samples = min(samples, sc.training.max_steps * sc.training.batch_size)
        train += samples * (c["seg_train_flops"] + c["den_train_flops"])
        synth += (r - 1) * replay * sc.diffusion.sampling_steps * c["den_forward_flops"]
        evaluation += n_test_all * c["seg_eval_flops"]
    return {"train": train, "synthesis": synth, "evaluation": evaluation}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", type=Path, default=Path("scenarios/20tasks-paper.yaml"))
    ap.add_argument("--tflops", default="100,250,400",
                    help="assumed sustained bf16 TFLOP/s per GPU (an H100/H200 peaks near 990 dense; UNets at 256x256 "
                         "typically sustain 20-40 percent of peak)")
    ap.add_argument("--gpus", default="1,4,8")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    rows = []
    variants = [("paper (DDPM-200)", a.overrides),
                ("DDIM-10 replay", [*a.overrides, "diffusion.sampler=ddim", "diffusion.sampling_steps=10"])]
    for label, ov in variants:
        sc = load_scenario(a.scenario, ov)
        c = count(sc)
        f = stream_flops(sc, c)
        rows.append({"variant": label, "counts": c, "stream_flops": f})
    tf = [float(v) for v in a.tflops.split(",")]
    gpus = [int(v) for v in a.gpus.split(",")]
    c0 = rows[0]["counts"]
    md = ["# Paper-scale 20-task stream: wall-time estimate from counted FLOPs (no GPU was available)", "",
          f"Command: `python {' '.join(sys.argv)}`", "",
          f"Scenario `{a.scenario}`: segmentor {c0['segmentor_params'] / 1e6:.1f}M parameters, denoiser "
          f"{c0['denoiser_params'] / 1e6:.1f}M. Per sample: segmentor training {c0['seg_train_flops'] / 1e9:.1f} GFLOP "
          f"(forward + backward), denoiser training {c0['den_train_flops'] / 1e9:.1f} GFLOP ({c0['bjd_passes']} "
          f"pass(es): BJD full), one denoiser forward (one sampling step of one pair) {c0['den_forward_flops'] / 1e9:.1f} "
          f"GFLOP, segmentor evaluation {c0['seg_eval_flops'] / 1e9:.1f} GFLOP.", "",
          "| variant | training PFLOP | synthesis PFLOP | evaluation PFLOP | "
          + " | ".join(f"hours at {t:.0f} TFLOP/s, {g} GPU{'s' if g > 1 else ''}" for t in tf for g in gpus) + " |",
          "|---|---|---|---|" + "---|" * (len(tf) * len(gpus))]
    for r in rows:
        f = r["stream_flops"]
        cells = []
        for t in tf:
            for g in gpus:
                s = (f["train"] + f["synthesis"] + f["evaluation"] / g) / (t * 1e12)
                cells.append(f"{s / 3600:.1f}")
                r.setdefault("hours", {})[f"{t:.0f}TFLOPs_{g}gpu"] = s / 3600
        md.append(f"| {r['variant']} | {f['train'] / 1e15:.0f} | {f['synthesis'] / 1e15:.0f} | {f['evaluation'] / 1e15:.1f} | "
                  + " | ".join(cells) + " |")
    md += ["", "Reading: training and replay synthesis are sequential by nature (the models travel from one department "
           "to the next), so more GPUs shorten only the evaluations; the stream's wall time is essentially the one-GPU "
           "figure. Synthesis grows with the square of the number of tasks; replacing the paper's DDPM-200 with "
           "DDIM-10 (benchmarks/results/sampler_compare.md) removes most of it. These are FLOP-count estimates at an "
           "assumed throughput, not measurements: replace them with `benchmarks/throughput.py` on a GPU.", ""]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".md").write_text("\n".join(md))
    a.out.with_suffix(".json").write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
