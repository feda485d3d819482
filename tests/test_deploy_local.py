"""`c2gr-fed deploy-local`: the deployment engine as real processes on 127.0.0.1 (SuperLink, one SuperNode per
department, flwr run), SuperNode authentication, and clean-up of every process started."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from c2gr_fed.errors import ScenarioError
from c2gr_fed.federation import deploy_local as dl
from c2gr_fed.federation.deploy_processes import _alive

FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]


# ------------------------------------------------------------------------------------------------ fast pieces


def test_configs_are_toml_and_quoted() -> None:
    import tomllib

    cfg = dl.node_config('cardiology-"x"', "/data/with space")
    assert tomllib.loads(cfg.replace(" data-root", "\ndata-root")) == {"department": 'cardiology-"x"',
                                                                       "data-root": "/data/with space"}
    rc = dl.run_config(Path("/r/scenario.yaml"), Path("/r"))
    assert tomllib.loads(rc.replace(" run-dir", "\nrun-dir")) == {"scenario": "/r/scenario.yaml", "run-dir": "/r"}


def test_cli_config_and_staged_app(tmp_path: Path) -> None:
    import tomllib

    home = tmp_path / "home"
    conf = tomllib.loads(dl.write_cli_config(home, "127.0.0.1:9", None).read_text())
    assert conf["superlink"]["default"] == dl.CONNECTION
    assert conf["superlink"][dl.CONNECTION] == {"address": "127.0.0.1:9", "insecure": True}
    conf = tomllib.loads(dl.write_cli_config(home, "127.0.0.1:9", tmp_path / "ca.crt").read_text())
    assert conf["superlink"][dl.CONNECTION]["root-certificates"] == str(tmp_path / "ca.crt")
    app = dl.stage_app(tmp_path / "app")
    py = tomllib.loads((app / "pyproject.toml").read_text())
    assert py["tool"]["flwr"]["app"]["components"] == {"serverapp": "server.server_app:app",
                                                       "clientapp": "departments.client_app:app"}
    assert {"scenario", "run-dir", "data-root"} <= set(py["tool"]["flwr"]["app"]["config"])
    assert "federations" not in py["tool"]["flwr"]  # nothing for flwr 1.42 to migrate (it would rewrite the file)
    assert (app / "server" / "server_app.py").exists() and (app / "departments" / "client_app.py").exists()
    assert not (app / "c2gr_fed").exists()  # the library is imported from the installed package


def test_process_set_stops_whole_trees(tmp_path: Path) -> None:
    procs = dl.ProcessSet(tmp_path / "logs")
    # a parent that starts a child in a session of its own (as Flower's app processes may) and waits
    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
            " start_new_session=True); print('RE' + 'ADY', flush=True); time.sleep(300)")
    procs.start("tree", [sys.executable, "-c", code], dl.flwr_env(tmp_path / "h"))
    t0 = time.monotonic()
    while "READY" not in (tmp_path / "logs" / "tree.log").read_text() and time.monotonic() - t0 < 30:
        time.sleep(0.1)
    pids = procs.all_pids()
    assert len(pids) == 2
    assert procs.stop(grace=5) == []
    assert not any(_alive(p) for p in pids)


def test_bad_scenario_fails_before_starting_anything(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ScenarioError):
        dl.deploy_local(root / "scenarios" / "smoke.yaml", ["training.epochs=-1"], tmp_path / "run", log=lambda s: None)
    assert not (tmp_path / "run" / "deploy-logs").exists()


def test_cli_has_deploy_local() -> None:
    from c2gr_fed.cli.main import build_parser

    ns = build_parser().parse_args(["deploy-local", "scenarios/smoke.yaml", "--out", "x", "--set", "a=1", "--secure"])
    assert ns.command == "deploy-local" and ns.secure and ns.overrides == ["a=1"]


# ---------------------------------------------------------------------------------- SuperNode authentication


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_unlisted_supernode_is_refused(tmp_path: Path) -> None:
    """TLS + --enable-supernode-auth: a SuperNode whose key was registered joins; an unlisted one is refused."""
    creds = dl.make_credentials(tmp_path / "certs", ["listed", "intruder"])
    port, p_listed, p_intruder = dl.free_ports(3)
    procs = dl.ProcessSet(tmp_path / "logs")
    cli_home = tmp_path / "cli"
    dl.write_cli_config(cli_home, f"127.0.0.1:{port}", creds.ca)
    try:
        procs.start("superlink", [dl.tool("flower-superlink"), "--ssl-ca-certfile", str(creds.ca), "--ssl-certfile",
                                  str(creds.server_cert), "--ssl-keyfile", str(creds.server_key),
                                  "--enable-supernode-auth", "--host", "127.0.0.1", "--port", str(port)],
                    dl.flwr_env(tmp_path / "link"), cwd=tmp_path)
        dl._wait_until(lambda: dl.port_open(port), 90, "SuperLink", lambda: None)
        cp = dl.flwr_cli(["supernode", "register", str(creds.node_keys["listed"][1]), dl.CONNECTION],
                         dl.flwr_env(cli_home))
        assert cp.returncode == 0, cp.stdout + cp.stderr
        for name, p in (("listed", p_listed), ("intruder", p_intruder)):
            procs.start(name, [dl.tool("flower-supernode"), "--root-certificates", str(creds.ca),
                               "--auth-supernode-private-key", str(creds.node_keys[name][0]), "--superlink",
                               f"127.0.0.1:{port}", "--host", "127.0.0.1", "--port", str(p), "--max-retries", "3",
                               "--node-config", f'department="{name}"'], dl.flwr_env(tmp_path / name), cwd=tmp_path)
        intruder = procs.procs[-1]
        t0 = time.monotonic()
        while time.monotonic() - t0 < 180:
            if intruder.popen.poll() is not None and "SuperNode ID" in (tmp_path / "logs" / "listed.log").read_text():
                break
            time.sleep(0.5)
        log = intruder.log.read_text()
        assert intruder.popen.returncode not in (None, 0), log
        assert "Failed to activate SuperNode" in log and "SuperNode ID" not in log
        assert "No SuperNode found with the given public key" in (tmp_path / "logs" / "superlink.log").read_text()
        assert "SuperNode ID" in (tmp_path / "logs" / "listed.log").read_text()
        listed = procs.procs[1]
        assert listed.popen.poll() is None  # still connected
    finally:
        assert procs.stop() == []


# ------------------------------------------------------------------------------------------ end to end


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "c2gr_fed.cli.main", "deploy-local", *args]


def _train_sent_to(log: Path, department: str) -> bool:
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


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_deploy_local_department_killed_mid_round_then_resumed_to_a_complete_run(root: Path, tmp_path: Path) -> None:
    """Round 2's department (SuperNode and ClientApp) is SIGKILLed while it trains: the run stops with one message
    naming it, the rounds kept and the command that continues; nothing is left running; `--resume` completes the
    run without redoing round 1, and the run directory is complete and its transfer log verifies."""
    import os
    import signal

    from c2gr_fed.runs.checkpoint import read_checkpoint_meta

    t0 = time.monotonic()
    out = tmp_path / "run"
    victim = "ophthalmology-nidek"  # holds Fundus-B, the second round of smoke.yaml
    first = subprocess.Popen(_cli(str(root / "scenarios" / "smoke.yaml"), "--out", str(out),
                                  *[a for s in FAST for a in ("--set", s)]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root)
    try:
        deadline = time.monotonic() + 1200
        while not _train_sent_to(out / "transfers.jsonl", victim):
            assert first.poll() is None, "deploy-local ended before round 2: " + "".join(first.communicate())[-3000:]
            assert time.monotonic() < deadline, "round 2 never started"
            time.sleep(0.2)
        pid = json.loads((out / "deploy-logs" / "processes.json").read_text())[victim]
        os.killpg(pid, signal.SIGKILL)  # the department's whole process group, as a crashed machine
        stdout, stderr = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    said = stdout + stderr
    assert first.returncode == 2, said[-3000:]
    assert f"department {victim!r}: its SuperNode was killed (signal 9)" in said, said[-3000:]
    assert f"rounds complete and checkpointed: 1 of 3 in {out.resolve()}" in said, said[-3000:]
    assert f"c2gr-fed deploy-local --resume {out.resolve()}" in said
    pids = json.loads((out / "deploy-logs" / "pids.json").read_text())
    assert pids["alive_after_stop"] == [] and not any(_alive(p) for p in pids["started"])
    meta = read_checkpoint_meta(out / "checkpoints")
    assert meta is not None and meta["completed_rounds"] == 1
    kept_row = json.loads(json.dumps(meta["matrix"]))["values"][0]

    cp = subprocess.run(_cli("--resume", str(out), "--json"), capture_output=True, text=True, cwd=root, timeout=1500)
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-3000:]
    assert "continuing after round 1" in cp.stdout
    m = json.loads((out / "matrix.json").read_text())
    assert m["tasks"] == ["Fundus-A", "Fundus-B", "MnMs-Siemens"]
    assert len(m["values"]) == 3 and all(len(r) == 3 for r in m["values"])
    assert all(v is not None and 0.0 <= v <= 1.0 for r in m["values"] for v in r)
    assert m["values"][0] == kept_row  # round 1 was kept, not redone
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed_rounds"] == 3 and not summary["missing"]
    from c2gr_fed.privacy import read_log, verify_chain

    assert verify_chain(out / "transfers.jsonl") == []
    kinds = [(e["direction"], e.get("message_type")) for e in read_log(out / "transfers.jsonl")]
    assert kinds.count(("department->coordinator", "train")) == 3  # the killed round's request is not counted twice
    assert kinds.count(("department->coordinator", "evaluate")) == 9
    deploy = json.loads((out / "deploy.json").read_text())
    assert deploy["status"] == "finished:completed" and len(deploy["departments"]) == 3
    logs = out / "deploy-logs"
    for name in ["superlink", "ophthalmology-aravind", "ophthalmology-nidek", "cardiology-siemens", "serverapp"]:
        assert (logs / f"{name}.log").exists(), name
    assert (out / "deploy-logs.1" / f"{victim}.log").exists()  # the first session's logs are kept
    pids = json.loads((logs / "pids.json").read_text())
    assert len(pids["started"]) >= 4 and pids["alive_after_stop"] == []
    assert not any(_alive(p) for p in pids["started"])
    print(f"deploy-local kill + resume: {time.monotonic() - t0:.0f} s in all; timings {deploy['timings_s']}")
