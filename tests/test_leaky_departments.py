"""Leaky departments: four ways of smuggling an image out, each refused by the guard and reported by the audit.

(a) an extra array holding one of the department's images, (b) image bytes hidden in a config string (base64 in
the prompt pool, in chunks that fit the length limit and the descriptor alphabet), (c) a weight with a changed
shape big enough to hold an image, (d) non-numeric metrics (the pixels as a metric list).

The coordinator's guard is tested through GuardedGrid with a fake Flower grid (fast, one leak at a time, both
`on_bad_reply` modes); one real Flower + Ray simulation runs all four leaks at once, one department per leak.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from c2gr_fed.cli.main import main as cli_main
from c2gr_fed.errors import PrivacyViolation
from c2gr_fed.federation.settings import AppSettings
from c2gr_fed.privacy import read_log, verify_chain
from c2gr_fed.runs.layout import RunDir
from c2gr_fed.scenario import dump_scenario, load_scenario

ROOT = Path(__file__).resolve().parents[1]
FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]
LEAKS = ("extra_array", "config_string", "changed_shape", "non_numeric_metric")
# what the refusal must name, per leak
FIELD = {"extra_array": "record <undeclared: 4 chars", "config_string": "pool.modalities", "changed_shape": "segmentor.unet.stem.weight",
         "non_numeric_metric": "round_metrics.loss_seg"}


@lru_cache(maxsize=1)
def _an_image() -> np.ndarray:
    """One training image of the first smoke department, (3, S, S) float32: what a leaky department would send."""
    from c2gr_fed.data.loading import load_task

    sc = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    return load_task(sc, sc.stream()[0], "train").images[0].numpy().copy()


def leak(kind: str, content) -> None:
    """Modify a train reply's RecordDict in place the way a leaky department would."""
    from flwr.app import Array, ArrayRecord

    img = _an_image()
    if kind == "extra_array":
        content["leak"] = ArrayRecord({"image": Array(img)})
    elif kind == "config_string":
        b64 = base64.b64encode((img * 127.5 + 127.5).astype(np.uint8).tobytes()).decode().rstrip("=")
        pool = content["pool"]
        mods = list(pool["modalities"])
        # chunks of <= 140 characters of [A-Za-z0-9+/]: inside the length limit and the descriptor alphabet
        mods[-1] = mods[-1][:10] + " " + b64[:140]
        pool["modalities"] = mods
    elif kind == "changed_shape":
        content["segmentor"]["unet.stem.weight"] = Array(img.reshape(-1).astype(np.float32))
    elif kind == "non_numeric_metric":
        content["round_metrics"]["loss_seg"] = [float(x) for x in img.reshape(-1)[:768]]
    else:  # pragma: no cover
        raise ValueError(kind)


# ----------------------------------------------------------------------------- the guard, through a fake grid


class FakeGrid:
    """Answers every train message with an honest-looking reply, then lets `kind` leak into it."""

    def __init__(self, scenario, kind: str | None) -> None:
        self.scenario, self.kind = scenario, kind

    def send_and_receive(self, messages, timeout=None):
        from flwr.app import Message, MetricRecord

        from c2gr_fed.federation.records import pool_record, reply_content, state_records
        from c2gr_fed.learning import build_state
        from c2gr_fed.prompts import PromptPool, TaskDescriptor

        out = []
        for m in messages:
            task = self.scenario.task(str(m.content.config_records["train"]["task"]))
            state = build_state(self.scenario)
            state.pool = PromptPool.from_wire(dict(m.content.config_records["pool"]))
            state.pool.add(TaskDescriptor.from_task(task))
            content = reply_content({**state_records(state), "pool": pool_record(state.pool),
                                     "round_metrics": MetricRecord({"loss_seg": 0.5, "round": float(m.content.config_records["train"]["round"]), "steps": 2.0})})
            if self.kind:
                leak(self.kind, content)
            out.append(Message(content, reply_to=m))
        return out


@pytest.fixture()
def flower_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages outside a Flower run need a task identity."""
    from flwr.supercore.task_identity import TaskIdentity

    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 0)
    monkeypatch.setattr(TaskIdentity, "_task_id", 0)


def _coordinator(tmp: Path, kind: str | None, on_bad_reply: str = "stop"):
    from c2gr_fed.federation.coordinator import Coordinator
    from c2gr_fed.federation.department import schema_of
    from c2gr_fed.federation.guarded_grid import GuardedGrid
    from c2gr_fed.learning import build_state
    from c2gr_fed.privacy import TransferLog

    sc = load_scenario(ROOT / "scenarios" / "smoke.yaml", FAST + [f"federation.on_bad_reply={on_bad_reply}"])
    run = RunDir(tmp).ensure()
    run.scenario.write_text(dump_scenario(sc))
    coord = Coordinator(AppSettings(scenario_path=str(run.scenario), run_dir=str(run.root)), FakeGrid(sc, kind))
    for i, d in enumerate(sc.departments):
        coord.node_of[d.name], coord.dept_of[100 + i] = 100 + i, d.name
    guarded = GuardedGrid(coord.grid, schema_of(coord.scenario), TransferLog(run.transfers), coord._department_of_node)
    return coord, guarded, build_state(coord.scenario), run


def close_log(guarded, root: Path, status: str = "stopped") -> None:
    """The coordinator's end event, as run_stream writes it (these tests drive single rounds)."""
    from c2gr_fed.privacy.artefacts import artefact_hashes

    guarded.log.append(direction="coordinator", event="end", status=status, completed_rounds=0, planned_rounds=3,
                       refused_entry=guarded.last_refused_seq, artefacts=artefact_hashes(root))


def _audit(run_dir: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    capsys.readouterr()
    rc = cli_main(["audit", str(run_dir), "--show", "50"])
    out = capsys.readouterr().out
    return rc, " ".join(out.split())  # undo rich's line wrapping


def test_an_honest_reply_passes_and_the_audit_agrees(tmp_path: Path, flower_identity, capsys) -> None:
    coord, guarded, state, run = _coordinator(tmp_path, None)
    metrics = coord._train(guarded, state, 0, "Fundus-A", "ophthalmology-aravind")
    assert metrics is not None and metrics["loss_seg"] == 0.5
    close_log(guarded, run.root)
    rc, out = _audit(run.root, capsys)
    assert rc == 0 and "audit passed" in out


@pytest.mark.parametrize("kind", LEAKS)
def test_each_leak_is_refused_before_use_and_stops_the_run(kind: str, tmp_path: Path, flower_identity, capsys) -> None:
    coord, guarded, state, run = _coordinator(tmp_path, kind)
    before = {k: v.copy() for k, v in state.arrays()["segmentor"].items()}
    with pytest.raises(PrivacyViolation) as e:
        coord._train(guarded, state, 0, "Fundus-A", "ophthalmology-aravind")
    msg = str(e.value)
    assert "ophthalmology-aravind" in msg and "round 0" in msg and FIELD[kind] in msg, msg
    # refused before use: the coordinator's state is untouched
    after = state.arrays()["segmentor"]
    assert all(np.array_equal(before[k], after[k]) for k in before)
    # logged with its violations; the chain stays intact
    entries = list(read_log(run.transfers))
    assert verify_chain(run.transfers) == []
    refused = [e for e in entries if e.get("violations")]
    assert len(refused) == 1 and any(FIELD[kind] in v for v in refused[0]["violations"])
    # the log never holds the payload
    text = run.transfers.read_text()
    assert base64.b64encode((_an_image() * 127.5 + 127.5).astype(np.uint8).tobytes()).decode()[:40] not in text
    # and the audit reports it, independently re-checking the logged summary, with a non-zero exit
    rc, out = _audit(run.root, capsys)
    assert rc == 1 and "audit FAILED" in out, out
    assert "refused during the run" in out and FIELD[kind] in out and "ophthalmology-aravind" in out
    rep = json.loads((run.root / "audit.json").read_text())
    assert any(p["kind"] == "schema" and FIELD[kind] in p["what"] for p in rep["problems"]), rep["problems"]
    assert (run.root / "audit.md").read_text().count("FAIL") >= 1


def test_exclude_mode_drops_the_leaky_department_and_keeps_going(tmp_path: Path, flower_identity) -> None:
    coord, guarded, state, run = _coordinator(tmp_path, "config_string", on_bad_reply="exclude")
    assert coord._train(guarded, state, 0, "Fundus-A", "ophthalmology-aravind") is None
    assert coord.excluded == {"ophthalmology-aravind"}
    assert len(state.pool) == 0  # the refused pool was not used


def test_the_coordinator_refuses_to_send_undeclared_content(tmp_path: Path, flower_identity) -> None:
    from flwr.app import ConfigRecord, Message, RecordDict

    coord, guarded, state, run = _coordinator(tmp_path, None)
    bad = Message(RecordDict({"discover": ConfigRecord({"protocol": 1, "scenario_sha": coord.sha, "note": "x" * 500})}),
                  dst_node_id=100, message_type="query.discover", group_id="d")
    with pytest.raises(PrivacyViolation, match="discover.<undeclared: 4 chars"):
        guarded.send_and_receive([bad], round_index=-1, timeout=1)


# ------------------------------------------------------------------------- one real Flower + Ray simulation


def _leaky_mod(msg, ctx, call_next):
    """Department 0 leaks (a), department 1 leaks (b), department 2 leaks (c) and (d), in their train replies."""
    reply = call_next(msg, ctx)
    if msg.metadata.message_type != "train" or reply.has_error():
        return reply
    pid = int(ctx.node_config.get("partition-id", 0))
    for kind in ({0: ["extra_array"], 1: ["config_string"], 2: ["changed_shape", "non_numeric_metric"]}[pid]):
        leak(kind, reply.content)
    return reply


@pytest.mark.slow
def test_four_leaky_departments_in_a_real_simulation(tmp_path: Path, capsys) -> None:
    from departments.client_app import make_client_app
    from server.server_app import make_server_app

    from c2gr_fed.federation.simulation import launch

    sc = load_scenario(ROOT / "scenarios" / "smoke.yaml", FAST + ["federation.on_bad_reply=exclude"])
    run = RunDir(tmp_path / "run").ensure()
    run.scenario.write_text(dump_scenario(sc))
    settings = AppSettings(scenario_path=str(run.scenario), run_dir=str(run.root))
    launch(make_server_app(settings), make_client_app(replace(settings, events=None), mods=[_leaky_mod]), sc)
    summary = json.loads(run.summary.read_text())
    assert summary["excluded_departments"] == sorted(d.name for d in sc.departments)
    entries = list(read_log(run.transfers))
    refused = {e["department"]: " ".join(e["violations"]) for e in entries if e.get("violations")}
    assert FIELD["extra_array"] in refused["ophthalmology-aravind"]
    assert FIELD["config_string"] in refused["ophthalmology-nidek"]
    assert FIELD["changed_shape"] in refused["cardiology-siemens"]
    assert FIELD["non_numeric_metric"] in refused["cardiology-siemens"]
    rc, out = _audit(run.root, capsys)
    assert rc == 1 and "audit FAILED" in out
    for dept, kinds in (("ophthalmology-aravind", ["extra_array"]), ("ophthalmology-nidek", ["config_string"]),
                        ("cardiology-siemens", ["changed_shape", "non_numeric_metric"])):
        for k in kinds:
            assert any(dept in line and FIELD[k] in line and "round" in line for line in
                       (run.root / "audit.md").read_text().splitlines()), (dept, k)
