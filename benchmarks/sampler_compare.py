"""The sampler comparison: DDPM-200 (the paper's) against DDIM and DPM-Solver++ at 10-50 steps.

One generator, trained once, is sampled with every sampler, so the samplers are compared on exactly the same
weights. On a two-task phantom stream (default Fundus-A -> MnMs-Siemens, `scenarios/20tasks.yaml` models):

1. round 1 (`run_round`, the function department nodes call) trains segmentor + denoiser + prompt graph on task 1
   for --steps1 optimiser steps;
2. for each sampler: synthesise task-1 replay pairs exactly as round 2 would (same prompts, same seed), time them
   (pairs per second), and score them: correspondence Dice of the generated masks against the round-1 segmentor's
   predictions on the generated images (the paper's section 4.4.2 with the round-1 segmentor as the oracle:
   Dice on real task-1 test images is printed beside it), and the generated foreground fractions;
3. for each sampler (unless --no-round2): round 2 on task 2 with that sampler's replay, from the same round-1
   state and the same round seed, then the segmentor's Dice on both tasks' test splits: Overall (mean of the last
   row), BWT (paper scale: 100 x R[2,1] / R[1,1]).

    python benchmarks/sampler_compare.py --steps1 400 --steps2 150 \
        --samplers ddpm:200,ddim:10,ddim:25,ddim:50,dpmsolver++:10,dpmsolver++:20 \
        --md benchmarks/results/sampler_compare.md

One seed; the round-2 segmentor's Dice moves by a few points from run to run of different replay, so a difference
of about one Dice point in Overall is within noise (the table reports what was measured).
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
from core_two_task import score_against_oracle  # noqa: E402
from stream_cpu import load_average, subset_scenario  # noqa: E402

from c2gr_fed.data.loading import load_task  # noqa: E402
from c2gr_fed.learning.replay import synthesise_replay  # noqa: E402
from c2gr_fed.learning.round import evaluate_task, run_round  # noqa: E402
from c2gr_fed.learning.state import build_state  # noqa: E402
from c2gr_fed.text import build_text_encoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def with_sampler(sc, sampler: str, steps: int, n: int | None = None):
    upd = {"sampler": sampler, "sampling_steps": steps}
    if n is not None:
        upd["replay_per_task"] = n
    return sc.model_copy(update={"diffusion": sc.diffusion.model_copy(update=upd)})


def with_steps(sc, steps: int):
    return sc.model_copy(update={"training": sc.training.model_copy(update={"max_steps": steps, "epochs": 10_000})})


def score_replay(state, sc, n: int) -> dict:
    """Task-1 replay as round 2 draws it: time, correspondence Dice against the round-1 segmentor, fractions."""
    task1 = sc.stream()[0]
    sc_n = with_sampler(sc, sc.diffusion.sampler, sc.diffusion.sampling_steps, n)
    enc = build_text_encoder(sc.text_encoder)
    seed = sc.seed * 1_000_003 + 1 * 7919  # the seed run_round uses for round index 1
    t0 = time.perf_counter()
    rep = synthesise_replay(state, sc_n, enc, seed=seed, device=torch.device("cpu"))
    dt = time.perf_counter() - t0
    score = score_against_oracle(rep.images, rep.masks, state, 0, len(task1.classes), enc)
    r3 = lambda xs: [round(x, 3) for x in xs]  # noqa: E731
    return {"pairs": n, "synth_s": dt, "pairs_per_s": n / dt, "corr_dice": score["corr_dice"],
            "corr_per_class": score["corr_per_class"], "gen_fraction": r3(score["gen_fraction"]),
            "oracle_fraction_on_gen": r3(score["oracle_fraction"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="Fundus-A,MnMs-Siemens")
    ap.add_argument("--samplers", default="ddpm:200,ddim:10,ddim:25,ddim:50,dpmsolver++:10,dpmsolver++:20",
                    help="comma-separated sampler:steps[:remask]; the first is the reference for the speed-up; "
                         ":remask re-samples each mask given its generated image (BJD only)")
    ap.add_argument("--steps1", type=int, default=400)
    ap.add_argument("--steps2", type=int, default=150)
    ap.add_argument("--pairs", type=int, default=48, help="task-1 replay pairs per sampler (round 2 replays these)")
    ap.add_argument("--method", default="c2gr", help="c2gr (BJD) or c2gr-njd (NJD)")
    ap.add_argument("--no-round2", action="store_true", help="score replay only, skip the round-2 training")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--md", type=Path, required=True, help="writes this markdown and a .json beside it")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    load0 = load_average()
    sc = subset_scenario(ROOT / "scenarios" / "20tasks.yaml", a.tasks.split(","), None, a.overrides, a.method)
    sc = sc.model_copy(update={"diffusion": sc.diffusion.model_copy(update={"replay_per_task": a.pairs})})
    stream = sc.stream()
    tests = [load_task(sc, t, "test") for t in stream]
    state = build_state(sc)
    t0 = time.perf_counter()
    run_round(state, stream[0], load_task(sc, stream[0], "train"), with_steps(sc, a.steps1), 0)
    t_round1 = time.perf_counter() - t0
    oracle_dice = float(evaluate_task(state, stream[0], tests[0], sc)["dice"])
    print(f"round 1: {t_round1:.0f} s, {stream[0].name} test Dice {oracle_dice:.3f}", flush=True)

    rows = []
    for spec in a.samplers.split(","):
        name, steps, *flags = spec.split(":")
        sc_s = with_sampler(sc, name, int(steps))
        st = copy.deepcopy(state)
        if "remask" in flags:  # masks re-sampled given the generated images (BJD's Eq. 3 branch)
            sc_s = sc_s.model_copy(update={"diffusion": sc_s.diffusion.model_copy(update={"replay_masks": "resampled"})})
        label = name + (" + remask" if "remask" in flags else "")
        row = {"sampler": label, "steps": int(steps), **score_replay(copy.deepcopy(st), sc_s, a.pairs)}
        if not a.no_round2:
            t1 = time.perf_counter()
            run_round(st, stream[1], load_task(sc, stream[1], "train"), with_steps(sc_s, a.steps2), 1)
            row["round2_s"] = time.perf_counter() - t1
            R2 = [float(evaluate_task(st, t, d, sc_s)["dice"]) for t, d in zip(stream, tests)]
            row.update(dice_after=R2, overall=100 * sum(R2) / len(R2), bwt=100 * R2[0] / max(oracle_dice, 1e-9))
        rows.append(row)
        print(json.dumps(row), flush=True)

    ref = rows[0]
    lines = ["# Sampler comparison", "", "```", "$ python " + " ".join(sys.argv), "```", "",
             f"Stream {stream[0].name} -> {stream[1].name}, {sc.image_size}x{sc.image_size}, method {a.method} "
             f"({state.method.objective.upper()}, T = {sc.diffusion.timesteps}), round 1: {a.steps1} optimiser steps "
             f"({t_round1:.0f} s), round 2: {a.steps2} steps with {a.pairs} replay pairs of task 1, {a.threads} torch "
             f"threads, load average {load0} .. {load_average()} on a shared 2-core machine. Oracle for the "
             f"correspondence: the round-1 segmentor ({stream[0].name} test Dice {oracle_dice:.3f}).", "",
             "| sampler | steps | pairs/s | speed-up vs " + f"{ref['sampler']}-{ref['steps']}"
             + " | correspondence Dice | generated fg fraction | oracle fg fraction on generated |"
             + ("" if a.no_round2 else f" {stream[0].name} after round 2 | {stream[1].name} | Overall | BWT |"),
             "|---|---|---|---|---|---|---|" + ("" if a.no_round2 else "---|---|---|---|")]
    for r in rows:
        line = (f"| {r['sampler']} | {r['steps']} | {r['pairs_per_s']:.2f} | {r['pairs_per_s'] / ref['pairs_per_s']:.1f}x"
                f" | {r['corr_dice']:.3f} | {r['gen_fraction']} | {r['oracle_fraction_on_gen']} |")
        if not a.no_round2:
            line += f" {r['dice_after'][0]:.3f} | {r['dice_after'][1]:.3f} | {r['overall']:.1f} | {r['bwt']:.1f} |"
        lines.append(line)
    text = "\n".join(lines) + "\n"
    a.md.parent.mkdir(parents=True, exist_ok=True)
    a.md.write_text(text)
    a.md.with_suffix(".json").write_text(json.dumps({"round1_s": t_round1, "oracle_dice": oracle_dice, "rows": rows,
                                                     "command": " ".join(sys.argv)}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
