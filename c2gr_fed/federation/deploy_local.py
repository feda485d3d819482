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

Also a module entry point for containers: `python -m c2gr_fed.federation.deploy_local stage-app DIR` and
`... submit --superlink HOST:PORT --scenario PATH --run-dir PATH [--root-certificates CA]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import FederationError
from ..runs.timing import checkpointed_rounds

CONNECTION = "deploy-local"
APP_NAME = "c2gr-fed-app"

_APP_PYPROJECT = """\
# Staged by c2gr_fed.federation.deploy_local: the Flower app bundle (FAB) for the deployment engine.
# Only the thin apps travel in the FAB; the c2gr_fed library is installed where they run.
[project]
name = "{name}"
version = "0.1.0"
description = "c2gr-fed ServerApp (coordinator) and ClientApp (department)"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "c2gr-fed"

[tool.flwr.app.components]
serverapp = "server.server_app:app"
clientapp = "departments.client_app:app"

[tool.flwr.app.config]
scenario = "scenarios/smoke.yaml"
run-dir = "runs/flwr"
data-root = ""
overrides = ""
resume = false
"""


# ---------------------------------------------------------------------------------------------- environment


def flwr_env(flwr_home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for every Flower process: offline, quiet, a private FLWR_HOME, the venv's binaries first."""
    env = dict(os.environ)
    env.update({
        "FLWR_HOME": str(flwr_home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
        "TERM": "dumb",
    })
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    if extra:
        env.update(extra)
    return env


def tool(name: str) -> str:
    """A Flower console script next to this interpreter (the venv), else on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise FederationError(f"{name} not found next to {sys.executable} or on PATH: install flwr==1.42.0")
    return found


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct free TCP ports (all held open until all are chosen)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# ------------------------------------------------------------------------------------------------ app staging


def stage_app(dest: Path) -> Path:
    """Write the minimal Flower app (pyproject.toml + server/ + departments/) to `dest`."""
    import departments
    import server

    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for pkg in (server, departments):
        src = Path(pkg.__file__).resolve().parent
        shutil.copytree(src, dest / src.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "test_*.py"))
    (dest / "pyproject.toml").write_text(_APP_PYPROJECT.format(name=APP_NAME))
    return dest


def write_cli_config(flwr_home: Path, address: str, root_certificates: Path | None) -> Path:
    """$FLWR_HOME/config.toml with one SuperLink connection named `deploy-local` (the default)."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]", f'address = "{address}"']
    if root_certificates is not None:
        lines.append(f'root-certificates = "{root_certificates}"')
    else:
        lines.append("insecure = true")
    path = flwr_home / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def toml_str(value: str) -> str:
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def node_config(department: str, data_root: str | None) -> str:
    parts = [f"department={toml_str(department)}"]
    if data_root:
        parts.append(f"data-root={toml_str(data_root)}")
    return " ".join(parts)


def run_config(scenario: Path, run_dir: Path, data_root: str | None = None, resume: bool = False) -> str:
    parts = [f"scenario={toml_str(str(scenario))}", f"run-dir={toml_str(str(run_dir))}"]
    if data_root:
        parts.append(f"data-root={toml_str(data_root)}")
    if resume:
        parts.append("resume=true")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------- certificates


@dataclass
class Credentials:
    ca: Path
    server_cert: Path
    server_key: Path
    node_keys: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    """department -> (OpenSSH EC P-384 private key, public key)."""


def make_credentials(dest: Path, departments: Sequence[str], hosts: Sequence[str] = ("127.0.0.1", "localhost"),
                     extra_nodes: Sequence[str] = ()) -> Credentials:
    """A local CA, a server certificate for `hosts`, and one SuperNode key pair per department (in Python, with
    `cryptography`, which flwr depends on). docker/make-certs.sh does the same with openssl + ssh-keygen."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    dest.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c2gr-fed local CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))
    srv_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    srv_cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
                .issuer_name(ca_name).public_key(srv_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(ca_key, hashes.SHA256()))
    creds = Credentials(dest / "ca.crt", dest / "server.pem", dest / "server.key")
    creds.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    creds.server_cert.write_bytes(srv_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(creds.server_key, srv_key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                                           serialization.NoEncryption()))
    for name in list(departments) + list(extra_nodes):
        key = ec.generate_private_key(ec.SECP384R1())
        priv, pub = dest / f"{name}.key", dest / f"{name}.key.pub"
        _write_private(priv, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                               serialization.NoEncryption()))
        pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                      serialization.PublicFormat.OpenSSH) + f" {name}\n".encode())
        creds.node_keys[name] = (priv, pub)
    return creds


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


# ------------------------------------------------------------------------------------------------- processes


def _descendants(pid: int) -> list[int]:
    """All descendants of pid (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.exists():
        return []
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path


class ProcessSet:
    """Processes started in their own process groups; `stop()` ends them all, descendants included."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self.seen: set[int] = set()

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        log = self.log_dir / f"{name}.log"
        fh = open(log, "ab")
        fh.write(f"$ {shlex.join(argv)}\n".encode())
        fh.flush()
        p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             cwd=str(cwd) if cwd else None, start_new_session=True)
        fh.close()
        proc = Proc(name, p, log)
        self.procs.append(proc)
        self.seen.add(p.pid)
        (self.log_dir / "processes.json").write_text(json.dumps({q.name: q.popen.pid for q in self.procs}, indent=1))
        return proc

    def remember_descendants(self) -> None:
        for p in self.procs:
            self.seen.update(_descendants(p.popen.pid))

    def dead(self) -> list[Proc]:
        return [p for p in self.procs if p.popen.poll() is not None]

    def all_pids(self) -> set[int]:
        self.remember_descendants()
        return set(self.seen)

    def stop(self, grace: float = 10.0) -> list[int]:
        """SIGTERM every group and every known descendant, wait, then SIGKILL; returns pids still alive (none)."""
        self.remember_descendants()
        pids = set(self.seen)
        groups = {p.popen.pid for p in self.procs}
        for pid in sorted(pids):  # ServerApp/ClientApp processes may start sessions of their own
            _signal(pid, signal.SIGTERM, group=pid in groups)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            for p in self.procs:
                p.popen.poll()
            if not any(_alive(pid) for pid in pids):
                break
            time.sleep(0.2)
        for pid in sorted(pids):
            if _alive(pid):
                _signal(pid, signal.SIGKILL, group=pid in groups)
        for p in self.procs:
            try:
                p.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.2)
        return [pid for pid in pids if _alive(pid)]


def _signal(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text[-lines:])


# ------------------------------------------------------------------------------------------------ flwr CLI


def flwr_cli(args: list[str], env: dict[str, str], timeout: float = 120.0, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([tool("flwr"), *args], env=env, cwd=str(cwd) if cwd else None, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _json_of(out: str) -> dict[str, Any]:
    """The JSON object in flwr's --format json output (it may print notices before it)."""
    start = out.find("{")
    if start < 0:
        raise ValueError("no JSON in output")
    return json.loads(out[start:])


def run_status(run_id: int, env: dict[str, str], connection: str = CONNECTION) -> dict[str, Any]:
    cp = flwr_cli(["ls", connection, "--run-id", str(run_id), "--format", "json"], env, timeout=60)
    try:
        data = _json_of(cp.stdout)
    except ValueError as exc:
        raise FederationError(f"flwr ls gave no JSON (exit {cp.returncode}): {(cp.stdout + cp.stderr)[-800:]}") from exc
    runs = data.get("runs") or []
    return runs[0] if runs else {}


def submit_run(app: Path, env: dict[str, str], config: str, connection: str = CONNECTION) -> int:
    cp = flwr_cli(["run", str(app), connection, "--run-config", config, "--format", "json"], env, timeout=300)
    try:
        data = _json_of(cp.stdout)
    except ValueError:
        data = {}
    if cp.returncode != 0 or not data.get("success"):
        raise FederationError(f"flwr run failed (exit {cp.returncode}): {(cp.stdout + cp.stderr)[-1500:]}")
    return int(data["run-id"])


def wait_for_run(run_id: int, env: dict[str, str], timeout: float, poll_s: float = 15.0,
                 check: Callable[[], None] | None = None, connection: str = CONNECTION,
                 done_hint: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Poll `flwr ls` until the run is finished (its real status: `flwr run --stream` exits 0 on failure).

    Each `flwr ls` starts a Python process, so it is asked every `poll_s` seconds, or at once when the cheap
    `done_hint` (e.g. summary.json complete) says the run may be over."""
    t0 = time.monotonic()
    status: dict[str, Any] = {}
    last_ls = -poll_s
    while time.monotonic() - t0 < timeout:
        if check is not None:
            check()
        hint = done_hint() if done_hint is not None else False
        since = time.monotonic() - last_ls
        if (hint and since >= 3.0) or since >= poll_s:
            last_ls = time.monotonic()
            status = run_status(run_id, env, connection)
            if str(status.get("status", "")).startswith("finished"):
                return status
        time.sleep(1.0)
    raise FederationError(f"run {run_id} not finished after {timeout:.0f} s (last status: {status.get('status')})")


# ------------------------------------------------------------------------------------------------ deploy-local


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


# ------------------------------------------------------------------------------ container entry points


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


def prepare_run_dir(scenario_path: Path, run_dir: Path, overrides: Sequence[str] = ()) -> Path:
    """Write the resolved scenario to RUN_DIR/scenario.yaml (what `c2gr-fed run` does before a run)."""
    from ..runs.layout import RunDir
    from ..scenario import dump_scenario, load_scenario

    run = RunDir(Path(run_dir)).ensure()
    run.scenario.write_text(dump_scenario(load_scenario(scenario_path, list(overrides))))
    return run.scenario


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
