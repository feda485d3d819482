"""The only code that turns domain objects into Flower records and back, and describes Flower messages.

RecordDict layout (declared in c2gr_fed.privacy.schema):
  "segmentor", "prompts", "denoiser" (+ "extras")  ArrayRecord  model state_dicts (numpy arrays)
  "pool"                                           ConfigRecord prompt pool columns (lists of str / int)
  "train" / "evaluate" / "discover" / "audit"      ConfigRecord instruction (round, task, scenario hash)
  "round_metrics" / "dice" / "memorisation"        MetricRecord numbers only
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from ..learning.state import LearnerState
from ..privacy.npy_format import NUMPY_STYPE, npy_problem
from ..privacy.wire import ArrayInfo, MessageInfo, RecordInfo
from ..prompts import PromptPool


def state_records(state: LearnerState, include: tuple[str, ...] | None = None) -> dict[str, ArrayRecord]:
    out = {}
    for name, arrays in state.arrays().items():
        if include is not None and name not in include:
            continue
        out[name] = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
    return out


def arrays_from_content(content: RecordDict) -> dict[str, dict[str, np.ndarray]]:
    return {name: {k: a.numpy() for k, a in rec.items()} for name, rec in content.array_records.items()}


def load_state_from_content(state: LearnerState, content: RecordDict, partial: bool = False) -> None:
    """Load the received arrays into `state` (partial: only the records present, e.g. for evaluation)."""
    arrays = arrays_from_content(content)
    if partial:
        import torch

        for name, module in state.modules().items():
            if name in arrays:
                module.load_state_dict({k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays[name].items()})
    else:
        state.load_arrays(arrays)
    state.pool = PromptPool.from_wire(dict(content.config_records["pool"]))


def reply_content(records: dict[str, ArrayRecord | ConfigRecord | MetricRecord]) -> RecordDict:
    """A reply's records in the fixed order the guard requires: record names sorted, config and metric keys
    sorted, arrays in their declared (state_dict) order."""
    out: dict[str, Any] = {}
    for name in sorted(records):
        rec = records[name]
        if isinstance(rec, MetricRecord):
            rec = MetricRecord({k: rec[k] for k in sorted(rec)})
        elif isinstance(rec, ConfigRecord):
            rec = ConfigRecord({k: rec[k] for k in sorted(rec)})
        out[name] = rec
    return RecordDict(out)


def pool_record(pool: PromptPool) -> ConfigRecord:
    return ConfigRecord(pool.to_wire())


def describe(message: Message) -> MessageInfo:
    """Sizes, shapes, dtypes and hashes of every record of a message (payloads stay in the message). Every
    array's bytes are parsed (npy_format) and hashed here, not taken from labels the sender set. An error
    reply keeps its Flower code and reason in memory only: the guard maps them to a declared code."""
    meta = _metadata(message)
    if message.has_error():
        meta["error_code"] = message.error.code
        return MessageInfo(message.metadata.message_type, {}, error=str(message.error.reason), meta=meta)
    recs: dict[str, RecordInfo] = {}
    for name, rec in message.content.items():
        if isinstance(rec, ArrayRecord):
            recs[name] = RecordInfo("arrays", arrays=[_array_info(k, a) for k, a in rec.items()])
        elif isinstance(rec, MetricRecord):
            recs[name] = RecordInfo("metrics", items=_plain(dict(rec)))
        elif isinstance(rec, ConfigRecord):
            recs[name] = RecordInfo("config", items=_plain(dict(rec)))
        else:  # pragma: no cover - Flower record types are closed
            recs[name] = RecordInfo("config", items={"<unknown record type>": type(rec).__name__})
    return MessageInfo(message.metadata.message_type, recs, meta=meta)


def _array_info(name: str, a: Array) -> ArrayInfo:
    data = bytes(a.data) if isinstance(a.data, (bytes, bytearray, memoryview)) else b""
    shape = tuple(int(s) for s in a.shape) if all(isinstance(s, int) for s in a.shape) else ()
    dtype = str(a.dtype)
    problem = None
    if a.stype != NUMPY_STYPE:
        problem = "stype is not numpy.ndarray"
    elif not data and len(a.data):
        problem = "data is not bytes"
    else:
        problem = npy_problem(data, dtype, shape)
    return ArrayInfo(name, shape, dtype, len(a.data), hashlib.sha256(data).hexdigest(), problem is None, problem)


def _metadata(message: Message) -> dict[str, Any]:
    md = message.metadata
    return {"run_id": md.run_id, "message_id": md.message_id, "src_node_id": md.src_node_id,
            "dst_node_id": md.dst_node_id, "reply_to_message_id": md.reply_to_message_id,
            "group_id": md.group_id, "created_at": md.created_at, "ttl": md.ttl,
            "delivered_at": md.delivered_at}


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """Config/metric values as plain Python (bytes stay bytes, so the guard can refuse them)."""
    return {k: (list(v) if isinstance(v, list) else v) for k, v in d.items()}
