"""Crash and resume: SIGKILL the run during a round, resume, and every round is there exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from c2gr_fed.learning.local_stream import run_stream_local
from c2gr_fed.privacy import read_log, verify_chain
from c2gr_fed.scenario import load_scenario

pytestmark = pytest.mark.slow
FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "c2gr_fed.cli.main", *args]


def test_sigkill_during_a_round_then_resume(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    sets = [a for s in FAST for a in ("--set", s)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_cli("run", str(root / "scenarios" / "smoke.yaml"), "--out", str(out), *sets),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=root)
    latest = out / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if latest.exists() and json.loads(latest.read_text())["completed_rounds"] >= 1:
            break
        if proc.poll() is not None:
            pytest.fail(f"run ended before the first checkpoint: {proc.stdout.read().decode()[-2000:]}")
        time.sleep(0.05)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("no checkpoint within 300 s")
    # the next round has started: kill everything mid-round
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = json.loads((out / "matrix.json").read_text())
    completed = json.loads(latest.read_text())["completed_rounds"]
    assert completed < 3, "the run finished before it could be killed; make it slower"

    res = subprocess.run(_cli("run", "--resume", str(out)), capture_output=True, text=True, cwd=root, env=env,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert f"resuming after round {completed}" in res.stdout
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and info["sessions"] == 2 and info["resumed_after_round"] == completed
    kept = [json.loads(l) for l in (out / "rounds.jsonl").read_text().splitlines() if l.strip()][:completed]
    assert info["wall_s_before_resume"] >= round(sum(r["wall_s"] for r in kept), 1) > 0
    assert info["wall_s"] > info["wall_s_before_resume"]  # the whole run, not only the resumed session

    rounds = [json.loads(l)["round"] for l in (out / "rounds.jsonl").read_text().splitlines() if l.strip()]
    assert rounds == [0, 1, 2]
    after = json.loads((out / "matrix.json").read_text())
    for i in range(completed):
        assert after["values"][i] == before["values"][i]
    assert verify_chain(out / "transfers.jsonl") == []
    trains = [e for e in read_log(out / "transfers.jsonl")
              if e["direction"] == "department->coordinator" and e.get("message_type") == "train"]
    assert len(trains) == 3
    # and the resumed run computed exactly what an uninterrupted one computes (a Dice crosses the wire on its
    # declared grid, privacy/metric_rules.py, so the local values are put on it)
    from c2gr_fed.privacy.metric_rules import DICE

    local, _, _ = run_stream_local(load_scenario(root / "scenarios" / "smoke.yaml", FAST), threads=1)
    assert after["values"] == [[None if v is None else DICE.quantise(v) for v in row] for row in local.values]


def test_resume_refuses_a_different_scenario(root: Path, tmp_path: Path) -> None:
    from c2gr_fed.cli.main import main

    out = tmp_path / "r"
    out.mkdir()
    sc = load_scenario(root / "scenarios" / "smoke.yaml")
    from c2gr_fed.scenario import dump_scenario

    (out / "scenario.yaml").write_text(dump_scenario(sc))
    code = main(["run", str(root / "scenarios" / "smoke.yaml"), "--set", "seed=5", "--resume", str(out)])
    assert code == 2


def test_resume_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    from c2gr_fed.cli.main import main

    assert main(["run", "--resume", str(tmp_path)]) == 2
