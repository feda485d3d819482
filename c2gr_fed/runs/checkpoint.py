"""Atomic, verified checkpoints after every round: state arrays, pool, matrix, random seed position, log position.

A checkpoint is written to a temporary file and moved into place with os.replace, read back and checked against
the SHA-256 that `latest.json` records, and only then does `latest.json` point to it. The previous round's
checkpoint stays (its metadata in `previous.json`) until the next one is verified; older ones are removed. A crash,
a kill or a full disk at any moment therefore leaves at least one complete checkpoint, and resume falls back to
the previous one when the latest is corrupt (truncated by a killed copy, say), naming the corrupt file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RunDirError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave a half file behind
        raise


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
    fell_back: str | None = None
    """Set when resume fell back to the previous checkpoint: what was wrong with the latest one."""


LATEST = "latest.json"
PREVIOUS = "previous.json"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(directory: Path, ck: Checkpoint) -> Path:
    """Write, verify, then publish round `ck.completed_rounds`; keep the previous one, remove older ones. Raises
    RunDirError (the previous checkpoint untouched) when the file cannot be written or does not read back."""
    buf = io.BytesIO()
    flat = {f"{rec}/{name}": arr for rec, arrs in ck.arrays.items() for name, arr in arrs.items()}
    np.savez(buf, **flat)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    name = f"round_{ck.completed_rounds:03d}.npz"
    path = directory / name
    kept = _meta_or_none(directory / LATEST)
    try:
        atomic_write_bytes(path, data)
        if sha256_of(path) != digest:
            raise OSError(f"{path} does not read back as written (SHA-256 differs)")
        meta = {"completed_rounds": ck.completed_rounds, "arrays": name, "arrays_sha256": digest, "pool": ck.pool,
                "matrix": ck.matrix, "log_position": ck.log_position, "scenario_sha": ck.scenario_sha,
                "extra": ck.extra}
        if kept is not None and kept.get("arrays") != name:
            atomic_write_text(directory / PREVIOUS, json.dumps(kept, indent=1))
        atomic_write_text(directory / LATEST, json.dumps(meta, indent=1))
    except OSError as exc:
        done = f"the checkpoint of round {kept['completed_rounds']} is kept" if kept else "no earlier checkpoint"
        raise RunDirError(f"{directory}: could not write the checkpoint of round {ck.completed_rounds} ({name}: "
                          f"{exc}); {done}. Free space or fix the folder, then resume") from None
    _remove_older(directory, keep={name, str((kept or {}).get("arrays"))})
    return path


def _remove_older(directory: Path, keep: set[str]) -> None:
    for old in directory.glob("round_*.npz"):
        if old.name not in keep:
            old.unlink(missing_ok=True)


def _meta_or_none(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and "arrays" in meta else None


def read_checkpoint_meta(directory: Path) -> dict[str, Any] | None:
    """latest.json (completed_rounds, array file, pool, matrix, log position...) without loading the arrays;
    None when there is no checkpoint. Raises ValueError/OSError on an unreadable file."""
    meta_path = directory / LATEST
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path} is not a JSON object")
    return meta


def _load_arrays(directory: Path, meta: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """The arrays of one checkpoint, after checking the file against its recorded SHA-256 (when it has one:
    checkpoints written before the checksum was recorded are loaded as they are)."""
    path = directory / str(meta["arrays"])
    expected = meta.get("arrays_sha256")
    if expected is not None and sha256_of(path) != expected:
        raise ValueError(f"{path.name} is corrupt: its SHA-256 differs from the one in the checkpoint metadata "
                         f"({path.stat().st_size} bytes on disk)")
    arrays: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as z:
        for key in z.files:
            rec, _, name = key.partition("/")
            arrays.setdefault(rec, {})[name] = z[key]
    return arrays


def _checkpoint(meta: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]]) -> Checkpoint:
    return Checkpoint(meta["completed_rounds"], arrays, meta["pool"], meta["matrix"], meta["log_position"],
                      meta["scenario_sha"], meta.get("extra", {}))


def load_checkpoint(directory: Path, fallback: bool = False) -> Checkpoint | None:
    """The latest checkpoint, verified. When it is unreadable or corrupt: with `fallback` (resume), the previous
    round's checkpoint, made the latest again (the corrupt file is renamed *.corrupt) and named in `fell_back`;
    otherwise a RunDirError naming the corrupt file and what can be done."""
    latest = directory / LATEST
    if not latest.exists():
        return None
    try:
        meta = read_checkpoint_meta(directory)
        assert meta is not None
        return _checkpoint(meta, _load_arrays(directory, meta))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        problem = f"{directory}: the latest checkpoint is unreadable ({type(exc).__name__}: {exc})"
    prev = _meta_or_none(directory / PREVIOUS)
    prev_problem = "there is no previous checkpoint"
    if prev is not None:
        try:
            ck = _checkpoint(prev, _load_arrays(directory, prev))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            prev_problem = f"the previous one (round {prev.get('completed_rounds')}) is unreadable too ({exc})"
        else:
            if not fallback:
                raise RunDirError(f"{problem}; the checkpoint of round {ck.completed_rounds} before it is intact: "
                                  f"c2gr-fed run --resume {directory.parent} goes on from there")
            _adopt_previous(directory, prev)
            ck.fell_back = problem
            return ck
    raise RunDirError(f"{problem}, and {prev_problem}: this run cannot be resumed. Its finished rounds' results "
                      f"stay in {directory.parent} (matrix.json, rounds.jsonl); start it again with another --out")


def _adopt_previous(directory: Path, prev: dict[str, Any]) -> None:
    """Make the previous checkpoint the latest again; keep the corrupt latest file aside as *.corrupt."""
    bad = _meta_or_none(directory / LATEST)
    if bad is not None and bad.get("arrays") != prev.get("arrays") and (directory / str(bad["arrays"])).exists():
        os.replace(directory / str(bad["arrays"]), directory / (str(bad["arrays"]) + ".corrupt"))
    atomic_write_text(directory / LATEST, json.dumps(prev, indent=1))
    (directory / PREVIOUS).unlink(missing_ok=True)
