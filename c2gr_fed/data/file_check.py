"""Open the files a task will read, before anything trains: every one (`validate`) or a declared sample
(`validate --quick`, and `run` before it starts the federation).

The sample of a task: its first and last pair, plus the first pair of each combination of file types (image
extension, mask extension, TIFF compression), so that a decoder the machine lacks is found before round 1.
Files are decoded exactly as the departments decode them (same readers, value maps and class checks); nothing is
kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..scenario.schema import PhantomSource, Scenario, TaskSpec
from .loading import _root_of, _split_of, check_task_source
from .sources import Item, read_item


@dataclass(frozen=True)
class FilesOpened:
    task: str
    pairs: int
    """pairs decoded (image + mask, or image + label volume)"""
    of: int
    """pairs the task reads in all (the union of its splits)"""


def _file_kind(path: Path) -> str:
    """Extension, plus the compression for TIFF (an LZW TIFF needs another decoder than a plain one)."""
    kind = "".join(path.suffixes[-2:]).lower() if path.name.lower().endswith(".nii.gz") else path.suffix.lower()
    if kind in (".tif", ".tiff"):
        try:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                kind += f":{getattr(tif.pages[0].compression, 'name', tif.pages[0].compression)}"
        except Exception:  # unreadable: the decode below names the file
            kind += ":?"
    return kind


def sample_pairs(pairs: list[Item]) -> list[Item]:
    """The quick check's sample: first, last, and the first pair of every (image kind, mask kind)."""
    chosen: dict[str, Item] = {}
    seen: set[tuple[str, str]] = set()
    for i, pair in enumerate(pairs):
        kinds = (_file_kind(pair.image), _file_kind(pair.mask))
        if i in (0, len(pairs) - 1) or kinds not in seen:
            chosen[pair.stem] = pair
        seen.add(kinds)
    return list(chosen.values())


def open_task_files(scenario: Scenario, task: TaskSpec, data_root: Path | None = None,
                    quick: bool = False) -> FilesOpened:
    """Decode every pair the task will read (or the quick sample); raises DataError naming the first file that
    does not load. Phantom tasks only get the cheap checks (there are no files)."""
    check_task_source(scenario, task, data_root)
    if isinstance(task.data, PhantomSource):
        return FilesOpened(task.name, 0, 0)
    root = _root_of(scenario, task, data_root)
    pairs, parts, plan = _split_of(scenario.seed, task, root)
    used = [pairs[i] for i in sorted({i for idx in parts.values() for i in idx})]
    todo = sample_pairs(used) if quick else used
    for item in todo:
        read_item(item, task, plan, scenario.image_size)
    return FilesOpened(task.name, len(todo), len(used))
