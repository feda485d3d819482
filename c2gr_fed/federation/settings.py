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
from typing import TYPE_CHECKING, Any, Callable

from ..scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from ..runs.layout import RunDir


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


def resolve_run_target(scenario_path: Path | None, overrides: list[str], out: Path | None, resume: Path | None,
                       default_stem: str = "") -> tuple[Scenario, "RunDir", bool]:
    """(scenario, run directory, resuming) for `c2gr-fed run` and `deploy-local`: continuing the run in `resume` with
    its stored scenario (a given SCENARIO, with `overrides`, must resolve to the same one), or a new run in `out`
    (default runs/<scenario>-<method>[-default_stem]-<time>), which must not already hold a run."""
    import datetime as dt

    from ..errors import RunDirError
    from ..runs.layout import RunDir

    if resume is not None:
        run = RunDir(Path(resume))
        if not run.scenario.exists():
            raise RunDirError(f"{run.root}: cannot resume: no scenario.yaml there (not a c2gr-fed run directory)")
        stored = load_scenario(run.scenario)
        if scenario_path is not None:
            wanted = load_scenario(scenario_path, overrides)
            if scenario_sha(wanted) != scenario_sha(stored):
                raise RunDirError(
                    f"{run.root} was made by a different scenario than {scenario_path}"
                    f"{' with ' + ' '.join(overrides) if overrides else ''} (stored {scenario_sha(stored)[:12]}, "
                    f"given {scenario_sha(wanted)[:12]}): resume without SCENARIO to use the stored one"
                )
        return stored, run, True
    if scenario_path is None:
        raise RunDirError("give a SCENARIO file (or --resume RUN_DIR)")
    scenario = load_scenario(scenario_path, overrides)
    if out is not None:
        run = RunDir(Path(out))
        if (run.checkpoints / "latest.json").exists():
            raise RunDirError(f"{run.root} already holds a run: use --resume {run.root} or another --out")
    else:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        stem = f"-{default_stem}" if default_stem else ""
        run = RunDir(Path("runs") / f"{scenario.name}-{scenario.method}{stem}-{stamp}")
    return scenario, run, False
