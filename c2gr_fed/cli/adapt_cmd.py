"""`c2gr-fed adapt RUN_DIR [RUN_DIR ...] --downstream SCENARIO`: Table 2 of the paper."""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..scenario import load_scenario
from .main import data_root_of


def adapt_command(args: argparse.Namespace, console: Console) -> int:
    from ..learning.adaptation import adapt

    downstream = load_scenario(args.downstream, args.overrides)
    with console.status(f"adapting {len(args.runs)} run(s) + scratch to {len(downstream.stream())} downstream tasks"):
        res = adapt(args.runs, downstream, epochs=args.epochs, lr=args.lr, data_root=data_root_of(args))
    tasks = [t.name for t in downstream.stream()]
    header = ["initialisation", *tasks, "mean"]
    rows = []
    for label, per in res.items():
        vals = [per[t] for t in tasks]
        rows.append([label, *[f"{100 * v:.2f}" for v in vals], f"{100 * statistics.fmean(vals):.2f}"])
    t = Table(title=f"downstream adaptation, {args.epochs} epochs per task (Dice x100)")
    for h in header:
        t.add_column(h)
    for r in rows:
        t.add_row(*r)
    console.print(t)
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                                                 *["| " + " | ".join(r) + " |" for r in rows]]) + "\n")
    with out.with_suffix(".csv").open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    console.print(f"wrote {out.with_suffix('.md')}, .csv, .json")
    return 0
