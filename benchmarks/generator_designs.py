"""Retention against generator training time for the generator designs (single shared generator vs a bank of
frozen per-task generators): a table and a plot from finished runs.

    .venv/bin/python benchmarks/generator_designs.py \
        --run "single (paper settings)=benchmarks/results/bench-20tasks-runs/c2gr-seed0" \
        --run "bank, generated masks, 300 steps=benchmarks/results/generator_designs/bank-pairs-g300-20tasks.json" \
        --out benchmarks/results/generator_designs/retention_per_cpu_minute

Each --run is LABEL=SOURCE, SOURCE a run directory (rounds.jsonl + matrix.json, as `c2gr-fed run` or `export`
leave it) or a benchmarks/stream_cpu.py JSON. Training time is the sum of the rounds' `time_train_s` (segmentor
and generator steps together, replay synthesis excluded): the CPU a design spends learning. Writes OUT.md, OUT.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from c2gr_fed.metrics import TrainTestMatrix, stream_metrics  # noqa: E402


def load(source: Path) -> dict:
    """Overall, BWT, training minutes, generator steps and the last round's per-task replay agreement."""
    if source.is_dir():
        rounds = [json.loads(x) for x in (source / "rounds.jsonl").read_text().splitlines() if x.strip()]
        matrix = TrainTestMatrix.from_json(json.loads((source / "matrix.json").read_text()))
        m = stream_metrics(matrix)
    else:
        d = json.loads(source.read_text())
        rounds, m = d["rounds"], d["metrics"]
    last = rounds[-1]
    agree = {k.split("/", 1)[1]: v for k, v in last.items() if k.startswith("replay_agreement/")}
    return {
        "overall": m["overall"], "bwt": m["bwt"],
        "train_min": sum(r.get("time_train_s", 0.0) for r in rounds) / 60.0,
        "rounds": len(rounds),
        "agree_min": min(agree.values()) if agree else None,
        "agree_mean": sum(agree.values()) / len(agree) if agree else None,
        "agree_ok": sum(v >= 0.5 for v in agree.values()) if agree else None,
        "agree_n": len(agree),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, help="LABEL=SOURCE (run directory or stream_cpu JSON)")
    ap.add_argument("--out", required=True, help="output path without extension")
    args = ap.parse_args()
    rows = []
    for spec in args.run:
        label, sep, src = spec.partition("=")
        if not sep:
            raise SystemExit(f"--run {spec!r}: expected LABEL=SOURCE")
        path = Path(src)
        if not path.exists():
            raise SystemExit(f"--run {label!r}: {path} does not exist")
        rows.append((label, src, load(path)))
    fmt = lambda x, nd=1: "-" if x is None else f"{x:.{nd}f}"  # noqa: E731
    lines = ["| design | rounds | training min | Overall | BWT | BWT per training min | last-round replay agreement: "
             "min / mean / tasks >= 0.5 | source |", "|---|---|---|---|---|---|---|---|"]
    for label, src, r in rows:
        per = r["bwt"] / r["train_min"] if r["bwt"] is not None and r["train_min"] else None
        agree = ("-" if r["agree_min"] is None else
                 f"{r['agree_min']:.2f} / {r['agree_mean']:.2f} / {r['agree_ok']} of {r['agree_n']}")
        lines.append(f"| {label} | {r['rounds']} | {fmt(r['train_min'])} | {fmt(r['overall'])} | {fmt(r['bwt'])} | "
                     f"{fmt(per, 2)} | {agree} | `{src}` |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = " ".join([".venv/bin/python", "benchmarks/generator_designs.py", *[f"--run '{s}'" for s in args.run],
                    "--out", args.out])
    out.with_suffix(".md").write_text("\n".join(["# Retention against training time, per generator design", "",
                                                  f"Command: `{cmd}`", "", *lines, ""]))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, _, r in rows:
        if r["bwt"] is not None:
            ax.scatter(r["train_min"], r["bwt"], s=40)
            ax.annotate(label, (r["train_min"], r["bwt"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xlabel("training time, sum over rounds (min, 2-core CPU)")
    ax.set_ylabel("BWT (paper scale: kept % of Dice)")
    ax.set_title("Retention per training minute by generator design", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
