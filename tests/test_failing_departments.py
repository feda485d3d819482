"""Failing departments: a train error or time-out is retried; persistent failure stops the run with a clear
error and the state saved; a failed evaluation is recorded as missing (never zero) and the run goes on.
An error reply carries only a declared code: the department's own text stays in its errors log."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from c2gr_fed.errors import FederationError
from c2gr_fed.federation.department import where_errors_go
from c2gr_fed.federation.error_replies import errors_log_path, with_error_codes
from c2gr_fed.federation.settings import AppSettings
from c2gr_fed.privacy import read_log
from c2gr_fed.runs.layout import RunDir
from c2gr_fed.scenario import dump_scenario, load_scenario

pytestmark = pytest.mark.slow
FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2",
        "federation.retry_backoff_s=0.2"]


def _prepare(root: Path, tmp: Path, extra: list[str]) -> tuple[AppSettings, object]:
    sc = load_scenario(root / "scenarios" / "smoke.yaml", FAST + extra)
    run = RunDir(tmp / "run").ensure()
    run.scenario.write_text(dump_scenario(sc))
    return AppSettings(scenario_path=str(run.scenario), run_dir=str(run.root)), sc


def _launch(settings: AppSettings, scenario, mods) -> None:
    from departments.client_app import make_client_app
    from server.server_app import make_server_app

    from c2gr_fed.federation.simulation import launch

    launch(make_server_app(settings), make_client_app(replace(settings, events=None), mods=mods), scenario)


def _first_time(flag_dir: Path, name: str) -> bool:
    """True the first time it is called for `name` across all Ray actor processes (a file marks it)."""
    flag = flag_dir / name
    try:
        flag.touch(exist_ok=False)
        return True
    except FileExistsError:
        return False


def _in_department(settings: AppSettings, fault):
    """A client mod whose `fault(msg, ctx, call_next)` fails inside the department, as its handlers do: the
    failure leaves as a declared error code and its text goes to the department's errors log."""

    node_settings = replace(settings, events=None)

    def mod(msg, ctx, call_next):
        return with_error_codes(lambda m, c: fault(m, c, call_next),
                                lambda c: where_errors_go(node_settings, c))(msg, ctx)

    return mod


def _errors_logged(run_dir: Path, department: str) -> list[dict]:
    path = errors_log_path(run_dir, department)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _federation_error(exc: BaseException) -> FederationError:
    """The FederationError in an exception's cause/context chain (the run's own error, under Flower's wrapping)."""
    chain, x = [], exc
    while x is not None and len(chain) < 10:
        chain.append(x)
        x = x.__cause__ or x.__context__
    err = next((c for c in chain if isinstance(c, FederationError)), None)
    assert err is not None, [repr(c) for c in chain]
    return err


def _faults(flag_dir: Path):
    def fault(msg, ctx, call_next):
        dept_index = int(ctx.node_config.get("partition-id", -1))
        kind = msg.metadata.message_type
        if kind == "train" and dept_index == 0 and _first_time(flag_dir, "train-error"):
            raise RuntimeError("injected: scanner archive unavailable")
        if kind == "train" and dept_index == 2 and _first_time(flag_dir, "train-slow"):
            time.sleep(32.0)  # past round_timeout_s: the coordinator times out and retries
        if kind == "evaluate" and dept_index == 1:
            raise RuntimeError("injected: evaluation node out of memory")
        return call_next(msg, ctx)

    return fault


def test_retries_and_missing_evaluations(root: Path, tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    settings, sc = _prepare(root, tmp_path, ["federation.retries=2", "federation.round_timeout_s=30"])
    _launch(settings, sc, [_in_department(settings, _faults(flags))])
    run = RunDir(Path(settings.run_dir))
    summary = json.loads(run.summary.read_text())
    assert summary["completed_rounds"] == 3
    # Fundus-B is held by the department whose evaluation always fails: its column is missing, not zero
    m = json.loads(run.matrix_json.read_text())
    j = m["tasks"].index("Fundus-B")
    assert all(row[j] is None for row in m["values"])
    assert all(v is not None for i, row in enumerate(m["values"]) for jj, v in enumerate(row) if jj != j)
    assert {"after": "MnMs-Siemens", "on": "Fundus-B"} in summary["missing"]
    entries = list(read_log(run.transfers))
    errors = [e for e in entries if e["direction"] == "department->coordinator" and e.get("error")]
    # the wire carried declared codes only; each department's text is in its own errors log
    assert {e["error"] for e in errors} == {"failed", "out-of-memory", "no-reply"}, errors
    assert not any("injected" in line for line in run.transfers.read_text().splitlines())
    train_errors = _errors_logged(run.root, "ophthalmology-aravind")
    assert [(e["code"], e["message_type"]) for e in train_errors] == [("failed", "train")]
    assert "scanner archive unavailable" in train_errors[0]["error"] and "Traceback" in train_errors[0]["traceback"]
    eval_errors = _errors_logged(run.root, "ophthalmology-nidek")
    assert eval_errors and all(e["code"] == "out-of-memory" and "evaluation node out of memory" in e["error"]
                               for e in eval_errors)
    from c2gr_fed.reporting.report import write_report

    assert "Missing entries" in write_report(run.root).read_text()


def test_persistent_failure_stops_with_department_round_and_cause(root: Path, tmp_path: Path) -> None:
    def always_fail_second(msg, ctx, call_next):  # the department's disk is full on every train request
        if msg.metadata.message_type == "train" and int(ctx.node_config.get("partition-id", -1)) == 1:
            raise RuntimeError("injected: disk full")
        return call_next(msg, ctx)

    settings, sc = _prepare(root, tmp_path, ["federation.retries=1"])
    with pytest.raises(Exception) as e:
        _launch(settings, sc, [_in_department(settings, always_fail_second)])
    err = _federation_error(e.value)
    text = str(err)
    assert "ophthalmology-nidek" in text and "round 1" in text and "2 attempt" in text
    # the cause category and where the department's own message is, not the message itself
    log_path = errors_log_path(settings.run_dir, "ophthalmology-nidek")
    assert "failed (the department failed for another reason)" in text and str(log_path) in text, text
    assert "disk full" not in text and "\n" not in text
    logged = _errors_logged(Path(settings.run_dir), "ophthalmology-nidek")
    assert len(logged) == 2 and all(e["code"] == "failed" and "injected: disk full" in e["error"] for e in logged)
    ck = json.loads((Path(settings.run_dir) / "checkpoints" / "latest.json").read_text())
    assert ck["completed_rounds"] == 1  # round 0's state is saved for --resume


@pytest.mark.timeout(600)  # before the fix the process waited for the hung department for ever
def test_a_department_that_hangs_for_ever_does_not_keep_the_run_alive(root: Path, tmp_path: Path) -> None:
    """The coordinator gives up on a department whose train request never returns (time-out, no retry left); the
    department's actor is then released so that the run ends with the coordinator's error, well before the hang
    would."""
    def hang(msg, ctx, call_next):  # a deadlocked department: never replies
        if msg.metadata.message_type == "train" and int(ctx.node_config.get("partition-id", -1)) == 0:
            time.sleep(100_000)
        return call_next(msg, ctx)

    from departments.client_app import make_client_app
    from server.server_app import make_server_app

    from c2gr_fed.federation.simulation import launch

    settings, sc = _prepare(root, tmp_path, ["federation.retries=0", "federation.round_timeout_s=10"])
    t0 = time.monotonic()
    with pytest.raises(Exception) as e:
        launch(make_server_app(settings), make_client_app(replace(settings, events=None), mods=[hang]), sc,
               release_grace_s=2.0)
    err = _federation_error(e.value)
    assert "ophthalmology-aravind" in str(err) and "round 0" in str(err), str(err)
    assert time.monotonic() - t0 < 400
