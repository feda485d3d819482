"""Why does the generator draw noise? Denoiser-only training curves for generator variants, side by side.

Trains ONLY the joint denoiser (BJD or NJD, the round's loss function, the prompt graph frozen at its
initialisation so every variant sees the same context) on one task's real training pairs for up to --steps
optimiser steps, and at each checkpoint samples pairs with the round's sampler and scores them against the real
test split with three cheap image statistics:

- `tv_ratio`: mean absolute difference of neighbouring pixels, generated / real (noise >> 1, blur < 1, ~1 good);
- `colour_err`: distance between the per-channel mean colours of generated and real images;
- `std_ratio`: per-image pixel standard deviation, generated / real.

and writes a markdown table, a CSV and one PNG grid per variant at the last checkpoint. A variant is
`name:key=value,key=value` with keys prediction_type, lr, ema, objective, estimator.

    python benchmarks/generator_diagnosis.py --steps 200,600 \\
        --variant eps:prediction_type=epsilon --variant v:prediction_type=v_prediction \\
        --md benchmarks/results/generator_diagnosis.md
"""

from __future__ import annotations

import argparse
import copy
import csv
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream_cpu import subset_scenario  # noqa: E402

from c2gr_fed.data.loading import load_task  # noqa: E402
from c2gr_fed.diffusion import NoiseSchedule, decode_masks, encode_masks, joint_diffusion_loss, sample_pairs  # noqa: E402
from c2gr_fed.learning.replay import ReplaySet  # noqa: E402
from c2gr_fed.learning.methods import method_spec  # noqa: E402
from c2gr_fed.learning.ema import Ema  # noqa: E402
from c2gr_fed.learning.state import build_state  # noqa: E402
from c2gr_fed.prompts import TaskDescriptor, embed_pool  # noqa: E402
from c2gr_fed.reporting.figures import replay_grid  # noqa: E402
from c2gr_fed.text import build_text_encoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"prediction_type": str, "lr": float, "ema": float, "objective": str, "estimator": str}


def parse_variant(text: str, keys: dict = KEYS) -> tuple[str, dict]:
    """'name:key=value,...' -> (name, {key: keys[key](value)}); an unknown key ends the script naming the known ones."""
    name, _, rest = text.partition(":")
    opts: dict = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        if k not in keys:
            raise SystemExit(f"variant {name!r}: unknown key {k!r}; known: {sorted(keys)}")
        opts[k] = keys[k](v)
    return name, opts


def tv(images: torch.Tensor) -> float:
    """Mean absolute neighbour difference of (N, 3, H, W) images."""
    return float(((images[..., 1:, :] - images[..., :-1, :]).abs().mean()
                  + (images[..., :, 1:] - images[..., :, :-1]).abs().mean()) / 2)


def scores(gen: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    return {
        "tv_ratio": tv(gen) / max(tv(real), 1e-8),
        "colour_err": float((gen.mean(dim=(0, 2, 3)) - real.mean(dim=(0, 2, 3))).norm()),
        "std_ratio": float(gen.flatten(1).std(1).mean() / real.flatten(1).std(1).mean().clamp_min(1e-8)),
    }


def write_tables(rows: list[dict], md: Path, title: str) -> None:
    """The markdown table and CSV so far (rewritten after every variant, so a stopped run keeps its rows)."""
    md.parent.mkdir(parents=True, exist_ok=True)
    with open(md.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [title, "",
             "Command: `python benchmarks/" + Path(__file__).name + " " + " ".join(sys.argv[1:]) + "`", "",
             "| variant | options | steps | loss | tv_ratio (~1) | colour_err (~0) | std_ratio (~1) | train s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['options']} | {r['steps']} | {r['loss']:.3f} | {r['tv_ratio']:.2f} | "
                     f"{r['colour_err']:.3f} | {r['std_ratio']:.2f} | {r['train_s']:.0f} |")
    md.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "bench-5tasks.yaml"))
    ap.add_argument("--task", default="Fundus-A")
    ap.add_argument("--steps", default="200,600", help="comma-separated checkpoints (optimiser steps)")
    ap.add_argument("--variant", action="append", required=True, help="name:key=value,... (see the docstring)")
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--sampler", default=None, help="sampler:steps (default: the scenario's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--md", type=Path, required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    checkpoints = sorted(int(s) for s in a.steps.split(","))
    base = subset_scenario(a.scenario, [a.task])
    task = base.stream()[0]
    train, test = load_task(base, task, "train"), load_task(base, task, "test")
    encoder = build_text_encoder(base.text_encoder)
    dc = base.diffusion
    sampler, s_steps = (a.sampler.split(":")[0], int(a.sampler.split(":")[1])) if a.sampler else (dc.sampler, dc.sampling_steps)
    K = base.model.max_classes
    rows = []
    for vtext in a.variant:
        name, opts = parse_variant(vtext)
        state = build_state(base)
        state.pool.add(TaskDescriptor.from_task(task))
        with torch.no_grad():
            ctx = state.prompts(embed_pool(state.pool, encoder)).gen[0]  # (L, D), frozen
        den = state.denoiser
        schedule = NoiseSchedule(dc, prediction_type=opts.get("prediction_type", dc.prediction_type))
        opt = torch.optim.Adam(den.parameters(), lr=opts.get("lr", base.training.denoiser_lr or base.training.lr))
        ema = Ema(den, opts["ema"]) if "ema" in opts else None
        gen = torch.Generator().manual_seed(base.seed)
        torch.manual_seed(base.seed)
        t0, step = time.perf_counter(), 0
        for cp in checkpoints:
            while step < cp:
                idx = torch.randint(0, len(train), (base.training.batch_size,), generator=gen)
                x, code = train.images[idx], encode_masks(train.masks[idx], K)
                c = ctx.expand(len(idx), -1, -1)
                loss = joint_diffusion_loss(den, x, code, c, schedule, objective=opts.get("objective", method_spec(base.method).objective or "bjd"),
                                            estimator=opts.get("estimator", dc.bjd_estimator))["loss"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if ema is not None:
                    ema.update(den)
                step += 1
            train_s = time.perf_counter() - t0
            net = den
            if ema is not None:  # sample with the averaged weights, keep training the raw ones
                net = copy.deepcopy(den)
                ema.copy_to(net)
            imgs, codes = sample_pairs(net, ctx.expand(a.samples, -1, -1), base.image_size, K, schedule,
                                       sampler=sampler, steps=s_steps, seed=1)
            row = {"variant": name, "options": vtext.partition(":")[2], "steps": cp, "loss": float(loss.detach()),
                   **scores(imgs, test.images), "train_s": train_s}
            rows.append(row)
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        n = 4
        masks = decode_masks(codes[:n], torch.full((n,), len(task.classes)))
        grid = ReplaySet(torch.cat([imgs[:n], test.images[:n]]), torch.cat([masks, test.masks[:n]]),
                         torch.tensor([0] * n + [1] * n), (f"generated ({name})", "real"))
        png = a.md.with_name(f"{a.md.stem}-{name}.png")
        replay_grid(grid, base, png, f"{task.name}, denoiser only, {checkpoints[-1]} steps, {name} ({sampler}-{s_steps})")
        write_tables(rows, a.md, f"# Generator diagnosis: {task.name}, denoiser only ({base.name} models, {sampler}-{s_steps})")
    print(f"-> {a.md}")


if __name__ == "__main__":
    main()
