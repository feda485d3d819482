"""A failing run prints one line (the traceback goes to RUN_DIR/run.log) and exits; resources the machine lacks are
refused before anything starts, naming the setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from c2gr_fed.errors import ResourceError
from c2gr_fed.federation.resources import check_cluster, check_machine, machine_gpus, ray_endpoint
from c2gr_fed.scenario import load_scenario
from drive_like import drive_like_scenario, write_drive_like

FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "c2gr_fed.cli.main", *args]


def _smoke(root: Path, *sets: str):
    return load_scenario(root / "scenarios" / "smoke.yaml", list(sets))


def test_gpus_and_cpus_the_machine_lacks_are_refused_naming_the_setting(root: Path) -> None:
    with pytest.raises(ResourceError, match=r"federation.gpus_per_department = 1, but this machine has no GPU .*--set "
                                            r"federation.gpus_per_department=0"):
        check_machine(_smoke(root, "federation.gpus_per_department=1"), cpus=2, gpus=0)
    with pytest.raises(ResourceError, match=r"gpus_per_department = 2, but this machine has 1 GPU: --set "
                                            r"federation.gpus_per_department=1"):
        check_machine(_smoke(root, "federation.gpus_per_department=2"), cpus=8, gpus=1)
    with pytest.raises(ResourceError, match=r"federation.cpus_per_department = 4, but this machine has 2 CPUs: --set "
                                            r"federation.cpus_per_department=2"):
        check_machine(_smoke(root, "federation.cpus_per_department=4"), cpus=2, gpus=0)
    check_machine(_smoke(root, "federation.gpus_per_department=0.5"), cpus=2, gpus=1)  # a shared GPU is fine
    check_machine(_smoke(root), cpus=1, gpus=0)


def test_a_ray_cluster_without_a_node_that_fits_is_refused(root: Path) -> None:
    nodes = [{"Resources": {"CPU": 8.0}}, {"Resources": {}}, {"Resources": {"CPU": 2.0, "GPU": 1.0}}]
    check_cluster(_smoke(root, "federation.gpus_per_department=1"), nodes, "ray://head:10001")
    with pytest.raises(ResourceError, match=r"no node of the Ray cluster at ray://head:10001 has that much \(nodes: "
                                            r"CPU 8, GPU 0; CPU 2, GPU 1\)"):
        check_cluster(_smoke(root, "federation.gpus_per_department=1", "federation.cpus_per_department=4"), nodes,
                      "ray://head:10001")


def test_ray_addresses_are_read_as_ray_reads_them() -> None:
    assert ray_endpoint("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert ray_endpoint("ray://head") == ("head", 10001) and ray_endpoint("ray://head:10002") == ("head", 10002)
    assert ray_endpoint("[::1]:6379") == ("::1", 6379)
    assert ray_endpoint("auto") is None and ray_endpoint("local") is None
    for bad in ("head", "head:port", ":6379"):
        with pytest.raises(ResourceError, match="is not HOST:PORT"):
            ray_endpoint(bad)


def test_an_unreachable_ray_cluster_fails_within_a_minute_with_one_line(root: Path, tmp_path: Path) -> None:
    """Ray alone waits for an absent GCS without end (time-outs every ~36 s, still waiting after 7 minutes)."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    res = subprocess.run(_cli("run", str(root / "scenarios" / "smoke.yaml"), "--out", str(tmp_path / "run")),
                         capture_output=True, text=True, cwd=root, timeout=120,
                         env={**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}"})
    err = " ".join(res.stderr.split())
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"error: RAY_ADDRESS=127.0.0.1:{port}: nothing answers at 127.0.0.1:{port}" in err, err
    assert "Traceback" not in res.stderr
    assert len([line for line in res.stderr.splitlines() if line.strip()]) == 1, res.stderr
    assert time.monotonic() - t0 < 60


@pytest.mark.skipif(machine_gpus() > 0, reason="this machine has a GPU")
def test_run_asking_for_a_gpu_on_a_cpu_machine_exits_at_once_with_one_line(root: Path, tmp_path: Path) -> None:
    t0 = time.monotonic()
    res = subprocess.run(_cli("run", str(root / "scenarios" / "smoke.yaml"), "--out", str(tmp_path / "run"),
                              "--set", "federation.gpus_per_department=1"),
                         capture_output=True, text=True, cwd=root, timeout=120, env={**os.environ})
    err = " ".join(res.stderr.split())
    assert res.returncode == 2, res.stdout + res.stderr
    assert "error: federation.gpus_per_department = 1, but this machine has no GPU" in err
    assert "Traceback" not in res.stderr and "ActorPool" not in res.stderr + res.stdout
    assert len([line for line in res.stderr.splitlines() if line.strip()]) == 1, res.stderr
    assert not (tmp_path / "run").exists()  # refused before anything started
    assert time.monotonic() - t0 < 60


@pytest.mark.slow
def test_a_failing_department_prints_one_line_and_logs_the_traceback(root: Path, tmp_path: Path) -> None:
    """A mask file in the middle of the folder is corrupt: the run's quick check (first, last, one of each type)
    passes, the department fails to load it in round 1."""
    folder = write_drive_like(tmp_path / "data")
    bad = folder / "1st_manual" / "26_manual1.gif"
    bad.write_bytes(bad.read_bytes()[:20])
    scenario = drive_like_scenario(tmp_path / "drive.yaml")
    out = tmp_path / "run"
    sets = [a for s in FAST for a in ("--set", s)]
    res = subprocess.run(_cli("run", str(scenario), "--out", str(out), "--data-root", str(tmp_path / "data"), *sets),
                         capture_output=True, text=True, cwd=root, timeout=300, env={**os.environ})
    both = res.stdout + res.stderr
    assert res.returncode == 2, both[-3000:]
    err = " ".join(res.stderr.split())
    assert "error: department 'ophthalmology-drive' failed to train task 'DRIVE-Vessels' in round 0" in err, both
    # the cause category crosses the wire, the department's own message stays in its errors log, and the one
    # line says where that log is
    errors_log = out / "departments" / "ophthalmology-drive" / "errors.jsonl"
    assert "data-unreadable (the department could not read or check its data)" in err, err
    assert f"the department's own message is in {errors_log}" in err and f"details in {out / 'run.log'}" in err, err
    assert "26_manual1.gif" not in err
    for noise in ("Traceback", "ERROR", "ClientAppException", "ActorDiedError"):
        assert noise not in both, both[-3000:]
    assert len([line for line in res.stderr.splitlines() if line.strip()]) == 1, res.stderr
    log = (out / "run.log").read_text()
    assert "Traceback" in log
    logged = [json.loads(line) for line in errors_log.read_text().splitlines()]
    assert logged and all(e["code"] == "data-unreadable" and e["message_type"] == "train" for e in logged)
    assert "26_manual1.gif" in logged[-1]["error"] and "Traceback" in logged[-1]["traceback"]
    assert "26_manual1.gif" not in (out / "transfers.jsonl").read_text()
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
