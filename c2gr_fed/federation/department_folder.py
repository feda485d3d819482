"""Where a department node keeps its own outputs: replay previews, memorisation plots, its errors log, progress.

Every department writes under DEPT_ROOT/departments/NAME/ on its own node, where DEPT_ROOT is
  - $C2GR_DEPARTMENT_DIR/RUN_NAME when that environment variable is set on the node (for Ray, in the environment of
    `ray start` on that node),
  - else the run directory itself when the node sees it (one machine, or a shared filesystem): the report then
    embeds the previews, as before,
  - else TMP/c2gr-fed/RUN_NAME on the node (TMP: the node's temporary folder).
RUN_NAME is the last component of the coordinator's run directory. Nothing here is ever sent.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DEPARTMENT_DIR_ENV = "C2GR_DEPARTMENT_DIR"
"""Environment variable naming the folder under which a node's departments keep their outputs."""


def department_root(run_dir: str | Path | None) -> Path:
    """DEPT_ROOT for this node (see the module docstring); the department's folder is DEPT_ROOT/departments/NAME."""
    run_name = Path(run_dir).name if run_dir else "run"
    named = os.environ.get(DEPARTMENT_DIR_ENV, "").strip()
    if named:
        return Path(named).expanduser() / run_name
    if run_dir and Path(run_dir).is_dir():
        return Path(run_dir)
    return Path(tempfile.gettempdir()) / "c2gr-fed" / run_name


def department_folder(run_dir: str | Path | None, department: str) -> Path:
    """This node's folder for `department`'s own outputs (not created here)."""
    return department_root(run_dir) / "departments" / department


def visible_folder(path: str | Path | None) -> Path | None:
    """`path` when it is a folder this node sees (the coordinator's progress folder on one machine), else None."""
    if path and Path(path).is_dir():
        return Path(path)
    return None
