"""Wall time of a run that was stopped and resumed: what the earlier sessions had already spent.

A resumed run's `run.json` reports `wall_s` as the whole run's time, not only the last session's, so that a bench
table does not understate a run for having been interrupted. The earlier time comes from the previous `run.json`
when that session ended on its own (complete, failed or interrupted by a stop request: it recorded its `wall_s`), and otherwise (killed: status
still "running") from the kept rounds' times in `rounds.jsonl`, which leave out start-up and the part of the round
that was lost, so it is a lower bound.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import read_checkpoint_meta
from .layout import RunDir


@dataclass(frozen=True)
class EarlierTime:
    seconds: float
    source: str  # where `seconds` comes from, in words, for run.json
    first_started: str | None  # the first session's start time, ISO format
    earlier_sessions: int  # how many sessions ran before this one


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def rounds_wall_s(rows: list[dict[str, Any]]) -> tuple[float, int]:
    """Sum of `wall_s` over rows of rounds.jsonl (`RunDir.read_rounds`), and how many rows carried one."""
    walls = [float(r["wall_s"]) for r in rows if isinstance(r.get("wall_s"), (int, float))]
    return sum(walls), len(walls)


def checkpointed_rounds(run: RunDir) -> int:
    """Rounds done according to the latest checkpoint's metadata (0 when there is none or it is unreadable)."""
    try:
        meta = read_checkpoint_meta(run.checkpoints) or {}
    except (OSError, ValueError):
        return 0
    done = meta.get("completed_rounds", 0)
    return int(done) if isinstance(done, int) else 0


def time_before_resume(run: RunDir, completed_rounds: int) -> EarlierTime:
    """Seconds the sessions before this resume spent on `run`, which has `completed_rounds` checkpointed rounds.

    run.json's own fields carry the history: `wall_s_before_resume` (what the sessions before the last one spent),
    `resumed_after_round` (the rounds the last session found done) and `sessions`.
    """
    prev = _read_json(run.run_json) or {}
    sessions = int(prev.get("sessions", 1)) if prev else 0
    started = prev.get("started") if isinstance(prev.get("started"), str) else None
    if isinstance(prev.get("wall_s"), (int, float)) and prev.get("status") in ("complete", "failed", "interrupted"):
        return EarlierTime(float(prev["wall_s"]), "run.json of the previous session", started, sessions)
    before = float(prev.get("wall_s_before_resume", 0.0) or 0.0)
    first = int(prev.get("resumed_after_round", 0) or 0)
    rows = [r for r in run.read_rounds() if first <= r.get("round", completed_rounds) < completed_rounds]
    seconds, _ = rounds_wall_s(rows)
    kept = len(rows)
    source = (f"rounds.jsonl: the previous session was killed, so its {kept} kept rounds are counted and its "
              "start-up and unfinished round are not")
    return EarlierTime(before + seconds, source, started, sessions)
