"""One folder per case, files named by suffix: BraTS (`{case}_t1.nii.gz` ... `{case}_seg.nii.gz`), KiTS
(`imaging.nii.gz`, `segmentation.nii.gz`), M&Ms (`{case}_sa.nii.gz`, `{case}_sa_gt.nii.gz`, vendors from the
dataset's CSV through data.case_table)."""

from __future__ import annotations

import csv
from pathlib import Path

from ...errors import DataError
from ...scenario.schema import CaseFoldersSource
from .case import Case, LabelPlan
from .dataset_json import did_you_mean


def _named(template: str, case: str) -> str:
    return template.replace("{case}", case)


def _table_ids(src: CaseFoldersSource, root: Path) -> set[str]:
    assert src.case_table is not None
    path = root / src.case_table.file
    if not path.is_file():
        raise DataError(f"{path}: data.case_table.file not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    columns = list(rows[0]) if rows else []
    for col in [src.case_table.id_column, *src.case_table.where]:
        if col not in columns:
            raise DataError(f"{path}: no column {col!r} (data.case_table); columns: {columns}{did_you_mean(col, columns)}")
    return {r[src.case_table.id_column].strip() for r in rows
            if all(str(r[c]).strip() == v for c, v in src.case_table.where.items())}


def _file(folder: Path, template: str, what: str) -> Path:
    f = folder / _named(template, folder.name)
    if not f.is_file():
        present = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        raise DataError(f"{folder}: the {what} file {f.name} is missing (data.{what} {template!r}); the folder holds "
                        f"{present[:8]}{did_you_mean(f.name, present)}")
    return f


def case_folder_cases(src: CaseFoldersSource, root: Path) -> tuple[list[Case], LabelPlan]:
    """Every case folder matching data.cases (and data.case_table), sorted by name, cut to data.limit."""
    globs = [src.cases] if isinstance(src.cases, str) else list(src.cases)
    folders = sorted({p for g in globs for p in root.glob(g) if p.is_dir() and not p.name.startswith(".")})
    if not folders:
        raise DataError(f"{root}: no case folders match data.cases {src.cases!r}; expected one folder per case")
    if src.case_table is not None:
        ids = _table_ids(src, root)
        if not ids:
            raise DataError(f"{root / src.case_table.file}: no row matches data.case_table.where {src.case_table.where}")
        missing = sorted(ids - {f.name for f in folders})
        if missing:
            raise DataError(f"{root}: case(s) {missing[:8]} of {src.case_table.file} have no folder matching "
                            f"data.cases {src.cases!r}")
        folders = [f for f in folders if f.name in ids]
    seen: dict[str, Path] = {}
    cases = []
    for folder in folders:
        if folder.name in seen:
            raise DataError(f"{folder}: case id {folder.name!r} repeats ({seen[folder.name]})")
        seen[folder.name] = folder
        images = tuple(_file(folder, t, "images") for t in src.images)
        cases.append(Case(folder.name, images, _file(folder, src.label, "label")))
    return cases[: src.limit] if src.limit else cases, LabelPlan(src.mask)
