"""What the generator draws after N optimiser steps of round 1: a replay grid (image | image with mask overlay).

Trains round 1 of the two-task stream of `sampler_compare.py` (Fundus-A first, `scenarios/20tasks.yaml` models,
`run_round` as department nodes call it) for --steps optimiser steps, then samples task-1 replay pairs exactly as
round 2 would, and saves the grid that run reports show. Correspondence numbers alone cannot tell a generator
that draws images from one that draws noise with mask-shaped blobs; this figure can.

    python benchmarks/generator_samples.py --steps 600 --out benchmarks/results/generator_samples_600.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_compare import with_sampler, with_steps  # noqa: E402
from stream_cpu import subset_scenario  # noqa: E402

from c2gr_fed.data.loading import load_task  # noqa: E402
from c2gr_fed.learning.replay import ReplaySet, synthesise_replay  # noqa: E402
from c2gr_fed.learning.round import run_round  # noqa: E402
from c2gr_fed.learning.state import build_state  # noqa: E402
from c2gr_fed.reporting.figures import replay_grid  # noqa: E402
from c2gr_fed.text import build_text_encoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, required=True, help="round-1 optimiser steps")
    ap.add_argument("--method", default="c2gr")
    ap.add_argument("--sampler", default="ddim:20", help="sampler:steps used for the grid")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sc = subset_scenario(ROOT / "scenarios" / "20tasks.yaml", ["Fundus-A", "MnMs-Siemens"], None, a.overrides, a.method)
    task = sc.stream()[0]
    state = build_state(sc)
    t0 = time.perf_counter()
    run_round(state, task, load_task(sc, task, "train"), with_steps(sc, a.steps), 0)
    name, steps = a.sampler.split(":")
    sc_s = with_sampler(sc, name, int(steps), 8)
    rep = synthesise_replay(state, sc_s, build_text_encoder(sc.text_encoder), seed=sc.seed * 1_000_003 + 7919,
                            device=torch.device("cpu"))
    real = load_task(sc, task, "test")  # second row: real test pairs of the same task, for comparison
    rep = ReplaySet(torch.cat([rep.images[:4], real.images[:4]]), torch.cat([rep.masks[:4], real.masks[:4]]),
                    torch.tensor([0] * 4 + [1] * 4), (f"generated {task.name}", f"real {task.name}"))
    replay_grid(rep, sc_s, a.out, f"{task.name} replay after {a.steps} round-1 steps ({a.method}, {name}-{steps})")
    print(f"{a.steps} steps in {time.perf_counter() - t0:.0f} s -> {a.out}")


if __name__ == "__main__":
    main()
