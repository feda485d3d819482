"""Downstream adaptation (paper section 4.4.4, Table 2): fine-tune a run's final segmentor on unseen tasks for a
fixed short budget, and compare with training from scratch and with other runs' final models."""

from __future__ import annotations

from pathlib import Path

from ..data.loading import load_task
from ..errors import RunDirError
from ..runs.layout import RunDir
from ..scenario import Scenario, load_scenario
from .final_state import load_final_state
from .round import evaluate_task, run_round
from .state import build_state


def adaptation_scenario(base: Scenario, downstream: Scenario, epochs: int, lr: float | None) -> Scenario:
    """The run's model/training settings with the downstream departments; fine-tuning without replay."""
    training = base.training.model_copy(update={"epochs": epochs, "max_steps": None, **({"lr": lr} if lr else {})})
    return base.model_copy(update={"name": f"{base.name}->{downstream.name}", "departments": downstream.departments,
                                   "order": None, "method": "finetune", "training": training})


def adapt(run_dirs: list[Path], downstream: Scenario, epochs: int = 20, lr: float | None = None,
          data_root: Path | None = None, scratch: bool = True) -> dict[str, dict[str, float]]:
    """Dice per downstream task for each initialisation: 'scratch' and each run (labelled by its method)."""
    if not run_dirs:
        raise RunDirError("adapt needs at least one run directory")
    base = load_scenario(RunDir(run_dirs[0]).scenario, stored=True)
    sc = adaptation_scenario(base, downstream, epochs, lr)
    inits: list[tuple[str, Path | None]] = ([("scratch", None)] if scratch else [])
    for rd in run_dirs:
        run_sc = load_scenario(RunDir(rd).scenario, stored=True)
        if run_sc.model != base.model or run_sc.image_size != base.image_size:
            raise RunDirError(f"{rd}: its model settings differ from {run_dirs[0]}; adapt compares same-architecture runs")
        inits.append((f"{run_sc.method} ({Path(rd).name})", Path(rd)))
    results: dict[str, dict[str, float]] = {}
    for label, rd in inits:
        results[label] = {}
        for task in sc.stream():
            state = build_state(sc)  # finetune: segmentor + prompt graph, no generator
            if rd is not None:
                _, final = load_final_state(rd)
                state.segmentor.load_state_dict(final.segmentor.state_dict())
                state.prompts.load_state_dict(final.prompts.state_dict())
                state.pool = final.pool
            run_round(state, task, load_task(sc, task, "train", data_root), sc, round_index=0)
            results[label][task.name] = float(evaluate_task(state, task, load_task(sc, task, "test", data_root), sc)["dice"])
    return results
