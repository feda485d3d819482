"""The benchmark table of several methods (and seeds): Table-1 layout, CSV, a bar chart, cost columns."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path
from typing import Any

from ..runs.timing import rounds_wall_s
from .report import load_run


def _mean_std(xs: list[float | None]) -> tuple[float | None, float | None]:
    ok = [x for x in xs if x is not None and not math.isnan(x)]
    if not ok:
        return None, None
    return statistics.fmean(ok), (statistics.stdev(ok) if len(ok) > 1 else 0.0)


def _cell(m: float | None, s: float | None, seeds: int) -> str:
    if m is None:
        return "missing"
    return f"{m:.2f}" if seeds == 1 or s is None else f"{m:.2f} ± {s:.2f}"


def _rounds_wall_s(run: dict[str, Any]) -> float | None:
    """A run's wall time as the sum of its rounds' wall times (replay, training, evaluation; all sessions of a
    resumed run; Ray start-up excluded). Read from rounds.jsonl, so it is the same for a run directory and for
    its exported results (`c2gr-fed export`), which carry no run.json."""
    total, counted = rounds_wall_s(run["rounds"])
    return total if counted and counted == len(run["rounds"]) else None


def bench_table(runs_by_method: dict[str, list[Path]], params: dict[str, int], out: Path) -> dict[str, Any]:
    """Aggregate runs per method (mean ± std over seeds) into markdown, CSV, JSON and a bar chart PNG."""
    loaded = {m: [load_run(p) for p in paths] for m, paths in runs_by_method.items()}
    first = next(iter(loaded.values()))[0]
    tasks = first["matrix"].tasks
    header = ["method", *tasks, "Overall", "BWT", "BWT classic", "TL", "learnable params (M)", "wall time (min)", "seeds"]
    rows, agg = [], {}
    for method, runs in loaded.items():
        n = len(runs)
        per = {t: _mean_std([r["summary"]["per_task_final"].get(t) for r in runs]) for t in tasks}
        metr = {k: _mean_std([r["summary"][k] for r in runs]) for k in ("overall", "bwt", "bwt_classic", "tl")}
        wall = _mean_std([_rounds_wall_s(r) for r in runs])
        breaks = runs[0]["breaks_data_locality"]
        label = method + (" (breaks data locality)" if breaks else "")
        rows.append([label, *[_cell(*per[t], n) for t in tasks], *[_cell(*metr[k], n) for k in ("overall", "bwt", "bwt_classic", "tl")],
                     f"{params.get(method, 0) / 1e6:.2f}", "missing" if wall[0] is None else f"{wall[0] / 60:.1f}", str(n)])
        agg[method] = {"per_task": {t: per[t][0] for t in tasks}, **{k: {"mean": v[0], "std": v[1]} for k, v in metr.items()},
                       "params": params.get(method), "wall_s": wall[0], "seeds": n,
                       "runs": [str(r["run"].root) for r in runs],
                       "breaks_data_locality": breaks}
    out.parent.mkdir(parents=True, exist_ok=True)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(r) + " |" for r in rows]]
    _write_table_md(out.with_suffix(".md"), md)
    with out.with_suffix(".csv").open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    out.with_suffix(".json").write_text(json.dumps(agg, indent=1))
    _bar_chart(agg, out.with_suffix(".png"))
    return agg


def _write_table_md(path: Path, table: list[str]) -> None:
    """Write the table; where `path` already holds one (a line starting "| method |"), replace only that block
    and keep the notes written around it, so re-tabulating does not erase a table's reading."""
    if path.exists():
        lines = path.read_text().splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("| method |")), None)
        if start is not None:
            end = start
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            path.write_text("\n".join([*lines[:start], *table, *lines[end:]]) + "\n")
            return
    path.write_text("\n".join(table) + "\n")


def _bar_chart(agg: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    methods = list(agg)
    fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.2 * len(methods) + 3), 3.8))
    for ax, key, label in ((axes[0], "overall", "Overall Dice (x100)"), (axes[1], "bwt", "BWT (paper scale)")):
        means = [agg[m][key]["mean"] or 0 for m in methods]
        stds = [agg[m][key]["std"] or 0 for m in methods]
        colors = ["#999999" if agg[m]["breaks_data_locality"] else "#3b6fb6" for m in methods]
        ax.bar(np.arange(len(methods)), means, yerr=stds, color=colors, capsize=3)
        ax.set_xticks(np.arange(len(methods)), methods, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("grey: reference bound that breaks data locality", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
