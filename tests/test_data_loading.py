"""load_task / check_task_source: phantom departments (generator monkeypatched) and real folders/volumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from c2gr_fed.data import loading
from c2gr_fed.data.loading import check_task_source, clear_cache, default_data_root, load_task
from c2gr_fed.errors import DataError
from c2gr_fed.scenario import validate_scenario
from c2gr_fed.scenario.schema import Scenario

# ------------------------------------------------------------------------------------------------ phantom

CALLS: list[tuple[Any, ...]] = []


def _fake_generate(generator: str, variant: str, n: int, image_size: int, seed: int):
    CALLS.append((generator, variant, n, image_size, seed))
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, image_size, image_size, generator=g) * 2 - 1
    masks = torch.randint(0, 3, (n, image_size, image_size), generator=g)
    return images.float(), masks.long()


@pytest.fixture
def fake_phantoms(monkeypatch: pytest.MonkeyPatch) -> None:
    variants = {"fundus": ("default", "aravind", "nidek"), "cardiac_mr": ("default", "siemens")}
    classes = {"fundus": 2, "cardiac_mr": 3}
    monkeypatch.setattr(
        loading, "_phantom_api",
        lambda: (_fake_generate, lambda g: variants[g], lambda g: classes[g]),
    )
    clear_cache()
    CALLS.clear()


def _phantom_scenario(**task_over: Any) -> Scenario:
    data = {"kind": "phantom", "generator": "fundus", "variant": "aravind", "n_train": 6, "n_val": 2, "n_test": 3}
    data.update(task_over.pop("data", {}))
    task = {"name": "Fundus-A", "modality": "fundus", "region": "eye", "objective": "disc and cup",
            "classes": ["optic disc", "optic cup"], "data": data}
    task.update(task_over)
    other = {"name": "Fundus-B", "modality": "fundus", "region": "eye", "objective": "disc and cup",
             "classes": ["optic disc", "optic cup"], "data": {**data, "variant": "nidek"}}
    return validate_scenario({"name": "t", "seed": 5, "image_size": 16,
                              "departments": [{"name": "d1", "tasks": [task]}, {"name": "d2", "tasks": [other]}]})


def test_phantom_sizes_seeds_and_determinism(fake_phantoms: None) -> None:
    sc = _phantom_scenario()
    t = sc.task("Fundus-A")
    parts = {s: load_task(sc, t, s) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [6, 2, 3]
    assert parts["train"].images.shape == (6, 3, 16, 16) and parts["train"].masks.dtype == torch.int64
    assert parts["train"].num_classes == 2 and parts["train"].task == "Fundus-A"
    seeds = [c[4] for c in CALLS]
    assert len(set(seeds)) == 3  # a distinct seed per split
    again = load_task(sc, t, "train")
    assert torch.equal(again.images, parts["train"].images)
    clear_cache()
    fresh = load_task(sc, t, "train")  # regenerated after the cache is cleared: same seed, same data
    assert torch.equal(fresh.images, parts["train"].images) and CALLS[-1][4] == seeds[0]
    other = load_task(sc, sc.task("Fundus-B"), "train")
    assert CALLS[-1][4] != seeds[0]  # another task -> another seed
    assert not torch.equal(other.images, parts["train"].images)
    reseeded = _phantom_scenario()
    reseeded.seed = 6
    load_task(reseeded, reseeded.task("Fundus-A"), "train")
    assert CALLS[-1][4] != seeds[0]
    # cached tensors are copies: editing one load does not change the next
    again.images.zero_()
    assert not torch.equal(load_task(sc, t, "train").images, again.images)


def test_phantom_empty_val(fake_phantoms: None) -> None:
    sc = _phantom_scenario(data={"n_val": 0})
    d = load_task(sc, sc.task("Fundus-A"), "val")
    assert len(d) == 0 and d.images.shape == (0, 3, 16, 16)


def test_phantom_checks(fake_phantoms: None) -> None:
    sc = _phantom_scenario(data={"variant": "topcon"})
    with pytest.raises(DataError, match=r"task 'Fundus-A': data.variant = 'topcon' .*'fundus'.*allowed values: \['default', 'aravind', 'nidek'\]"):
        check_task_source(sc, sc.task("Fundus-A"))
    with pytest.raises(DataError, match="data.variant"):
        load_task(sc, sc.task("Fundus-A"), "train")
    sc = _phantom_scenario(classes=["optic disc"])
    with pytest.raises(DataError, match=r"task 'Fundus-A': classes lists 1 class\(es\) \['optic disc'\] .*draws 2"):
        check_task_source(sc, sc.task("Fundus-A"))
    check_task_source(_phantom_scenario(), _phantom_scenario().task("Fundus-A"))
    with pytest.raises(DataError, match="unknown split 'dev'"):
        load_task(sc, sc.task("Fundus-A"), "dev")  # type: ignore[arg-type]


def test_real_phantoms_if_available() -> None:
    try:
        from c2gr_fed.data.phantoms import generate_phantom  # noqa: F401
    except ImportError:
        pytest.skip("c2gr_fed.data.phantoms is not available yet")
    clear_cache()
    sc = _phantom_scenario()
    d = load_task(sc, sc.task("Fundus-A"), "train")
    assert d.images.shape == (6, 3, 16, 16) and int(d.masks.max()) <= 2
    assert torch.equal(d.images, load_task(sc, sc.task("Fundus-A"), "train").images)


# ------------------------------------------------------------------------------------------------ folders


def _write_folder_dataset(root: Path, patients: int = 8, per_patient: int = 3, size: tuple[int, int] = (20, 24)) -> None:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for p in range(patients):
        for s in range(per_patient):
            stem = f"PAT{p:02d}_{s}"
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / "images" / f"{stem}.png")
            m = np.zeros(size, np.uint8)
            m[4:12, 5:15] = 255
            if s == 0:
                m[:] = 0  # an empty mask is data too
            Image.fromarray(m).save(root / "masks" / f"{stem}.png")


def _folder_scenario(root: str = "lgg", seed: int = 0, **data_over: Any) -> Scenario:
    data = {"kind": "folder2d", "root": root, "mask": {"value_map": {0: 0, 255: 1}},
            "split": {"patient_pattern": r"^(PAT\d+)_\d+$"}}
    data.update(data_over)
    return validate_scenario({
        "name": "real", "seed": seed, "image_size": 16,
        "departments": [{"name": "neuro", "tasks": [{"name": "LGG", "modality": "MR", "region": "brain",
                                                     "objective": "tumour", "classes": ["tumour"], "data": data}]}],
    })


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    clear_cache()
    _write_folder_dataset(tmp_path / "lgg")
    return tmp_path


def test_folder_task_loads_splits_by_patient(data_root: Path) -> None:
    sc = _folder_scenario()
    t = sc.task("LGG")
    check_task_source(sc, t, data_root)
    parts = {s: load_task(sc, t, s, data_root) for s in ("train", "val", "test")}
    assert sum(len(d) for d in parts.values()) == 24
    pats = {s: {i.split("_")[0] for i in d.ids} for s, d in parts.items()}
    assert [len(pats[s]) for s in ("train", "val", "test")] == [5, 1, 2]
    assert not (pats["train"] & pats["val"]) and not (pats["train"] & pats["test"]) and not (pats["val"] & pats["test"])
    for d in parts.values():
        assert d.images.shape[1:] == (3, 16, 16) and d.images.dtype == torch.float32
        assert d.masks.shape[1:] == (16, 16) and set(d.masks.unique().tolist()) <= {0, 1}
        assert float(d.images.min()) >= -1 and float(d.images.max()) <= 1
    # deterministic across cache clears; another seed gives another split
    clear_cache()
    assert load_task(sc, t, "test", data_root).ids == parts["test"].ids
    other = [load_task(_folder_scenario(seed=s), t, "test", data_root).ids for s in (1, 2, 3)]
    assert any(ids != parts["test"].ids for ids in other)


def test_folder_cache_makes_repeat_loads_cheap(data_root: Path) -> None:
    sc = _folder_scenario()
    t = sc.task("LGG")
    load_task(sc, t, "train", data_root)
    before = loading._load_real_cached.cache_info()
    load_task(sc, t, "train", data_root)
    after = loading._load_real_cached.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses


def test_data_root_from_env_and_missing_root(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = _folder_scenario()
    monkeypatch.delenv("C2GR_DATA_ROOT", raising=False)
    assert default_data_root() is None
    with pytest.raises(DataError, match=r"task 'LGG': data.root 'lgg' -> lgg not found \(relative path and no data root"):
        check_task_source(sc, sc.task("LGG"))
    monkeypatch.setenv("C2GR_DATA_ROOT", str(data_root))
    assert default_data_root() == data_root
    check_task_source(sc, sc.task("LGG"))
    assert len(load_task(sc, sc.task("LGG"), "train")) > 0
    # an absolute root ignores the data root
    abs_sc = _folder_scenario(root=str(data_root / "lgg"))
    check_task_source(abs_sc, abs_sc.task("LGG"), Path("/nonexistent"))
    with pytest.raises(DataError, match=r"data.root 'elsewhere' -> .*elsewhere not found \(relative to the data root"):
        bad = _folder_scenario(root="elsewhere")
        check_task_source(bad, bad.task("LGG"), data_root)


def test_check_task_source_catches_pairs_value_map_and_empty_split(data_root: Path) -> None:
    sc = _folder_scenario(mask={"value_map": {0: 0, 255: 2}})
    with pytest.raises(DataError, match=r"task 'LGG': data.mask.value_map maps \{255: 2\} to classes outside 0..1"):
        check_task_source(sc, sc.task("LGG"), data_root)
    (data_root / "lgg/masks/PAT03_1.png").unlink()
    sc = _folder_scenario()
    with pytest.raises(DataError, match=r"image\(s\) without a mask .*PAT03_1\.png"):
        check_task_source(sc, sc.task("LGG"), data_root)
    _write_folder_dataset(data_root / "two", patients=2)
    sc2 = _folder_scenario(root="two")
    with pytest.raises(DataError, match=r"task 'LGG': the val split is empty .*2 patients"):
        check_task_source(sc2, sc2.task("LGG"), data_root)
    with pytest.raises(DataError, match=r"the val split is empty"):
        load_task(sc2, sc2.task("LGG"), "train", data_root)


def test_mask_value_outside_value_map_names_file(data_root: Path) -> None:
    m = np.zeros((20, 24), np.uint8)
    m[1, 1] = 77
    Image.fromarray(m).save(data_root / "lgg/masks/PAT00_1.png")
    sc = _folder_scenario()
    t = sc.task("LGG")
    check_task_source(sc, t, data_root)  # cheap: pixels are not read
    with pytest.raises(DataError, match=r"PAT00_1\.png: mask values \[77\] are not in mask.value_map; allowed keys: \[0, 255\]"):
        for s in ("train", "val", "test"):
            load_task(sc, t, s, data_root)


def test_official_split_with_val_from_train(tmp_path: Path) -> None:
    clear_cache()
    root = tmp_path / "fundus"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for d in (1, 2):
        for s in ("train", "test"):
            for i in range(3):
                stem = f"Domain{d}_{s}_{i}"
                Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(root / "images" / f"{stem}.png")
                m = np.full((8, 8), 255, np.uint8)
                m[2:6, 2:6] = 128
                m[3:5, 3:5] = 0
                Image.fromarray(np.stack([m] * 3, 2)).save(root / "masks" / f"{stem}.png")
    sc = validate_scenario({
        "name": "f", "image_size": 8,
        "departments": [{"name": "eye", "tasks": [{
            "name": "Fundus", "modality": "fundus", "region": "eye", "objective": "disc/cup",
            "classes": ["disc", "cup"],
            "data": {"kind": "folder2d", "root": "fundus", "mask": {"value_map": {255: 0, 128: 1, 0: 2}},
                     "split": {"train_pattern": r"^Domain\d_train_", "test_pattern": r"^Domain\d_test_"}}}]}],
    })
    t = sc.task("Fundus")
    parts = {s: load_task(sc, t, s, tmp_path) for s in ("train", "val", "test")}
    assert all("_test_" in i for i in parts["test"].ids) and len(parts["test"]) == 6
    assert len(parts["val"]) == 1 and len(parts["train"]) == 5
    assert all("_train_" in i for i in parts["val"].ids + parts["train"].ids)
    assert parts["train"].masks[0, 4, 4] == 2 and parts["train"].masks[0, 2, 2] == 1 and parts["train"].masks[0, 0, 0] == 0


# -------------------------------------------------------------------------------------------------- NIfTI


def test_nifti_task_by_patient_and_skip_empty(tmp_path: Path) -> None:
    clear_cache()
    root = tmp_path / "acdc"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for p in range(5):
        for f in (1, 2):
            img = rng.random((12, 10, 4)).astype(np.float32)
            lab = np.zeros((12, 10, 4), np.uint8)
            lab[2:8, 2:8, 1:3] = 1 + (p % 3)
            stem = f"patient{p:03d}_frame{f:02d}"
            nib.save(nib.Nifti1Image(img, np.eye(4)), str(root / "images" / f"{stem}.nii.gz"))
            nib.save(nib.Nifti1Image(lab, np.eye(4)), str(root / "labels" / f"{stem}.nii.gz"))

    def scen(skip: bool) -> Scenario:
        return validate_scenario({
            "name": "c", "image_size": 8,
            "departments": [{"name": "cardio", "tasks": [{
                "name": "ACDC", "modality": "MR", "region": "heart", "objective": "cardiac",
                "classes": ["RV", "MYO", "LV"],
                "data": {"kind": "nifti3d", "root": "acdc", "skip_empty_slices": skip,
                         "split": {"patient_pattern": r"^(patient\d+)_frame"}}}]}],
        })

    sc = scen(False)
    parts = {s: load_task(sc, sc.task("ACDC"), s, tmp_path) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [24, 8, 8]  # 3/1/1 patients x 2 frames x 4 slices
    pats = {s: {i.split("_")[0] for i in d.ids} for s, d in parts.items()}
    assert not (pats["train"] & pats["val"] or pats["train"] & pats["test"] or pats["val"] & pats["test"])
    assert parts["test"].ids[0].endswith("_s00")
    sk = scen(True)
    assert len(load_task(sk, sk.task("ACDC"), "train", tmp_path)) == 12
    assert all(d.masks.flatten(1).amax(1).min() > 0 for d in [load_task(sk, sk.task("ACDC"), "test", tmp_path)])
