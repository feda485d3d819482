"""The train-test matrix R and the stream metrics of the paper (Eq. 10), plus classic BWT and forward transfer.

R[i][j] = Dice on task j after training task i (rows: after training task i; columns: evaluated on task j).
Missing entries (a failed evaluation) are NaN and are never treated as zero: every metric says how many
entries it could not use.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field


@dataclass
class TrainTestMatrix:
    tasks: list[str]
    values: list[list[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.tasks)
        if not self.values:
            self.values = [[math.nan] * n for _ in range(n)]
        if len(self.values) != n or any(len(r) != n for r in self.values):
            raise ValueError(f"matrix must be {n} x {n} for tasks {self.tasks}")

    def set(self, after: str, on: str, dice: float) -> None:
        self.values[self.tasks.index(after)][self.tasks.index(on)] = float(dice)

    def get(self, i: int, j: int) -> float:
        return self.values[i][j]

    def row_complete(self, i: int) -> bool:
        return not any(math.isnan(v) for v in self.values[i])

    # ---- serialisation ----

    def to_json(self) -> dict:
        return {"tasks": self.tasks, "rows": "after training task i", "columns": "evaluated on task j",
                "values": [[None if math.isnan(v) else v for v in row] for row in self.values]}

    @classmethod
    def from_json(cls, d: dict) -> "TrainTestMatrix":
        vals = [[math.nan if v is None else float(v) for v in row] for row in d["values"]]
        return cls(tasks=list(d["tasks"]), values=vals)

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["after \\ on", *self.tasks])
        for name, row in zip(self.tasks, self.values):
            w.writerow([name, *("" if math.isnan(v) else f"{v:.6f}" for v in row)])
        return buf.getvalue()


def _nanmean(xs: list[float]) -> float:
    ok = [x for x in xs if not math.isnan(x)]
    return sum(ok) / len(ok) if ok else math.nan


def stream_metrics(m: TrainTestMatrix, upto: int | None = None) -> dict:
    """Overall, BWT (paper scale, JointTrain = 100), classic BWT, TL and FWT after training task `upto`.

    Overall = mean_j R[T][j]; BWT = mean_{j<T} R[T][j] / R[j][j] * 100; TL = mean_j R[j][j];
    classic BWT = mean_{j<T} (R[T][j] - R[j][j]); FWT = mean_{j>0} R[j-1][j] (Dice on task j before training it).
    All in Dice points (x100) except the ratio BWT. NaN entries are skipped and counted in `missing`.
    """
    n = len(m.tasks)
    T = (n - 1) if upto is None else upto
    R = m.values
    last = R[T][: T + 1]
    overall = _nanmean(last)
    ratios, diffs = [], []
    for j in range(T):
        a, b = R[T][j], R[j][j]
        if not (math.isnan(a) or math.isnan(b)) and b > 0:
            ratios.append(a / b * 100.0)
        if not (math.isnan(a) or math.isnan(b)):
            diffs.append(a - b)
    tl = _nanmean([R[j][j] for j in range(T + 1)])
    fwt = _nanmean([R[j - 1][j] for j in range(1, T + 1)])
    missing = [
        {"after": m.tasks[i], "on": m.tasks[j]}
        for i in range(T + 1) for j in range(n) if math.isnan(R[i][j])
    ]
    def pts(x: float) -> float | None:
        return None if math.isnan(x) else round(100.0 * x, 4)
    return {
        "after_task": m.tasks[T],
        "overall": pts(overall),
        "bwt": None if not ratios else round(sum(ratios) / len(ratios), 4),
        "bwt_classic": pts(_nanmean(diffs)) if diffs else None,
        "tl": pts(tl),
        "fwt": pts(fwt),
        "per_task_final": {m.tasks[j]: pts(R[T][j]) for j in range(T + 1)},
        "missing": missing,
    }


def dumps(obj: dict) -> str:
    return json.dumps(obj, indent=2, allow_nan=False)
