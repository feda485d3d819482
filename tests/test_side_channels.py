"""Side doors: a malicious department moving bytes through fields other than the weight values, each refused by
the guard with nothing of it in the log; and a tampered log, each failing `c2gr-fed audit`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from c2gr_fed.errors import PrivacyViolation
from c2gr_fed.privacy import read_log
from tests.test_leaky_departments import FakeGrid, _audit, _coordinator, close_log, flower_identity  # noqa: F401

SECRET = "89504e470d0a1a0a" * 8  # what the department tries to move (hex of image bytes)


def _tamper(kind: str, reply) -> None:
    from flwr.app import Array, Error, Message

    c = reply.content
    if kind == "message_type_suffix":
        reply.metadata.__dict__["_message_type"] = "train." + SECRET  # what a mod can set past the setter
    elif kind == "stype":
        a = c["segmentor"]["unet.stem.weight"]
        c["segmentor"]["unet.stem.weight"] = Array(a.dtype, a.shape, SECRET, a.data)
    elif kind == "npy_slack":
        a = c["segmentor"]["unet.stem.weight"]
        c["segmentor"]["unet.stem.weight"] = Array(a.dtype, a.shape, a.stype, a.data + bytes.fromhex(SECRET))
    elif kind == "dtype_content":
        a = c["segmentor"]["unet.stem.weight"]
        n = int(np.prod(a.shape))
        c["segmentor"]["unet.stem.weight"] = Array(a.dtype, a.shape, a.stype,
                                                   Array(np.zeros(n // 2, np.float64)).data)
    elif kind == "metric_low_bits":
        c["round_metrics"]["loss_seg"] = 0.5 + 1.234567e-9
    elif kind == "metric_nan":
        c["round_metrics"]["loss_seg"] = math.nan
    elif kind == "metric_huge":
        c["round_metrics"]["loss_seg"] = -1e308
    elif kind == "round_overwrite":
        c["round_metrics"]["round"] = 7.0
    elif kind == "group_id":
        reply.metadata.group_id = SECRET
    elif kind == "delivered_at":
        reply.metadata.delivered_at = SECRET
    elif kind == "pool_order":
        pool = c["pool"]
        pool["names"] = list(pool["names"])  # same values, then add a task this round did not train
        for col in ("names", "modalities", "sites", "regions", "objectives", "num_classes"):
            pool[col] = list(pool[col]) * 2
    elif kind == "error_text":
        reply.__dict__["_error"] = Error(2, "<class 'x'>:<'" + SECRET + "'>")
        reply.__dict__["_content"] = None
    else:  # pragma: no cover
        raise ValueError(kind)
    del Message


CHANNELS = ("message_type_suffix", "stype", "npy_slack", "dtype_content", "metric_low_bits", "metric_nan",
            "metric_huge", "round_overwrite", "group_id", "delivered_at", "pool_order", "error_text")


class TamperingGrid(FakeGrid):
    def send_and_receive(self, messages, timeout=None):
        out = super().send_and_receive(messages, timeout)
        for r in out:
            _tamper(self.kind_of_tamper, r)
        return out


@pytest.mark.parametrize("kind", CHANNELS)
def test_each_side_channel_is_refused_and_never_logged(kind: str, tmp_path: Path, flower_identity, capsys) -> None:
    coord, guarded, state, run = _coordinator(tmp_path, None)
    grid = TamperingGrid(coord.scenario, None)
    grid.kind_of_tamper = kind
    guarded.grid = grid
    with pytest.raises(PrivacyViolation) as refused_exc:
        coord._train(guarded, state, 0, "Fundus-A", "ophthalmology-aravind")
    assert SECRET[:24] not in str(refused_exc.value)  # nor in what the coordinator prints
    if kind == "error_text":  # said as what it is: a failure whose free text was withheld
        assert "failed outside the department's declared error reporting" in str(refused_exc.value)
        assert "withheld" in str(refused_exc.value)
    close_log(guarded, run.root, status="refused")
    text = run.transfers.read_text()
    assert SECRET not in text and SECRET[:24] not in text
    refused = [e for e in read_log(run.transfers) if e.get("violations")]
    assert len(refused) == 1
    rc, out = _audit(run.root, capsys)
    assert rc == 1 and "audit FAILED" in out
    for name in ("audit.md", "audit.json"):
        assert SECRET[:24] not in (run.root / name).read_text()


def test_quantised_metrics_pass(tmp_path: Path, flower_identity, capsys) -> None:
    from c2gr_fed.privacy.metric_rules import LOSS, quantise_metrics

    q = quantise_metrics("round_metrics", {"loss_seg": 0.123456789, "steps": 3.2, "time_total_s": 12.3456})
    assert q == {"loss_seg": 0.1235, "steps": 3.0, "time_total_s": 12.3}
    assert LOSS.problem(0.1235) is None and LOSS.problem(0.12345) and LOSS.problem(math.inf)
    assert 10 < LOSS.bits() < 20


# ----------------------------------------------------------------------------------------- a tampered log


@pytest.fixture()
def closed_run(tmp_path: Path, flower_identity):
    coord, guarded, state, run = _coordinator(tmp_path, None)
    from c2gr_fed.privacy.transfer_log import TransferLog, run_key

    guarded.log = TransferLog(run.transfers, key=run_key(run.root, create=True))
    coord._train(guarded, state, 0, "Fundus-A", "ophthalmology-aravind")
    coord._train(guarded, state, 1, "Fundus-B", "ophthalmology-nidek")
    close_log(guarded, run.root)
    return run


def _rewrite(path: Path, entries: list[dict]) -> None:
    """Re-compute the chain as a tamperer without the key would."""
    from c2gr_fed.privacy.transfer_log import GENESIS, _entry_hash

    prev = GENESIS
    lines = []
    for i, e in enumerate(entries):
        e = {k: v for k, v in e.items() if k not in ("hash", "mac")}
        e.update(seq=i, prev=prev)
        e["hash"] = _entry_hash(e)
        prev = e["hash"]
        lines.append(json.dumps(e, sort_keys=True))
    path.write_text("".join(line + "\n" for line in lines))


@pytest.mark.parametrize("how", ["honest", "drop_last", "drop_round", "empty", "rechain_drop", "rechain_edit",
                                 "drop_refused_and_rechain", "edit_artefact"])
def test_a_tampered_log_fails_the_audit(how: str, closed_run, capsys) -> None:
    run = closed_run
    entries = list(read_log(run.transfers))
    lines = run.transfers.read_text().splitlines(keepends=True)
    if how == "drop_last":
        run.transfers.write_text("".join(lines[:-1]))
    elif how == "drop_round":
        run.transfers.write_text("".join(lines[:2]))
    elif how == "empty":
        run.transfers.write_text("")
    elif how == "rechain_drop":
        _rewrite(run.transfers, entries[:2] + entries[-1:])
    elif how == "rechain_edit":
        entries[1]["bytes"] += 1
        _rewrite(run.transfers, entries)
    elif how == "drop_refused_and_rechain":
        entries[-1]["status"] = "finished"
        _rewrite(run.transfers, entries)
    elif how == "edit_artefact":
        (run.root / "rounds.jsonl").write_text('{"round": 0}\n')
    rc, out = _audit(run.root, capsys)
    if how == "honest":
        assert rc == 0, out
    else:
        assert rc == 1 and "audit FAILED" in out, out


def test_a_log_written_by_an_earlier_version_is_named_as_such(closed_run, capsys) -> None:
    """An earlier version's log (no request/reply pairing, no coordinator events, no key MACs) fails the audit
    with one problem saying it predates the current format, not one per entry."""
    from c2gr_fed.privacy.transfer_log import KEY_FILE

    run = closed_run
    old_fields = ("reply_to", "mac", "timeout_s")
    entries = [{k: v for k, v in e.items() if k not in old_fields}
               for e in read_log(run.transfers) if e.get("direction") != "coordinator"]
    _rewrite(run.transfers, entries)
    (run.root / KEY_FILE).unlink()
    rc, out = _audit(run.root, capsys)
    assert rc == 1 and "audit FAILED: 1 violation(s)" in out, out
    assert "[format] transfers.jsonl: the log predates the current transfer-log format" in " ".join(out.split()), out
    rep = json.loads((run.root / "audit.json").read_text())
    assert rep["log_format"] == "legacy" and rep["chain"]["intact"] and rep["schema"]["messages_rechecked"] == 0
    assert "log format: legacy" in (run.root / "audit.md").read_text()


def test_export_leaves_the_run_key_and_the_errors_logs_out(closed_run, tmp_path: Path) -> None:
    from c2gr_fed.federation.error_replies import errors_log_path
    from c2gr_fed.privacy.transfer_log import KEY_FILE
    from c2gr_fed.runs.export import export_results

    run = closed_run
    for name in ("matrix.json", "summary.json"):
        (run.root / name).write_text("{}\n")
    errors = errors_log_path(run.root, "ophthalmology-aravind")
    errors.parent.mkdir(parents=True, exist_ok=True)
    errors.write_text('{"error": "the department\'s own text"}\n')
    assert (run.root / KEY_FILE).is_file()
    dest = tmp_path / "exported"
    for with_log in (False, True):
        written = export_results(run.root, dest, with_transfer_log=with_log)
        assert not any(p.parts[0] == "keys" or p.name == "errors.jsonl" for p in written), written
        assert (run.transfers.name in map(str, written)) == with_log
    assert not (dest / "keys").exists() and not any(dest.rglob("errors.jsonl"))
