"""Medical Segmentation Decathlon tasks: dataset.json with `modality` ({"0": "FLAIR", ...}), `labels`
({"0": "background", "1": "edema", ...}) and a `training` list of {"image", "label"} paths relative to the task
folder. Multi-modal images are 4D with the channels on the last axis. The `test` list has no labels and is not used.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ...scenario.schema import MSDSource
from ..readers.decode import NIFTI_EXTENSIONS
from .case import Case, LabelPlan
from .dataset_json import channel_names, field, label_plan, load_dataset_json, resolve_channels


def _stem(path: Path) -> str:
    name = path.name
    ext = next((e for e in NIFTI_EXTENSIONS if name.lower().endswith(e)), "")
    return name[: len(name) - len(ext)] if ext else path.stem


def msd_cases(src: MSDSource, root: Path, classes: list[str], task: str) -> tuple[list[Case], LabelPlan]:
    """Every case of the `training` list (sorted by id, cut to data.limit) and the task's label plan."""
    data, path = load_dataset_json(root)
    names = channel_names(field(data, "modality", dict, path, 'the input channels, e.g. {"0": "CT"}'), path, "modality")
    labels = field(data, "labels", dict, path, 'label values to names, e.g. {"0": "background", "1": "liver"}')
    try:
        declared = {str(name): (int(value),) for value, name in labels.items()}
    except ValueError:
        raise DataError(f"{path}: field 'labels' keys must be label values (\"0\", \"1\", ...); got {list(labels)}") from None
    training = field(data, "training", list, path, 'a list of {"image": "./imagesTr/X.nii.gz", "label": '
                                                   '"./labelsTr/X.nii.gz"}')
    wanted = resolve_channels(src.channels, names, path, "modality", task)
    cases: dict[str, Case] = {}
    for i, entry in enumerate(training):
        if not isinstance(entry, dict) or not {"image", "label"} <= set(entry):
            raise DataError(f"{path}: field 'training'[{i}] is {entry!r}; expected an object with 'image' and 'label'")
        image, label = root / str(entry["image"]), root / str(entry["label"])
        for what, f in (("image", image), ("label", label)):
            if not f.is_file():
                raise DataError(f"{path}: field 'training'[{i}].{what} names {entry[what]!r}, but {f} is missing")
        stem = _stem(image)
        if stem in cases:
            raise DataError(f"{path}: field 'training' lists case {stem!r} twice (entry {i})")
        cases[stem] = Case(stem, (image,), label, wanted, len(names), f"{path} field 'modality'")
    if not cases:
        raise DataError(f"{path}: field 'training' is empty; expected the labelled cases")
    n = data.get("numTraining")
    if n is not None and n != len(cases):
        raise DataError(f"{path}: field 'numTraining' is {n} but field 'training' lists {len(cases)} case(s)")
    plan = label_plan(declared, classes, src.labels, path, task)
    out = [cases[s] for s in sorted(cases)]
    return out[: src.limit] if src.limit else out, plan
