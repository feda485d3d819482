"""Tamper-evident transfer log: one JSON line per message, each carrying the hash of the previous line.

Entries hold sizes, shapes, dtypes and hashes, never payloads or weights. `verify_chain` recomputes every
link, so an edited, inserted or deleted line is found. The chain is anchored two ways:
- a per-run key (RUN_DIR/keys/transfer-log.key, made by the coordinator): every entry carries an HMAC of its
  hash, so whoever holds the key detects a rewritten chain (entries deleted or edited and the hashes recomputed);
- the coordinator's own events: "round-done" after every checkpointed round and "end" when the run stops
  (status, completed and planned rounds, the refused entry, the hashes of the artefacts the audit reports on),
  so a shortened log lacks its end record and a log cut at a round boundary disagrees with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

GENESIS = "0" * 64
KEY_FILE = "keys/transfer-log.key"
"""Relative to the run directory: the coordinator's per-run HMAC key (export leaves it out)."""


def run_key(run_dir: Path, create: bool = False) -> bytes | None:
    """The run's log key (created, mode 0600, when `create` and absent); None when there is none."""
    path = Path(run_dir) / KEY_FILE
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def entry_mac(key: bytes, entry_hash: str) -> str:
    return hmac.new(key, entry_hash.encode(), hashlib.sha256).hexdigest()


def _entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k not in ("hash", "mac")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class TransferLog:
    """Append-only JSONL with a hash chain. Opening an existing log continues its chain (resume)."""

    def __init__(self, path: Path, key: bytes | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._last = GENESIS
        self._seq = 0
        if self.path.exists():
            for entry in read_log(self.path):
                self._last = entry["hash"]
                self._seq = entry["seq"] + 1

    @property
    def head(self) -> str:
        """The hash of the last entry (GENESIS when empty): what an auditor keeps to pass as `audit --head`."""
        return self._last

    @property
    def position(self) -> int:
        """Number of entries written so far (checkpoints record it)."""
        return self._seq

    def truncate_to(self, position: int) -> None:
        """Drop entries past `position` (those of a round that did not complete before a crash)."""
        entries = list(read_log(self.path)) if self.path.exists() else []
        keep = entries[:position]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in keep))
        os.replace(tmp, self.path)
        self._last = keep[-1]["hash"] if keep else GENESIS
        self._seq = len(keep)

    def append(self, **fields: Any) -> dict[str, Any]:
        entry = {"seq": self._seq, "time": round(time.time(), 3), **fields, "prev": self._last}
        entry["hash"] = _entry_hash(entry)
        if self.key is not None:
            entry["mac"] = entry_mac(self.key, entry["hash"])
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._last = entry["hash"]
        self._seq += 1
        return entry


def read_log(path: Path) -> Iterator[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: not a JSON line ({exc})") from None


def verify_chain(path: Path, key: bytes | None = None) -> list[str]:
    """Problems found in the chain (empty list: intact); with the run's key, every entry's HMAC too."""
    problems: list[str] = []
    prev = GENESIS
    try:
        for i, entry in enumerate(read_log(path)):
            if entry.get("seq") != i:
                problems.append(f"entry {i}: sequence number {entry.get('seq')} (expected {i}): an entry was removed or inserted")
            if entry.get("prev") != prev:
                problems.append(f"entry {i}: previous-hash link broken")
            if _entry_hash(entry) != entry.get("hash"):
                problems.append(f"entry {i}: content does not match its hash (edited)")
            if key is not None and not hmac.compare_digest(str(entry.get("mac", "")),
                                                           entry_mac(key, str(entry.get("hash", "")))):
                problems.append(f"entry {i}: its key MAC does not match (the chain was rewritten)")
            prev = entry.get("hash", "")
    except ValueError as exc:
        problems.append(str(exc))
    return problems
