"""The wire schema guard and the tamper-evident transfer log, without Flower."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from c2gr_fed.privacy import ArrayInfo, MessageInfo, RecordInfo, TransferLog, WireSchema, verify_chain


def schema() -> WireSchema:
    return WireSchema(
        arrays={"segmentor": {"w": ((4, 3), "float32")}, "prompts": {"p": ((2,), "float32")},
                "denoiser": {"d": ((5,), "float32")}},
        task_names=["A", "B"], department_tasks={"dept-a": ["A"], "dept-b": ["B"]}, max_classes=2,
    )


def pool_items() -> dict:
    return {"names": ["A"], "modalities": ["cine MR"], "sites": [""], "regions": ["heart"],
            "objectives": ["cardiac structure segmentation"], "num_classes": [2]}


def train_reply(**changes) -> MessageInfo:
    recs = {
        "segmentor": RecordInfo("arrays", arrays=[ArrayInfo("w", (4, 3), "float32", 48, "x")]),
        "prompts": RecordInfo("arrays", arrays=[ArrayInfo("p", (2,), "float32", 8, "x")]),
        "denoiser": RecordInfo("arrays", arrays=[ArrayInfo("d", (5,), "float32", 20, "x")]),
        "pool": RecordInfo("config", items=pool_items()),
        "round_metrics": RecordInfo("metrics", items={"loss_seg": 0.5, "steps": 3.0}),
    }
    recs.update(changes)
    return MessageInfo("train", recs)


def test_a_conforming_reply_passes() -> None:
    assert schema().check(train_reply(), reply=True, department="dept-a") == []


def test_extra_array_record_is_refused() -> None:
    bad = train_reply(leak=RecordInfo("arrays", arrays=[ArrayInfo("img", (3, 32, 32), "float32", 12288, "x")]))
    v = schema().check(bad, reply=True, department="dept-a")
    assert any("record <undeclared: 4 chars" in str(x) and "not declared" in str(x) for x in v)
    assert "leak" not in " ".join(map(str, v))  # the sender's names are never repeated


def test_extra_array_inside_a_declared_record_is_refused() -> None:
    seg = RecordInfo("arrays", arrays=[ArrayInfo("w", (4, 3), "float32", 48, "x"),
                                      ArrayInfo("image", (3, 16, 16), "float32", 3072, "x")])
    v = schema().check(train_reply(segmentor=seg), reply=True, department="dept-a")
    assert any("segmentor.<undeclared: 5 chars" in str(x) and "undeclared array" in str(x) for x in v)


def test_changed_shape_is_refused() -> None:
    seg = RecordInfo("arrays", arrays=[ArrayInfo("w", (64, 64), "float32", 16384, "x")])
    v = schema().check(train_reply(segmentor=seg), reply=True, department="dept-a")
    assert any("segmentor.w" in str(x) and "shape of 2 dimension(s)" in str(x) for x in v)
    assert "64, 64" not in " ".join(map(str, v))


def test_image_bytes_in_a_config_string_are_refused() -> None:
    items = pool_items()
    items["names"] = ["A" + "\x89PNG\r\n" + "x" * 300]
    v = schema().check(train_reply(pool=RecordInfo("config", items=items)), reply=True, department="dept-a")
    assert v and any("pool.names[0]" in str(x) for x in v)


def test_undeclared_config_key_and_bytes_value_are_refused() -> None:
    items = pool_items() | {"payload": b"\x00\x01"}
    v = schema().check(train_reply(pool=RecordInfo("config", items=items)), reply=True, department="dept-a")
    assert any("pool.<undeclared: 7 chars" in str(x) for x in v)


def test_non_numeric_and_undeclared_metrics_are_refused() -> None:
    m = RecordInfo("metrics", items={"loss_seg": "0.5", "secret": 1.0})
    v = schema().check(train_reply(round_metrics=m), reply=True, department="dept-a")
    text = " ".join(map(str, v))
    assert "round_metrics.loss_seg: metric must be a number" in text and "round_metrics.<undeclared: 6" in text


def test_evaluate_reply_keys_are_per_department() -> None:
    ok = MessageInfo("evaluate", {"dice": RecordInfo("metrics", items={"A": 0.5, "A/class1": 0.4})})
    assert schema().check(ok, reply=True, department="dept-a") == []
    other = MessageInfo("evaluate", {"dice": RecordInfo("metrics", items={"B": 0.5})})
    assert schema().check(other, reply=True, department="dept-a")


def test_log_chain_detects_edits_deletions_and_insertions(tmp_path: Path) -> None:
    log = TransferLog(tmp_path / "t.jsonl")
    for i in range(4):
        log.append(direction="x", round=i, bytes=i)
    assert verify_chain(log.path) == []
    lines = log.path.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["bytes"] = 999
    (tmp_path / "edit.jsonl").write_text("\n".join([lines[0], json.dumps(edited), *lines[2:]]) + "\n")
    assert any("edited" in p for p in verify_chain(tmp_path / "edit.jsonl"))
    (tmp_path / "del.jsonl").write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    assert verify_chain(tmp_path / "del.jsonl")
    # a reopened log continues the chain
    log2 = TransferLog(log.path)
    log2.append(direction="y", round=9, bytes=1)
    assert verify_chain(log.path) == [] and log2.position == 5


def test_log_never_stores_payload_values() -> None:
    info = train_reply()
    text = json.dumps(info.summary())
    assert "cardiac structure segmentation" not in text and "heart" not in text
