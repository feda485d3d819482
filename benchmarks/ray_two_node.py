"""Two Ray nodes on this machine, the worker without the coordinator's filesystem: the smoke stream runs through
`c2gr-fed run` to the end on the cluster, and its train-test matrix is compared with a local run's.

The worker node is started inside its own mount namespace (`unshare -m`) with an empty tmpfs over the folder that
holds the run directories, so, as on a second machine, it sees neither the scenario file, nor the run directory,
nor the progress folder. Its departments keep their outputs under C2GR_DEPARTMENT_DIR (set in the environment of
its `ray start`). The head node offers 1 CPU and the worker 2, so with 1 CPU per department both nodes run
departments. Needs root (for unshare and mount) and the `ray` executable of this Python's environment.

    python benchmarks/ray_two_node.py [--scenario scenarios/smoke.yaml] [--keep]

Every Ray process started here is stopped by its process group at the end (nothing else is touched).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A blocking `ray start` in a new session (its process group is what `stop` ends)."""
    print("$", shlex.join(cmd), flush=True)
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
                            env=env or os.environ.copy())


def stop(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """SIGTERM to the process group of a `ray start --block` we started, then SIGKILL to what is left of it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + grace_s
        while time.monotonic() < end and _group_alive(proc.pid):
            time.sleep(0.5)
        if not _group_alive(proc.pid):
            break
    proc.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def wait_for_nodes(address: str, count: int, timeout_s: float = 180.0) -> list[dict]:
    """The cluster's live nodes once `count` of them are up (ray.nodes() from a short-lived driver)."""
    code = ("import json, sys, time, ray\n"
            f"ray.init(address={address!r}, logging_level='ERROR', log_to_driver=False)\n"
            f"end = time.time() + {timeout_s}\n"
            "while True:\n"
            "    nodes = [n for n in ray.nodes() if n['Alive']]\n"
            f"    if len(nodes) >= {count} or time.time() > end: break\n"
            "    time.sleep(1)\n"
            "print(json.dumps([{'id': n['NodeID'][:8], 'resources': n['Resources']} for n in nodes]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s + 60,
                         env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    nodes = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else []
    if len(nodes) < count:
        raise SystemExit(f"only {len(nodes)} of {count} Ray nodes came up: {out.stderr[-2000:]}")
    return nodes


def run_cli(scenario: Path, out: Path, env: dict[str, str]) -> tuple[int, float, str]:
    cmd = [sys.executable, "-m", "c2gr_fed.cli.main", "run", str(scenario), "--out", str(out)]
    print("$", " ".join(f"{k}={v}" for k, v in env.items() if k in ("RAY_ADDRESS",)), shlex.join(cmd), flush=True)
    t0 = time.monotonic()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}, timeout=1800)
    return res.returncode, time.monotonic() - t0, (res.stdout + res.stderr)


def matrix_of(run: Path) -> dict:
    return json.loads((run / "matrix.json").read_text())


def max_difference(a: dict, b: dict) -> float:
    """Largest |a - b| over the matrix cells (NaN on one side only counts as infinite)."""
    worst = 0.0
    for ra, rb in zip(a["values"], b["values"], strict=True):
        for x, y in zip(ra, rb, strict=True):
            x = math.nan if x is None else float(x)
            y = math.nan if y is None else float(y)
            if math.isnan(x) != math.isnan(y):
                return math.inf
            if not math.isnan(x):
                worst = max(worst, abs(x - y))
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "smoke.yaml")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the worker node needs `unshare -m` and a tmpfs mount")
    work = Path(tempfile.mkdtemp(prefix="c2gr-2node-"))
    runs, worker_local = work / "runs", work / "worker-local"
    runs.mkdir()
    worker_local.mkdir()
    ray_tmp = Path(tempfile.mkdtemp(prefix="c2gr-ray-"))  # short: Ray's socket paths have a length limit
    port = free_port()
    address = f"127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        print(f"local run (no RAY_ADDRESS) into {runs / 'local'}", flush=True)
        rc, local_s, out = run_cli(args.scenario, runs / "local", {})
        if rc != 0:
            print(out)
            raise SystemExit(f"the local run failed (exit {rc})")
        print(f"  exit 0 in {local_s:.0f} s", flush=True)

        procs.append(start(["nice", "-n", "15", RAY, "start", "--head", "--port", str(port), "--num-cpus", "1",
                            "--num-gpus", "0", "--include-dashboard", "false", "--temp-dir", str(ray_tmp), "--block"],
                           work / "head.log"))
        wait_for_nodes(address, 1)
        worker = ("mount -t tmpfs tmpfs \"$1\" && test -z \"$(ls -A \"$1\")\" && shift && exec nice -n 15 \"$@\"")
        procs.append(start(["unshare", "--mount", "--propagation", "private", "sh", "-c", worker, "sh", str(runs),
                            RAY, "start", "--address", address, "--num-cpus", "2", "--num-gpus", "0",
                            "--temp-dir", str(ray_tmp), "--block"],
                           work / "worker.log", env={**os.environ, "C2GR_DEPARTMENT_DIR": str(worker_local)}))
        nodes = wait_for_nodes(address, 2)
        print("cluster nodes:", json.dumps(nodes), flush=True)

        print(f"cluster run (RAY_ADDRESS={address}) into {runs / 'cluster'}", flush=True)
        rc, cluster_s, out = run_cli(args.scenario, runs / "cluster", {"RAY_ADDRESS": address})
        print(out[-3000:], flush=True)
        if rc != 0:
            raise SystemExit(f"the cluster run failed (exit {rc})")
        diff = max_difference(matrix_of(runs / "local"), matrix_of(runs / "cluster"))
        on_head = sorted(p.parent.name for p in (runs / "cluster" / "departments").glob("*/replay_round_*.png"))
        on_worker = sorted(p.parent.name for p in (worker_local / "cluster" / "departments").glob("*/replay_round_*.png"))
        worker_errors = sorted(str(p.relative_to(worker_local)) for p in worker_local.rglob("errors.jsonl"))
        report = {"local_s": round(local_s, 1), "cluster_s": round(cluster_s, 1), "matrix_max_abs_difference": diff,
                  "previews_in_run_dir_from": on_head, "previews_on_worker_from": on_worker,
                  "worker_errors_logs": worker_errors,
                  "summary": json.loads((runs / "cluster" / "summary.json").read_text())}
        print(json.dumps(report, indent=1), flush=True)
        ok = diff == 0.0 and bool(on_worker)
        print("RESULT:", "matrix equal, worker departments wrote locally" if ok else "MISMATCH", flush=True)
        return 0 if ok else 1
    finally:
        for p in reversed(procs):
            stop(p)
        print("ray nodes stopped", flush=True)
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work), str(ray_tmp)], check=False)
        else:
            print("kept", work)


if __name__ == "__main__":
    sys.exit(main())
