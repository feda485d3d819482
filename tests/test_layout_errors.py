"""Bad input in published layouts is refused before training, naming the file, the field and what was expected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from c2gr_fed.data.readers.folder2d import list_pairs
from c2gr_fed.data.sources import list_items, read_item
from c2gr_fed.errors import DataError
from c2gr_fed.scenario.schema import Folder2DSource, MaskEncoding, SplitRule, TaskSpec

from layout_replicas import save_nifti, volume_and_label, write_brats, write_msd, write_nnunet_3d

SIZE = 8


def task(data: dict, classes: list[str]) -> TaskSpec:
    return TaskSpec.model_validate({"name": "T", "modality": "MR", "region": "r", "objective": "o",
                                    "classes": classes, "data": data})


def read_everything(t: TaskSpec, root: Path) -> None:
    items, plan = list_items(t, root)
    for item in items:
        read_item(item, t, plan, SIZE)


def _edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# ----------------------------------------------------------------------------- dataset.json against the files


def test_msd_training_list_names_a_missing_case(tmp_path: Path) -> None:
    ds = write_msd(tmp_path, cases=3)
    (ds / "labelsTr/BRATS_001.nii.gz").unlink()
    t = task({"kind": "msd", "root": str(ds), "channels": ["FLAIR"]}, ["edema"])
    with pytest.raises(DataError, match=r"dataset\.json: field 'training'\[1\]\.label names "
                                        r"'\./labelsTr/BRATS_001\.nii\.gz', but .*BRATS_001\.nii\.gz is missing"):
        list_items(t, ds)


def test_nnunet_image_without_label_and_numtraining_disagreeing(tmp_path: Path) -> None:
    ds = write_nnunet_3d(tmp_path, cases=3)
    t = task({"kind": "nnunet", "root": str(ds), "channels": ["T2"]}, ["peripheral zone"])
    _edit_json(ds / "dataset.json", numTraining=5)
    with pytest.raises(DataError, match=r"dataset\.json: field 'numTraining' is 5 but imagesTr/labelsTr hold 3"):
        list_items(t, ds)
    (ds / "labelsTr/prostate_02.nii.gz").unlink()
    with pytest.raises(DataError, match=r"prostate_02_0000\.nii\.gz: case 'prostate_02' has no label; expected "
                                        r".*labelsTr/prostate_02\.nii\.gz"):
        list_items(t, ds)


def test_wrong_channel_count_nnunet_and_msd(tmp_path: Path) -> None:
    ds = write_nnunet_3d(tmp_path / "a", cases=2)
    (ds / "imagesTr/prostate_01_0001.nii.gz").unlink()
    t = task({"kind": "nnunet", "root": str(ds), "channels": ["T2"]}, ["peripheral zone"])
    with pytest.raises(DataError, match=r"case 'prostate_01' has channel files _0000 but .*dataset\.json field "
                                        r"'channel_names' declares 2 channel\(s\)"):
        list_items(t, ds)
    msd = write_msd(tmp_path / "b", cases=2, modalities=("FLAIR", "T1w", "t1gd"))
    _edit_json(msd / "dataset.json", modality={"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"})
    t = task({"kind": "msd", "root": str(msd), "channels": ["FLAIR"]}, ["edema"])
    with pytest.raises(DataError, match=r"BRATS_000\.nii\.gz: the image holds 3 channel\(s\) but .*dataset\.json "
                                        r"field 'modality' declares 4"):
        read_everything(t, msd)


def test_a_class_or_channel_the_dataset_does_not_declare_suggests_the_nearest(tmp_path: Path) -> None:
    ds = write_nnunet_3d(tmp_path, cases=2)
    t = task({"kind": "nnunet", "root": str(ds), "channels": ["T2"]}, ["peripheral zon"])
    with pytest.raises(DataError, match=r"class 'peripheral zon' selects label 'peripheral zon', which .*dataset\.json "
                                        r"field 'labels' does not declare; .*did you mean 'peripheral zone'\?"):
        list_items(t, ds)
    t = task({"kind": "nnunet", "root": str(ds), "channels": ["T3"]}, ["peripheral zone"])
    with pytest.raises(DataError, match=r"data\.channels names 'T3'.*'channel_names'.*did you mean 'T2'\?"):
        list_items(t, ds)
    t = task({"kind": "nnunet", "root": str(ds)}, ["peripheral zone"])
    with pytest.raises(DataError, match=r"declares 2 channels \['T2', 'ADC'\].*choose 1 or 3 with data\.channels"):
        list_items(t, ds)


def test_label_values_outside_the_declared_labels(tmp_path: Path) -> None:
    ds = write_nnunet_3d(tmp_path, cases=2)
    _, lab = volume_and_label(1)
    lab[0, 0, 0] = 7
    save_nifti(ds / "labelsTr/prostate_01.nii.gz", lab)
    t = task({"kind": "nnunet", "root": str(ds), "channels": ["T2"]}, ["peripheral zone"])
    with pytest.raises(DataError, match=r"prostate_01\.nii\.gz: label values \[7\] are not declared in .*dataset\.json "
                                        r"field 'labels' \(declared values: \[0, 1, 2\]\)"):
        read_everything(t, ds)


def test_a_broken_dataset_json_names_the_field(tmp_path: Path) -> None:
    ds = write_nnunet_3d(tmp_path, cases=1)
    data = json.loads((ds / "dataset.json").read_text())
    del data["file_ending"]
    (ds / "dataset.json").write_text(json.dumps(data))
    t = task({"kind": "nnunet", "root": str(ds), "channels": ["T2"]}, ["peripheral zone"])
    with pytest.raises(DataError, match=r"dataset\.json: field 'file_ending' is missing; expected the file extension"):
        list_items(t, ds)
    (ds / "dataset.json").write_text("{not json")
    with pytest.raises(DataError, match=r"dataset\.json: not valid JSON \(line 1"):
        list_items(t, ds)


# ------------------------------------------------------------------------------- volumes, folders, masks


@pytest.mark.parametrize("kind", ["nifti3d", "case_folders"])
def test_label_volume_with_another_shape_or_affine(tmp_path: Path, kind: str) -> None:
    img, lab = volume_and_label(0)
    if kind == "nifti3d":
        image_path, label_path = tmp_path / "images/c1.nii.gz", tmp_path / "labels/c1.nii.gz"
        data = {"kind": "nifti3d", "root": str(tmp_path)}
    else:
        image_path, label_path = tmp_path / "c1/c1_t1.nii.gz", tmp_path / "c1/c1_seg.nii.gz"
        data = {"kind": "case_folders", "root": str(tmp_path), "images": ["{case}_t1.nii.gz"],
                "label": "{case}_seg.nii.gz"}
    save_nifti(image_path, img)
    save_nifti(label_path, lab[:, :, :5])
    t = task(data, ["a", "b"])
    with pytest.raises(DataError, match=r"c1(_seg)?\.nii\.gz: label volume shape \(10, 12, 5\) does not match its "
                                        r"image volume .* shape \(10, 12, 6\)"):
        read_everything(t, tmp_path)
    shifted = np.eye(4)
    shifted[0, 3] = 2.5
    save_nifti(label_path, lab, shifted)
    with pytest.raises(DataError, match=r"label volume affine differs from its image volume .* by up to 2\.5 "
                                        r".*expected the same voxel grid"):
        read_everything(t, tmp_path)


def test_case_folder_missing_its_file_suggests_what_is_there(tmp_path: Path) -> None:
    ds = write_brats(tmp_path, cases=2)
    t = task({"kind": "case_folders", "root": str(ds), "images": ["{case}_flair.nii.gz"],
              "label": "{case}_segm.nii.gz"}, ["tumour"])
    with pytest.raises(DataError, match=r"BraTS2021_00000: the label file BraTS2021_00000_segm\.nii\.gz is missing "
                                        r"\(data\.label '\{case\}_segm\.nii\.gz'\).*did you mean "
                                        r"'BraTS2021_00000_seg\.nii\.gz'\?"):
        list_items(t, ds)


def test_empty_mask_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "images/a.png")
    with pytest.raises(DataError, match=r"masks: the mask folder \(data\.masks 'masks'\) holds no mask files; "
                                        r"expected one mask per image \(1 images"):
        list_pairs(Folder2DSource(root=str(tmp_path)), tmp_path)


def test_mask_values_outside_the_value_map_and_schema_refusals(tmp_path: Path) -> None:
    img, lab = volume_and_label(0)
    lab[0, 0, 0] = 9
    save_nifti(tmp_path / "images/c1.nii.gz", img)
    save_nifti(tmp_path / "labels/c1.nii.gz", lab)
    t = task({"kind": "nifti3d", "root": str(tmp_path), "mask": {"value_map": {0: 0, 1: 1, 2: 1}}}, ["a"])
    with pytest.raises(DataError, match=r"labels/c1\.nii\.gz: mask values \[9\] are not in mask\.value_map; allowed "
                                        r"keys: \[0, 1, 2\] \(mask\.default gives unlisted values a class\)"):
        read_everything(t, tmp_path)
    with pytest.raises(ValueError, match="default needs a value_map"):
        MaskEncoding(default=0)
    with pytest.raises(ValueError, match="slice_block cuts slices by `fractions`; drop train_pattern"):
        SplitRule(unit="slice_block", train_pattern="x")
