"""Calibration of the memorisation audit: a generator over-fitted on 4 images must be flagged; a normally trained
one must not be.

Trains two tiny joint image-mask denoisers (c2gr_fed.models.JointDenoiser + c2gr_fed.diffusion.joint_diffusion_loss,
the smoke scenario's denoiser size) on one phantom department (Fundus-A):

- over-fitted: the same 4 training images for --steps optimiser steps;
- normal: the department's --n-train training images for the same number of steps;

samples --samples pairs from each (DDIM, --sampling-steps), and runs c2gr_fed.privacy.memorisation against that
generator's own training set and the department's held-out (val + test) cases, in pixel space and in the feature
space of a (randomly initialised) segmentor encoder. Also the two reference points: exact copies of training
images, and fresh real cases.

    python benchmarks/memorisation_calibration.py [--steps 1500] [--samples 32]
"""

from __future__ import annotations

import argparse
import time

import torch

from c2gr_fed.data.loading import load_task
from c2gr_fed.diffusion import NoiseSchedule, decode_masks, encode_masks, joint_diffusion_loss, sample_pairs
from c2gr_fed.models import JointDenoiser, PromptedSegmentor
from c2gr_fed.privacy.memorisation import memorisation_metrics, segmentor_features
from c2gr_fed.scenario import load_scenario

KEYS = ("extraction_fraction", "extraction_threshold", "extraction_score_min", "extraction_fraction_pair",
        "nn_ratio_fraction", "feature_copy_fraction", "pixel_d_train_median", "pixel_d_heldout_median", "flagged")


def train_denoiser(sc, images, masks, ctx, steps: int, seed: int, batch: int = 16, lr: float = 2e-3,
                   ema: float = 0.0) -> tuple[JointDenoiser, float]:
    """BJD training with Adam and a cosine learning-rate decay; with ema > 0 the returned weights are the EMA's."""
    torch.manual_seed(seed)
    K = sc.model.max_classes
    den = JointDenoiser(sc.model.denoiser, K, sc.model.prompt.token_dim)
    sched = NoiseSchedule(sc.diffusion)
    opt = torch.optim.Adam(den.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    avg = (torch.optim.swa_utils.AveragedModel(den, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(ema))
           if ema > 0 else None)
    code = encode_masks(masks, K)
    g = torch.Generator().manual_seed(seed)
    loss = torch.tensor(0.0)
    for _ in range(steps):
        idx = torch.randint(0, images.shape[0], (min(batch, images.shape[0]) if images.shape[0] > 4 else 4,), generator=g)
        loss = joint_diffusion_loss(den, images[idx], code[idx], ctx.expand(len(idx), -1, -1), sched,
                                    objective="bjd", estimator="stochastic")["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(den.parameters(), 1.0)
        opt.step()
        decay.step()
        if avg is not None:
            avg.update_parameters(den)
    if avg is not None:
        den.load_state_dict(avg.module.state_dict())
    return den, float(loss.detach())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--n-train", type=int, default=64)
    ap.add_argument("--sampling-steps", type=int, default=25)
    ap.add_argument("--sampler", default="ddim", choices=["ddpm", "ddim", "dpmsolver++"])
    ap.add_argument("--denoiser", default=None,
                    help="denoiser channels, e.g. 32,64,64 (default: the smoke scenario's); attention at the last level")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--ema", type=float, default=0.0, help="EMA decay of the sampled weights (0: none)")
    ap.add_argument("--cases", default="overfit,normal", help="which generators to train: overfit, normal or both")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    den_over = []
    if args.denoiser:
        ch = [int(c) for c in args.denoiser.split(",")]
        den_over = [f"model.denoiser.channels={ch}", f"model.denoiser.attention_levels=[{len(ch) - 1}]",
                    "model.denoiser.groups=8", "model.denoiser.heads=4"]
    sc = load_scenario("scenarios/smoke.yaml", [*den_over,
        f"departments.ophthalmology-aravind.tasks.Fundus-A.data.n_train={args.n_train}",
        "departments.ophthalmology-aravind.tasks.Fundus-A.data.n_val=16",
        "departments.ophthalmology-aravind.tasks.Fundus-A.data.n_test=32",
    ])
    task = sc.stream()[0]
    K = sc.model.max_classes
    tr, va, te = (load_task(sc, task, s) for s in ("train", "val", "test"))
    ho_x, ho_y = torch.cat([va.images, te.images]), torch.cat([va.masks, te.masks])
    ctx = torch.randn(1, sc.model.prompt.tokens, sc.model.prompt.token_dim, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(args.seed)
    seg = PromptedSegmentor(sc.model.segmentor, K, sc.model.prompt.token_dim)
    feats = segmentor_features(seg, ctx[0])
    sched = NoiseSchedule(sc.diffusion)

    def audit(sx, sy, trx, try_):
        return memorisation_metrics(sx, encode_masks(sy, K), trx, encode_masks(try_, K), ho_x, encode_masks(ho_y, K),
                                    features=feats).metrics

    n = args.samples

    def show(label, m, note):
        print(f"| {label} | " + " | ".join(f"{m.get(k, float('nan')):.3f}" for k in KEYS) + f" | {note} |", flush=True)

    print(f"task {task.name}, {sc.image_size}x{sc.image_size}, {n} synthetic pairs per generator, "
          f"held-out = {ho_x.shape[0]} val+test cases, thresholds at 1% FPR of real-vs-real")
    print("| case | " + " | ".join(KEYS) + " | note |")
    print("|---|" + "---:|" * len(KEYS) + "---|", flush=True)
    show("exact copies of 8 training images", audit(tr.images[:8], tr.masks[:8], tr.images, tr.masks), "")
    show(f"fresh real cases ({te.images.shape[0]} test vs train, calibrated on val)",
         memorisation_metrics(te.images, encode_masks(te.masks, K), tr.images, encode_masks(tr.masks, K),
                              va.images, encode_masks(va.masks, K), features=feats).metrics, "")
    wanted = set(args.cases.split(","))
    cases = []
    if "overfit" in wanted:
        cases.append(("over-fitted on 4 images", tr.images[:4], tr.masks[:4]))
    if "normal" in wanted:
        cases.append((f"normal ({tr.images.shape[0]} images)", tr.images, tr.masks))
    n_params = sum(p.numel() for p in JointDenoiser(sc.model.denoiser, K, sc.model.prompt.token_dim).parameters())
    print(f"denoiser {sc.model.denoiser.channels} ({n_params / 1e6:.2f}M parameters), sampler "
          f"{args.sampler}-{args.sampling_steps}, T = {sc.diffusion.timesteps}, lr {args.lr} cosine-decayed, "
          f"EMA {args.ema or 'off'}")
    for label, x, y in cases:
        t0 = time.perf_counter()
        den, last = train_denoiser(sc, x, y, ctx, args.steps, args.seed, lr=args.lr, ema=args.ema)
        sx, code = sample_pairs(den, ctx.expand(n, -1, -1).contiguous(), sc.image_size, K, sched, sampler=args.sampler,
                                steps=args.sampling_steps, seed=args.seed + 1)
        sy = decode_masks(code, len(task.classes))
        m = audit(sx, sy, x, y)
        show(f"generator {label}, {args.steps} steps", m, f"last loss {last:.3f}, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
