"""The single entry point to a task's data: phantom departments and real folders/volumes alike.

    load_task(scenario, task, split, data_root=None) -> TaskData
    check_task_source(scenario, task, data_root=None)  # cheap checks, raises DataError
    default_data_root()                                  # $C2GR_DATA_ROOT or None

Real data are read, split (official / by patient / by image), scaled to [-1, 1], resized to scenario.image_size
and cached in-process per (task JSON, seed, image size, data root, split), so repeated loads are cheap.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..scenario.schema import REAL_SOURCES, PhantomSource, Scenario, TaskSpec
from .layouts import LabelPlan
from .readers.splits import slice_block, split_items, split_wanted, stable_seed
from .sources import list_items, read_item
from .types import SPLITS, Split, TaskData

DATA_ROOT_ENV = "C2GR_DATA_ROOT"


def default_data_root() -> Path | None:
    """The data root from $C2GR_DATA_ROOT (relative `root`s in a scenario are resolved against it)."""
    value = os.environ.get(DATA_ROOT_ENV, "").strip()
    return Path(value).expanduser() if value else None


def clear_cache() -> None:
    """Forget every decoded task (e.g. after files changed on disk)."""
    _load_real_cached.cache_clear()
    _phantom_cached.cache_clear()


# -------------------------------------------------------------------------------------------------- phantom


def _phantom_api() -> tuple[Any, Any, Any]:
    from .phantoms import generate_phantom, phantom_num_classes, phantom_variants

    return generate_phantom, phantom_variants, phantom_num_classes


def _check_phantom(task: TaskSpec) -> None:
    src = task.data
    assert isinstance(src, PhantomSource)
    _, phantom_variants, phantom_num_classes = _phantom_api()
    variants = list(phantom_variants(src.generator))
    if src.variant not in variants:
        raise DataError(
            f"task {task.name!r}: data.variant = {src.variant!r} is not a variant of phantom generator "
            f"{src.generator!r}; allowed values: {variants}"
        )
    k = int(phantom_num_classes(src.generator))
    if len(task.classes) != k:
        raise DataError(
            f"task {task.name!r}: classes lists {len(task.classes)} class(es) {task.classes} but phantom generator "
            f"{src.generator!r} draws {k}; the classes field must name exactly {k}"
        )


@functools.lru_cache(maxsize=128)
def _phantom_cached(generator: str, variant: str, n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    generate_phantom, _, _ = _phantom_api()
    images, masks = generate_phantom(generator, variant, n, size, seed)
    images = torch.as_tensor(images).detach().cpu().to(torch.float32).numpy()
    masks = torch.as_tensor(masks).detach().cpu().to(torch.int64).numpy()
    images.setflags(write=False)
    masks.setflags(write=False)
    return images, masks


def _load_phantom(scenario: Scenario, task: TaskSpec, split: Split) -> TaskData:
    src = task.data
    assert isinstance(src, PhantomSource)
    _check_phantom(task)
    n = {"train": src.n_train, "val": src.n_val, "test": src.n_test}[split]
    size = scenario.image_size
    seed = stable_seed("phantom", scenario.seed, task.name, split) % (2**31 - 1)
    if n == 0:
        images, masks = np.zeros((0, 3, size, size), np.float32), np.zeros((0, size, size), np.int64)
    else:
        images, masks = _phantom_cached(src.generator, src.variant, n, size, seed)
    if images.shape[0] != n or images.shape[-2:] != (size, size):
        raise DataError(
            f"task {task.name!r}: phantom generator {src.generator!r} returned images {images.shape}, "
            f"expected ({n}, 3, {size}, {size})"
        )
    k = len(task.classes)
    if masks.size and (masks.min() < 0 or masks.max() > k):
        raise DataError(
            f"task {task.name!r}: phantom generator {src.generator!r} drew mask classes up to {int(masks.max())}, "
            f"the task has {k} class(es)"
        )
    ids = tuple(f"{task.name}-{split}-{i:05d}" for i in range(n))
    return TaskData(task.name, split, torch.tensor(images), torch.tensor(masks), k, ids)


# ----------------------------------------------------------------------------------------------------- real


def _root_of(scenario: Scenario, task: TaskSpec, data_root: Path | None) -> Path:
    src = task.data
    assert isinstance(src, REAL_SOURCES)
    if data_root is None:
        data_root = default_data_root()
    root = scenario.resolve_data_path(src.root, data_root)
    if not root.exists():
        hint = "" if Path(src.root).is_absolute() else (
            f" (relative to the data root {data_root})" if data_root is not None
            else f" (relative path and no data root: pass --data-root or set ${DATA_ROOT_ENV})"
        )
        raise DataError(f"task {task.name!r}: data.root {src.root!r} -> {root} not found{hint}")
    return root


def _check_value_map(task: TaskSpec) -> None:
    src = task.data
    assert isinstance(src, REAL_SOURCES)
    k = len(task.classes)
    mask = getattr(src, "mask", None)
    vm = mask.value_map if mask is not None else None
    if vm is not None:
        bad = {key: v for key, v in vm.items() if not 0 <= v <= k}
        if bad:
            raise DataError(
                f"task {task.name!r}: data.mask.value_map maps {bad} to classes outside 0..{k} "
                f"(the task has {k} class(es) {task.classes})"
            )
        if mask.default is not None and not 0 <= mask.default <= k:
            raise DataError(f"task {task.name!r}: data.mask.default is {mask.default}, outside the classes 0..{k} "
                            f"(the task has {k} class(es) {task.classes})")


def _split_of(seed: int, task: TaskSpec, root: Path) -> tuple[list[Any], dict[str, list[int]], LabelPlan | None]:
    """The task's items, the item indices of each split, and the label plan (layout sources). With split.unit
    slice_block every item is in every split and its slices are cut into blocks when read."""
    src = task.data
    assert isinstance(src, REAL_SOURCES)
    items, plan = list_items(task, root)
    if src.split.unit == "slice_block":
        if not items:
            raise DataError(f"task {task.name!r}: no items to split")
        every = list(range(len(items)))
        return items, {"train": every, "val": every, "test": every}, plan
    return items, split_items([p.stem for p in items], src.split, seed, task.name), plan


@functools.lru_cache(maxsize=64)
def _load_real_cached(
    task_json: str, seed: int, image_size: int, root: str, split: str
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    task = TaskSpec.model_validate_json(task_json)
    src = task.data
    pairs, parts, plan = _split_of(seed, task, Path(root))
    chosen = [pairs[i] for i in parts[split]]
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    ids: list[str] = []
    for item in chosen:
        for sl in read_item(item, task, plan, image_size):
            if src.split.unit == "slice_block":
                if sl.of == 1:
                    raise DataError(f"task {task.name!r}: data.split.unit slice_block cuts volumes into slice blocks, "
                                    f"but {item.stem!r} is a 2D image; use unit: case")
                if slice_block(sl.index, sl.of, src.split) != split:
                    continue
            images.append(sl.image)
            masks.append(sl.mask)
            ids.append(sl.case_id)
    if not images and split_wanted(src.split, split):
        counts = {s: len(parts[s]) for s in SPLITS}
        raise DataError(
            f"task {task.name!r}: the {split} split is empty after reading ({counts[split]} item(s) gave no slices; "
            f"items per split {counts}; skip_empty_slices={getattr(src, 'skip_empty_slices', None)})"
        )
    img_arr = np.stack(images) if images else np.zeros((0, 3, image_size, image_size), np.float32)
    mask_arr = np.stack(masks) if masks else np.zeros((0, image_size, image_size), np.int64)
    img_arr.setflags(write=False)
    mask_arr.setflags(write=False)
    return img_arr, mask_arr, tuple(ids)


def _load_real(scenario: Scenario, task: TaskSpec, split: Split, data_root: Path | None) -> TaskData:
    _check_value_map(task)
    root = _root_of(scenario, task, data_root)
    images, masks, ids = _load_real_cached(
        task.model_dump_json(), scenario.seed, scenario.image_size, str(root.resolve()), split
    )
    return TaskData(task.name, split, torch.tensor(images), torch.tensor(masks), len(task.classes), ids)


# ------------------------------------------------------------------------------------------------------ API


def load_task(scenario: Scenario, task: TaskSpec, split: Split, data_root: Path | None = None) -> TaskData:
    """One split of one task: images (N, 3, S, S) float32 in [-1, 1], masks (N, S, S) int64 in 0..K."""
    if split not in SPLITS:
        raise DataError(f"task {task.name!r}: unknown split {split!r}; allowed: {list(SPLITS)}")
    if isinstance(task.data, PhantomSource):
        return _load_phantom(scenario, task, split)
    return _load_real(scenario, task, split, data_root)


def check_task_source(scenario: Scenario, task: TaskSpec, data_root: Path | None = None) -> None:
    """Cheap checks without decoding pixels: phantom generator/variant/class count; for real data the folders,
    complete pairs, extensions, value_map classes, split patterns and non-empty splits."""
    if isinstance(task.data, PhantomSource):
        _check_phantom(task)
        return
    _check_value_map(task)
    root = _root_of(scenario, task, data_root)
    _split_of(scenario.seed, task, root)
