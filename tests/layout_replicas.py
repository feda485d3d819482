"""Tiny fabricated replicas of published dataset layouts, written into a test's folder (never real data).

Volumes are (X, Y, Z) = (10, 12, 6) with a bright box whose label is 1 (and a smaller box inside it labelled 2),
so every reader can be checked against known classes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

SHAPE = (10, 12, 6)


def volume_and_label(seed: int, shape: tuple[int, ...] = SHAPE, labels: tuple[int, int] = (1, 2)) -> tuple[np.ndarray, np.ndarray]:
    """image (X, Y, Z) float32 and label (X, Y, Z) uint8: background 0, a box labels[0], a core labels[1]."""
    rng = np.random.default_rng(seed)
    img = rng.normal(0, 1, shape).astype(np.float32)
    lab = np.zeros(shape, np.uint8)
    lab[2:8, 3:9, 1:5] = labels[0]
    lab[4:6, 5:7, 2:4] = labels[1]
    img[lab > 0] += 5.0
    return img, lab


def save_nifti(path: Path, arr: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, np.eye(4) if affine is None else affine), str(path))
    return path


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path


def write_nnunet_3d(root: Path, cases: int = 4, channels: tuple[str, ...] = ("T2", "ADC")) -> Path:
    """root/Dataset001_Prostate: imagesTr/prostate_NN_000C.nii.gz, labelsTr/prostate_NN.nii.gz, imagesTs/, dataset.json."""
    ds = root / "Dataset001_Prostate"
    for i in range(cases):
        img, lab = volume_and_label(i)
        for c in range(len(channels)):
            save_nifti(ds / "imagesTr" / f"prostate_{i:02d}_{c:04d}.nii.gz", img * (c + 1))
        save_nifti(ds / "labelsTr" / f"prostate_{i:02d}.nii.gz", lab)
    save_nifti(ds / "imagesTs" / "prostate_99_0000.nii.gz", volume_and_label(99)[0])
    write_json(ds / "dataset.json", {
        "channel_names": {str(c): n for c, n in enumerate(channels)},
        "labels": {"background": 0, "peripheral zone": 1, "transition zone": 2},
        "numTraining": cases, "file_ending": ".nii.gz"})
    return ds


def write_nnunet_2d(root: Path, cases: int = 4) -> Path:
    """root/Dataset120_Roads: RGB split into three _000C.png channel files, labels 0 / 1 PNG."""
    ds = root / "Dataset120_Roads"
    (ds / "imagesTr").mkdir(parents=True)
    (ds / "labelsTr").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(cases):
        lab = np.zeros((12, 16), np.uint8)
        lab[3:9, 2 + i:10 + i] = 1
        for c in range(3):
            ch = rng.integers(0, 100, (12, 16), dtype=np.uint8)
            ch[lab == 1] = 200
            Image.fromarray(ch).save(ds / "imagesTr" / f"road_{i:03d}_{c:04d}.png")
        Image.fromarray(lab).save(ds / "labelsTr" / f"road_{i:03d}.png")
    write_json(ds / "dataset.json", {"channel_names": {"0": "R", "1": "G", "2": "B"},
                                     "labels": {"background": 0, "road": 1}, "numTraining": cases,
                                     "file_ending": ".png"})
    return ds


def write_msd(root: Path, cases: int = 4, modalities: tuple[str, ...] = ("FLAIR", "T1w", "t1gd", "T2w")) -> Path:
    """root/Task01_BrainTumour: 4D images (X, Y, Z, C), 3D labels, dataset.json training/test lists."""
    ds = root / "Task01_BrainTumour"
    training = []
    for i in range(cases):
        img, lab = volume_and_label(i)
        stack = np.stack([img * (c + 1) for c in range(len(modalities))], axis=-1)
        save_nifti(ds / "imagesTr" / f"BRATS_{i:03d}.nii.gz", stack)
        save_nifti(ds / "labelsTr" / f"BRATS_{i:03d}.nii.gz", lab)
        training.append({"image": f"./imagesTr/BRATS_{i:03d}.nii.gz", "label": f"./labelsTr/BRATS_{i:03d}.nii.gz"})
    write_json(ds / "dataset.json", {
        "name": "BRATS", "modality": {str(c): m for c, m in enumerate(modalities)},
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
        "numTraining": cases, "numTest": 0, "training": training, "test": []})
    return ds


def write_brats(root: Path, cases: int = 4) -> Path:
    """root/BraTS2021/BraTS2021_NNNNN/BraTS2021_NNNNN_{t1,t1ce,t2,flair,seg}.nii.gz (labels 0, 1, 2, 4)."""
    ds = root / "BraTS2021"
    for i in range(cases):
        case = f"BraTS2021_{i:05d}"
        img, lab = volume_and_label(i, labels=(2, 4))
        for seq_i, seq in enumerate(("t1", "t1ce", "t2", "flair")):
            save_nifti(ds / case / f"{case}_{seq}.nii.gz", img + seq_i)
        save_nifti(ds / case / f"{case}_seg.nii.gz", lab)
    return ds


def write_kits(root: Path, cases: int = 4) -> Path:
    """root/kits19/data/case_NNNNN/{imaging,segmentation}.nii.gz (1 kidney, 2 tumour)."""
    ds = root / "kits19" / "data"
    for i in range(cases):
        img, lab = volume_and_label(i)
        save_nifti(ds / f"case_{i:05d}" / "imaging.nii.gz", img * 100)
        save_nifti(ds / f"case_{i:05d}" / "segmentation.nii.gz", lab)
    return root / "kits19"


def write_mnms(root: Path, cases: int = 6, frames: int = 5) -> Path:
    """root/MnM/Training/Labeled/<code>/<code>_sa.nii.gz (X, Y, Z, T) and _sa_gt.nii.gz labelled at ED (0) and ES (3)
    only, with the dataset's information CSV giving each case's vendor (A or B)."""
    ds = root / "MnM"
    rows = []
    for i in range(cases):
        code = f"A{i}B{i}C{i}"
        img, lab = volume_and_label(i, labels=(1, 3))
        cine = np.stack([img + t for t in range(frames)], axis=-1)
        gt = np.zeros(lab.shape + (frames,), np.uint8)
        gt[..., 0], gt[..., 3] = lab, lab
        save_nifti(ds / "Training" / "Labeled" / code / f"{code}_sa.nii.gz", cine)
        save_nifti(ds / "Training" / "Labeled" / code / f"{code}_sa_gt.nii.gz", gt)
        rows.append({"External code": code, "Vendor": "A" if i % 2 == 0 else "B", "ED": 0, "ES": 3})
    with (ds / "mnms_dataset_information.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return ds
