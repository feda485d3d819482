"""The run artefacts the audit reports on, by hash: the coordinator's log events record them, the audit
recomputes them, so an artefact edited after the run no longer matches its log."""

from __future__ import annotations

import hashlib
from pathlib import Path

ARTEFACTS = ("rounds.jsonl", "matrix.json", "summary.json", "memorisation.json")


def artefact_hashes(run_dir: Path) -> dict[str, str | None]:
    """name -> SHA-256 of the file (None when the run has not written it)."""
    out: dict[str, str | None] = {}
    for name in ARTEFACTS:
        path = Path(run_dir) / name
        out[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
    return out
