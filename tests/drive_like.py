"""A tiny real-format department written into a test's folder: LZW-compressed RGB TIFF images and grey GIF vessel
masks (0 / 255) named the way DRIVE ships them (images/21_training.tif, 1st_manual/21_manual1.gif, paired with
pair_key), and a two-department scenario that reads it (relative root, so a data root is needed) beside a phantom
task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FOLDER = "drive-like"


def write_drive_like(data_root: Path, pairs: int = 12, size: int = 24) -> Path:
    """data_root/drive-like/{images/NN_training.tif (LZW), 1st_manual/NN_manual1.gif}; returns the dataset folder."""
    folder = data_root / FOLDER
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "1st_manual").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for i in range(pairs):
        vessels = (np.abs(np.sin((xx + 3 * i) / 3.0) * 6 - (yy - size / 2) / 2) < 1.5)
        image = rng.integers(60, 140, (size, size, 3), dtype=np.uint8)
        image[vessels] = (200, 40, 30)
        case = f"{21 + i:02d}"
        Image.fromarray(image).save(folder / "images" / f"{case}_training.tif", compression="tiff_lzw")
        Image.fromarray(np.where(vessels, 255, 0).astype(np.uint8)).save(folder / "1st_manual" / f"{case}_manual1.gif")
    return folder


def drive_like_scenario(path: Path) -> Path:
    """smoke.yaml's models and budgets with two departments: the DRIVE-like folder (root relative to the data
    root) and smoke's Fundus-A phantom."""
    sc = yaml.safe_load((ROOT / "scenarios" / "smoke.yaml").read_text())
    sc["name"] = "drive-like"
    sc["departments"] = [
        {"name": "ophthalmology-drive", "tasks": [{
            "name": "DRIVE-Vessels", "modality": "colour fundus photograph", "site": "Canon CR5 camera",
            "region": "retina", "objective": "retinal vessel segmentation", "classes": ["vessel"],
            "data": {"kind": "folder2d", "root": FOLDER, "masks": "1st_manual", "pair_key": r"^(\d+)_",
                     "image_channels": "rgb", "mask": {"threshold": 127}}}]},
        sc["departments"][0],
    ]
    path.write_text(yaml.safe_dump(sc, sort_keys=False))
    return path
