"""`c2gr-fed run` against an existing Ray cluster (RAY_ADDRESS): a one-node cluster started here with
`ray start --head --num-cpus 2 --num-gpus 2` (the GPUs are declared, not real). A department that no node can host,
or whose data folder is missing on its node, ends the run at once with one line; departments granted a declared GPU
that torch cannot see run on the CPU and the summary and report say so."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from drive_like import drive_like_scenario

pytestmark = pytest.mark.slow
FAST = ["--set", "training.epochs=1", "--set", "diffusion.replay_per_task=4", "--set", "diffusion.sampling_steps=2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """RAY_ADDRESS of a one-node Ray cluster with 2 CPUs and 2 declared GPUs; its process group is stopped after."""
    ray = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="c2gr-ray-")
    proc = subprocess.Popen(["nice", "-n", "15", ray, "start", "--head", "--port", str(port), "--num-cpus", "2",
                             "--num-gpus", "2", "--include-dashboard", "false", "--temp-dir", temp, "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(1)
        time.sleep(3)  # the raylet registers after the GCS answers
        yield address
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(5)
        proc.wait(timeout=30)
        subprocess.run(["rm", "-rf", temp], check=False)


def _run(root: Path, address: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "c2gr_fed.cli.main", "run", *args], capture_output=True, text=True,
                          cwd=root, timeout=timeout, env={**os.environ, "RAY_ADDRESS": address})


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return " ".join(stderr.split())


def test_a_cluster_without_a_node_for_one_department_is_refused_in_one_line(root: Path, tmp_path: Path,
                                                                          cluster: str) -> None:
    t0 = time.monotonic()
    res = _run(root, cluster, str(root / "scenarios" / "smoke.yaml"), "--out", str(tmp_path / "run"),
               "--set", "federation.cpus_per_department=4", timeout=120)
    assert res.returncode != 0
    err = _one_line(res.stderr)
    assert "federation.cpus_per_department = 4" in err and f"Ray cluster at {cluster}" in err, err
    assert "--resume" not in err and time.monotonic() - t0 < 90


def test_a_department_without_its_data_on_its_node_is_named_in_one_line(root: Path, tmp_path: Path,
                                                                      cluster: str) -> None:
    (tmp_path / "empty").mkdir()
    res = _run(root, cluster, str(drive_like_scenario(tmp_path / "drive.yaml")), "--out", str(tmp_path / "run"),
               "--data-root", str(tmp_path / "empty"), timeout=240)
    assert res.returncode != 0
    err = _one_line(res.stderr)
    assert "department 'ophthalmology-drive' cannot read its data on its node" in err, err
    assert "--resume" not in err
    logged = (tmp_path / "run" / "departments" / "ophthalmology-drive" / "errors.jsonl").read_text()
    assert "data-unreadable" in logged and "DRIVE-Vessels" in logged


def test_declared_gpus_torch_cannot_see_run_on_cpu_and_the_report_says_so(root: Path, tmp_path: Path,
                                                                         cluster: str) -> None:
    res = _run(root, cluster, str(root / "scenarios" / "smoke.yaml"), "--out", str(tmp_path / "run"),
               "--set", "federation.gpus_per_department=1", "--method", "finetune", *FAST, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    warned = [w for w in summary["warnings"] if "torch on its node sees no GPU: it ran on CPU" in w]
    assert len(warned) == 3, summary["warnings"]  # once per department, not once per round
    assert "**Warning:** department" in (tmp_path / "run" / "report.md").read_text()
    rounds = [json.loads(line) for line in (tmp_path / "run" / "rounds.jsonl").read_text().splitlines()]
    assert all(r["gpu_unseen"] == 1 and "peak_gpu_mem_mb" not in r for r in rounds)
