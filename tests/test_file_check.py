"""Validation opens the files a run will read, and the formats real datasets ship load: LZW/Deflate TIFF (without
imagecodecs), GIF masks. Synthetic files always; the shared real samples where they are present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from c2gr_fed.cli.main import main
from c2gr_fed.data.file_check import open_task_files, sample_pairs
from c2gr_fed.data.loading import check_task_source, clear_cache, load_task
from c2gr_fed.data.readers.folder2d import list_pairs, read_raster
from c2gr_fed.errors import DataError
from c2gr_fed.scenario import load_scenario
from drive_like import drive_like_scenario, write_drive_like

REAL = Path("/work/shared/data/real")


def _rgb(h: int = 9, w: int = 11) -> np.ndarray:
    return (np.arange(h * w * 3).reshape(h, w, 3) % 251).astype(np.uint8)


@pytest.mark.parametrize("compression", ["tiff_lzw", "tiff_adobe_deflate", "packbits"])
def test_compressed_tiffs_load(tmp_path: Path, compression: str) -> None:
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "a.tif", compression=compression)
    Image.fromarray(arr[..., 0]).save(tmp_path / "m.tiff", compression=compression)
    got, alpha = read_raster(tmp_path / "a.tif")
    assert not alpha and got.shape == arr.shape and (got == arr).all()
    assert (read_raster(tmp_path / "m.tiff")[0] == arr[..., 0]).all()


def test_gif_masks_read_as_their_grey_levels_and_colour_gifs_as_rgb(tmp_path: Path) -> None:
    m = np.zeros((8, 10), np.uint8)
    m[2:5, 3:7] = 255
    Image.fromarray(m).save(tmp_path / "grey.gif")  # reopens as a palette image with indices 0/1
    assert set(np.unique(read_raster(tmp_path / "grey.gif")[0]).tolist()) == {0, 255}
    Image.fromarray(m).convert("1").save(tmp_path / "bilevel.gif")
    assert set(np.unique(read_raster(tmp_path / "bilevel.gif")[0]).tolist()) == {0, 255}
    colour = np.zeros((8, 10, 3), np.uint8)
    colour[m > 0] = (200, 30, 10)
    Image.fromarray(colour).save(tmp_path / "colour.gif")
    got = read_raster(tmp_path / "colour.gif")[0]
    assert got.shape == (8, 10, 3) and tuple(got[3, 4]) == (200, 30, 10) and tuple(got[0, 0]) == (0, 0, 0)


def test_a_tiff_no_decoder_reads_is_refused_naming_file_and_remedy(tmp_path: Path, monkeypatch) -> None:
    from c2gr_fed.data.readers import decode

    Image.fromarray(_rgb()).save(tmp_path / "a.tif", compression="tiff_lzw")
    monkeypatch.setattr(decode, "_pil_as_shown", lambda im: (_ for _ in ()).throw(OSError("decoder missing")))
    with pytest.raises(DataError, match=r"a\.tif: TIFF compressed with LZW.*pip install imagecodecs"):
        read_raster(tmp_path / "a.tif")


def test_a_drive_like_scenario_validates_and_loads(tmp_path: Path, capsys) -> None:
    write_drive_like(tmp_path / "data")
    scenario = drive_like_scenario(tmp_path / "drive.yaml")
    assert main(["validate", str(scenario), "--data-root", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "(12 of 12 pairs)" in out
    sc = load_scenario(scenario)
    clear_cache()
    train = load_task(sc, sc.task("DRIVE-Vessels"), "train", tmp_path / "data")
    assert len(train) > 0 and set(np.unique(train.masks.numpy()).tolist()) == {0, 1}


def test_validate_opens_every_file_and_quick_a_sample(tmp_path: Path, capsys) -> None:
    """A corrupt file in the middle of the folder: the cheap check (listing, pairing, splits) and the quick sample
    pass, the full validation names it."""
    folder = write_drive_like(tmp_path / "data")
    bad = folder / "1st_manual" / "26_manual1.gif"
    bad.write_bytes(bad.read_bytes()[:20])  # truncated, as a killed copy leaves it
    scenario = drive_like_scenario(tmp_path / "drive.yaml")
    sc = load_scenario(scenario)
    task = sc.task("DRIVE-Vessels")
    check_task_source(sc, task, tmp_path / "data")
    assert open_task_files(sc, task, tmp_path / "data", quick=True).pairs == 2
    with pytest.raises(DataError, match=r"26_manual1\.gif: unreadable or corrupt GIF"):
        open_task_files(sc, task, tmp_path / "data")
    assert main(["validate", str(scenario), "--data-root", str(tmp_path / "data")]) == 2
    assert "26_manual1.gif" in capsys.readouterr().err
    assert main(["validate", str(scenario), "--data-root", str(tmp_path / "data"), "--quick"]) == 0


def test_quick_sample_covers_every_file_type(tmp_path: Path) -> None:
    folder = write_drive_like(tmp_path / "data", pairs=6)
    Image.fromarray(_rgb(24, 24)).save(folder / "images" / "23_training.tif")  # uncompressed among LZW ones
    Image.fromarray(np.zeros((24, 24), np.uint8)).save(folder / "1st_manual" / "24_manual1.png")
    (folder / "1st_manual" / "24_manual1.gif").unlink()
    from c2gr_fed.scenario.schema import Folder2DSource

    pairs = list_pairs(Folder2DSource(root=str(folder), masks="1st_manual", pair_key=r"^(\d+)_"), folder)
    assert [p.stem for p in sample_pairs(pairs)] == ["21", "23", "24", "26"]


@pytest.mark.skipif(not (REAL / "lgg-brain-mri").is_dir(), reason="shared real samples not present")
def test_real_lgg_tiffs_recompressed_with_lzw_load_like_the_originals(tmp_path: Path) -> None:
    originals = sorted((REAL / "lgg-brain-mri" / "images").glob("*.tif"))[:3]
    for f in originals:
        with Image.open(f) as im:
            im.save(tmp_path / f.name, compression="tiff_lzw")
        assert (read_raster(tmp_path / f.name)[0] == read_raster(f)[0]).all()


def test_validate_reports_phantom_only_scenarios_without_file_counts(root: Path, capsys) -> None:
    assert main(["validate", str(root / "scenarios" / "smoke.yaml")]) == 0
    out = capsys.readouterr().out
    assert "data sources checked for all 3 tasks" in out and "opened" not in out
