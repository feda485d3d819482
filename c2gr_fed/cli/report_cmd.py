"""`c2gr-fed report RUN_DIR [RUN_DIR ...]`."""

from __future__ import annotations

import argparse
import csv

from rich.console import Console
from rich.table import Table

from ..reporting.report import compare_runs, write_report


def report_command(args: argparse.Namespace, console: Console) -> int:
    for r in args.runs:
        path = write_report(r)
        console.print(f"[green]wrote[/] {path}")
    md, rows = compare_runs(args.runs)
    t = Table(title="after the last task (Dice x100)")
    for h in rows[0]:
        t.add_column(h, overflow="fold")
    for row in rows[1:]:
        t.add_row(*row)
    console.print(t)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(md)
        with args.out.with_suffix(".csv").open("w", newline="") as f:
            csv.writer(f).writerows(rows)
        console.print(f"[green]wrote[/] {args.out.with_suffix('.md')} and .csv")
    return 0
