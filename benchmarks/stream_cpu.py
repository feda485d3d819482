"""Run a scenario's stream in-process (run_stream_local: the federated computation without Flower) and record
wall time (replay synthesis / training / evaluation), peak RSS memory and Overall / BWT / TL.

    /work/venv/bin/python benchmarks/stream_cpu.py scenarios/20tasks.yaml --method c2gr --first 5 \
        --set training.max_steps=40 --out benchmarks/results/stream_cpu_c2gr_first5

Writes OUT.json and OUT.md. `--first N` / `--tasks A,B,...` keep only those tasks (arrival order kept),
dropping departments left without tasks; the stream is otherwise the scenario's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from c2gr_fed.learning.local_stream import run_stream_local
from c2gr_fed.metrics import stream_metrics
from c2gr_fed.scenario import Scenario
from c2gr_fed.scenario.loading import apply_overrides, generator_settings_for_method, read_yaml, validate_scenario


def subset_scenario(path: str | Path, tasks: list[str] | None = None, first: int | None = None,
                    overrides: list[str] | None = None, method: str | None = None) -> Scenario:
    """The scenario at `path` restricted to `tasks` (or the first `first` tasks of its stream), with overrides."""
    raw = read_yaml(Path(path))
    if overrides:
        raw = apply_overrides(raw, overrides)
    if method:
        raw["method"] = method
        raw = generator_settings_for_method(raw, [f"method={method}"])
    full = validate_scenario(raw, str(path))
    names = [t.name for t in full.stream()]
    if first is not None:
        keep = names[:first]
    elif tasks:
        keep = [n for n in names if n in set(tasks)]
        unknown = set(tasks) - set(names)
        if unknown:
            raise SystemExit(f"unknown tasks {sorted(unknown)}; known: {names}")
    else:
        keep = names
    depts = []
    for d in raw["departments"]:
        kept = [t for t in d["tasks"] if t["name"] in keep]
        if kept:
            depts.append({**d, "tasks": kept})
    raw = {**raw, "departments": depts, "order": keep}
    return validate_scenario(raw, f"{path} (subset {keep})")


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def run(scenario: Scenario, threads: int | None = None) -> dict:
    t0 = time.perf_counter()
    load0 = load_average()
    per_round: list[dict] = []
    matrix, rounds, _ = run_stream_local(scenario, threads=threads)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for r in rounds:
        per_round.append({k: r[k] for k in ("round", "task", "wall_s", "time_replay_s", "time_train_s",
                                             "steps", "replay_samples", "loss_seg", "loss_diffusion")})
        per_round[-1].update({k: v for k, v in r.items() if k.startswith("replay_agreement")})
        per_round[-1]["time_eval_s"] = r["wall_s"] - r["time_total_s"]
    m = stream_metrics(matrix)
    return {
        "scenario": scenario.name, "method": scenario.method, "tasks": matrix.tasks,
        "threads": threads or scenario.training.threads or int(scenario.federation.cpus_per_department),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count(),
        "load_average_start": load0, "load_average_end": load_average(),
        "wall_s": wall,
        "replay_s": sum(r["time_replay_s"] for r in per_round),
        "train_s": sum(r["time_train_s"] for r in per_round),
        "eval_s": sum(r["time_eval_s"] for r in per_round),
        "peak_rss_mb": peak_kb / 1024,
        "metrics": m, "matrix": matrix.to_json(), "rounds": per_round,
    }


def markdown(res: dict, command: str) -> str:
    m = res["metrics"]

    def f(x) -> str:
        return "n/a" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)

    lines = [f"# stream_cpu: {res['scenario']} / {res['method']} ({len(res['tasks'])} tasks)", "",
             "```", f"$ {command}", "```", "",
             f"torch {res['torch']}, {res['threads']} threads, {res['nproc']} CPUs, load average "
             f"{res['load_average_start']} at start, {res['load_average_end']} at end (shared machine: times are "
             "inflated by other jobs).", "",
             "| wall s | replay s | train s | eval s | peak RSS MB |", "|---|---|---|---|---|",
             f"| {res['wall_s']:.0f} | {res['replay_s']:.0f} | {res['train_s']:.0f} | {res['eval_s']:.0f} | "
             f"{res['peak_rss_mb']:.0f} |", "",
             "| metric | value |", "|---|---|"]
    for k, v in m.items():
        if not isinstance(v, (list, dict)):
            lines.append(f"| {k} | {f(v)} |")
    lines += ["", "Per round:", "", "| round | task | steps | replay pairs | replay s | train s | eval s | loss seg | loss diff |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rounds"]:
        lines.append(f"| {int(r['round'])} | {r['task']} | {r['steps']:.0f} | {r['replay_samples']:.0f} | "
                     f"{r['time_replay_s']:.1f} | {r['time_train_s']:.1f} | {r['time_eval_s']:.1f} | "
                     f"{r['loss_seg']:.3f} | {r['loss_diffusion']:.3f} |")
    tasks = res["tasks"]
    vals = res["matrix"]["values"]
    lines += ["", "Train-test matrix (row: after training task i; column: Dice on task j):", "",
              "| after \\ on | " + " | ".join(tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for i, t in enumerate(tasks):
        lines.append(f"| {t} | " + " | ".join("" if v is None else f"{v:.2f}" for v in vals[i]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario")
    ap.add_argument("--method", default=None)
    ap.add_argument("--first", type=int, default=None)
    ap.add_argument("--tasks", default=None, help="comma-separated task names")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: 2 threads thrash on a loaded 2-core machine)")
    ap.add_argument("--out", required=True, help="output path without extension")
    a = ap.parse_args()
    sc = subset_scenario(a.scenario, a.tasks.split(",") if a.tasks else None, a.first, a.overrides, a.method)
    res = run(sc, a.threads)
    command = "/work/venv/bin/python " + " ".join(sys.argv)
    res["command"] = command
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    md = markdown(res, command)
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
