"""Re-run the memorisation audit on a finished run's final models with other audit settings, in one process.

Each task gets exactly the computation its department performs on `query.audit` (c2gr_fed.privacy.memorisation
.audit_generator + membership.membership_inference on its own train and held-out splits), so a new audit setting
(for example `privacy.sampler`) can be applied to a finished run without re-running the stream. This is a
simulation-side tool: in a deployment only the departments hold the data, and the coordinator asks them.

    python benchmarks/reaudit_memorisation.py RUN_DIR --set privacy.sampler=ddpm --set privacy.sampling_steps=50 \
        --out benchmarks/results/20tasks-c2gr-cpu/reaudit-ddpm50
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from c2gr_fed.data.loading import load_task
from c2gr_fed.data.types import TaskData
from c2gr_fed.learning.final_state import load_final_state
from c2gr_fed.privacy.membership import membership_inference
from c2gr_fed.privacy.memorisation import audit_generator
from c2gr_fed.scenario import validate_scenario
from c2gr_fed.scenario.loading import apply_overrides

COLUMNS = ("extraction_fraction", "extraction_fraction_pair", "nn_ratio_fraction", "feature_copy_fraction",
           "pixel_d_train_median", "pixel_d_heldout_median", "flagged", "mia_auc")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True, help="writes STEM.md and STEM.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sc0, state = load_final_state(a.run_dir)
    sc = validate_scenario(apply_overrides(sc0.model_dump(mode="json"), a.overrides), f"{a.run_dir} + {a.overrides}")
    pc = sc.privacy
    rows = {}
    for task in sc.stream():
        train = load_task(sc, task, "train")
        parts = [p for p in (load_task(sc, task, s) for s in ("val", "test")) if len(p)]
        heldout = TaskData(task.name, "test", torch.cat([p.images for p in parts]), torch.cat([p.masks for p in parts]),
                           train.num_classes)
        m = audit_generator(state, sc, task, train, heldout, pc.samples, seed=sc.seed * 7 + len(sc.stream()))
        m.update(membership_inference(state, sc, task, train, heldout))
        rows[task.name] = m
        print(task.name, {k: round(float(m.get(k, float("nan"))), 3) for k in COLUMNS}, flush=True)
    flagged = [t for t, m in rows.items() if m.get("flagged")]
    md = ["# Memorisation re-audit of a finished run's final models", "", "```", "$ python " + " ".join(sys.argv), "```",
          "", f"Run `{a.run_dir}` (method {sc.method}); audit sampler {pc.sampler}-{pc.sampling_steps}, {pc.samples} "
          f"synthetic pairs per task; thresholds at 1% false positives of real-vs-real. Flagged: "
          f"**{', '.join(flagged) if flagged else 'none'}**.", "",
          "| task | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for t, m in rows.items():
        md.append(f"| {t} | " + " | ".join(f"{float(m.get(k, float('nan'))):.3f}" for k in COLUMNS) + " |")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    a.out.with_suffix(".json").write_text(json.dumps({"command": " ".join(sys.argv), "tasks": rows}, indent=1))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
