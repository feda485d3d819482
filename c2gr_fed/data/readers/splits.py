"""Train/val/test splits of real data: official by file-name pattern, else seeded 60/15/25 by patient or image.

Deterministic: the permutation is seeded by a stable hash of (scenario seed, task name), never Python's hash().
A patient (the patient_pattern group, else the item itself) never appears in two splits.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Sequence

import numpy as np

from ...errors import DataError
from ...scenario.schema import SplitRule

SPLIT_NAMES = ("train", "val", "test")


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from the parts' text, identical across processes and Python versions."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") & ((1 << 63) - 1)


def _compile(pattern: str, field: str, task: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise DataError(f"task {task!r}: data.split.{field} = {pattern!r} is not a valid regex ({exc})") from None


def patient_ids(stems: Sequence[str], rule: SplitRule, task: str) -> list[str]:
    """The patient id of every item: the first group of patient_pattern (or the whole match); the stem itself
    when there is no patient_pattern. A stem the pattern does not match is an error."""
    if rule.patient_pattern is None:
        return list(stems)
    rx = _compile(rule.patient_pattern, "patient_pattern", task)
    out = []
    for s in stems:
        m = rx.search(s)
        if m is None:
            raise DataError(
                f"task {task!r}: file stem {s!r} does not match data.split.patient_pattern {rule.patient_pattern!r}"
            )
        out.append(m.group(1) if rx.groups else m.group(0))
    return out


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def _counts_line(groups: Sequence[str], assign: dict[str, str], unit: str) -> str:
    parts = []
    for name in SPLIT_NAMES:
        n_items = sum(1 for g in groups if assign.get(g) == name)
        n_groups = len({g for g in groups if assign.get(g) == name})
        parts.append(f"{name} {n_items} ({n_groups} {unit})")
    return ", ".join(parts)


def _shuffled(groups: Sequence[str], seed: int, task: str, salt: str) -> list[str]:
    uniq = sorted(set(groups))
    rng = np.random.default_rng(stable_seed(seed, task, salt))
    return [uniq[i] for i in rng.permutation(len(uniq))]


def split_items(stems: Sequence[str], rule: SplitRule, seed: int, task: str) -> dict[str, list[int]]:
    """Indices of `stems` per split (each list in the stems' order). Raises DataError for an empty split that
    should hold data, an item outside the official patterns, or a patient on both sides of an official split."""
    if not stems:
        raise DataError(f"task {task!r}: no items to split")
    groups = patient_ids(stems, rule, task)
    unit = "patients" if rule.patient_pattern else "cases"
    assign: dict[str, str] = {}

    if rule.train_pattern is not None or rule.test_pattern is not None:
        rx_train = _compile(rule.train_pattern, "train_pattern", task) if rule.train_pattern else None
        rx_test = _compile(rule.test_pattern, "test_pattern", task) if rule.test_pattern else None
        official: dict[str, str] = {}
        for s, g in zip(stems, groups):
            is_train = bool(rx_train.search(s)) if rx_train else None
            is_test = bool(rx_test.search(s)) if rx_test else None
            if is_train is None:
                is_train = not is_test
            if is_test is None:
                is_test = not is_train
            if is_train and is_test:
                raise DataError(
                    f"task {task!r}: file stem {s!r} matches both data.split.train_pattern {rule.train_pattern!r} "
                    f"and test_pattern {rule.test_pattern!r}"
                )
            if not is_train and not is_test:
                raise DataError(
                    f"task {task!r}: file stem {s!r} matches neither data.split.train_pattern {rule.train_pattern!r} "
                    f"nor test_pattern {rule.test_pattern!r}"
                )
            side = "train" if is_train else "test"
            if official.setdefault(g, side) != side:
                raise DataError(
                    f"task {task!r}: patient {g!r} (data.split.patient_pattern) has files in both the official "
                    f"train and test splits, e.g. {s!r}"
                )
        train_groups = [g for g in _shuffled(groups, seed, task, "val") if official[g] == "train"]
        n_val = _round(rule.val_from_train * len(train_groups))
        if rule.val_from_train > 0 and len(train_groups) >= 2:
            n_val = min(max(n_val, 1), len(train_groups) - 1)
        for i, g in enumerate(train_groups):
            assign[g] = "val" if i < n_val else "train"
        for g, side in official.items():
            if side == "test":
                assign[g] = "test"
        wanted = {"train": True, "val": rule.val_from_train > 0, "test": True}
        how = f"official split (train_pattern {rule.train_pattern!r}, test_pattern {rule.test_pattern!r})"
    else:
        order = _shuffled(groups, seed, task, "split")
        n = len(order)
        f_train, f_val, f_test = rule.fractions
        counts = {"test": _round(f_test * n), "val": _round(f_val * n)}
        counts["train"] = n - counts["test"] - counts["val"]
        fracs = {"train": f_train, "val": f_val, "test": f_test}
        for name in ("train", "test", "val"):  # every split with a positive share gets a group if there is one
            if fracs[name] > 0 and counts[name] <= 0:
                donor = max(SPLIT_NAMES, key=lambda k: counts[k])
                if counts[donor] > 1:
                    counts[donor] -= 1
                    counts[name] = 1
        counts = {k: max(v, 0) for k, v in counts.items()}
        i = 0
        for name in ("test", "val", "train"):
            for g in order[i : i + counts[name]]:
                assign[g] = name
            i += counts[name]
        wanted = {k: v > 0 for k, v in fracs.items()}
        how = f"fractions {list(rule.fractions)} by {unit}"

    out = {name: [i for i, g in enumerate(groups) if assign[g] == name] for name in SPLIT_NAMES}
    for name in SPLIT_NAMES:
        if wanted[name] and not out[name]:
            raise DataError(
                f"task {task!r}: the {name} split is empty ({how}; {len(stems)} files, "
                f"{len(set(groups))} {unit}: {_counts_line(groups, assign, unit)})"
            )
    return out


def split_wanted(rule: SplitRule, split: str) -> bool:
    """Whether the rule promises data in this split (val may be empty on purpose)."""
    if split != "val":
        return True
    if rule.train_pattern is not None or rule.test_pattern is not None:
        return rule.val_from_train > 0
    return rule.fractions[1] > 0


def slice_block(index: int, of: int, rule: SplitRule) -> str | None:
    """split.unit slice_block: the split of slice `index` of `of` along the slicing axis, by contiguous blocks in
    the order train, val, test (`fractions`); None for the `block_gap` slices dropped at each block border."""
    f_train, f_val, _ = rule.fractions
    n_train = _round(f_train * of)
    n_val = _round(f_val * of)
    bounds = (("train", 0, n_train), ("val", n_train, n_train + n_val), ("test", n_train + n_val, of))
    for name, lo, hi in bounds:
        if lo <= index < hi:
            if name != "train" and index < lo + rule.block_gap:
                return None
            return name
    return None
