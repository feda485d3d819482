"""nnU-Net v2 raw datasets: dataset.json + imagesTr/CASE_XXXX<file_ending> + labelsTr/CASE<file_ending>.

imagesTs/ has no labels in this layout, so the task's splits come from imagesTr (data.split); labels are selected by
name from dataset.json `labels` ({name: value} or {name: [values]} for nnU-Net regions).
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import DataError
from ...scenario.schema import NnUNetSource
from .case import Case, LabelPlan
from .dataset_json import channel_names, field, label_plan, load_dataset_json, resolve_channels

_CHANNEL_SUFFIX = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def _declared_labels(labels: dict, path: Path) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for name, value in labels.items():
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise DataError(f"{path}: field 'labels' entry {name!r}: {value!r}; expected a label value (int >= 0) or "
                            "a list of them (a region)")
        out[str(name)] = tuple(values)
    if 0 not in {v for vs in out.values() for v in vs}:
        raise DataError(f"{path}: field 'labels' declares no background (value 0); expected e.g. "
                        '"background": 0')
    return out


def _files(folder: Path, ending: str) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; an nnU-Net raw dataset keeps imagesTr/ and labelsTr/ beside "
                        "dataset.json")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name.endswith(ending))


def nnunet_cases(src: NnUNetSource, root: Path, classes: list[str], task: str) -> tuple[list[Case], LabelPlan]:
    """Every labelled case of imagesTr/labelsTr (sorted, cut to data.limit) and the label plan of the task."""
    data, path = load_dataset_json(root)
    names = channel_names(field(data, "channel_names", dict, path, 'the input channels, e.g. {"0": "CT"}'), path,
                          "channel_names")
    ending = field(data, "file_ending", str, path, 'the file extension of every image, e.g. ".nii.gz" or ".png"')
    declared = _declared_labels(field(data, "labels", dict, path, 'label names to values, e.g. {"background": 0, '
                                      '"liver": 1}'), path)
    wanted = resolve_channels(src.channels, names, path, "channel_names", task)

    image_dir, label_dir = root / "imagesTr", root / "labelsTr"
    by_case: dict[str, dict[int, Path]] = {}
    for f in _files(image_dir, ending):
        m = _CHANNEL_SUFFIX.match(f.name[: -len(ending)])
        if m is None:
            raise DataError(f"{f}: image file name lacks the channel suffix; expected CASE_XXXX{ending} "
                            f"(e.g. {f.name[: -len(ending)]}_0000{ending})")
        by_case.setdefault(m["case"], {})[int(m["channel"])] = f
    if not by_case:
        raise DataError(f"{image_dir}: no image files ending in {ending!r} (dataset.json field 'file_ending')")
    labels = {f.name[: -len(ending)]: f for f in _files(label_dir, ending)}

    expected = set(range(len(names)))
    cases: list[Case] = []
    for case, files in sorted(by_case.items()):
        if set(files) != expected:
            got = ", ".join(f"_{c:04d}" for c in sorted(files))
            raise DataError(f"{image_dir}: case {case!r} has channel files {got} but {path} field 'channel_names' "
                            f"declares {len(names)} channel(s) (_0000.._{len(names) - 1:04d})")
        if case not in labels:
            raise DataError(f"{files[min(files)]}: case {case!r} has no label; expected {label_dir / (case + ending)}")
        cases.append(Case(case, tuple(files[c] for c in wanted), labels[case], declared_in=f"{path}"))
    extra = sorted(set(labels) - set(by_case))
    if extra:
        raise DataError(f"{label_dir}: label(s) without images in imagesTr: {extra[:8]}; expected "
                        f"{image_dir / (extra[0] + '_0000' + ending)}")
    n = data.get("numTraining")
    if n is not None and n != len(cases):
        raise DataError(f"{path}: field 'numTraining' is {n} but imagesTr/labelsTr hold {len(cases)} case(s)")
    plan = label_plan(declared, classes, src.labels, path, task)
    return cases[: src.limit] if src.limit else cases, plan
