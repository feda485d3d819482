"""Table of seed runs: per-task final Dice, Overall, BWT, share of a joint reference, time and the last round's
lowest per-task replay agreement; mean, sd and median over the runs.

    .venv/bin/python benchmarks/tabulate_seed_runs.py --joint 84.4 'benchmarks/results/bench-5tasks-bank/c2gr-bank-seed*.json'
    .venv/bin/python benchmarks/tabulate_seed_runs.py --joint 71.0 benchmarks/results/20tasks-c2gr-cpu \
        'benchmarks/results/20tasks-seeds/c2gr-seed*.json'

Each source is a glob of benchmarks/stream_cpu.py JSONs or a run directory (`c2gr-fed run` / `export`: matrix.json,
rounds.jsonl, run.json, scenario.yaml). The seed is read from the run itself.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics as st
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from c2gr_fed.metrics import TrainTestMatrix, stream_metrics  # noqa: E402


def _row(source: Path) -> dict:
    if source.is_dir():
        import yaml

        matrix = json.loads((source / "matrix.json").read_text())
        rounds = [json.loads(x) for x in (source / "rounds.jsonl").read_text().splitlines() if x.strip()]
        m = stream_metrics(TrainTestMatrix.from_json(matrix))
        seed = yaml.safe_load((source / "scenario.yaml").read_text())["seed"]
        wall = json.loads((source / "run.json").read_text()).get("wall_s", 0.0)
        train = sum(r.get("time_train_s", 0.0) for r in rounds)
    else:
        d = json.loads(source.read_text())
        matrix, rounds, m = d["matrix"], d["rounds"], d["metrics"]
        seed = d.get("seed", source.stem.split("seed")[-1])
        wall, train = d["wall_s"], d["train_s"]
    values = matrix["values"]
    agree = {k.split("/", 1)[1]: v for k, v in rounds[-1].items() if k.startswith("replay_agreement/")}
    return {"seed": seed, "source": str(source), "tasks": matrix.get("tasks") or matrix.get("columns"),
            "final": [None if x is None else 100 * x for x in values[-1]], "overall": m["overall"], "bwt": m["bwt"],
            "train_min": train / 60, "wall_min": wall / 60, "agree_min": min(agree.values()) if agree else None,
            "agree_ok": sum(v >= 0.5 for v in agree.values()), "agree_n": len(agree)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sources", nargs="+", help="stream_cpu JSON globs or run directories")
    ap.add_argument("--joint", type=float, required=True, help="joint training's Overall at the same budget")
    args = ap.parse_args()
    paths = [Path(p) for s in args.sources for p in (sorted(glob.glob(s)) or [s])]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"not found: {missing}")
    rows = [_row(p) for p in paths]
    tasks = rows[0]["tasks"]
    fmt = lambda x: "-" if x is None else f"{x:.1f}"  # noqa: E731
    out = [f"| seed | {' | '.join(tasks)} | Overall | BWT | % of joint ({args.joint}) | training min | wall min | "
           "last-round replay agreement: min, tasks >= 0.5 |", "|" + "---|" * (len(tasks) + 7)]
    for r in rows:
        agree = "-" if r["agree_min"] is None else f"{r['agree_min']:.2f}, {r['agree_ok']} of {r['agree_n']}"
        out.append(f"| {r['seed']} | {' | '.join(fmt(x) for x in r['final'])} | {r['overall']:.1f} | {r['bwt']:.1f} | "
                   f"{r['overall'] / args.joint * 100:.0f} | {r['train_min']:.1f} | {r['wall_min']:.1f} | {agree} |")
    if len(rows) > 1:
        o, b = [r["overall"] for r in rows], [r["bwt"] for r in rows]
        blank = " | ".join("" for _ in tasks)
        out.append(f"| mean ± sd ({len(rows)} seeds) | {blank} | {st.mean(o):.1f} ± {st.stdev(o):.1f} | "
                   f"{st.mean(b):.1f} ± {st.stdev(b):.1f} | {st.mean(o) / args.joint * 100:.0f} | | | |")
        out.append(f"| median | {blank} | {st.median(o):.1f} | {st.median(b):.1f} | "
                   f"{st.median(o) / args.joint * 100:.0f} | | | |")
    out.append("")
    out.append("Sources: " + ", ".join(f"`{r['source']}`" for r in rows))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
