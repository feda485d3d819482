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


def test_adapt_starts_from_the_runs_final_segmentor_and_prompts(root: Path, finetuned_smoke_run: Path) -> None:
    """With no fine-tuning step, a run's row is exactly its final model's Dice on each downstream task (prompted with
    the run's pool) and scratch's row is a fresh model's: the results differ because the starting models do."""
    import pytest

    from c2gr_fed.data.loading import load_task
    from c2gr_fed.learning.adaptation import adaptation_scenario
    from c2gr_fed.learning.final_state import load_final_state
    from c2gr_fed.learning.round import evaluate_task
    from c2gr_fed.learning.state import build_state

    down = load_scenario(root / "scenarios" / "downstream-5tasks.yaml",
                         ["departments.haematology.tasks.SegPC.data.n_train=4"])
    res = adapt([finetuned_smoke_run], down, epochs=0)
    run_sc, final = load_final_state(finetuned_smoke_run)
    sc = adaptation_scenario(run_sc, down, 0, None)
    for task in sc.stream():
        test = load_task(sc, task, "test")
        assert res["finetune (run)"][task.name] == pytest.approx(float(evaluate_task(final, task, test, sc)["dice"]))
        assert res["scratch"][task.name] == pytest.approx(float(evaluate_task(build_state(sc), task, test, sc)["dice"]))
    assert res["scratch"] != res["finetune (run)"]
