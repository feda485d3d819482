"""`c2gr-fed run` against an existing Ray cluster (RAY_ADDRESS): a one-node cluster started here with
`ray start --head --num-cpus 2 --num-gpus 2` (the GPUs are declared, not real). A department that no node can host
ends the run at once with one line. The longer cluster cases (a department's data folder missing on its node, declared
GPUs torch cannot see) are in benchmarks/ray_cluster_checks.py, with its transcript in benchmarks/results/."""

from __future__ import annotations

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

pytestmark = pytest.mark.slow


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
