"""Export a run's results (not its models) into a folder that can be committed or shared.

What is copied: the resolved scenario, run.json, the matrices, per-round metrics, the summary, the report, the
audit (if `c2gr-fed audit` ran), the run's figures, and the departments' PNG/markdown outputs
(replay grids, memorisation plots); the transfer log (sizes and hashes only, about 0.8 MB for a 5-task
run) only when asked (`with_transfer_log`). What is not: checkpoints (model weights), progress files and logs, the
departments' errors logs (their own error texts) and the run's transfer-log key (RUN_DIR/keys/: whoever holds it can
re-chain the log, so it stays with the coordinator's operator and reaches an auditor separately). Replay
grids show synthetic samples that never crossed the wire; they leave the departments' folders only through this
deliberate export, which names every file it writes.
An export keeps the run-directory layout, so `c2gr-fed report` and `c2gr-fed bench --tabulate-only` read it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import RunDirError
from .layout import RunDir

TOP_LEVEL = ("scenario.yaml", "run.json", "summary.json", "matrix.csv", "matrix.json", "rounds.jsonl", "report.md",
             "audit.md", "audit.json", "memorisation.json")
FIGURE_PATTERNS = ("figures/*.png", "departments/*/*.png", "departments/*/*.md")


def export_results(run_root: Path, dest: Path, with_transfer_log: bool = False) -> list[Path]:
    """Copy the results of the run at `run_root` into `dest` (created); returns the files written, relative to dest."""
    run = RunDir(Path(run_root))
    if not run.matrix_json.exists() or not run.summary.exists():
        raise RunDirError(f"{run_root}: no matrix.json/summary.json: not a run directory, or no round has completed yet")
    dest = Path(dest)
    if dest.resolve() == run.root.resolve():
        raise RunDirError(f"export destination {dest} is the run directory itself")
    written: list[Path] = []
    names = (*TOP_LEVEL, run.transfers.name) if with_transfer_log else TOP_LEVEL
    sources = [run.root / name for name in names if (run.root / name).is_file()]
    for pattern in FIGURE_PATTERNS:
        sources += sorted(p for p in run.root.glob(pattern) if p.is_file())
    for src in sources:
        rel = src.relative_to(run.root)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
        written.append(rel)
    return written
