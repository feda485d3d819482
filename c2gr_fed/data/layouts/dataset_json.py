"""dataset.json of nnU-Net v2 and the Decathlon: reading it, resolving channel names and selecting classes by label
name. Every error names the dataset.json file and its field."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Sequence, Union

from ...errors import DataError
from ...scenario.schema import MaskEncoding
from .case import LabelPlan


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    if not close:
        close = [c for c in choices if c.lower() == word.lower()]
    return f"; did you mean {close[0]!r}?" if close else ""


def load_dataset_json(root: Path) -> tuple[dict[str, Any], Path]:
    """-> (the parsed dataset.json of a dataset folder, its path)."""
    path = root / "dataset.json"
    if not path.is_file():
        raise DataError(f"{path}: dataset.json not found (expected in the dataset folder {root})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with the dataset's fields, got {type(data).__name__}")
    return data, path


def field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], path: Path, expected: str) -> Any:
    """A required dataset.json field of the given type, else a DataError saying what was expected."""
    if name not in data:
        raise DataError(f"{path}: field {name!r} is missing; expected {expected}{did_you_mean(name, list(data))}")
    value = data[name]
    if not isinstance(value, kind):
        raise DataError(f"{path}: field {name!r} is a {type(value).__name__}; expected {expected}")
    return value


def channel_names(declared: dict[str, Any], path: Path, name: str) -> list[str]:
    """{"0": "T2", "1": "ADC"} -> ["T2", "ADC"]; the keys must be 0..n-1."""
    try:
        keys = sorted(int(k) for k in declared)
    except ValueError:
        raise DataError(f"{path}: field {name!r} keys must be channel indices \"0\", \"1\", ...; got "
                        f"{list(declared)}") from None
    if keys != list(range(len(keys))) or not keys:
        raise DataError(f"{path}: field {name!r} must number the channels 0..n-1; got {list(declared)}")
    return [str(declared[str(k)]) for k in keys]


def resolve_channels(wanted: Sequence[Union[int, str]] | None, names: list[str], path: Path, name: str,
                     task: str) -> tuple[int, ...]:
    """The channel indices a task uses: data.channels by name or index, or the only channel."""
    if wanted is None:
        if len(names) != 1:
            raise DataError(f"task {task!r}: {path} declares {len(names)} channels {names} in {name!r}; choose 1 or 3 "
                            "with data.channels, e.g. channels: [" + names[0] + "]")
        return (0,)
    out = []
    for w in wanted:
        if isinstance(w, int):
            if not 0 <= w < len(names):
                raise DataError(f"task {task!r}: data.channels index {w} is outside the {len(names)} channels of "
                                f"{path} field {name!r} ({names})")
            out.append(w)
            continue
        matches = [i for i, n in enumerate(names) if n == w] or [i for i, n in enumerate(names) if n.lower() == w.lower()]
        if not matches:
            raise DataError(f"task {task!r}: data.channels names {w!r}, which {path} field {name!r} does not declare; "
                            f"declared: {names}{did_you_mean(w, names)}")
        out.append(matches[0])
    return tuple(out)


def label_plan(declared: dict[str, tuple[int, ...]], classes: list[str], selection: dict[str, Any] | None,
               path: Path, task: str) -> LabelPlan:
    """Select the task's classes from a dataset's declared labels (name -> values) by name.

    Class k (1-based) takes every value of the label name(s) data.labels gives it (default: its own name); every
    other declared value becomes background. A value outside the declared labels is an error when read."""
    names = list(declared)
    if selection:
        unknown = [c for c in selection if c not in classes]
        if unknown:
            raise DataError(f"task {task!r}: data.labels names {unknown}, which are not task classes {classes}"
                            f"{did_you_mean(unknown[0], classes)}")
    value_map = {v: 0 for values in declared.values() for v in values}
    owner: dict[int, str] = {}
    for k, cls in enumerate(classes, start=1):
        chosen = (selection or {}).get(cls, cls)
        for label in [chosen] if isinstance(chosen, str) else list(chosen):
            match = label if label in declared else next((n for n in names if n.lower() == label.lower()), None)
            if match is None:
                raise DataError(
                    f"task {task!r}: class {cls!r} selects label {label!r}, which {path} field 'labels' does not "
                    f"declare; declared: {names}{did_you_mean(label, names)} (map task classes to label names "
                    "with data.labels)")
            for v in declared[match]:
                if v in owner and owner[v] != cls:
                    raise DataError(f"task {task!r}: label value {v} ({match!r}) is selected by both class "
                                    f"{owner[v]!r} and class {cls!r}; give each value to one class in data.labels")
                owner[v] = cls
                value_map[v] = k
    return LabelPlan(MaskEncoding(value_map=value_map), frozenset(value_map), f"{path} field 'labels'")
