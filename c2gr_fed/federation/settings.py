"""How the apps find their configuration in both Flower engines.

Simulation: the CLI bakes an `AppSettings` into the ServerApp and ClientApp it builds (Flower's
`run_simulation` passes no run config). Deployment engine: the same handlers read `run_config`
(scenario, run-dir) and the SuperNode's `node_config` (department, data-root).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ..scenario import Scenario, load_scenario


@dataclass(frozen=True)
class AppSettings:
    scenario_path: str
    run_dir: str
    data_root: str | None = None
    department: str | None = None
    resume: bool = False
    progress_dir: str | None = None
    """Simulation only: departments write progress files here for the CLI's progress bars."""
    events: Callable[[str, dict[str, Any]], None] | None = field(default=None, compare=False, hash=False)
    """Coordinator only: a callback for progress events (the CLI's display)."""
    should_stop: Callable[[bool], bool] | None = field(default=None, compare=False, hash=False)
    """Coordinator only: should_stop(urgent_only) is True once a stop was requested (runs/stop.py)."""

    def with_department(self, name: str) -> "AppSettings":
        return replace(self, department=name)


def settings_from_context(baked: AppSettings | None, run_config: dict[str, Any], node_config: dict[str, Any]) -> AppSettings:
    if baked is not None:
        return baked
    scenario = str(run_config.get("scenario", ""))
    run_dir = str(run_config.get("run-dir", "runs/flwr"))
    if not scenario:
        from ..errors import ScenarioError

        raise ScenarioError("run config has no 'scenario' key: pass --run-config 'scenario=\"path/to.yaml\"'")
    dept = node_config.get("department")
    data_root = node_config.get("data-root") or run_config.get("data-root") or None
    return AppSettings(scenario_path=scenario, run_dir=run_dir, data_root=str(data_root) if data_root else None,
                       department=str(dept) if dept else None, resume=bool(run_config.get("resume", False)))


@lru_cache(maxsize=8)
def cached_scenario(path: str, mtime: float) -> Scenario:
    return load_scenario(path)


def scenario_of(settings: AppSettings) -> Scenario:
    p = Path(settings.scenario_path)
    return cached_scenario(str(p.resolve()), p.stat().st_mtime if p.exists() else 0.0)


def scenario_sha(scenario: Scenario) -> str:
    """Identity of a resolved scenario: coordinator and departments must agree on it."""
    return hashlib.sha256(json.dumps(scenario.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
