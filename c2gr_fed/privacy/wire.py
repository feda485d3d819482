"""A Flower-free description of a message: what the guard checks and the transfer log records.

c2gr_fed.federation turns a Flower Message into a `MessageInfo`; nothing here imports flwr. Payloads
(array bytes, config values) are summarised by sizes and SHA-256 hashes, never stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

RecordKind = Literal["arrays", "config", "metrics"]


@dataclass(frozen=True)
class ArrayInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    sha256: str
    parsed: bool = True
    """the serialised bytes are exactly the canonical .npy form of `dtype` x `shape` with stype numpy.ndarray
    (npy_format); False also when the bytes were not parsed."""
    problem: str | None = None
    """why `parsed` is False (names no content)."""


@dataclass
class RecordInfo:
    kind: RecordKind
    arrays: list[ArrayInfo] = field(default_factory=list)
    items: dict[str, Any] = field(default_factory=dict)
    """config / metric values (kept in memory for the guard; the log stores only types, sizes and hashes)."""

    def nbytes(self) -> int:
        if self.kind == "arrays":
            return sum(a.nbytes for a in self.arrays)
        return len(json.dumps(self.items, sort_keys=True, default=str).encode())


@dataclass
class MessageInfo:
    message_type: str
    records: dict[str, RecordInfo]
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    """transport metadata (ids, group, times): checked against the request, never logged."""

    def nbytes(self) -> int:
        return sum(r.nbytes() for r in self.records.values())

    def summary(self) -> dict[str, Any]:
        """The log form: names, shapes, dtypes, byte counts and hashes; config values only as type/len/hash."""
        recs: dict[str, Any] = {}
        for name, r in sorted(self.records.items()):
            if r.kind == "arrays":
                recs[name] = {
                    "kind": "arrays",
                    "bytes": r.nbytes(),
                    "arrays": [[a.name, list(a.shape) if isinstance(a.shape, tuple) else a.shape, a.dtype, a.nbytes,
                                a.sha256, a.parsed] for a in r.arrays],
                }
            else:
                recs[name] = {
                    "kind": r.kind,
                    "bytes": r.nbytes(),
                    "keys": {k: _describe(v) for k, v in sorted(r.items.items())},
                }
        return {"message_type": self.message_type, "records": recs, "bytes": self.nbytes(), "error": self.error}


def _describe(v: Any) -> dict[str, Any]:
    h = hashlib.sha256(json.dumps(v, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if isinstance(v, list):
        out: dict[str, Any] = {"type": f"list[{type(v[0]).__name__ if v else 'empty'}]", "len": len(v), "sha256": h}
        if v and all(isinstance(x, str) for x in v):
            # per-item short hashes and the longest item: the audit checks them against the declared values
            out["items"] = [_describe(x)["sha256"] for x in v]
            out["max_len"] = max(len(x) for x in v)
        return out
    if isinstance(v, (str, bytes)):
        return {"type": type(v).__name__, "len": len(v), "sha256": h}
    return {"type": type(v).__name__, "sha256": h}
