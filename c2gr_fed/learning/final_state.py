"""The final learner state of a run directory (its last checkpoint), for analyses after the run."""

from __future__ import annotations

from pathlib import Path

from ..errors import RunDirError
from ..prompts import PromptPool
from ..runs.checkpoint import load_checkpoint
from ..runs.layout import RunDir
from ..scenario import Scenario, load_scenario
from .state import LearnerState, build_state


def load_final_state(run_dir: Path) -> tuple[Scenario, LearnerState]:
    """(the run's resolved scenario, its state after the last completed round) on the CPU."""
    rd = RunDir(Path(run_dir))
    if not rd.scenario.exists():
        raise RunDirError(f"{run_dir}: not a run directory (no {rd.scenario.name})")
    sc = load_scenario(rd.scenario, stored=True)
    ck = load_checkpoint(rd.checkpoints)
    if ck is None:
        raise RunDirError(f"{run_dir}: no checkpoint (the run completed no round)")
    state = build_state(sc)
    state.load_arrays(ck.arrays)
    state.pool = PromptPool.from_wire(ck.pool)
    return sc, state
