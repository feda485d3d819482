"""How well does one task's banked generator draw masks that match its images? Generator levers, side by side.

For each task: a reference segmentor and prompt graph are trained on the task's real training pairs
(`--seg-steps`); then each generator variant is trained the way a bank trains a task's generator (BJD on the
task's own real pairs, the round's augmentation and batch size, EMA with warm-up, conditioned on the task's frozen
generator tokens) for `--gen-steps` steps, optionally warm-started from a generator first trained the same way on
another task (`warm=TASK`). Then `--samples` pairs are drawn with the scenario's sampler and scored:

- `agree_joint`: mean per-case Dice between the jointly drawn masks and the reference segmentor's labels of the
  drawn images (the round metric `replay_agreement`);
- `agree_resampled`: the same for masks re-drawn from the clean drawn images with the generator's
  mask-given-image branch (BJD Eq. 3);
- `area_ratio`: foreground pixels of the drawn masks / of the real training masks;
- `seg_real`: the reference segmentor's mean per-case Dice on the real test split (what agreement can reach).

A variant is `name:key=value,...` with keys min_snr_gamma, mask_loss_weight, gen_steps, warm, augment and
sampling_steps (the scenario's sampler with that many steps).

    python benchmarks/generator_masks.py --tasks KiTS,BraTS-T2 --variant base: --variant snr5:min_snr_gamma=5 \\
        --out benchmarks/results/generator_masks

Writes OUT.md, OUT.json and one PNG grid per task and variant (OUT-TASK-VARIANT.png).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generator_diagnosis import parse_variant as parse_diagnosis_variant  # noqa: E402
from stream_cpu import subset_scenario  # noqa: E402

from c2gr_fed.data.loading import load_task  # noqa: E402
from c2gr_fed.diffusion import decode_masks, encode_masks, joint_diffusion_loss, sample_masks_given_images, sample_pairs  # noqa: E402
from c2gr_fed.learning.replay import ReplaySet  # noqa: E402
from c2gr_fed.learning.ema import Ema  # noqa: E402
from c2gr_fed.learning.round import _batch  # noqa: E402
from c2gr_fed.learning.state import _denoiser_factory, build_state  # noqa: E402
from c2gr_fed.metrics import case_dice  # noqa: E402
from c2gr_fed.models import predict_masks  # noqa: E402
from c2gr_fed.models.segmentor import segmentation_loss  # noqa: E402
from c2gr_fed.prompts import TaskDescriptor, embed_pool  # noqa: E402
from c2gr_fed.reporting.figures import replay_grid  # noqa: E402
from c2gr_fed.text import build_text_encoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"min_snr_gamma": float, "mask_loss_weight": float, "gen_steps": int, "warm": str, "augment": lambda v: v == "true",
        "sampling_steps": int}


def parse_variant(text: str) -> tuple[str, dict]:
    return parse_diagnosis_variant(text, KEYS)


class TaskBench:
    """One task's data, reference segmentor and frozen generator tokens."""

    def __init__(self, scenario_path: str, task: str, seg_steps: int, seed: int) -> None:
        self.sc = subset_scenario(scenario_path, [task])
        self.task = self.sc.stream()[0]
        self.train = load_task(self.sc, self.task, "train")
        self.test = load_task(self.sc, self.task, "test")
        self.k = len(self.task.classes)
        state = build_state(self.sc)
        state.pool.add(TaskDescriptor.from_task(self.task))
        emb = embed_pool(state.pool, build_text_encoder(self.sc.text_encoder))
        tc = self.sc.training
        opt = torch.optim.Adam(list(state.segmentor.parameters()) + list(state.prompts.parameters()), lr=tc.lr)
        gen = torch.Generator().manual_seed(seed)
        kb = torch.full((tc.batch_size,), self.k)
        for _ in range(seg_steps):
            idx = torch.randint(0, len(self.train), (tc.batch_size,), generator=gen)
            x, y = _batch(self.train.images, self.train.masks, idx, tc.augment, gen, torch.device("cpu"))
            tokens = state.prompts(emb)
            loss = segmentation_loss(state.segmentor(x, tokens.seg[0].expand(len(idx), -1, -1)), y, kb)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        state.segmentor.eval()
        with torch.no_grad():
            tokens = state.prompts(emb)
        self.seg_tokens, self.gen_tokens = tokens.seg[0], tokens.gen[0]  # (L, D) each
        self.segmentor = state.segmentor
        self.schedule = state.schedule
        self.seg_real = float(case_dice(self.label(self.test.images), self.test.masks, self.k).mean())

    def label(self, x: torch.Tensor) -> torch.Tensor:
        """The reference segmentor's label maps (N, S, S) of images x (N, 3, S, S)."""
        with torch.no_grad():
            logits = self.segmentor(x, self.seg_tokens.expand(x.shape[0], -1, -1))
        return predict_masks(logits.float(), torch.full((x.shape[0],), self.k))

    def train_generator(self, den: torch.nn.Module, steps: int, opts: dict, seed: int) -> torch.nn.Module:
        """Train `den` in place the way a bank round does; returns the EMA copy that would be banked."""
        sc, tc, dc = self.sc, self.sc.training, self.sc.diffusion
        opt = torch.optim.Adam(den.parameters(), lr=tc.denoiser_lr or tc.lr, weight_decay=tc.weight_decay)
        ema = Ema(den, dc.ema, dc.ema_warmup) if dc.ema else None
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        ctx = self.gen_tokens.expand(tc.batch_size, -1, -1)
        den.train()
        for _ in range(steps):
            idx = torch.randint(0, len(self.train), (tc.batch_size,), generator=gen)
            x, y = _batch(self.train.images, self.train.masks, idx, opts.get("augment", tc.augment), gen, torch.device("cpu"))
            loss = joint_diffusion_loss(den, x, encode_masks(y, sc.model.max_classes), ctx, self.schedule,
                                        objective="bjd", estimator=dc.bjd_estimator,
                                        snr_gamma=opts.get("min_snr_gamma", dc.min_snr_gamma),
                                        mask_weight=opts.get("mask_loss_weight", dc.mask_loss_weight))["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(den.parameters(), tc.grad_clip)
            opt.step()
            if ema is not None:
                ema.update(den)
        out = copy.deepcopy(den)
        if ema is not None:
            ema.copy_to(out)
        return out.eval()

    def score(self, net: torch.nn.Module, n: int, seed: int, steps: int | None = None) -> tuple[dict[str, float], ReplaySet]:
        sc, dc = self.sc, self.sc.diffusion
        steps = steps or dc.sampling_steps
        K = sc.model.max_classes
        ctx = self.gen_tokens.expand(n, -1, -1)
        x, code = sample_pairs(net, ctx, sc.image_size, K, self.schedule, sampler=dc.sampler,
                               steps=steps, seed=seed, chunk_size=dc.chunk_size)
        kb = torch.full((n,), self.k)
        joint = decode_masks(code, kb)
        resampled = decode_masks(sample_masks_given_images(net, x, ctx, K, self.schedule, sampler=dc.sampler,
                                                           steps=steps, seed=seed + 7_919,
                                                           chunk_size=dc.chunk_size), kb)
        seg = self.label(x)
        real_fg = float((self.train.masks > 0).float().mean())
        row = {"agree_joint": float(case_dice(seg, joint, self.k).mean()),
               "agree_resampled": float(case_dice(seg, resampled, self.k).mean()),
               "area_ratio": float((joint > 0).float().mean()) / max(real_fg, 1e-8)}
        show = min(6, n)
        grid = ReplaySet(torch.cat([x[:show], x[:show]]), torch.cat([joint[:show], seg[:show]]),
                         torch.tensor([0] * show + [1] * show), ("generated mask", "segmentor's label"))
        return row, grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "20tasks.yaml"))
    ap.add_argument("--tasks", required=True, help="comma-separated task names")
    ap.add_argument("--variant", action="append", required=True, help="name:key=value,... (see the docstring)")
    ap.add_argument("--seg-steps", type=int, default=300)
    ap.add_argument("--gen-steps", type=int, default=370, help="generator steps (the default run: 120 joint + 250)")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--sampling-steps", default=None, help="comma-separated sampler step counts to score each "
                    "generator with (default: the scenario's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="output path without extension")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    variants = [parse_variant(v) for v in a.variant]
    rows: list[dict] = []
    warm_cache: dict[str, torch.nn.Module] = {}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    for task in a.tasks.split(","):
        bench = TaskBench(a.scenario, task, a.seg_steps, a.seed)
        make = _denoiser_factory(bench.sc)
        for name, opts in variants:
            t0 = time.perf_counter()
            torch.manual_seed(a.seed)
            den = make()
            if "warm" in opts:  # a generator trained first on the warm task, as the bank's warm start would be
                if opts["warm"] not in warm_cache:
                    src = TaskBench(a.scenario, opts["warm"], a.seg_steps, a.seed)
                    torch.manual_seed(a.seed)
                    warm_cache[opts["warm"]] = src.train_generator(make(), a.gen_steps, {}, a.seed)
                den.load_state_dict(warm_cache[opts["warm"]].state_dict())
            net = bench.train_generator(den, opts.get("gen_steps", a.gen_steps), opts, a.seed + 1)
            train_s = time.perf_counter() - t0
            counts = [opts["sampling_steps"]] if "sampling_steps" in opts else (
                [int(c) for c in a.sampling_steps.split(",")] if a.sampling_steps else [bench.sc.diffusion.sampling_steps])
            for count in counts:  # one trained generator, scored with each sampling budget
                scores, grid = bench.score(net, a.samples, a.seed + 2, count)
                row = {"task": task, "variant": name, "options": ",".join(f"{k}={v}" for k, v in opts.items()),
                       "sampling": f"{bench.sc.diffusion.sampler}-{count}", "seg_real": bench.seg_real, **scores,
                       "train_s": train_s}
                rows.append(row)
                print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
                replay_grid(grid, bench.sc, a.out.with_name(f"{a.out.name}-{task}-{name}-{count}.png"),
                            f"{task}, {name}, {count} sampling steps: generated masks (top), the segmentor's labels "
                            "(bottom)", per_task=6)
                write(rows, a)
    print(f"-> {a.out}.md")


def write(rows: list[dict], a: argparse.Namespace) -> None:
    a.out.with_suffix(".json").write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))
    lines = ["# Banked generator masks: agreement with a reference segmentor, per lever", "",
             f"Command: `python benchmarks/{Path(__file__).name} " + " ".join(sys.argv[1:]) + "`", "",
             "| task | variant | options | sampling | segmentor on real test | agree (joint masks) "
             "| agree (re-sampled masks) | mask area / real | train s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['variant']} | {r['options'] or '-'} | {r['sampling']} | {r['seg_real']:.2f} | "
                     f"{r['agree_joint']:.2f} | {r['agree_resampled']:.2f} | {r['area_ratio']:.2f} | {r['train_s']:.0f} |")
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
