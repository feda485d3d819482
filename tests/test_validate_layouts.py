"""`c2gr-fed validate scenarios/20tasks-real.yaml` names every missing or malformed dataset at once, one line per
department / task, before anything trains."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from c2gr_fed.cli.main import main
from c2gr_fed.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "scenarios" / "20tasks-real.yaml"


def test_20tasks_real_keeps_the_paper_stream_and_declares_every_encoding() -> None:
    real, phantom = load_scenario(REAL), load_scenario(REPO / "scenarios" / "20tasks.yaml")
    assert [t.name for t in real.stream()] == [t.name for t in phantom.stream()]
    assert [real.department_of(t.name) for t in real.stream()] == [phantom.department_of(t.name)
                                                                   for t in phantom.stream()]
    for t in real.stream():
        assert t.data.kind != "phantom"
        mask = getattr(t.data, "mask", None)  # nnunet / msd select classes by dataset.json label name instead
        assert mask is None or mask.value_map is not None or mask.threshold is not None, t.name


def test_validate_lists_every_missing_or_malformed_folder(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    kvasir = data / "Kvasir-SEG"
    for i in range(4):  # a complete Polyp folder: that task passes
        for folder, value in (("images", 90), ("masks", 255)):
            (kvasir / folder).mkdir(parents=True, exist_ok=True)
            arr = np.zeros((12, 12, 3), np.uint8)
            arr[3:9, 3:9] = value
            Image.fromarray(arr).save(kvasir / folder / f"p{i}.jpg", quality=95)
    image_dir = data / "Fundus/Domain1/train/ROIs/image"  # Fundus-A: a mask folder left empty
    image_dir.mkdir(parents=True)
    (data / "Fundus/Domain1/train/ROIs/mask").mkdir()
    (data / "Fundus/Domain1/test/ROIs/image").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image_dir / "g0001.png")
    assert main(["validate", str(REAL), "--data-root", str(data), "--quick"]) == 2
    err = re.sub(r"\s+", " ", capsys.readouterr().err)
    assert "the data of 19 of 20 task(s) is missing or malformed (nothing was trained)" in err
    for dept, task in (("ophthalmology-nidek", "Fundus-B"), ("cardiology-ge", "MnMs-GE"),
                       ("neuro-oncology", "BraTS-FLAIR"), ("hepatology", "LiTS"), ("dermatology", "ISIC18")):
        assert re.search(rf"{dept} / {task}: task '{task}': data\.root '[^']+' -> {data}/\S+ not found", err), task
    assert re.search(r"ophthalmology-aravind / Fundus-A: .*train/ROIs/mask: the mask folder \(data\.masks 'mask'\) "
                     r"holds no mask files", err)
    assert "gastroenterology / Polyp" not in err
