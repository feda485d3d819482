"""Every task of scenarios/real-7tasks.yaml on the shared real samples (skipped where they are absent).

The data folder: $C2GR_SHARED_DATA, else /work/shared/data/real, else shared/data/real beside the repository clone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from c2gr_fed.data.loading import check_task_source, load_task
from c2gr_fed.reporting.preview import write_preview
from c2gr_fed.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "real-7tasks.yaml"


def _shared_data() -> Path | None:
    if os.environ.get("C2GR_SHARED_DATA"):  # an explicit choice wins, even when it is missing
        candidates = [Path(os.environ["C2GR_SHARED_DATA"]).expanduser()]
    else:
        candidates = [Path("/work/shared/data/real"), Path(__file__).resolve().parents[2] / "shared/data/real"]
    for c in candidates:
        if (c / "README.md").exists() or (c / "fundus-odoc").is_dir():
            return c
    return None


DATA = _shared_data()
pytestmark = pytest.mark.skipif(
    DATA is None, reason="shared real data not found (set C2GR_SHARED_DATA or place shared/data/real beside the repo)"
)

# Class indices each task's masks must show (from each dataset's SOURCE.txt), over all splits together.
EXPECTED_CLASSES = {
    "Fundus-ODOC": {0, 1, 2},  # 255 bg, 128 disc rim, 0 cup
    "ACDC-Cardiac": {0, 1, 2, 3},  # RV, MYO, LV
    "Prostate-MR": {0, 1},  # inverted: 0 = prostate
    "JSRT-ChestXray": {0, 1, 2, 3},  # 150 right lung, 200 left lung, 250 heart
    "LGG-BrainMRI": {0, 1},
    "Kvasir-Polyp": {0, 1},
    "GlaS-Histology": {0, 1},
}
PAIRS = {"Fundus-ODOC": 24, "Prostate-MR": 35, "JSRT-ChestXray": 100, "LGG-BrainMRI": 100, "Kvasir-Polyp": 100,
         "GlaS-Histology": 16}


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIO)


@pytest.fixture(scope="module")
def loaded(scenario):
    return {t.name: {s: load_task(scenario, t, s, DATA) for s in ("train", "val", "test")} for t in scenario.stream()}


def test_every_task_checks_and_loads(scenario, loaded) -> None:
    assert [t.name for t in scenario.stream()] == list(EXPECTED_CLASSES)
    for task in scenario.stream():
        check_task_source(scenario, task, DATA)
        parts = loaded[task.name]
        present: set[int] = set()
        for split, d in parts.items():
            assert len(d) > 0, f"{task.name}/{split} is empty"
            assert d.images.shape[1:] == (3, scenario.image_size, scenario.image_size)
            assert float(d.images.min()) >= -1.0 and float(d.images.max()) <= 1.0
            assert int(d.masks.max()) <= len(task.classes)
            present |= set(np.unique(d.masks.numpy()).tolist())
        assert present == EXPECTED_CLASSES[task.name], task.name
        if task.name in PAIRS:
            assert sum(len(d) for d in parts.values()) == PAIRS[task.name]


def test_splits_follow_the_datasets(loaded) -> None:
    fundus = loaded["Fundus-ODOC"]
    assert all("_test_" in i for i in fundus["test"].ids) and len(fundus["test"]) == 12
    assert all("_train_" in i for i in fundus["train"].ids + fundus["val"].ids)
    prostate = loaded["Prostate-MR"]
    assert all("_test_" in i for i in prostate["test"].ids)
    folders = {s: {i.rsplit("_", 2)[0] for i in d.ids} for s, d in prostate.items()}
    assert not folders["train"] & folders["val"]
    lgg = {s: {i.rsplit("_", 1)[0] for i in d.ids} for s, d in loaded["LGG-BrainMRI"].items()}
    assert [len(lgg[s]) for s in ("train", "val", "test")] == [5, 1, 2]
    assert not (lgg["train"] & lgg["val"] or lgg["train"] & lgg["test"] or lgg["val"] & lgg["test"])
    acdc = {s: {i.split("_")[0] for i in d.ids} for s, d in loaded["ACDC-Cardiac"].items()}
    assert sum(len(v) for v in acdc.values()) == 5
    assert not (acdc["train"] & acdc["val"] or acdc["train"] & acdc["test"] or acdc["val"] & acdc["test"])
    assert sum(len(d) for d in loaded["ACDC-Cardiac"].values()) == 102  # 8 volumes x 10 slices + 2 x 11 (patient006)


def test_encodings_are_not_inverted(loaded) -> None:
    """Foreground is the minority for the single-structure tasks; JSRT lungs sit on the expected image sides."""
    for name in ("Prostate-MR", "Kvasir-Polyp", "LGG-BrainMRI"):
        fg = float(np.mean([(d.masks > 0).float().mean().item() for d in loaded[name].values()]))
        assert fg < 0.4, f"{name}: foreground covers {fg:.0%} of the pixels - inverted encoding?"
    m = loaded["JSRT-ChestXray"]["train"].masks.numpy()
    cols = np.arange(m.shape[-1])
    right_lung_x = (cols * (m == 1).sum(axis=(0, 1))).sum() / (m == 1).sum()
    left_lung_x = (cols * (m == 2).sum(axis=(0, 1))).sum() / (m == 2).sum()
    assert right_lung_x < m.shape[-1] / 2 < left_lung_x  # right lung on the image left


def test_preview(scenario, tmp_path: Path) -> None:
    out = write_preview(scenario, tmp_path / "preview.png", DATA, per_task=4)
    assert out.exists() and out.stat().st_size > 10_000
    from PIL import Image

    with Image.open(out) as im:
        assert im.size[0] > 400 and im.size[1] > 400


def test_adapt_fine_tunes_a_run_on_real_downstream_folders(scenario, finetuned_smoke_run: Path) -> None:
    """`c2gr-fed adapt` on real folders: a run's final segmentor and scratch, fine-tuned on two real tasks."""
    from c2gr_fed.learning.adaptation import adapt

    wanted = {"Prostate-MR", "GlaS-Histology"}
    down = scenario.model_copy(update={"departments": [d for d in scenario.departments
                                                       if {t.name for t in d.tasks} & wanted]})
    res = adapt([finetuned_smoke_run], down, epochs=1, data_root=DATA)
    assert set(res) == {"scratch", "finetune (run)"}
    for per in res.values():
        assert set(per) == wanted and all(0.0 <= v <= 1.0 for v in per.values())
    assert res["scratch"] != res["finetune (run)"]
