"""The report's round column is an integer, a finished run's report leads with facts, and the CLI's tables and
messages are not wrapped when stdout is not a terminal (CI logs, `tee`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from c2gr_fed.metrics import TrainTestMatrix
from c2gr_fed.reporting.report import write_report
from c2gr_fed.runs.layout import RunDir

NOTE = "CPU-scale settings: small images, small models"


def _run_dir(tmp: Path) -> RunDir:
    run = RunDir(tmp / "run").ensure()
    tasks = ["Fundus-A", "Fundus-B"]
    m = TrainTestMatrix(tasks)
    for i, after in enumerate(tasks):
        for on in tasks:
            m.set(after, on, 0.5 + 0.1 * i)
    run.matrix_json.write_text(json.dumps(m.to_json()))
    # as a department reports it, the round is a float among the metrics (runs written before the coordinator
    # kept its own integer have it so)
    rows = [{"round": float(i), "task": t, "department": "d", "wall_s": 3.0, "train_samples": 16.0} for i, t in
            enumerate(tasks)]
    run.rounds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run.run_json.write_text(json.dumps({"scenario": "s", "method": "c2gr", "status": "complete", "note": NOTE,
                                        "command": "c2gr-fed run s.yaml", "started": "x"}))
    return run


def test_round_column_is_an_integer_and_facts_come_before_the_note(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    text = write_report(run.root).read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "| Fundus-" in line and "| d |" in line]
    assert [r.split("|")[1].strip() for r in rows] == ["1", "2"]
    assert text.index("status: **complete**") < text.index("## Stream metrics") < text.index(NOTE)
    assert not text.split("\n", 2)[2].lstrip().startswith(">")


def test_tables_and_messages_do_not_wrap_when_stdout_is_not_a_terminal(root: Path, tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "c2gr_fed.cli.main", "validate", str(root / "scenarios" /
                                                                                     "smoke.yaml")],
                         capture_output=True, text=True, cwd=root, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    header = next(line for line in lines if "modality" in line)
    assert "objective" in header and "classes" in header  # one header row: no column folded over two lines
    fundus = [line for line in lines if "Fundus-A" in line]
    assert len(fundus) == 1 and "optic disc and cup segmentation" in fundus[0] and "phantom fundus/aravind" in fundus[0]
