"""End to end: the smoke stream through a real Flower simulation with Ray, and a leaky department refused."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from c2gr_fed.errors import PrivacyViolation
from c2gr_fed.federation.settings import AppSettings
from c2gr_fed.privacy import read_log, verify_chain
from c2gr_fed.runs.layout import RunDir
from c2gr_fed.scenario import dump_scenario, load_scenario

pytestmark = pytest.mark.slow
FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]


def _prepare(root: Path, tmp: Path, extra: list[str] | None = None) -> tuple[AppSettings, object]:
    sc = load_scenario(root / "scenarios" / "smoke.yaml", FAST + (extra or []))
    run = RunDir(tmp / "run").ensure()
    run.scenario.write_text(dump_scenario(sc))
    return AppSettings(scenario_path=str(run.scenario), run_dir=str(run.root)), sc


def _launch(settings: AppSettings, scenario, mods=None) -> None:
    from departments.client_app import make_client_app
    from server.server_app import make_server_app

    from c2gr_fed.federation.simulation import launch

    launch(make_server_app(settings), make_client_app(replace(settings, events=None), mods=mods), scenario)


def test_smoke_stream_through_flower_and_ray(root: Path, tmp_path: Path) -> None:
    settings, sc = _prepare(root, tmp_path)
    _launch(settings, sc)
    run = RunDir(Path(settings.run_dir))
    m = json.loads(run.matrix_json.read_text())
    names = [t.name for t in sc.stream()]
    assert m["tasks"] == names
    vals = m["values"]
    assert len(vals) == 3 and all(len(r) == 3 for r in vals)
    assert all(v is not None and 0.0 <= v <= 1.0 for row in vals for v in row)
    summary = json.loads(run.summary.read_text())
    assert summary["completed_rounds"] == 3 and not summary["missing"]
    # every message is in the log, the chain is intact, and nothing violated the declared schema
    assert verify_chain(run.transfers) == []
    entries = list(read_log(run.transfers))
    kinds = [(e["direction"], e.get("message_type")) for e in entries]
    assert kinds.count(("coordinator->department", "train")) == 3
    assert kinds.count(("department->coordinator", "train")) == 3
    assert kinds.count(("department->coordinator", "evaluate")) == 9
    assert kinds.count(("department->coordinator", "query.discover")) == 3
    assert all(e.get("violations", []) == [] for e in entries)
    # the coordinator closed the log: a round-done event per round, then the end event
    assert [e.get("event") for e in entries if e["direction"] == "coordinator"] == ["round-done"] * 3 + ["end"]
    assert entries[-1]["status"] == "finished" and entries[-1]["completed_rounds"] == 3
    # no record beyond the declared ones, and no array shaped like an image batch
    for e in entries:
        for rec in e.get("records", {}):
            assert rec in {"discover", "identity", "train", "evaluate", "pool", "segmentor", "prompts", "denoiser",
                           "round_metrics", "dice"}
    size = sc.image_size
    for e in entries:
        for rec in e.get("records", {}).values():
            for name, shape, *_ in rec.get("arrays", []):
                assert not (len(shape) >= 3 and shape[-1] == size and shape[-2] == size and shape[-3] in (1, 3)), name
    # the federated run computes exactly what the same rounds compute in one process (nothing lost on the wire);
    # a Dice crosses the wire on its declared grid (privacy/metric_rules.py), so the local values are put on it
    from c2gr_fed.learning.local_stream import run_stream_local
    from c2gr_fed.privacy.metric_rules import DICE

    local, _, _ = run_stream_local(sc, threads=1)
    assert [[None if v is None else DICE.quantise(v) for v in row] for row in local.values] == vals
    # checkpoints exist for every round
    ck = json.loads((run.checkpoints / "latest.json").read_text())
    assert ck["completed_rounds"] == 3
    _bench_tabulates_gathered_runs(run.root, tmp_path)


def _bench_tabulates_gathered_runs(run_root: Path, tmp: Path) -> None:
    """`c2gr-fed bench --tabulate-only` tables the complete runs it finds (seeds averaged), names the missing
    ones and the ones run with other settings, and runs nothing; a real bench refuses to reuse such a run."""
    import argparse
    import io
    import shutil

    from rich.console import Console

    from c2gr_fed.cli.bench_cmd import bench_command
    from c2gr_fed.errors import C2GRError
    from c2gr_fed.scenario import dump_scenario, load_scenario

    def copy_as(name: str, *settings: str) -> Path:
        """the finished run, relabelled as if `bench` had run it with these settings"""
        d = runs / name
        shutil.copytree(run_root, d)
        (d / "scenario.yaml").write_text(dump_scenario(load_scenario(d / "scenario.yaml", list(settings))))
        return d

    runs = tmp / "gathered" / "bench-smoke-runs"
    copy_as("c2gr-seed0", "seed=0")
    copy_as("c2gr-seed1", "seed=1", "training.threads=3")  # other execution settings only: still tabulated
    summary = copy_as("finetune-seed0", "method=finetune") / "summary.json"
    s = json.loads(summary.read_text())
    summary.write_text(json.dumps({**s, "completed_rounds": 2}))  # an unfinished run must not enter the table
    copy_as("c2gr-njd-seed0", "method=c2gr-njd", "diffusion.sampling_steps=7")  # not what this bench asks for
    buf = io.StringIO()
    args = argparse.Namespace(scenario=run_root / "scenario.yaml", overrides=[], arms=[("--methods", "c2gr,finetune,c2gr-njd")],
                              seeds="0,1", jobs=1, out=tmp / "gathered" / "bench-smoke", tabulate_only=True,
                              data_root=None)
    assert bench_command(args, Console(file=buf, width=200)) == 0
    printed = buf.getvalue()
    assert "finetune seed 0: no complete run" in printed and "finetune seed 1: no complete run" in printed
    assert "c2gr-njd seed 0:" in printed and "differs in diffusion.sampling_steps" in printed
    assert "c2gr seed 1: run with other execution settings (differs in training.threads)" in " ".join(printed.split())
    cmd_file = tmp / "gathered" / "bench-smoke.command.txt"
    cmd_file.write_text("c2gr-fed bench an earlier run command   # its note\n")
    table = (tmp / "gathered" / "bench-smoke.md").read_text().splitlines()
    rows = [r for r in table if r.startswith("| c2gr ")]
    assert len(rows) == 1 and rows[0].rstrip(" |").endswith("2")  # two seeds averaged
    assert "± 0.00" in rows[0]  # the same run twice: zero spread
    assert not any(r.startswith("| finetune") or r.startswith("| c2gr-njd") for r in table)
    assert not (runs / "finetune-seed1").exists()  # nothing was run
    assert bench_command(args, Console(file=io.StringIO(), width=200)) == 0
    history = cmd_file.read_text().splitlines()  # a table's earlier commands are kept; this one is added once
    assert history[0] == "c2gr-fed bench an earlier run command   # its note" and len(history) == 2
    with pytest.raises(C2GRError, match="other settings .*differs in diffusion.sampling_steps"):
        bench_command(argparse.Namespace(**{**vars(args), "tabulate_only": False}), Console(file=io.StringIO()))
    _bench_tabulates_exported_run(run_root, tmp, args)


def _bench_tabulates_exported_run(run_root: Path, tmp: Path, args) -> None:
    """`c2gr-fed export` copies results without weights; `bench --tabulate-only --runs --run-name` tables the
    export with the wall time summed from its rounds (an export carries no checkpoints)."""
    import argparse
    import io

    from rich.console import Console

    from c2gr_fed.cli.bench_cmd import bench_command
    from c2gr_fed.errors import C2GRError
    from c2gr_fed.runs.export import export_results

    exported = tmp / "exported"
    written = export_results(run_root, exported / "c2gr-tagged-seed0")
    names = {str(p) for p in written}
    assert {"scenario.yaml", "summary.json", "matrix.json", "rounds.jsonl"} <= names and "transfers.jsonl" not in names
    assert "transfers.jsonl" in {str(p) for p in export_results(run_root, tmp / "with-log", with_transfer_log=True)}
    assert not any(n.startswith("checkpoints") for n in names) and not (exported / "c2gr-tagged-seed0" / "checkpoints").exists()
    with pytest.raises(C2GRError, match="not a run directory"):
        export_results(tmp / "nowhere", exported / "x")
    from c2gr_fed.cli.main import main

    assert main(["export", str(run_root), str(tmp / "cli-export")]) == 0
    assert sorted(p.relative_to(tmp / "cli-export") for p in (tmp / "cli-export").rglob("*") if p.is_file()) == sorted(written)
    assert not (exported / "c2gr-tagged-seed0" / "run.json").exists()  # this run has none (not started by the CLI)
    buf = io.StringIO()
    tagged = argparse.Namespace(**{**vars(args), "arms": [("--methods", "c2gr")], "seeds": "0", "out": tmp / "from-export" / "t",
                                   "runs": exported, "run_name": "{method}-tagged-seed{seed}"})
    assert bench_command(tagged, Console(file=buf, width=200)) == 0
    row = next(r for r in (tmp / "from-export" / "t.md").read_text().splitlines() if r.startswith("| c2gr "))
    rounds = [json.loads(line) for line in (exported / "c2gr-tagged-seed0" / "rounds.jsonl").read_text().splitlines()]
    assert row.split("|")[-3].strip() == f"{sum(r['wall_s'] for r in rounds) / 60:.1f}"
    md = tmp / "from-export" / "t.md"
    md.write_text("# My table\n\n" + md.read_text().replace("| c2gr ", "| stale ") + "\nReading: kept.\n")
    assert bench_command(tagged, Console(file=io.StringIO(), width=200)) == 0  # re-tabulating keeps the notes
    text = md.read_text()
    assert text.startswith("# My table\n") and text.endswith("Reading: kept.\n")
    assert text.count("| method |") == 1 and "| stale " not in text and row in text
    commands = (tmp / "from-export" / "t.command.txt").read_text().splitlines()
    assert len(commands) == 1  # the same command twice is recorded once
    with pytest.raises(C2GRError, match="must contain both"):
        bench_command(argparse.Namespace(**{**vars(tagged), "run_name": "{method}"}), Console(file=io.StringIO()))


def _leak_extra_array(msg, ctx, call_next):
    from flwr.app import Array, ArrayRecord

    reply = call_next(msg, ctx)
    if msg.metadata.message_type == "train" and not reply.has_error():
        reply.content["leak"] = ArrayRecord({"image": Array(np.zeros((3, 16, 16), np.float32))})
    return reply


def test_a_leaky_department_is_refused_and_logged(root: Path, tmp_path: Path) -> None:
    settings, sc = _prepare(root, tmp_path)
    with pytest.raises(Exception) as e:
        _launch(settings, sc, mods=[_leak_extra_array])
    chain = [e.value]
    while chain[-1].__cause__ or chain[-1].__context__:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    text = " ".join(str(x) for x in chain)
    assert any(isinstance(x, PrivacyViolation) for x in chain) or "refused" in text
    # the undeclared record is named only by its length and hash (its name could carry data)
    assert "ophthalmology-aravind" in text and "round 0" in text and "record <undeclared: 4 chars" in text, text
    assert '"leak"' not in (Path(settings.run_dir) / "transfers.jsonl").read_text()
    entries = list(read_log(Path(settings.run_dir) / "transfers.jsonl"))
    assert any(e.get("violations") for e in entries)
    assert not math.isnan(len(entries))
