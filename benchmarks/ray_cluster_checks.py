"""`c2gr-fed run` against a one-node Ray cluster that declares 2 GPUs this machine does not have: what a user sees when
a department cannot be placed, when a department's data folder is missing on its node, and when departments are
granted a GPU that torch cannot see. Each case is checked; the exit status is non-zero when one is not as expected.

    python benchmarks/ray_cluster_checks.py

The cases (each a `c2gr-fed run` with RAY_ADDRESS set):
  too-small     smoke with federation.cpus_per_department=4 on a node of 2 CPUs: one line naming the setting, exit 2
  missing-data  a DRIVE-like folder department with an empty --data-root: one line naming the department, exit 2
  fake-gpus     smoke, finetune, federation.gpus_per_department=1: completes on CPU; summary and report warn once per
                department
The Ray node is stopped through its process group at the end.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

from drive_like import drive_like_scenario  # noqa: E402
from ray_two_node import RAY, free_port, start, stop, wait_for_nodes  # noqa: E402

FAST = ["--set", "training.epochs=1", "--set", "diffusion.replay_per_task=4", "--set", "diffusion.sampling_steps=2"]


def run(address: str, *args: str) -> tuple[int, float, str, str]:
    import subprocess

    cmd = [sys.executable, "-m", "c2gr_fed.cli.main", "run", *args]
    print(f"$ RAY_ADDRESS={address} c2gr-fed run", " ".join(args), flush=True)
    t0 = time.monotonic()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "RAY_ADDRESS": address})
    return res.returncode, time.monotonic() - t0, res.stdout, res.stderr


def one_line(stderr: str) -> str | None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[0] if len(lines) == 1 else None


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="c2gr-checks-"))
    ray_tmp = Path(tempfile.mkdtemp(prefix="c2gr-ray-"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = start(["nice", "-n", "15", RAY, "start", "--head", "--port", str(port), "--num-cpus", "2", "--num-gpus", "2",
                  "--include-dashboard", "false", "--temp-dir", str(ray_tmp), "--block"], work / "head.log")
    failures: list[str] = []
    try:
        print("cluster nodes:", json.dumps(wait_for_nodes(address, 1)), flush=True)
        smoke = str(ROOT / "scenarios" / "smoke.yaml")

        rc, s, _, err = run(address, smoke, "--out", str(work / "too-small"), "--set", "federation.cpus_per_department=4")
        line = one_line(err)
        print(f"  exit {rc} after {s:.0f} s; stderr: {line or err!r}", flush=True)
        if rc != 2 or line is None or "federation.cpus_per_department = 4" not in line or "--resume" in line:
            failures.append("too-small")

        (work / "empty").mkdir()
        drive = drive_like_scenario(work / "drive.yaml")
        rc, s, _, err = run(address, str(drive), "--out", str(work / "missing-data"), "--data-root", str(work / "empty"))
        line = one_line(err)
        print(f"  exit {rc} after {s:.0f} s; stderr: {line or err!r}", flush=True)
        logged = work / "missing-data" / "departments" / "ophthalmology-drive" / "errors.jsonl"
        print(f"  the department's own log: {json.loads(logged.read_text().splitlines()[-1])['error'] if logged.exists() else 'missing'}")
        if (rc != 2 or line is None or "department 'ophthalmology-drive' cannot read its data on its node" not in line
                or "--resume" in line or not logged.exists()):
            failures.append("missing-data")

        rc, s, out, err = run(address, smoke, "--out", str(work / "fake-gpus"), "--method", "finetune",
                              "--set", "federation.gpus_per_department=1", *FAST)
        print(f"  exit {rc} after {s:.0f} s", flush=True)
        print("\n".join(f"  | {line}" for line in out.splitlines() if "warning" in line or line.startswith("round ")))
        summary = json.loads((work / "fake-gpus" / "summary.json").read_text()) if rc == 0 else {}
        report = (work / "fake-gpus" / "report.md").read_text() if rc == 0 else ""
        rounds = [json.loads(x) for x in (work / "fake-gpus" / "rounds.jsonl").read_text().splitlines()] if rc == 0 else []
        print("  summary warnings:", json.dumps(summary.get("warnings"), indent=1))
        print("  report:", [line for line in report.splitlines() if "Warning" in line])
        print("  rounds gpu_unseen / peak_gpu_mem_mb:", [(r.get("gpu_unseen"), r.get("peak_gpu_mem_mb")) for r in rounds])
        if (rc != 0 or len(summary.get("warnings", [])) != 3 or report.count("**Warning:** department") != 3
                or not all(r.get("gpu_unseen") == 1 for r in rounds)):
            failures.append("fake-gpus")
    finally:
        stop(head)
        print("ray node stopped", flush=True)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    print("RESULT:", "every case as expected" if not failures else f"NOT as expected: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
