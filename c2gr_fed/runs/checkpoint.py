"""Atomic checkpoints after every round: state arrays, pool, matrix, random seed position, log position.

A checkpoint is written to a temporary file and moved into place with os.replace, and `latest.json` is
replaced last, so a crash at any moment leaves the previous complete checkpoint readable.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RunDirError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@dataclass
class Checkpoint:
    completed_rounds: int
    arrays: dict[str, dict[str, np.ndarray]]
    pool: dict[str, Any]
    matrix: dict[str, Any]
    log_position: int
    scenario_sha: str
    extra: dict[str, Any]


def save_checkpoint(directory: Path, ck: Checkpoint) -> Path:
    buf = io.BytesIO()
    flat = {f"{rec}/{name}": arr for rec, arrs in ck.arrays.items() for name, arr in arrs.items()}
    np.savez(buf, **flat)
    name = f"round_{ck.completed_rounds:03d}.npz"
    atomic_write_bytes(directory / name, buf.getvalue())
    meta = {"completed_rounds": ck.completed_rounds, "arrays": name, "pool": ck.pool, "matrix": ck.matrix,
            "log_position": ck.log_position, "scenario_sha": ck.scenario_sha, "extra": ck.extra}
    atomic_write_text(directory / "latest.json", json.dumps(meta, indent=1))
    return directory / name


def read_checkpoint_meta(directory: Path) -> dict[str, Any] | None:
    """latest.json (completed_rounds, array file, pool, matrix, log position...) without loading the arrays;
    None when there is no checkpoint. Raises ValueError/OSError on an unreadable file."""
    meta_path = directory / "latest.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path} is not a JSON object")
    return meta


def load_checkpoint(directory: Path) -> Checkpoint | None:
    try:
        meta = read_checkpoint_meta(directory)
        if meta is None:
            return None
        with np.load(directory / meta["arrays"]) as z:
            arrays: dict[str, dict[str, np.ndarray]] = {}
            for key in z.files:
                rec, _, name = key.partition("/")
                arrays.setdefault(rec, {})[name] = z[key]
    except (OSError, ValueError, KeyError) as exc:
        raise RunDirError(f"{directory}: checkpoint unreadable ({exc}); remove the directory or restore it") from None
    return Checkpoint(meta["completed_rounds"], arrays, meta["pool"], meta["matrix"], meta["log_position"],
                      meta["scenario_sha"], meta.get("extra", {}))
