"""Export a run's results (not its models) into a folder that can be committed or shared.

What is copied: the resolved scenario, run.json, the matrices, per-round metrics, the summary, the report, the
transfer log and audit (sizes and hashes only), the run's figures, and the departments' PNG/markdown outputs
(replay grids, memorisation plots). What is not: checkpoints (model weights), progress files and logs. Replay
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
             "transfers.jsonl", "audit.md", "audit.json")
FIGURE_PATTERNS = ("figures/*.png", "departments/*/*.png", "departments/*/*.md")


def export_results(run_root: Path, dest: Path) -> list[Path]:
    """Copy the results of the run at `run_root` into `dest` (created); returns the files written, relative to dest."""
    run = RunDir(Path(run_root))
    if not run.matrix_json.exists() or not run.summary.exists():
        raise RunDirError(f"{run_root}: no matrix.json/summary.json: not a run directory, or no round has completed yet")
    dest = Path(dest)
    if dest.resolve() == run.root.resolve():
        raise RunDirError(f"export destination {dest} is the run directory itself")
    written: list[Path] = []
    sources = [run.root / name for name in TOP_LEVEL if (run.root / name).is_file()]
    for pattern in FIGURE_PATTERNS:
        sources += sorted(p for p in run.root.glob(pattern) if p.is_file())
    for src in sources:
        rel = src.relative_to(run.root)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
        written.append(rel)
    return written
