"""`c2gr-fed deploy-local`: the deployment-engine topology as local processes on 127.0.0.1.

    flower-superlink                       one port (Fleet, Control and Runtime APIs in flwr 1.42)
    flower-supernode x N departments       --node-config 'department="..." [data-root="..."]', own port each;
                                           each launches its department's ClientApp process (flwr-clientapp)
    flwr run APP deploy-local              the ServerApp (flwr-serverapp, launched by the SuperLink) runs the
                                           coordinator, which writes the run directory

The same ServerApp and ClientApp as in simulation, unchanged: they read the scenario path and run directory from
the run config and the department from the SuperNode's node config. The resolved scenario (overrides applied) is
written to RUN_DIR/scenario.yaml and that path is given to everyone, so coordinator and departments agree on its
SHA-256.

`flwr run` bundles the app directory into a FAB. To keep the repository untouched (flwr 1.42 migrates and comments
out a legacy `[tool.flwr.federations]` table in the pyproject.toml it is given) and the FAB small, the launcher
stages a minimal app (pyproject.toml + the thin `server/` and `departments/` packages) under RUN_DIR/deploy/app;
the library itself is imported from the installed `c2gr_fed`.

Every process is started in its own process group and stopped (SIGTERM, then SIGKILL, descendants included) when
the run ends, fails or is interrupted. Logs: RUN_DIR/deploy-logs/<process>.log.

`--secure`: a local CA and a server certificate (TLS on every connection), and SuperNode authentication: the
SuperLink runs with `--enable-supernode-auth`, so only SuperNodes whose public key was registered with
`flwr supernode register` (one key per listed department) may join.

The pieces live beside this module by concern: deploy_env (flwr home, tools, ports), deploy_staging (the staged
app, CLI, node and run configs), deploy_credentials (`--secure` material), deploy_processes (process groups and
their shutdown), deploy_flwr_cli (the flwr CLI calls); this module orchestrates them.

Also a module entry point for containers: `python -m c2gr_fed.federation.deploy_local stage-app DIR` and
`... submit --superlink HOST:PORT --scenario PATH --run-dir PATH [--root-certificates CA]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import FederationError
from ..runs.timing import checkpointed_rounds
from .deploy_credentials import make_credentials
from .deploy_env import CONNECTION, flwr_env, free_ports, port_open, tool
from .deploy_flwr_cli import flwr_cli, submit_run, wait_for_run
from .deploy_processes import ProcessSet, tail
from .deploy_staging import node_config, prepare_run_dir, run_config, stage_app, write_cli_config



@dataclass
class DeployResult:
    run_dir: Path
    run_id: int
    status: dict[str, Any]
    summary: dict[str, Any]
    timings: dict[str, float]
    pids: list[int]


def _wait_until(cond: Callable[[], bool], timeout: float, what: str, check: Callable[[], None]) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        check()
        if cond():
            return
        time.sleep(0.3)
    raise FederationError(f"{what} not ready within {timeout:.0f} s")


def _keep_old_logs(logs: Path) -> None:
    """On resume, the first session's process logs move to deploy-logs.1 (.2, ...) instead of being overwritten."""
    if not logs.exists():
        return
    k = 1
    while logs.with_name(f"{logs.name}.{k}").exists():
        k += 1
    logs.rename(logs.with_name(f"{logs.name}.{k}"))


def deploy_local(scenario_path: Path | None, overrides: Sequence[str] = (), out: Path | None = None,
                 secure: bool = False, data_root: Path | None = None, timeout: float = 3600.0,
                 log: Callable[[str], None] = print, intruder: bool = False, resume: Path | None = None) -> DeployResult:
    """Run a scenario on the deployment engine as local processes; return when the run directory is complete.

    `resume`: continue the run in that directory after its last complete round (its stored scenario).
    `intruder` (with `secure`): also start one SuperNode whose key is not registered; it must be refused
    (the run then still needs every listed department; the intruder's log is RUN_DIR/deploy-logs/intruder.log).
    A failure after the run directory exists names the rounds kept and the command that continues the run.
    """
    from ..runs.layout import RunDir
    from ..runs.lock import RunLock
    from ..scenario import dump_scenario
    from .settings import resolve_run_target

    scenario, run, _ = resolve_run_target(scenario_path, list(overrides), out, resume, default_stem="deploy")
    run = RunDir(run.root.resolve())
    lock = RunLock(run).acquire(shlex.join(["c2gr-fed", "deploy-local", str(resume or scenario_path)]))
    try:
        if resume is None:
            run.ensure()
            run.scenario.write_text(dump_scenario(scenario))
        return _deploy(scenario, run, secure, data_root, timeout, log, intruder, resume is not None)
    except FederationError as exc:
        done = checkpointed_rounds(run)
        raise FederationError(f"{exc}\nrounds complete and checkpointed: {done} of {len(scenario.stream())} in "
                              f"{run.root}; continue with: c2gr-fed deploy-local --resume {run.root}") from exc
    finally:
        lock.release()


def _deploy(scenario, run, secure: bool, data_root: Path | None, timeout: float, log: Callable[[str], None],
            intruder: bool, resume: bool) -> DeployResult:
    depts = [d.name for d in scenario.departments]
    n_rounds = len(scenario.stream())

    work = run.root / "deploy"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    logs = run.root / "deploy-logs"
    if resume:
        _keep_old_logs(logs)
    elif logs.exists():
        shutil.rmtree(logs)
    procs = ProcessSet(logs)
    cli_home = work / "flwr-cli"
    timings: dict[str, float] = {}
    t_start = time.monotonic()
    data_root_s = str(Path(data_root).resolve()) if data_root else None

    def check_alive() -> None:
        for p in procs.dead():
            if p.name == "intruder":
                continue
            rc = p.popen.returncode
            how = f"was killed (signal {-rc})" if rc is not None and rc < 0 else f"exited with status {rc}"
            who = f"department {p.name!r}: its SuperNode" if p.name in depts else p.name
            raise FederationError(f"{who} {how}; last lines of {p.log}:\n{tail(p.log)}")

    try:
        app = stage_app(work / "app")
        link_port, *node_ports = free_ports(1 + len(depts) + (1 if intruder else 0))
        address = f"127.0.0.1:{link_port}"
        creds = None
        tls_link: list[str] = ["--insecure"]
        if secure:
            creds = make_credentials(work / "certs", depts, extra_nodes=["intruder"] if intruder else ())
            tls_link = ["--ssl-ca-certfile", str(creds.ca), "--ssl-certfile", str(creds.server_cert),
                        "--ssl-keyfile", str(creds.server_key), "--enable-supernode-auth"]
        write_cli_config(cli_home, address, creds.ca if creds else None)
        cli_env = flwr_env(cli_home)

        log(f"superlink on {address}{' (TLS, SuperNode authentication)' if secure else ''}; logs in {logs}")
        procs.start("superlink", [tool("flower-superlink"), *tls_link, "--host", "127.0.0.1", "--port", str(link_port),
                                  "--database", str(work / "superlink.db"),
                                  "--disable-runtime-dependency-installation"],
                    flwr_env(work / "flwr-superlink"), cwd=work)
        _wait_until(lambda: port_open(link_port), 90, "the SuperLink", check_alive)
        timings["superlink_ready_s"] = time.monotonic() - t_start

        if creds is not None:  # only the listed departments' keys are registered
            for d in depts:
                cp = flwr_cli(["supernode", "register", str(creds.node_keys[d][1]), CONNECTION, "--name", d,
                               "--format", "json"], cli_env, timeout=120)
                if cp.returncode != 0:
                    raise FederationError(f"flwr supernode register for {d!r} failed: {(cp.stdout + cp.stderr)[-800:]}")

        names = depts + (["intruder"] if intruder else [])
        for name, port in zip(names, node_ports):
            cfg = node_config(name if name != "intruder" else depts[0], data_root_s)
            tls_node = ["--insecure"]
            if creds is not None:
                tls_node = ["--root-certificates", str(creds.ca), "--auth-supernode-private-key",
                            str(creds.node_keys[name][0])]
            extra = ["--max-retries", "3"] if name == "intruder" else []
            procs.start(name, [tool("flower-supernode"), *tls_node, "--superlink", address, "--host", "127.0.0.1",
                               "--port", str(port), "--node-config", cfg, *extra],
                        flwr_env(work / f"flwr-{name}", {"C2GR_DATA_ROOT": data_root_s} if data_root_s else None),
                        cwd=work)

        def nodes_connected() -> bool:
            return all("SuperNode ID" in (logs / f"{d}.log").read_text(errors="replace") for d in depts)

        _wait_until(nodes_connected, 180, f"{len(depts)} SuperNodes", check_alive)
        timings["supernodes_ready_s"] = time.monotonic() - t_start
        log(f"{len(depts)} department SuperNodes connected: {', '.join(depts)}")

        run_id = submit_run(app, cli_env, run_config(run.scenario, run.root, data_root_s, resume=resume))
        done = checkpointed_rounds(run) if resume else 0
        log(f"run {run_id} submitted ({n_rounds} rounds" + (f", continuing after round {done})" if resume else ")"))
        t_run = time.monotonic()
        status = wait_for_run(run_id, cli_env, timeout, check=lambda: (check_alive(), procs.remember_descendants()),
                              done_hint=lambda: _read_summary(run.summary).get("completed_rounds") == n_rounds)
        timings["run_s"] = time.monotonic() - t_run
        _save_serverapp_log(run_id, cli_env, logs)
        summary = _read_summary(run.summary)
        if status.get("status") != "finished:completed":
            raise FederationError(f"run {run_id} ended {status.get('status')}: {status.get('status-details')}\n"
                                  f"last lines of the ServerApp log ({logs / 'serverapp.log'}):\n"
                                  f"{tail(logs / 'serverapp.log')}")
        if summary.get("completed_rounds") != n_rounds:
            raise FederationError(f"run {run_id} finished but {run.summary} says {summary.get('completed_rounds')} of "
                                  f"{n_rounds} rounds completed")
        if summary.get("missing"):  # a department's evaluation failed: the run directory is not complete
            errors = [_last_error(logs / f"{d}.log") for d in depts]
            raise FederationError(f"run {run_id} finished but {len(summary['missing'])} train-test matrix entries are "
                                  f"missing ({summary['missing'][:3]}...); department errors:\n"
                                  + "\n".join(f"  {d}: {e}" for d, e in zip(depts, errors) if e))
        (run.root / "deploy.json").write_text(json.dumps({
            "engine": "flower-deployment (loopback processes)", "run_id": run_id, "status": status.get("status"),
            "superlink": address, "secure": secure, "departments": depts, "timings_s": timings,
        }, indent=2))
        return DeployResult(run.root, run_id, status, summary, timings, [])
    finally:
        t_stop = time.monotonic()
        pids = sorted(procs.all_pids())
        left = procs.stop()
        timings["stop_s"] = time.monotonic() - t_stop
        (logs / "pids.json").write_text(json.dumps({"started": pids, "alive_after_stop": left}))
        if left:
            log(f"warning: processes still alive after stop: {left}")


def _save_serverapp_log(run_id: int, env: dict[str, str], logs: Path) -> None:
    try:
        cp = flwr_cli(["log", str(run_id), CONNECTION, "--show"], env, timeout=60)
        (logs / "serverapp.log").write_text(cp.stdout + cp.stderr)
    except (subprocess.SubprocessError, OSError) as exc:
        (logs / "serverapp.log").write_text(f"flwr log failed: {exc}\n")


def _last_error(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    hits = [ln.strip() for ln in lines if "Error:" in ln or "Exception:" in ln]
    return hits[-1][-400:] if hits else ""


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _submit_main(ns: argparse.Namespace) -> int:
    """For the compose `submit` container: stage the app, submit the run, wait for its real status."""
    home = Path(ns.flwr_home)
    write_cli_config(home, ns.superlink, Path(ns.root_certificates) if ns.root_certificates else None)
    env = flwr_env(home)
    app = stage_app(Path(ns.app_dir))
    _wait_until(lambda: _can_list(env), ns.wait_s, f"the SuperLink at {ns.superlink}", lambda: None)
    run_id = submit_run(app, env, run_config(Path(ns.scenario), Path(ns.run_dir), ns.data_root))
    print(f"run {run_id} submitted to {ns.superlink}", flush=True)
    status = wait_for_run(run_id, env, ns.timeout, poll_s=10)
    print(json.dumps(status, indent=1), flush=True)
    return 0 if status.get("status") == "finished:completed" else 1


def _can_list(env: dict[str, str]) -> bool:
    try:
        return flwr_cli(["ls", CONNECTION, "--format", "json"], env, timeout=60).returncode == 0
    except subprocess.SubprocessError:
        return False


def serve_superlink(superlink_argv: list[str], register_dir: Path, port: int, root_certificates: Path | None,
                    marker: Path) -> int:
    """Container entry point (secure profile): run flower-superlink, register the public keys of the listed
    departments (every *.pub in register_dir) with `flwr supernode register`, touch `marker` (the healthcheck),
    then wait. With --enable-supernode-auth, SuperNodes whose key is not registered are refused."""
    env = flwr_env(Path(os.environ.get("FLWR_HOME", "/tmp/flwr-superlink")))
    cli_home = Path("/tmp/flwr-register")
    write_cli_config(cli_home, f"127.0.0.1:{port}", root_certificates)
    cli_env = flwr_env(cli_home)
    link = subprocess.Popen([tool("flower-superlink"), *superlink_argv], env=env)
    signal.signal(signal.SIGTERM, lambda *_: link.terminate())

    def alive() -> None:
        if link.poll() is not None:
            raise FederationError(f"flower-superlink exited with status {link.returncode}")

    try:
        _wait_until(lambda: port_open(port), 120, "the SuperLink", alive)
        keys = sorted(Path(register_dir).glob("*.pub"))
        if not keys:
            raise FederationError(f"no *.pub SuperNode keys in {register_dir}: run docker/make-certs.sh")
        for key in keys:
            cp = flwr_cli(["supernode", "register", str(key), CONNECTION, "--name", key.stem, "--format", "json"],
                          cli_env, timeout=120)
            if cp.returncode != 0:
                raise FederationError(f"registering {key.name} failed: {(cp.stdout + cp.stderr)[-800:]}")
            print(f"registered SuperNode key {key.name}", flush=True)
        marker.write_text("registered\n")
    except BaseException:
        link.terminate()
        raise
    return link.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m c2gr_fed.federation.deploy_local")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("stage-app", help="write the minimal Flower app directory")
    p.add_argument("dest", type=Path)
    p = sub.add_parser("submit", help="submit a run to a running SuperLink and wait for its status")
    p.add_argument("--superlink", required=True, help="HOST:PORT")
    p.add_argument("--scenario", required=True, help="scenario path as the ServerApp and ClientApps see it")
    p.add_argument("--run-dir", required=True, help="run directory as the ServerApp sees it")
    p.add_argument("--data-root", default=None)
    p.add_argument("--root-certificates", default=None, help="CA certificate (TLS); insecure without")
    p.add_argument("--flwr-home", default="/tmp/flwr-cli")
    p.add_argument("--app-dir", default="/tmp/c2gr-fed-app")
    p.add_argument("--wait-s", type=float, default=300)
    p.add_argument("--timeout", type=float, default=6 * 3600)
    p = sub.add_parser("keys", help="make TLS certificates and SuperNode keys (Python; no openssl needed)")
    p.add_argument("dest", type=Path)
    p.add_argument("--host", action="append", default=[], help="a DNS name or IP for the server certificate")
    p.add_argument("--department", action="append", default=[])
    p = sub.add_parser("prepare-run-dir", help="write the resolved scenario to RUN_DIR/scenario.yaml")
    p.add_argument("scenario", type=Path)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p = sub.add_parser("serve-superlink", help="run flower-superlink and register the listed SuperNode keys")
    p.add_argument("--register-dir", type=Path, required=True, help="folder of the listed departments' *.pub keys")
    p.add_argument("--port", type=int, default=9093)
    p.add_argument("--root-certificates", type=Path, default=None)
    p.add_argument("--marker", type=Path, default=Path("/tmp/registered"))
    p.add_argument("superlink_args", nargs=argparse.REMAINDER, help="-- then the flower-superlink arguments")
    ns = ap.parse_args(argv)
    if ns.cmd == "prepare-run-dir":
        print(prepare_run_dir(ns.scenario, ns.run_dir, ns.overrides))
        return 0
    if ns.cmd == "serve-superlink":
        rest = ns.superlink_args[1:] if ns.superlink_args[:1] == ["--"] else ns.superlink_args
        return serve_superlink(rest, ns.register_dir, ns.port, ns.root_certificates, ns.marker)
    if ns.cmd == "stage-app":
        print(stage_app(ns.dest))
        return 0
    if ns.cmd == "keys":
        make_credentials(ns.dest, ns.department, hosts=ns.host or ["127.0.0.1", "localhost"])
        return 0
    return _submit_main(ns)


if __name__ == "__main__":
    sys.exit(main())
