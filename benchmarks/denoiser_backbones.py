"""Native UNet vs diffusers' UNet as backbone of the denoiser and the segmentor, side by side.

    python benchmarks/denoiser_backbones.py --scenario scenarios/20tasks.yaml \
        --count scenarios/20tasks-paper.yaml --out benchmarks/results/denoiser_backbones.json

For each backbone (the scenario's model section, with only ``backbone`` changed):
* parameters of denoiser and segmentor for every scenario given (``--scenario`` and ``--count``; counted on the
  meta device, so the paper profile costs no memory), and FLOPs of one training sample, counted on the meta
  device by torch's FlopCounterMode (independent of machine load; the paper profile included);
* training samples/s on the ``--scenario`` profile: forward + backward + Adam step of the BJD loss (all three
  terms, ``--estimator full``) for the denoiser and of Dice + CE for the segmentor, on one fixed batch
  (images (B, 3, S, S), label maps (B, S, S), prompt tokens (B, L, D)); the two backbones alternate repeat by
  repeat and the median time of each is reported;
* the BJD loss on that fixed batch with fixed noise draws at initialisation and after the timed steps (finite).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from c2gr_fed.diffusion import NoiseSchedule, encode_masks, joint_diffusion_loss
from c2gr_fed.models import build_denoiser, build_segmentor, count_parameters, segmentation_loss
from c2gr_fed.scenario import Scenario, load_scenario

BACKBONES = ("native", "diffusers")


def _cfgs(sc: Scenario, backbone: str):
    m = sc.model
    return m.segmentor.model_copy(update={"backbone": backbone}), m.denoiser.model_copy(update={"backbone": backbone})


def count(sc: Scenario, backbone: str) -> dict[str, int]:
    """Parameters of the scenario's denoiser and segmentor on `backbone`, built on the meta device."""
    seg_cfg, den_cfg = _cfgs(sc, backbone)
    k, d = sc.model.max_classes, sc.model.prompt.token_dim
    with torch.device("meta"):
        return {"denoiser": count_parameters(build_denoiser(den_cfg, k, d)),
                "segmentor": count_parameters(build_segmentor(seg_cfg, k, d))}


def flops(sc: Scenario, backbone: str) -> dict[str, int]:
    """FLOPs of one training sample (forward + backward) on the meta device: the denoiser on (1, 3 + K, S, S), x3
    for the three BJD terms, and the segmentor on (1, 3, S, S). Counted, not timed: no machine load enters."""
    from torch.utils.flop_counter import FlopCounterMode

    seg_cfg, den_cfg = _cfgs(sc, backbone)
    k, pc, s = sc.model.max_classes, sc.model.prompt, sc.image_size
    with torch.device("meta"):
        den, seg = build_denoiser(den_cfg, k, pc.token_dim), build_segmentor(seg_cfg, k, pc.token_dim)
        x, y = torch.randn(1, 3, s, s), torch.randn(1, k, s, s)  # (1, 3, S, S), (1, K, S, S)
        ctx, t = torch.randn(1, pc.tokens, pc.token_dim), torch.zeros(1, dtype=torch.long)
        with FlopCounterMode(display=False) as fc:
            ex, ey = den(x, y, t, t, ctx)
            (ex.sum() + ey.sum()).backward()
        den_flops = 3 * fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            seg(x, ctx).sum().backward()
    return {"denoiser_bjd_full": den_flops, "segmentor": fc.get_total_flops()}


def _bjd(den, batch, sched: NoiseSchedule, k: int, estimator: str) -> torch.Tensor:
    x, y, ctx = batch
    g = torch.Generator().manual_seed(1)  # the same noise and timesteps at every call
    return joint_diffusion_loss(den, x, encode_masks(y, k), ctx, sched, objective="bjd", estimator=estimator,
                                generator=g)["loss"]


def measure(sc: Scenario, batch_size: int, repeats: int, estimator: str) -> dict[str, dict]:
    """Median seconds per training step of each backbone's denoiser and segmentor, interleaved, and BJD losses."""
    s, k, pc = sc.image_size, sc.model.max_classes, sc.model.prompt
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, s, s, generator=g).clamp(-1, 1)  # (B, 3, S, S)
    y = torch.randint(0, k + 1, (batch_size, s, s), generator=g)  # (B, S, S)
    ctx = torch.randn(batch_size, pc.tokens, pc.token_dim, generator=g)  # (B, L, D)
    kb = torch.full((batch_size,), k)
    sched = NoiseSchedule(sc.diffusion)
    steps, out = {}, {}
    for b in BACKBONES:
        seg_cfg, den_cfg = _cfgs(sc, b)
        torch.manual_seed(0)
        den, seg = build_denoiser(den_cfg, k, pc.token_dim), build_segmentor(seg_cfg, k, pc.token_dim)
        opt_d, opt_s = torch.optim.Adam(den.parameters(), 1e-4), torch.optim.Adam(seg.parameters(), 1e-4)
        with torch.no_grad():
            loss0 = float(_bjd(den, (x, y, ctx), sched, k, estimator))

        def den_step(den=den, opt=opt_d) -> None:
            loss = _bjd(den, (x, y, ctx), sched, k, estimator)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def seg_step(seg=seg, opt=opt_s) -> None:
            loss = segmentation_loss(seg(x, ctx), y, kb)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        den_step(), seg_step()  # warm-up
        steps[b] = (den_step, seg_step)
        out[b] = {"den": den, "loss_init": loss0, "den_s": [], "seg_s": []}
    for _ in range(repeats):
        for b in BACKBONES:
            for key, fn in zip(("den_s", "seg_s"), steps[b]):
                t0 = time.perf_counter()
                fn()
                out[b][key].append(time.perf_counter() - t0)
    rows = {}
    for b in BACKBONES:
        with torch.no_grad():
            loss_after = float(_bjd(out[b]["den"], (x, y, ctx), sched, k, estimator))
        den_s, seg_s = statistics.median(out[b]["den_s"]), statistics.median(out[b]["seg_s"])
        rows[b] = {"denoiser_train_samples_per_s": batch_size / den_s, "segmentor_train_samples_per_s": batch_size / seg_s,
                   "denoiser_step_s_all": out[b]["den_s"], "segmentor_step_s_all": out[b]["seg_s"],
                   "bjd_loss_init": out[b]["loss_init"], "bjd_loss_after_steps": loss_after}
    for key, name in (("den_s", "denoiser"), ("seg_s", "segmentor")):  # repeat by repeat, same machine load
        pairs = [d / n for d, n in zip(out["diffusers"][key], out["native"][key])]
        rows[f"{name}_time_ratio_diffusers_over_native"] = statistics.median(pairs)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", type=Path, required=True, help="profile to time and count")
    ap.add_argument("--count", type=Path, action="append", default=[], help="further profiles to count only")
    ap.add_argument("--batch", type=int, default=None, help="default: the scenario's batch size")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--estimator", choices=("full", "stochastic"), default="full")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-timing", action="store_true", help="parameters and FLOPs only")
    ap.add_argument("--out", type=Path, required=True, help="JSON file of the results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sc = load_scenario(args.scenario)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    res: dict = {"timed_scenario": str(args.scenario), "threads": args.threads, "estimator": args.estimator,
                 "batch": args.batch or sc.training.batch_size, "image_size": sc.image_size, "repeats": args.repeats,
                 "params": {}, "train_flops_per_sample": {}}
    for path in [args.scenario, *args.count]:
        other = load_scenario(path)
        res["params"][str(path)] = {b: count(other, b) for b in BACKBONES}
        res["train_flops_per_sample"][str(path)] = {b: flops(other, b) for b in BACKBONES}
    print(json.dumps({"params": res["params"], "train_flops_per_sample": res["train_flops_per_sample"]}, indent=1))
    if args.no_timing:
        args.out.write_text(json.dumps(res, indent=1) + "\n")
        return 0
    res["timing"] = measure(sc, res["batch"], args.repeats, args.estimator)
    for b in BACKBONES:
        r = res["timing"][b]
        print(f"{b:9s} denoiser {r['denoiser_train_samples_per_s']:7.1f} samples/s  segmentor "
              f"{r['segmentor_train_samples_per_s']:7.1f} samples/s  BJD loss {r['bjd_loss_init']:.4f} -> "
              f"{r['bjd_loss_after_steps']:.4f}")
    print("median step-time ratio diffusers / native (paired repeats): denoiser "
          f"{res['timing']['denoiser_time_ratio_diffusers_over_native']:.2f}, segmentor "
          f"{res['timing']['segmentor_time_ratio_diffusers_over_native']:.2f}")
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
