"""The core benchmark: a two-task phantom stream (appearance AND objective shift) at 32x32.

(a) c2gr (BJD image-mask replay) vs (b) finetune (no replay): task 1's Dice after task 2;
(c) correspondence Dice of replay pairs (paper section 4.4.2): the generated masks against an oracle segmentor's
    predictions on the generated images, for BJD (c2gr) vs NJD (c2gr-njd). The oracle is the segmentor trained on
    task 1's real data (finetune after round 1, same budget), prompted with task 1. The replay pairs scored are
    exactly the ones the round on task 2 replays (same generator, same seed).

Every method runs run_round / evaluate_task, the functions the department nodes call. Runs can be split over
processes (the machine is shared): `--methods X --part DIR` writes DIR/X.json and DIR/X.pt; `--merge DIR --md OUT`
builds the table from the parts.

    /work/venv/bin/python benchmarks/core_two_task.py --methods c2gr,c2gr-njd,finetune --steps1 300 --steps2 100 \
        --part /tmp/core && /work/venv/bin/python benchmarks/core_two_task.py --merge /tmp/core \
        --md benchmarks/results/core_two_task.md
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream_cpu import load_average, subset_scenario  # noqa: E402

from c2gr_fed.data.loading import load_task  # noqa: E402
from c2gr_fed.learning.replay import synthesise_replay  # noqa: E402
from c2gr_fed.learning.round import evaluate_task, run_round  # noqa: E402
from c2gr_fed.learning.state import build_state  # noqa: E402
from c2gr_fed.metrics.dice import DiceAccumulator  # noqa: E402
from c2gr_fed.models import predict_masks  # noqa: E402
from c2gr_fed.prompts import embed_pool  # noqa: E402
from c2gr_fed.text import build_text_encoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def with_steps(sc, steps: int):
    return sc.model_copy(update={"training": sc.training.model_copy(update={"max_steps": steps, "epochs": 10_000})})


def run_method(method: str, a) -> tuple[dict, object | None]:
    sc = subset_scenario(ROOT / "scenarios" / "20tasks.yaml", a.tasks.split(","), None, a.overrides, method)
    torch.set_num_threads(a.threads)
    stream = sc.stream()
    state = build_state(sc)
    tests = [load_task(sc, t, "test") for t in stream]
    R = [[None] * len(stream) for _ in stream]
    after_first = None
    times = []
    for r, task in enumerate(stream):
        t0 = time.perf_counter()
        res = run_round(state, task, load_task(sc, task, "train"), with_steps(sc, a.steps1 if r == 0 else a.steps2), r)
        times.append({"round": r, "wall_s": time.perf_counter() - t0, **{k: res.metrics[k] for k in
                      ("steps", "time_replay_s", "time_train_s", "loss_seg", "loss_diffusion")}})
        for j, other in enumerate(stream):
            R[r][j] = float(evaluate_task(state, other, tests[j], sc)["dice"])
        if r == 0:
            after_first = copy.deepcopy(state)
        print(f"[{method}] round {r} ({task.name}): {times[-1]} R={R[r]}", flush=True)
    return {"method": method, "tasks": [t.name for t in stream], "R": R, "rounds": times,
            "scenario": sc.model_dump(mode="json")}, after_first


def correspondence(gen_state, oracle_state, sc, n: int) -> dict:
    """Replay for task 1 exactly as round 2 draws it; Dice of generated masks vs the oracle's predictions."""
    task1 = sc.stream()[0]
    sc_n = sc.model_copy(update={"diffusion": sc.diffusion.model_copy(update={"replay_per_task": n})})
    enc = build_text_encoder(sc.text_encoder)
    seed = sc.seed * 1_000_003 + 1 * 7919  # the seed run_round uses in round index 1
    rep = synthesise_replay(gen_state, sc_n, enc, seed=seed, device=torch.device("cpu"))
    score = score_against_oracle(rep.images, rep.masks, oracle_state, 0, len(task1.classes), enc)
    real = load_task(sc, task1, "train")
    return {"corr_dice": score["corr_dice"], "corr_per_class": score["corr_per_class"],
            "gen_mask_fraction": score["gen_fraction"], "oracle_mask_fraction_on_gen": score["oracle_fraction"],
            "real_mask_fraction": mask_fractions(real.masks, len(task1.classes)), "n": n}


def mask_fractions(masks: torch.Tensor, k: int) -> list[float]:
    """Fraction of pixels of each foreground class 1..k in masks (N, H, W)."""
    return [float((masks == c).float().mean()) for c in range(1, k + 1)]


def score_against_oracle(images: torch.Tensor, masks: torch.Tensor, oracle_state, pool_index: int, k: int,
                         enc) -> dict:
    """Correspondence Dice of generated masks (N, H, W) with the oracle segmentor's predictions on the generated
    images (N, 3, H, W), prompting the oracle with its pool entry `pool_index`; plus both foreground fractions.
    The oracle's modules are left in the mode they were in."""
    modes = (oracle_state.segmentor.training, oracle_state.prompts.training)
    oracle_state.segmentor.eval()
    oracle_state.prompts.eval()
    with torch.no_grad():
        tok = oracle_state.prompts(embed_pool(oracle_state.pool, enc)).seg[pool_index]
        logits = oracle_state.segmentor(images, tok.expand(images.shape[0], -1, -1))
    oracle_state.segmentor.train(modes[0])
    oracle_state.prompts.train(modes[1])
    pred = predict_masks(logits.float(), torch.full((images.shape[0],), k, dtype=torch.int64))
    acc = DiceAccumulator(k)
    acc.update(masks, pred)
    return {"corr_dice": acc.mean(), "corr_per_class": acc.per_class(), "gen_fraction": mask_fractions(masks, k),
            "oracle_fraction": mask_fractions(pred, k)}


def merge(part: Path, md_out: Path | None, command: str) -> str:
    res = {p.stem: json.loads(p.read_text()) for p in sorted(part.glob("*.json"))}
    states = {p.stem: torch.load(p, weights_only=False) for p in sorted(part.glob("*.pt"))}
    any_res = next(iter(res.values()))
    from c2gr_fed.scenario.loading import validate_scenario

    oracle = states.get("finetune")
    lines = ["# Core two-task benchmark", "", "```", f"$ {command}"]
    lines += [f"$ {r['command']}" for r in res.values() if "command" in r] + ["```", ""]
    tasks = any_res["tasks"]
    lines += [f"Stream: {tasks[0]} -> {tasks[1]} (appearance and objective shift), 32x32 phantoms, "
              f"steps per round: {any_res['steps']}, load average during the runs: "
              f"{', '.join(sorted({r['load'] for r in res.values()}))} on {os.cpu_count()} CPUs (shared machine).", "",
              f"| method | Dice {tasks[0]} after round 1 | Dice {tasks[0]} after round 2 | retained | "
              f"Dice {tasks[1]} after round 2 | wall s (round 1 / 2) |", "|---|---|---|---|---|---|"]
    for name, r in res.items():
        R = r["R"]
        lines.append(f"| {name} | {R[0][0]:.3f} | {R[1][0]:.3f} | {R[1][0] / max(R[0][0], 1e-9):.2f} | {R[1][1]:.3f} | "
                     f"{r['rounds'][0]['wall_s']:.0f} / {r['rounds'][1]['wall_s']:.0f} |")
    if oracle is not None:
        lines += ["", f"Correspondence of the replay pairs for {tasks[0]} (the pairs round 2 replays), generated masks "
                  f"vs the oracle segmentor (finetune after round 1: Dice {res['finetune']['R'][0][0]:.3f} on real "
                  f"{tasks[0]} test images) on the generated images:", "",
                  "| generator | correspondence Dice | per class | generated mask fraction | oracle fraction on "
                  "generated | real mask fraction |", "|---|---|---|---|---|---|"]
        for name in ("c2gr", "c2gr-njd"):
            if name in states:
                sc = validate_scenario(res[name]["scenario"])
                c = correspondence(states[name], oracle, sc, res[name]["corr_n"])
                res[name]["correspondence"] = c
                fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
                lines.append(f"| {name} ({'BJD' if name == 'c2gr' else 'NJD'}) | {c['corr_dice']:.3f} | "
                             f"{fmt(c['corr_per_class'])} | {fmt(c['gen_mask_fraction'])} | "
                             f"{fmt(c['oracle_mask_fraction_on_gen'])} | {fmt(c['real_mask_fraction'])} |")
    text = "\n".join(lines) + "\n"
    if md_out:
        md_out.write_text(text)
        md_out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="c2gr,c2gr-njd,finetune")
    ap.add_argument("--tasks", default="Fundus-A,MnMs-Siemens")
    ap.add_argument("--steps1", type=int, default=300, help="optimiser steps of round 1 (task 1)")
    ap.add_argument("--steps2", type=int, default=100, help="optimiser steps of round 2 (task 2 + replay)")
    ap.add_argument("--corr-n", type=int, default=48, help="replay pairs scored for correspondence")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: 2 threads thrash on a loaded 2-core machine)")
    ap.add_argument("--part", type=Path, default=None)
    ap.add_argument("--merge", type=Path, default=None)
    ap.add_argument("--md", type=Path, default=None)
    a = ap.parse_args()
    command = "/work/venv/bin/python " + " ".join(sys.argv)
    if a.merge:
        print(merge(a.merge, a.md, command))
        return
    part = a.part or Path("/tmp/core_two_task")
    part.mkdir(parents=True, exist_ok=True)
    for m in a.methods.split(","):
        load = load_average()
        res, first = run_method(m, a)
        res.update(command=command, steps=[a.steps1, a.steps2], load=f"{load} .. {load_average()}", corr_n=a.corr_n)
        (part / f"{m}.json").write_text(json.dumps(res, indent=1))
        torch.save(first, part / f"{m}.pt")
    if not a.part:
        print(merge(part, a.md, command))


if __name__ == "__main__":
    main()
