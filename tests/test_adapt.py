"""Downstream adaptation: a run's final segmentor and scratch are fine-tuned on unseen tasks and compared."""

from __future__ import annotations

from pathlib import Path

from c2gr_fed.learning.adaptation import adapt
from c2gr_fed.learning.local_stream import run_stream_local
from c2gr_fed.runs.checkpoint import Checkpoint, save_checkpoint
from c2gr_fed.runs.layout import RunDir
from c2gr_fed.scenario import dump_scenario, load_scenario


def test_adapt_compares_scratch_and_a_run(root: Path, tmp_path: Path) -> None:
    sc = load_scenario(root / "scenarios" / "smoke.yaml", ["training.epochs=1", "method=finetune"])
    matrix, _, state = run_stream_local(sc, threads=1)
    run = RunDir(tmp_path / "run").ensure()
    run.scenario.write_text(dump_scenario(sc))
    save_checkpoint(run.checkpoints, Checkpoint(3, state.arrays(), state.pool.to_wire(), matrix.to_json(), 0, "x", {}))
    down = load_scenario(root / "scenarios" / "downstream-5tasks.yaml",
                         ["departments.haematology.tasks.SegPC.data.n_train=4"])
    res = adapt([run.root], down, epochs=1)
    assert set(res) == {"scratch", "finetune (run)"}
    for per in res.values():
        assert set(per) == {"DRIVE", "GOALS", "SegPC", "DDTI", "PROMISE12"}
        assert all(0.0 <= v <= 1.0 for v in per.values())
    assert res["scratch"] != res["finetune (run)"]
