"""Downstream adaptation: a run's final segmentor and scratch are fine-tuned on unseen tasks and compared."""

from __future__ import annotations

from pathlib import Path

from c2gr_fed.learning.adaptation import adapt
from c2gr_fed.scenario import load_scenario


def test_adapt_compares_scratch_and_a_run(root: Path, finetuned_smoke_run: Path) -> None:
    down = load_scenario(root / "scenarios" / "downstream-5tasks.yaml",
                         ["departments.haematology.tasks.SegPC.data.n_train=4"])
    res = adapt([finetuned_smoke_run], down, epochs=1)
    assert set(res) == {"scratch", "finetune (run)"}
    for per in res.values():
        assert set(per) == {"DRIVE", "GOALS", "SegPC", "DDTI", "PROMISE12"}
        assert all(0.0 <= v <= 1.0 for v in per.values())
    assert res["scratch"] != res["finetune (run)"]
