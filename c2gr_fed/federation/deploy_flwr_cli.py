"""Thin wrappers of the `flwr` CLI (submit a run, read its status, wait for it) with JSON output parsed."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import FederationError
from .deploy_env import CONNECTION, tool

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
