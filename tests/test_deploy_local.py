"""`c2gr-fed deploy-local`: the deployment engine as real processes on 127.0.0.1 (SuperLink, one SuperNode per
department, flwr run), SuperNode authentication, and clean-up of every process started. A department killed mid-round
and the resumed run are checked end to end by benchmarks/deploy_local_kill_resume.py (minutes, so not here)."""

from __future__ import annotations

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
