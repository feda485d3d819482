"""The run directory: one place that knows every file name in it.

    RUN_DIR/
      scenario.yaml            the resolved scenario (overrides applied); its hash identifies the run
      run.json                 method, command, versions, start time, status, wall time (all sessions: runs/timing.py)
      transfers.jsonl          tamper-evident log of every message (sizes and hashes only)
      matrix.csv, matrix.json  R[i][j] = Dice on task j after training task i
      rounds.jsonl             per-round metrics returned by departments (numbers only)
      summary.json             Overall, BWT, classic BWT, TL, FWT, per-task Dice, missing entries
      checkpoints/             round_XXX.npz + latest.json (atomic, SHA-256 verified) + previous.json (the round before)
      figures/                 matrix heatmap, Dice over rounds, replay grids
      departments/NAME/        each department's private outputs (replay grids, memorisation plots)
      report.md                ties it together
      run.lock                 held (flock) by the live run: a second run on the directory is refused
      run.log                  Flower's and Ray's log records, tracebacks of failures (the terminal shows one line)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def scenario(self) -> Path:
        return self.root / "scenario.yaml"

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def transfers(self) -> Path:
        return self.root / "transfers.jsonl"

    @property
    def matrix_csv(self) -> Path:
        return self.root / "matrix.csv"

    @property
    def matrix_json(self) -> Path:
        return self.root / "matrix.json"

    @property
    def rounds(self) -> Path:
        return self.root / "rounds.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def log(self) -> Path:
        return self.root / "run.log"

    @property
    def progress(self) -> Path:
        return self.root / "progress"

    def read_rounds(self) -> list[dict[str, Any]]:
        """The rows of rounds.jsonl in file order ([] when there is none); a line that is not a JSON object is
        skipped (the coordinator writes the file atomically, so only a hand-edited file has one)."""
        if not self.rounds.exists():
            return []
        rows = []
        for line in self.rounds.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
        return rows

    def department(self, name: str) -> Path:
        return self.root / "departments" / name

    def ensure(self) -> "RunDir":
        for p in (self.root, self.checkpoints, self.figures, self.progress):
            p.mkdir(parents=True, exist_ok=True)
        return self
