"""SIGTERM (schedulers, `timeout`, `docker stop`) and SIGINT (Ctrl-C) stop a run cleanly: the round in training is
abandoned, the last complete round is kept, one line says how to resume, run.json says `interrupted`, and the exit
code is 128 + the signal. The stop switch itself is tested without Flower."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from c2gr_fed.runs.stop import StopSwitch, stop_file

FAST = ["diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "c2gr_fed.cli.main", *args]


def test_the_switch_counts_one_request_and_leaves_a_file_for_the_departments(tmp_path: Path) -> None:
    stop = StopSwitch(tmp_path)
    assert not stop.should_stop(False) and not stop_file(tmp_path).exists()
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN when started as a background job
    stop.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        assert stop.should_stop(False) and not stop.should_stop(True)  # a trained round may still be finished
        assert stop.signal_number == signal.SIGTERM and stop.exit_code == 143 and stop_file(tmp_path).exists()
        with pytest.raises(KeyboardInterrupt):  # the second request: stop at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        assert stop.should_stop(True) and stop.signal_number == signal.SIGTERM
    finally:
        stop.uninstall()
    assert signal.getsignal(signal.SIGINT) == before  # the handler found at install is back
    stop.clear()
    assert not stop_file(tmp_path).exists()


def _wait_for_training(out: Path, proc: subprocess.Popen, round_index: int, dept: str) -> None:
    progress = out / "progress" / f"{dept}.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            p = json.loads(progress.read_text())
            if p["round"] == round_index and p["stage"] == "train" and p["done"] < p["total"]:
                return
        except (OSError, ValueError, KeyError):
            pass
        if proc.poll() is not None:
            pytest.fail(f"run ended before round {round_index + 1} trained: {proc.stdout.read()[-3000:]}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"round {round_index + 1} did not start training within 300 s")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_round_stops_cleanly_and_the_run_resumes(root: Path, tmp_path: Path, signum: int) -> None:
    out = tmp_path / "run"
    sets = [a for s in [*FAST, "training.epochs=40"] for a in ("--set", s)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_cli("run", str(root / "scenarios" / "smoke.yaml"), "--out", str(out), *sets),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env=env, cwd=root)
    try:
        _wait_for_training(out, proc, 1, "ophthalmology-nidek")  # round 2 is training
        t0 = time.monotonic()
        proc.send_signal(signum)  # to the CLI process only, as `timeout` and `docker stop` do
        rc = proc.wait(timeout=120)
        stopped_in = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = " ".join(proc.stdout.read().split())  # whatever the console's width
    name = signal.Signals(signum).name
    assert rc == 128 + signum, text[-3000:]
    assert f"stopped after round 1 of 3 ({name}); resume with: c2gr-fed run --resume {out}" in text, text[-3000:]
    assert "Traceback" not in text and "ActorDiedError" not in text and "the run failed" not in text, text[-3000:]
    assert stopped_in < 60, f"took {stopped_in:.0f} s to stop"
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "interrupted" and info["stopped_by"] == name and info["stopped_after_round"] == 1
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["completed_rounds"] == 1
    assert [r["round"] for r in map(json.loads, (out / "rounds.jsonl").read_text().splitlines())] == [0]
    if signum != signal.SIGTERM:
        return
    res = subprocess.run(_cli("run", "--resume", str(out)), capture_output=True, text=True, cwd=root, env=env,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "resuming after round 1" in res.stdout
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and info["sessions"] == 2
    assert [r["round"] for r in map(json.loads, (out / "rounds.jsonl").read_text().splitlines())] == [0, 1, 2]
