"""The whole stream in one process, without Flower: for benchmarks, tuning and determinism checks.

It calls exactly the functions the department nodes call (run_round, evaluate_task) in the same order
with the same seeds, so its matrix equals a federated run's matrix on CPU.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from ..data.loading import load_task
from ..metrics import TrainTestMatrix, stream_metrics
from ..scenario import Scenario
from .methods import fresh_model_each_task, round_data
from .round import RoundResult, evaluate_task, run_round
from .state import LearnerState, build_state


def run_stream_local(
    scenario: Scenario,
    data_root: Path | None = None,
    on_round: Callable[[int, RoundResult, LearnerState], None] | None = None,
    threads: int | None = None,
    evaluate_all: bool = True,
) -> tuple[TrainTestMatrix, list[dict[str, float]], LearnerState]:
    """Train the stream in arrival order; after each round evaluate every task's test split (or only seen ones)."""
    n_threads = threads or scenario.training.threads or max(1, int(scenario.federation.cpus_per_department))
    torch.set_num_threads(n_threads)
    stream = scenario.stream()
    matrix = TrainTestMatrix([t.name for t in stream])
    state = build_state(scenario)
    rounds: list[dict[str, float]] = []
    individual = fresh_model_each_task(state.method)
    bank: dict[str, LearnerState] = {}
    for r, task in enumerate(stream):
        t0 = time.perf_counter()
        if individual:  # IndividualTrain: a fresh model per task, each task evaluated with its own
            state = build_state(scenario)
        past = round_data(state.method, stream, r, lambda t: load_task(scenario, t, "train", data_root))
        result = run_round(state, task, load_task(scenario, task, "train", data_root), scenario, r, past_data=past)
        if individual:
            bank[task.name] = state
        for j, other in enumerate(stream):
            if not evaluate_all and j > r:
                continue
            model = bank.get(other.name, state) if individual else state
            res = evaluate_task(model, other, load_task(scenario, other, "test", data_root), scenario)
            matrix.set(task.name, other.name, float(res["dice"]))
        rounds.append({"round": r, "task": task.name, "wall_s": time.perf_counter() - t0, **result.metrics})
        if on_round is not None:
            on_round(r, result, state)
    return matrix, rounds, state


def summarise(matrix: TrainTestMatrix) -> dict:
    return stream_metrics(matrix)
