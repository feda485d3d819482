"""Shared test set-up: quiet, offline Flower/Ray, a private FLWR_HOME, few threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _flwr_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLWR_HOME", str(tmp_path_factory.getbasetemp() / "flwr-home"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def finetuned_smoke_run(root: Path, tmp_path: Path) -> Path:
    """A run directory holding the final state of smoke.yaml fine-tuned for one epoch (in-process, no Flower):
    what `c2gr-fed adapt` and the other final-state readers need."""
    from c2gr_fed.learning.local_stream import run_stream_local
    from c2gr_fed.runs.checkpoint import Checkpoint, save_checkpoint
    from c2gr_fed.runs.layout import RunDir
    from c2gr_fed.scenario import dump_scenario, load_scenario

    sc = load_scenario(root / "scenarios" / "smoke.yaml", ["training.epochs=1", "method=finetune"])
    matrix, _, state = run_stream_local(sc, threads=1)
    run = RunDir(tmp_path / "run").ensure()
    run.scenario.write_text(dump_scenario(sc))
    n = len(sc.stream())
    save_checkpoint(run.checkpoints, Checkpoint(n, state.arrays(), state.pool.to_wire(), matrix.to_json(), 0, "x", {}))
    return run.root
