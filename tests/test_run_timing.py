"""A resumed run reports the whole run's wall time, not only the last session's."""

from __future__ import annotations

import json
from pathlib import Path

from c2gr_fed.runs.layout import RunDir
from c2gr_fed.runs.timing import checkpointed_rounds, time_before_resume


def _run(tmp_path: Path, info: dict | None, round_seconds: list[float], completed: int | None) -> RunDir:
    run = RunDir(tmp_path / "run").ensure()
    if info is not None:
        run.run_json.write_text(json.dumps(info))
    rows = [json.dumps({"round": r, "task": f"T{r}", "wall_s": s}) for r, s in enumerate(round_seconds)]
    run.rounds.write_text("".join(r + "\n" for r in rows) + '{"round": 9, "wall')  # a line cut by a kill
    if completed is not None:
        (run.checkpoints / "latest.json").write_text(json.dumps({"completed_rounds": completed}))
    return run


def test_a_session_that_ended_on_its_own_hands_over_its_recorded_time(tmp_path: Path) -> None:
    run = _run(tmp_path, {"status": "failed", "wall_s": 123.4, "started": "2026-01-01T10:00:00"}, [50.0, 60.0], 2)
    t = time_before_resume(run, checkpointed_rounds(run))
    assert (t.seconds, t.first_started, t.earlier_sessions) == (123.4, "2026-01-01T10:00:00", 1)
    assert "run.json" in t.source


def test_a_killed_first_session_counts_only_its_checkpointed_rounds(tmp_path: Path) -> None:
    run = _run(tmp_path, {"status": "running", "started": "2026-01-01T10:00:00"}, [50.0, 60.0, 70.0], 2)
    assert checkpointed_rounds(run) == 2
    t = time_before_resume(run, 2)
    assert t.seconds == 110.0  # round 2 was not checkpointed: it is rerun, and counted then
    assert "2 kept rounds" in t.source and t.earlier_sessions == 1


def test_a_killed_resumed_session_adds_its_rounds_to_what_came_before_it(tmp_path: Path) -> None:
    info = {"status": "running", "started": "2026-01-01T10:00:00", "sessions": 2, "resumed_after_round": 1,
            "wall_s_before_resume": 80.0}
    run = _run(tmp_path, info, [50.0, 60.0, 70.0, 90.0], 3)
    t = time_before_resume(run, 3)
    assert t.seconds == 80.0 + 60.0 + 70.0  # rounds 1 and 2 ran in the killed session; round 0 is in the 80 s
    assert (t.first_started, t.earlier_sessions) == ("2026-01-01T10:00:00", 2)


def test_nothing_before_means_no_time_before(tmp_path: Path) -> None:
    run = _run(tmp_path, None, [], None)
    t = time_before_resume(run, checkpointed_rounds(run))
    assert (t.seconds, t.first_started, t.earlier_sessions) == (0.0, None, 0)
