"""One shared suite every learning method passes, run in process on the smoke stream."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from c2gr_fed.learning import METHOD_SPECS, wire_schema
from c2gr_fed.learning.local_stream import run_stream_local
from c2gr_fed.scenario import load_scenario

FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]


@pytest.mark.parametrize("method", sorted(METHOD_SPECS))
def test_every_method_runs_the_stream_within_the_wire_schema(root: Path, method: str) -> None:
    sc = load_scenario(root / "scenarios" / "smoke.yaml", FAST + [f"method={method}"])
    matrix, rounds, state = run_stream_local(sc, threads=1)
    n = len(sc.stream())
    assert len(rounds) == n
    for row in matrix.values:
        assert all(0.0 <= v <= 1.0 for v in row), row
    # what would travel matches the declared schema exactly (names, shapes, dtypes)
    declared = wire_schema(sc)
    for rec, arrays in state.arrays().items():
        assert rec in declared, rec
        for k, a in arrays.items():
            assert declared[rec][k] == (tuple(a.shape), str(a.dtype)), f"{rec}.{k}"
    assert [d.name for d in state.pool][-1] == sc.stream()[-1].name
    spec = METHOD_SPECS[method]
    replay = [r["replay_samples"] for r in rounds]
    if spec.replay == "none":
        assert replay == [0.0] * n
    else:
        assert replay[0] == 0.0 and all(x > 0 for x in replay[1:])
    assert all(not math.isnan(r["loss_seg"]) for r in rounds)


def test_individual_keeps_each_tasks_own_model(root: Path) -> None:
    sc = load_scenario(root / "scenarios" / "smoke.yaml", FAST + ["method=individual"])
    matrix, _, _ = run_stream_local(sc, threads=1)
    # a task's Dice never changes after it is trained: later rounds evaluate it with its own model
    for j in range(3):
        col = [matrix.get(i, j) for i in range(j, 3)]
        assert all(c == col[0] for c in col)
