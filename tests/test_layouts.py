"""Published layouts on tiny fabricated replicas: nnU-Net v2 (2D, 3D), Decathlon, case folders (BraTS, KiTS, M&Ms),
value_map defaults, classes chosen by label name, slice-block splits of one volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from c2gr_fed.data.loading import clear_cache, load_task
from c2gr_fed.data.sources import list_items, read_item
from c2gr_fed.scenario.schema import Scenario, TaskSpec

from layout_replicas import (
    save_nifti,
    write_brats,
    write_kits,
    write_mnms,
    write_msd,
    write_nnunet_2d,
    write_nnunet_3d,
)

SIZE = 8


def task(data: dict, classes: list[str]) -> TaskSpec:
    return TaskSpec.model_validate({"name": "T", "modality": "MR", "region": "r", "objective": "o",
                                    "classes": classes, "data": data})


def scenario_of(t: TaskSpec) -> Scenario:
    return Scenario.model_validate({"name": "layouts", "image_size": SIZE,
                                    "departments": [{"name": "d", "tasks": [t.model_dump()]}]})


def read_all(t: TaskSpec, root: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every slice of every item: ids, images (N, 3, S, S), masks (N, S, S)."""
    items, plan = list_items(t, root)
    slices = [s for item in items for s in read_item(item, t, plan, SIZE)]
    return [s.case_id for s in slices], np.stack([s.image for s in slices]), np.stack([s.mask for s in slices])


def test_nnunet_3d_selects_a_channel_by_name_and_classes_by_label_name(tmp_path: Path) -> None:
    ds = write_nnunet_3d(tmp_path)
    t = task({"kind": "nnunet", "root": str(ds), "channels": ["ADC"],
              "labels": {"zone": ["peripheral zone", "transition zone"]}}, ["zone"])
    items, _ = list_items(t, ds)
    assert [c.stem for c in items] == ["prostate_00", "prostate_01", "prostate_02", "prostate_03"]
    assert [f.name for f in items[0].images] == ["prostate_00_0001.nii.gz"]  # ADC is channel 1
    ids, images, masks = read_all(t, ds)
    assert images.shape == (24, 3, SIZE, SIZE) and len(ids) == 24 and ids[0] == "prostate_00_s00"
    assert set(np.unique(masks)) == {0, 1}  # both zones are the one task class
    t2 = task({"kind": "nnunet", "root": str(ds), "channels": ["T2"]}, ["transition zone"])
    assert set(np.unique(read_all(t2, ds)[2])) == {0, 1}


def test_nnunet_2d_three_channel_files_stack_into_rgb(tmp_path: Path) -> None:
    ds = write_nnunet_2d(tmp_path)
    t = task({"kind": "nnunet", "root": str(ds), "channels": ["R", "G", "B"]}, ["road"])
    ids, images, masks = read_all(t, ds)
    assert ids == ["road_000", "road_001", "road_002", "road_003"]
    assert images.shape == (4, 3, SIZE, SIZE) and set(np.unique(masks)) == {0, 1}
    # the road is bright in every channel
    assert (images[:, :, masks[0] == 1].mean() > images[:, :, masks[0] == 0].mean())


def test_msd_4d_channels_by_name_and_load_task_splits(tmp_path: Path) -> None:
    ds = write_msd(tmp_path, cases=5)
    t = task({"kind": "msd", "root": str(ds), "channels": ["flair"], "labels": {"tumour": ["non-enhancing tumor"]},
              "split": {"fractions": [0.6, 0.2, 0.2]}}, ["tumour"])
    sc = scenario_of(t)
    clear_cache()
    parts = {s: load_task(sc, sc.task("T"), s, tmp_path) for s in ("train", "val", "test")}
    cases = {s: {i.rsplit("_s", 1)[0] for i in d.ids} for s, d in parts.items()}
    assert sum(len(c) for c in cases.values()) == 5 and not (cases["train"] & cases["test"])
    assert set(np.unique(parts["train"].masks.numpy())) == {0, 1}


def test_brats_case_folders_one_sequence_and_value_map(tmp_path: Path) -> None:
    ds = write_brats(tmp_path)
    t = task({"kind": "case_folders", "root": str(ds), "images": ["{case}_flair.nii.gz"],
              "label": "{case}_seg.nii.gz", "mask": {"value_map": {0: 0, 2: 1, 4: 2}}}, ["edema", "core"])
    ids, images, masks = read_all(t, ds)
    assert ids[0] == "BraTS2021_00000_s00" and len(ids) == 4 * 6
    assert set(np.unique(masks)) == {0, 1, 2}


def test_kits_case_folders_with_a_ct_window(tmp_path: Path) -> None:
    ds = write_kits(tmp_path)
    t = task({"kind": "case_folders", "root": str(ds), "cases": "data/case_*", "images": ["imaging.nii.gz"],
              "label": "segmentation.nii.gz", "window": [-200, 300], "skip_empty_slices": True},
             ["kidney", "tumour"])
    ids, images, masks = read_all(t, ds)
    assert len(ids) == 4 * 4  # the label box covers 4 of the 6 slices
    assert images.min() >= -1 and images.max() <= 1 and set(np.unique(masks)) == {0, 1, 2}


def test_mnms_vendor_from_the_csv_and_labelled_frames_only(tmp_path: Path) -> None:
    ds = write_mnms(tmp_path)
    t = task({"kind": "case_folders", "root": str(ds), "cases": "Training/Labeled/*",
              "images": ["{case}_sa.nii.gz"], "label": "{case}_sa_gt.nii.gz", "frames": "labelled",
              "case_table": {"file": "mnms_dataset_information.csv", "id_column": "External code",
                             "where": {"Vendor": "B"}},
              "mask": {"value_map": {0: 0, 1: 1, 3: 2}}}, ["LV", "RV"])
    items, _ = list_items(t, ds)
    assert [c.stem for c in items] == ["A1B1C1", "A3B3C3", "A5B5C5"]
    ids, _, masks = read_all(t, ds)
    assert {i.split("_s")[0] for i in ids} == {f"{c}_t{f:02d}" for c in ("A1B1C1", "A3B3C3", "A5B5C5") for f in (0, 3)}
    assert set(np.unique(masks)) == {0, 1, 2}


def test_many_label_map_with_default_and_one_volume_split_into_slice_blocks(tmp_path: Path) -> None:
    shape = (8, 8, 20)
    img = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    lab = np.random.default_rng(1).integers(0, 118, shape).astype(np.uint8)  # 117 organ labels
    lab[2:6, 2:6, :] = 5  # the liver in every slice
    save_nifti(tmp_path / "ts/images/s0011.nii.gz", img)
    save_nifti(tmp_path / "ts/labels/s0011.nii.gz", lab)
    t = task({"kind": "nifti3d", "root": "ts", "mask": {"value_map": {5: 1}, "default": 0},
              "split": {"unit": "slice_block", "block_gap": 1}}, ["liver"])
    sc = scenario_of(t)
    clear_cache()
    parts = {s: load_task(sc, sc.task("T"), s, tmp_path) for s in ("train", "val", "test")}
    index = {s: [int(i.rsplit("_s", 1)[1]) for i in d.ids] for s, d in parts.items()}
    assert index["train"] == list(range(0, 12))  # 60 %
    assert index["val"] == [13, 14]  # 15 %, one border slice dropped
    assert index["test"] == list(range(16, 20))  # 25 %, one border slice dropped
    m = parts["train"].masks.numpy()
    assert set(np.unique(m)) == {0, 1} and m[:, 2:6, 2:6].all()  # the liver box, at the stored size


def test_folder_subsets_and_masks_sharing_the_image_folder(tmp_path: Path) -> None:
    """DoFE fundus (Domain1/{train,test}/ROIs/{image,mask}) and GlaS (train_1.bmp beside train_1_anno.bmp)."""
    from PIL import Image

    from c2gr_fed.data.readers.folder2d import list_pairs
    from c2gr_fed.scenario.schema import Folder2DSource

    for subset, names in (("train/ROIs", ["g0001", "g0002"]), ("test/ROIs", ["n0001"])):
        for n in names:
            for folder in ("image", "mask"):
                (tmp_path / "Domain1" / subset / folder).mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((6, 6), 255, np.uint8)).save(tmp_path / "Domain1" / subset / folder / f"{n}.png")
    src = Folder2DSource(root="Domain1", subsets=["train/ROIs", "test/ROIs"], images="image", masks="mask")
    assert [p.stem for p in list_pairs(src, tmp_path / "Domain1")] == ["test/ROIs/n0001", "train/ROIs/g0001",
                                                                      "train/ROIs/g0002"]
    glas = tmp_path / "Warwick_QU_Dataset"
    glas.mkdir()
    (glas / "Grade.csv").write_text("name,grade\n")
    for n in ("train_1", "train_2", "testA_1"):
        Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(glas / f"{n}.bmp")
        inst = np.zeros((6, 6), np.uint8)
        inst[1:3, 1:3], inst[4:6, 4:6] = 1, 2  # two gland instances
        Image.fromarray(inst).save(glas / f"{n}_anno.bmp")
    t = task({"kind": "folder2d", "root": str(glas), "images": ".", "masks": ".", "image_glob": "*[0-9].bmp",
              "mask_glob": "*_anno.bmp", "pair_key": r"^(\w+?_\d+)", "mask": {"threshold": 0}}, ["gland"])
    ids, _, masks = read_all(t, glas)
    assert ids == ["testA_1", "train_1", "train_2"] and set(np.unique(masks)) == {0, 1}
