"""Every real data source behind one interface: list a task's items (pairs or cases), read one item into slices.

    list_items(task, root) -> (items, label plan or None)
    read_item(item, task, plan, image_size) -> [Slice]   # image (3, S, S) float32 in [-1, 1], mask (S, S) int64
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from ..scenario.schema import (
    CaseFoldersSource,
    Folder2DSource,
    MSDSource,
    Nifti3DSource,
    NnUNetSource,
    TaskSpec,
)
from .layouts import Case, LabelPlan, case_folder_cases, msd_cases, nnunet_cases, read_case
from .readers.folder2d import Pair, list_pairs, read_pair
from .readers.nifti3d import Slice, list_volume_pairs, read_volume_pair

Item = Union[Pair, Case]


def list_items(task: TaskSpec, root: Path) -> tuple[list[Item], LabelPlan | None]:
    """The task's items sorted by id, with the label plan of a layout source (None for folder2d / nifti3d)."""
    src = task.data
    if isinstance(src, Folder2DSource):
        return list(list_pairs(src, root)), None
    if isinstance(src, Nifti3DSource):
        return list(list_volume_pairs(src, root)), None
    if isinstance(src, NnUNetSource):
        cases, plan = nnunet_cases(src, root, task.classes, task.name)
    elif isinstance(src, MSDSource):
        cases, plan = msd_cases(src, root, task.classes, task.name)
    elif isinstance(src, CaseFoldersSource):
        cases, plan = case_folder_cases(src, root)
    else:  # pragma: no cover - the schema's union is closed
        raise TypeError(f"task {task.name!r}: no reader for data kind {src.kind!r}")
    return list(cases), plan


def read_item(item: Item, task: TaskSpec, plan: LabelPlan | None, image_size: int) -> list[Slice]:
    """One item -> its slices (one for a 2D pair)."""
    src, k = task.data, len(task.classes)
    if isinstance(item, Case):
        assert plan is not None
        return read_case(item, src, plan, image_size, k, task.name)
    if isinstance(src, Folder2DSource):
        img, mask = read_pair(item, src, image_size, k, task.name)
        return [Slice(item.stem, img, mask)]
    assert isinstance(src, Nifti3DSource)
    return read_volume_pair(item, src, image_size, k, task.name)
