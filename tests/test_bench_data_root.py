"""`c2gr-fed bench SCENARIO --data-root DIR` gives every run the data root (and checks the data once, up front)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from c2gr_fed.cli import bench_cmd
from c2gr_fed.cli.main import build_parser, data_root_of
from c2gr_fed.data.loading import check_task_source
from c2gr_fed.errors import C2GRError, DataError
from c2gr_fed.scenario import load_scenario
from drive_like import drive_like_scenario, write_drive_like


def _args(*argv: str):
    return build_parser().parse_args(["bench", *argv])


def test_every_bench_run_gets_the_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run is a `c2gr-fed run` subprocess: parse its command line as that process would and check the data
    it would check, without $C2GR_DATA_ROOT."""
    monkeypatch.delenv("C2GR_DATA_ROOT", raising=False)
    write_drive_like(tmp_path / "data")
    scenario = drive_like_scenario(tmp_path / "drive.yaml")
    seen: list[Path | None] = []

    def fake_run(cmd: list[str], **_: object) -> int:
        run_args = build_parser().parse_args(cmd[3:])
        seen.append(data_root_of(run_args))
        sc = load_scenario(run_args.scenario or Path(run_args.resume) / "scenario.yaml")
        for task in sc.stream():
            check_task_source(sc, task, data_root_of(run_args))  # what the run checks first
        return 1  # nothing ran: the bench then reports every run as failed

    monkeypatch.setattr(bench_cmd.subprocess, "call", fake_run)
    args = _args(str(scenario), "--methods", "finetune,c2gr", "--seeds", "0", "--data-root", str(tmp_path / "data"),
                 "--out", str(tmp_path / "bench" / "b"))
    with pytest.raises(C2GRError, match="every run failed"):
        bench_cmd.bench_command(args, Console(file=open(tmp_path / "console.txt", "w")))
    assert seen == [(tmp_path / "data").resolve()] * 2

    # a run directory with a checkpoint is resumed, also with the data root
    ck = tmp_path / "bench" / "b-runs" / "finetune-seed0" / "checkpoints"
    ck.mkdir(parents=True)
    (ck / "latest.json").write_text("{}")
    (ck.parent / "scenario.yaml").write_text(scenario.read_text().replace("method: c2gr", "method: finetune"))
    seen.clear()
    with pytest.raises(C2GRError, match="every run failed"):
        bench_cmd.bench_command(args, Console(file=open(tmp_path / "console.txt", "w")))
    assert seen == [(tmp_path / "data").resolve()] * 2


def test_bench_refuses_missing_data_before_any_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2GR_DATA_ROOT", raising=False)
    scenario = drive_like_scenario(tmp_path / "drive.yaml")
    monkeypatch.setattr(bench_cmd.subprocess, "call", lambda *a, **k: pytest.fail("a run was started"))
    with pytest.raises(DataError, match="relative path and no data root: pass --data-root"):
        bench_cmd.bench_command(_args(str(scenario), "--methods", "finetune", "--out", str(tmp_path / "b")),
                                Console(file=open(tmp_path / "console.txt", "w")))
