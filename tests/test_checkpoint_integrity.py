"""Checkpoints carry a SHA-256 in latest.json, the previous one is kept until the next is verified, and resume
falls back to it when the latest is corrupt (or names the corrupt files when both are)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from c2gr_fed.errors import RunDirError
from c2gr_fed.runs import checkpoint as ckmod
from c2gr_fed.runs.checkpoint import Checkpoint, load_checkpoint, save_checkpoint


def _ck(n: int, sha: str = "s") -> Checkpoint:
    arrays = {"segmentor": {"w": np.full((4, 5), float(n), np.float32)}, "prompts": {"b": np.arange(3.0) + n}}
    return Checkpoint(n, arrays, {"tasks": []}, {"tasks": ["A"], "values": [[n]]}, 10 * n, sha, {"excluded": []})


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # as a full disk or a killed copy leaves it


def test_latest_records_the_sha256_and_only_the_previous_round_is_kept(tmp_path: Path) -> None:
    for n in (1, 2, 3):
        save_checkpoint(tmp_path, _ck(n))
    latest = json.loads((tmp_path / "latest.json").read_text())
    assert latest["arrays"] == "round_003.npz"
    assert latest["arrays_sha256"] == hashlib.sha256((tmp_path / "round_003.npz").read_bytes()).hexdigest()
    assert json.loads((tmp_path / "previous.json").read_text())["arrays"] == "round_002.npz"
    assert sorted(p.name for p in tmp_path.glob("round_*")) == ["round_002.npz", "round_003.npz"]
    ck = load_checkpoint(tmp_path)
    assert ck.completed_rounds == 3 and ck.fell_back is None and float(ck.arrays["segmentor"]["w"][0, 0]) == 3.0


def test_a_truncated_latest_checkpoint_falls_back_to_the_previous_on_resume(tmp_path: Path) -> None:
    for n in (1, 2, 3):
        save_checkpoint(tmp_path, _ck(n))
    _truncate(tmp_path / "round_003.npz")
    with pytest.raises(RunDirError, match=r"round_003\.npz is corrupt.*round 2 before it is intact: c2gr-fed run "
                                          r"--resume"):
        load_checkpoint(tmp_path)  # not resuming (adapt, report): never silently an older state
    ck = load_checkpoint(tmp_path, fallback=True)
    assert ck.completed_rounds == 2 and ck.log_position == 20 and "round_003.npz is corrupt" in ck.fell_back
    assert float(ck.arrays["segmentor"]["w"][0, 0]) == 2.0
    assert json.loads((tmp_path / "latest.json").read_text())["arrays"] == "round_002.npz"
    assert (tmp_path / "round_003.npz.corrupt").exists() and not (tmp_path / "round_003.npz").exists()
    save_checkpoint(tmp_path, _ck(3))  # the resumed run goes on as usual
    assert load_checkpoint(tmp_path).completed_rounds == 3
    assert json.loads((tmp_path / "previous.json").read_text())["arrays"] == "round_002.npz"


def test_an_unreadable_latest_json_falls_back_too(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, _ck(1))
    save_checkpoint(tmp_path, _ck(2))
    (tmp_path / "latest.json").write_text('{"completed_rounds": 2, "arr')
    assert load_checkpoint(tmp_path, fallback=True).completed_rounds == 1


def test_both_corrupt_names_the_files_and_does_not_advise_resume(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, _ck(1))
    save_checkpoint(tmp_path, _ck(2))
    _truncate(tmp_path / "round_002.npz")
    _truncate(tmp_path / "round_001.npz")
    with pytest.raises(RunDirError) as err:
        load_checkpoint(tmp_path, fallback=True)
    msg = str(err.value)
    assert "round_002.npz is corrupt" in msg and "round 1) is unreadable too" in msg and "round_001.npz" in msg
    assert "cannot be resumed" in msg and "another --out" in msg and "--resume" not in msg


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    save_checkpoint(tmp_path, _ck(1))
    save_checkpoint(tmp_path, _ck(2))
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:  # the data hit the disk's limit: fsync reports it, as on a real full disk
        if os.readlink(f"/proc/self/fd/{fd}").endswith("round_003.npz.partial"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(ckmod.os, "fsync", full_disk)
    with pytest.raises(RunDirError, match=r"could not write the checkpoint of round 3 \(round_003\.npz: .*No space "
                                          r"left on device\); the checkpoint of round 2 is kept"):
        save_checkpoint(tmp_path, _ck(3))
    assert not list(tmp_path.glob("*.partial")) and not (tmp_path / "round_003.npz").exists()
    assert load_checkpoint(tmp_path).completed_rounds == 2


def test_a_file_that_does_not_read_back_is_not_published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_checkpoint(tmp_path, _ck(1))
    monkeypatch.setattr(ckmod, "sha256_of", lambda p: "0" * 64)
    with pytest.raises(RunDirError, match="does not read back as written"):
        save_checkpoint(tmp_path, _ck(2))
    monkeypatch.undo()
    assert load_checkpoint(tmp_path).completed_rounds == 1


def test_a_checkpoint_from_before_the_checksum_still_loads(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, _ck(1))
    meta = json.loads((tmp_path / "latest.json").read_text())
    del meta["arrays_sha256"]
    (tmp_path / "latest.json").write_text(json.dumps(meta))
    assert load_checkpoint(tmp_path).completed_rounds == 1


def test_resume_refuses_with_both_checkpoints_corrupt_before_starting_anything(root: Path, tmp_path: Path) -> None:
    from c2gr_fed.federation.settings import scenario_sha
    from c2gr_fed.scenario import dump_scenario, load_scenario

    sc = load_scenario(root / "scenarios" / "smoke.yaml")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "scenario.yaml").write_text(dump_scenario(sc))
    for n in (1, 2):
        save_checkpoint(run / "checkpoints", _ck(n, scenario_sha(sc)))
    for n in (1, 2):
        _truncate(run / "checkpoints" / f"round_00{n}.npz")
    res = subprocess.run([sys.executable, "-m", "c2gr_fed.cli.main", "run", "--resume", str(run)], cwd=root,
                         capture_output=True, text=True, timeout=300)
    err = " ".join(res.stderr.split())
    assert res.returncode == 2 and "cannot be resumed" in err and "round_002.npz is corrupt" in err, err
    assert "Traceback" not in res.stderr and not (run / "run.log").exists()
