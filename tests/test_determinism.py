"""On CPU, the same scenario and seed give the same train-test matrix to the last digit."""

from __future__ import annotations

from pathlib import Path

import pytest

from c2gr_fed.learning.local_stream import run_stream_local
from c2gr_fed.scenario import load_scenario

FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]


def test_same_seed_same_matrix(root: Path) -> None:
    sc = load_scenario(root / "scenarios" / "smoke.yaml", FAST)
    m1, _, s1 = run_stream_local(sc, threads=1)
    m2, _, s2 = run_stream_local(sc, threads=1)
    assert m1.values == m2.values
    a1, a2 = s1.arrays(), s2.arrays()
    for rec in a1:
        for k in a1[rec]:
            assert (a1[rec][k] == a2[rec][k]).all(), f"{rec}.{k} differs"


def test_other_seed_other_matrix(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed reaches the learner, not only the phantom data: on the very same data (seed 0's), seed 1 starts
    from other weights and ends with another matrix."""
    import c2gr_fed.learning.local_stream as local_stream
    from c2gr_fed.learning.state import build_state

    sc0 = load_scenario(root / "scenarios" / "smoke.yaml", FAST)
    sc1 = load_scenario(root / "scenarios" / "smoke.yaml", FAST + ["seed=1"])
    real_load = local_stream.load_task
    monkeypatch.setattr(local_stream, "load_task", lambda sc, task, split, data_root=None: real_load(sc0, task, split, data_root))
    w0, w1 = build_state(sc0).arrays()["segmentor"], build_state(sc1).arrays()["segmentor"]
    assert any((w0[k] != w1[k]).any() for k in w0)
    m1, _, _ = run_stream_local(sc0, threads=1)
    m2, _, _ = run_stream_local(sc1, threads=1)
    assert m1.values != m2.values
