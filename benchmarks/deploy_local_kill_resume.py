"""End-to-end check of `c2gr-fed deploy-local` when a department dies mid-round, and of `--resume`.

Runs scenarios/smoke.yaml on Flower's deployment engine as local processes, SIGKILLs round 2's department
(its SuperNode and ClientApp process group, as a crashed machine) while it trains, and checks that:
the run stops with exit 2 and one message naming the department, the rounds kept and the command that continues;
nothing it started is left running; the round-1 checkpoint survives; `--resume` completes the run without redoing
round 1; the run directory is complete and its transfer log verifies with three train replies.

Several minutes on 2 cores (two deployment-engine sessions), so it lives here rather than in the test suite.

    python benchmarks/deploy_local_kill_resume.py --out benchmarks/results/deploy-local-kill-resume.md

Exit 0 when every check holds; the markdown transcript lists each check and the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from c2gr_fed.federation.deploy_processes import _alive
from c2gr_fed.privacy import read_log, verify_chain
from c2gr_fed.runs.checkpoint import read_checkpoint_meta

ROOT = Path(__file__).resolve().parents[1]
FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]
VICTIM = "ophthalmology-nidek"  # holds Fundus-B, the second round of smoke.yaml


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "c2gr_fed.cli.main", "deploy-local", *args]


def train_sent_to(log: Path, department: str) -> bool:
    """Has the coordinator sent `department` its train request (read while the log is being written)?"""
    if not log.exists():
        return False
    for line in log.read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:  # a line still being written
            continue
        if (e.get("direction"), e.get("department"), e.get("message_type")) == (
                "coordinator->department", department, "train"):
            return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="markdown transcript to write")
    a = ap.parse_args()
    checks: list[tuple[str, bool]] = []

    def check(what: str, ok: bool) -> None:
        checks.append((what, bool(ok)))
        print(("PASS " if ok else "FAIL ") + what, flush=True)

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        first = subprocess.Popen(cli(str(ROOT / "scenarios" / "smoke.yaml"), "--out", str(out),
                                     *[x for s in FAST for x in ("--set", s)]),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            deadline = time.monotonic() + 1200
            while not train_sent_to(out / "transfers.jsonl", VICTIM):
                if first.poll() is not None or time.monotonic() > deadline:
                    print("deploy-local ended or stalled before round 2:", "".join(first.communicate())[-3000:])
                    return 1
                time.sleep(0.2)
            pid = json.loads((out / "deploy-logs" / "processes.json").read_text())[VICTIM]
            os.killpg(pid, signal.SIGKILL)
            stdout, stderr = first.communicate(timeout=600)
        finally:
            if first.poll() is None:
                first.kill()
        t_first = time.monotonic() - t0
        said = stdout + stderr
        check("the killed run exits with 2", first.returncode == 2)
        check(f"one message names the department: \"department '{VICTIM}': its SuperNode was killed (signal 9)\"",
              f"department {VICTIM!r}: its SuperNode was killed (signal 9)" in said)
        check("it names the rounds kept: 1 of 3", f"rounds complete and checkpointed: 1 of 3 in {out.resolve()}" in said)
        check("it gives the command that continues", f"c2gr-fed deploy-local --resume {out.resolve()}" in said)
        pids = json.loads((out / "deploy-logs" / "pids.json").read_text())
        check("nothing it started is left running",
              pids["alive_after_stop"] == [] and not any(_alive(p) for p in pids["started"]))
        meta = read_checkpoint_meta(out / "checkpoints")
        check("the round-1 checkpoint survives", meta is not None and meta["completed_rounds"] == 1)
        kept_row = meta["matrix"]["values"][0] if meta else None

        t1 = time.monotonic()
        cp = subprocess.run(cli("--resume", str(out), "--json"), capture_output=True, text=True, cwd=ROOT, timeout=1500)
        t_resume = time.monotonic() - t1
        check("--resume exits with 0", cp.returncode == 0)
        check("--resume continues after round 1", "continuing after round 1" in cp.stdout)
        m = json.loads((out / "matrix.json").read_text()) if (out / "matrix.json").exists() else {"values": []}
        check("the matrix is complete (3 x 3, every value in [0, 1])",
              len(m["values"]) == 3 and all(v is not None and 0 <= v <= 1 for r in m["values"] for v in r))
        check("round 1's row was kept, not redone", bool(m["values"]) and m["values"][0] == kept_row)
        check("the transfer log's chain verifies", verify_chain(out / "transfers.jsonl") == [])
        kinds = [(e["direction"], e.get("message_type")) for e in read_log(out / "transfers.jsonl")]
        check("three train replies (the killed round's request is not counted twice)",
              kinds.count(("department->coordinator", "train")) == 3)
        check("the killed run's logs are kept in deploy-logs.1", (out / "deploy-logs.1" / f"{VICTIM}.log").exists())
        pids = json.loads((out / "deploy-logs" / "pids.json").read_text())
        check("nothing the resumed run started is left running",
              pids["alive_after_stop"] == [] and not any(_alive(p) for p in pids["started"]))
    total = time.monotonic() - t0
    ok = all(c for _, c in checks)
    lines = ["# deploy-local: a department killed mid-round, then `--resume`", "",
             f"Command: `python benchmarks/{Path(__file__).name} --out {a.out}` (scenarios/smoke.yaml with "
             f"{', '.join(FAST)}; round 2's department `{VICTIM}` is SIGKILLed while it trains).", "",
             "| check | result |", "|---|---|"]
    lines += [f"| {what} | {'pass' if c else '**FAIL**'} |" for what, c in checks]
    lines += ["", f"Time on the shared 2-core machine: the killed run {t_first:.0f} s, the resumed run {t_resume:.0f} s, "
              f"{total:.0f} s in all.", "",
              "What it means: a department that dies mid-round stops the run with one line that names it and says how "
              "to continue; no process is left behind; the resumed run keeps round 1's results and completes, and its "
              "log verifies." if ok else "What it means: at least one check failed (above)."]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print(f"-> {a.out} ({'all checks pass' if ok else 'FAILED'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
