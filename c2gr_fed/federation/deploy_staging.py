"""What a deployment-engine run is given: the staged minimal app (FAB source), the flwr CLI configuration, the
SuperNodes' node config and the run config, and the prepared run directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

from .deploy_env import APP_NAME, CONNECTION

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


def prepare_run_dir(scenario_path: Path, run_dir: Path, overrides: Sequence[str] = ()) -> Path:
    """Write the resolved scenario to RUN_DIR/scenario.yaml (what `c2gr-fed run` does before a run)."""
    from ..runs.layout import RunDir
    from ..scenario import dump_scenario, load_scenario

    run = RunDir(Path(run_dir)).ensure()
    run.scenario.write_text(dump_scenario(load_scenario(scenario_path, list(overrides))))
    return run.scenario
