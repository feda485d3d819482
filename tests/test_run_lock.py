"""Two runs on one run directory: the second is refused while the first lives (named in the message), and the lock
goes with the first run's process however it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from c2gr_fed.cli.main import main
from c2gr_fed.errors import RunDirError
from c2gr_fed.runs.layout import RunDir
from c2gr_fed.runs.lock import RunLock

HOLD = ("import sys, time; from pathlib import Path; from c2gr_fed.runs.layout import RunDir; "
        "from c2gr_fed.runs.lock import RunLock; "
        "lock = RunLock(RunDir(Path(sys.argv[1]))).acquire('c2gr-fed run first.yaml'); "
        "print('held', flush=True); time.sleep(600)")


def test_a_second_run_on_a_directory_in_use_is_refused(root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "held"
        rc = main(["run", str(root / "scenarios" / "smoke.yaml"), "--out", str(out)])
        err = " ".join(capsys.readouterr().err.split())
        assert rc == 2
        assert (f"{out} is in use by another c2gr-fed run (process {first.pid}, started " in err
                and ": c2gr-fed run first.yaml): wait for it to end or stop it (SIGTERM), or give another --out" in err)
        assert not (out / "scenario.yaml").exists() and not (out / "run.json").exists()  # nothing written
        with pytest.raises(RunDirError, match="in use by another c2gr-fed run"):
            RunLock(RunDir(out)).acquire("resume")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    # the first run was killed: its lock file stays, its lock does not
    assert json.loads((out / "run.lock").read_text())["pid"] == first.pid
    lock = RunLock(RunDir(out)).acquire("c2gr-fed run --resume")
    assert json.loads((out / "run.lock").read_text())["pid"] == os.getpid()
    lock.release()
