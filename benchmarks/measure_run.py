"""Run `c2gr-fed run ...` and measure what a user waits for: wall time, peak memory of the whole process tree
(CLI + Ray + department actors), and the split between replay synthesis and training from rounds.jsonl.

    python benchmarks/measure_run.py --name cpu-default-20tasks -- scenarios/20tasks.yaml --out runs/bench-20tasks

Writes benchmarks/results/run_<name>.json and .md (with the command and the machine load).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("run_args", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    run_args = [a for a in args.run_args if a != "--"]
    out = Path(run_args[run_args.index("--out") + 1])
    cmd = [str(Path(sys.executable).with_name("c2gr-fed")), "run", *run_args]
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    import threading

    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(1.0)
    reader.join(timeout=5)
    wall = time.perf_counter() - t0
    rounds = [json.loads(l) for l in (out / "rounds.jsonl").read_text().splitlines() if l.strip()] if (out / "rounds.jsonl").exists() else []
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    res = {
        "command": "c2gr-fed run " + " ".join(run_args), "exit_code": proc.returncode, "wall_s": round(wall, 1),
        "peak_tree_rss_mb": round(peak / 2**20), "load_before": load0, "load_after": os.getloadavg(),
        "replay_s": round(sum(r.get("time_replay_s", 0) for r in rounds), 1),
        "train_s": round(sum(r.get("time_train_s", 0) for r in rounds), 1),
        "round_wall_s": round(sum(r.get("wall_s", 0) for r in rounds), 1),
        "rounds": len(rounds), "summary": {k: summary.get(k) for k in ("overall", "bwt", "bwt_classic", "tl", "fwt")},
        "tail": "".join(lines[-15:]),
    }
    dest = Path(__file__).parent / "results" / f"run_{args.name}"
    dest.with_suffix(".json").write_text(json.dumps(res, indent=1))
    md = [f"# {args.name}", "", f"Command: `python benchmarks/measure_run.py --name {args.name} -- {' '.join(run_args)}`", "",
          f"Machine: 2 cores, load average before {load0[0]:.1f}, after {res['load_after'][0]:.1f} (shared machine).", "",
          "| exit | wall s | peak RSS (process tree) MB | replay s | train s | rounds wall s | Overall | BWT | BWT classic | TL |",
          "|---|---|---|---|---|---|---|---|---|---|",
          f"| {proc.returncode} | {res['wall_s']} | {res['peak_tree_rss_mb']} | {res['replay_s']} | {res['train_s']} | "
          f"{res['round_wall_s']} | {summary.get('overall')} | {summary.get('bwt')} | {summary.get('bwt_classic')} | {summary.get('tl')} |", ""]
    dest.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
