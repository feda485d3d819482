"""The only code that turns domain objects into Flower records and back, and describes Flower messages.

RecordDict layout (declared in c2gr_fed.privacy.schema):
  "segmentor", "prompts", "denoiser" (+ "extras")  ArrayRecord  model state_dicts (numpy arrays)
  "pool"                                           ConfigRecord prompt pool columns (lists of str / int)
  "train" / "evaluate" / "discover" / "audit"      ConfigRecord instruction (round, task, scenario hash)
  "round_metrics" / "dice" / "memorisation"        MetricRecord numbers only
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from ..learning.state import LearnerState
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


def pool_record(pool: PromptPool) -> ConfigRecord:
    return ConfigRecord(pool.to_wire())


def describe(message: Message) -> MessageInfo:
    """Sizes, shapes, dtypes and hashes of every record of a message (payloads stay in the message)."""
    if message.has_error():
        return MessageInfo(message.metadata.message_type, {}, error=str(message.error.reason)[-500:])
    recs: dict[str, RecordInfo] = {}
    for name, rec in message.content.items():
        if isinstance(rec, ArrayRecord):
            infos = [ArrayInfo(k, tuple(int(s) for s in a.shape), str(a.dtype), len(a.data), a.object_id)
                     for k, a in rec.items()]
            recs[name] = RecordInfo("arrays", arrays=infos)
        elif isinstance(rec, MetricRecord):
            recs[name] = RecordInfo("metrics", items=_plain(dict(rec)))
        elif isinstance(rec, ConfigRecord):
            recs[name] = RecordInfo("config", items=_plain(dict(rec)))
        else:  # pragma: no cover - Flower record types are closed
            recs[name] = RecordInfo("config", items={"<unknown record type>": type(rec).__name__})
    return MessageInfo(message.metadata.message_type, recs)


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """Config/metric values as plain Python (bytes stay bytes, so the guard can refuse them)."""
    return {k: (list(v) if isinstance(v, list) else v) for k, v in d.items()}
