"""Replay quality per past task (paper section 4.4.2): correspondence Dice between the masks a run's final generator
synthesises and the predictions of a reference segmentor on the synthesised images.

The reference ("oracle") is the final segmentor of a `joint` run on the same scenario (all tasks' real data in one
place), prompted with its own prompt for the task; its Dice on each task's real test split is printed beside it so
a reader can judge the oracle. Each generator run (c2gr = BJD, c2gr-njd = NJD, ...) samples --pairs pairs per task
with its own prompts, with the scenario's sampler and a fixed seed.

    python benchmarks/replay_quality.py --oracle RUNS/joint-seed0 RUNS/c2gr-seed0 RUNS/c2gr-njd-seed0 \
        --out benchmarks/results/replay_quality-bench-5tasks

Writes STEM.md, STEM.json and STEM.png (grouped bars: task x run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from c2gr_fed.data.loading import load_task
from c2gr_fed.learning.final_state import load_final_state
from c2gr_fed.learning.replay import generate_task_pairs
from c2gr_fed.learning.round import evaluate_task
from c2gr_fed.metrics.dice import DiceAccumulator
from c2gr_fed.models import predict_masks
from c2gr_fed.prompts import embed_pool
from c2gr_fed.text import build_text_encoder


def generated_pairs(run_dir: Path, pairs: int, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """task name -> (images (N,3,S,S), masks (N,S,S)) from the run's final generator, one prompt per pool entry."""
    sc, state = load_final_state(run_dir)
    if state.denoiser is None or state.method.replay != "pairs":
        raise SystemExit(f"{run_dir}: method {sc.method!r} has no joint image-mask generator")
    enc = build_text_encoder(sc.text_encoder)
    state.prompts.eval()
    with torch.no_grad():
        tokens = state.prompts(embed_pool(state.pool, enc))
    out = {}
    for i, desc in enumerate(state.pool):
        out[desc.name] = generate_task_pairs(state, sc, tokens.gen[i].expand(pairs, -1, -1).contiguous(),
                                             tokens.seg[i], desc.num_classes, seed=seed + 7 * i)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories of generator methods (c2gr, c2gr-njd, ...)")
    ap.add_argument("--oracle", type=Path, required=True, help="a joint run on the same scenario")
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    osc, oracle = load_final_state(a.oracle)
    enc = build_text_encoder(osc.text_encoder)
    oracle.segmentor.eval()
    oracle.prompts.eval()
    with torch.no_grad():
        otok = oracle.prompts(embed_pool(oracle.pool, enc))
    onames = oracle.pool.names
    tasks = [t for t in osc.stream() if t.name in onames]
    oracle_dice = {t.name: float(evaluate_task(oracle, t, load_task(osc, t, "test"), osc)["dice"]) for t in tasks}
    table: dict[str, dict[str, dict]] = {}
    for rd in a.runs:
        sc, _ = load_final_state(rd)
        label = f"{sc.method} ({rd.name})"
        table[label] = {}
        for name, (x, y) in generated_pairs(rd, a.pairs, a.seed).items():
            if name not in onames:
                continue
            k = len(next(t for t in tasks if t.name == name).classes)
            with torch.no_grad():
                logits = oracle.segmentor(x, otok.seg[onames.index(name)].expand(x.shape[0], -1, -1))
            pred = predict_masks(logits.float(), torch.full((x.shape[0],), k, dtype=torch.int64))
            acc = DiceAccumulator(k)
            acc.update(y, pred)
            table[label][name] = {"corr_dice": acc.mean(), "per_class": acc.per_class(),
                                  "gen_fraction": [float((y == c).float().mean()) for c in range(1, k + 1)],
                                  "oracle_fraction": [float((pred == c).float().mean()) for c in range(1, k + 1)]}
        print(label, {n: round(v["corr_dice"], 3) for n, v in table[label].items()}, flush=True)

    labels = list(table)
    lines = ["# Replay quality per past task (paper section 4.4.2)", "", "```", "$ python " + " ".join(sys.argv), "```",
             "", f"Oracle: the final segmentor of {a.oracle.name} (method {osc.method}, breaks data locality; its Dice "
             f"on each task's real test split is in the second column). {a.pairs} generated pairs per task and run, "
             f"sampler {osc.diffusion.sampler}-{osc.diffusion.sampling_steps}. Cells: correspondence Dice of the "
             "generated masks with the oracle's predictions on the generated images.", "",
             "| task | oracle Dice (real test) | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for t in tasks:
        cells = [f"{table[lb][t.name]['corr_dice']:.3f}" if t.name in table[lb] else "-" for lb in labels]
        lines.append(f"| {t.name} | {oracle_dice[t.name]:.3f} | " + " | ".join(cells) + " |")
    means = [float(np.mean([v["corr_dice"] for v in table[lb].values()])) for lb in labels]
    lines.append("| **mean** | " + f"{np.mean(list(oracle_dice.values())):.3f} | "
                 + " | ".join(f"**{m:.3f}**" for m in means) + " |")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    a.out.with_suffix(".json").write_text(json.dumps({"oracle": str(a.oracle), "oracle_dice": oracle_dice,
                                                      "runs": table, "command": " ".join(sys.argv)}, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(tasks) + 2), 3.8))
    w = 0.8 / len(labels)
    for i, lb in enumerate(labels):
        vals = [table[lb].get(t.name, {}).get("corr_dice", np.nan) for t in tasks]
        ax.bar(np.arange(len(tasks)) + (i - (len(labels) - 1) / 2) * w, vals, w, label=lb)
    ax.set_xticks(range(len(tasks)), [t.name for t in tasks], rotation=30, ha="right")
    ax.set_ylabel("correspondence Dice")
    ax.set_ylim(0, 1)
    ax.set_title("Generated masks vs the joint segmentor on the generated images")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out.with_suffix(".png"), dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
