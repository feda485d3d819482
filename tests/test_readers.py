"""Readers on tiny files written here: every format, encoding, preprocessing step and bad-input error."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile
from PIL import Image

from c2gr_fed.data.readers.folder2d import list_pairs, read_image, read_mask, read_pair, read_raster
from c2gr_fed.data.readers.nifti3d import list_volume_pairs, read_volume_pair
from c2gr_fed.data.readers.preprocess import (
    encode_mask,
    normalise_intensity,
    resize_image,
    resize_mask,
    select_channels,
    to_three_channels,
)
from c2gr_fed.data.readers.splits import patient_ids, split_items, stable_seed
from c2gr_fed.errors import DataError
from c2gr_fed.scenario.schema import Folder2DSource, MaskEncoding, Nifti3DSource, SplitRule

# ------------------------------------------------------------------------------------------------ helpers


def _png(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


def _save(path: Path, arr: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def _disc_mask(h: int, w: int, values: tuple[int, int, int] = (255, 128, 0)) -> np.ndarray:
    """Background / ring / core, like the fundus masks."""
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    m = np.full((h, w), values[0], np.uint8)
    m[r < min(h, w) * 0.35] = values[1]
    m[r < min(h, w) * 0.15] = values[2]
    return m


def _src(root: Path, **kw) -> Folder2DSource:
    return Folder2DSource(root=str(root), **kw)


# ------------------------------------------------------------------------------------------ formats, pairs


def test_png_rgb_and_l_pairs_by_stem_with_different_extensions(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    _save(tmp_path / "images/a.png", rgb)
    _save(tmp_path / "masks/a.bmp", _disc_mask(20, 30))
    _save(tmp_path / "images/b.jpg", rgb, quality=95)
    _save(tmp_path / "masks/b.png", _disc_mask(20, 30))
    src = _src(tmp_path, mask=MaskEncoding(value_map={255: 0, 128: 1, 0: 2}))
    pairs = list_pairs(src, tmp_path)
    assert [(p.stem, p.image.suffix, p.mask.suffix) for p in pairs] == [("a", ".png", ".bmp"), ("b", ".jpg", ".png")]
    img, mask = read_pair(pairs[0], src, 16, 2, "T")
    assert img.shape == (3, 16, 16) and img.dtype == np.float32
    assert mask.shape == (16, 16) and mask.dtype == np.int64
    assert set(np.unique(mask)) == {0, 1, 2}
    assert -1.0 <= img.min() and img.max() <= 1.0
    # exact uint8 scaling before resize
    full = read_image(pairs[0].image, src)
    np.testing.assert_allclose(full[..., 0], rgb[..., 0] / 127.5 - 1.0, atol=1e-6)


def test_value_map_fundus_style_rgb_mask_channel(tmp_path: Path) -> None:
    m = _disc_mask(16, 16)
    rgbm = np.stack([m, np.zeros_like(m), np.full_like(m, 7)], axis=2)
    _save(tmp_path / "m.png", rgbm)
    enc = MaskEncoding(channel=0, value_map={255: 0, 128: 1, 0: 2})
    out = read_mask(tmp_path / "m.png", _src(tmp_path, mask=enc))
    assert np.array_equal(out, np.select([m == 255, m == 128, m == 0], [0, 1, 2]))
    # channel selection: channel 2 holds only 7, which is not a key
    with pytest.raises(DataError, match=r"m\.png.*\[7\].*allowed keys: \[0, 128, 255\]"):
        read_mask(tmp_path / "m.png", _src(tmp_path, mask=MaskEncoding(channel=2, value_map={255: 0, 128: 1, 0: 2})))
    with pytest.raises(DataError, match=r"m\.png: mask\.channel = 5 .*3 channel"):
        read_mask(tmp_path / "m.png", _src(tmp_path, mask=MaskEncoding(channel=5)))


def test_value_map_nearest_tolerance() -> None:
    raw = np.array([[0, 3], [148, 252]], np.uint8)
    enc = MaskEncoding(value_map={0: 0, 150: 1, 250: 2}, nearest_tolerance=4)
    assert encode_mask(raw, enc, "x").tolist() == [[0, 0], [1, 2]]
    with pytest.raises(DataError, match=r"x: mask values \[3, 148, 252\] are not in mask.value_map"):
        encode_mask(raw, MaskEncoding(value_map={0: 0, 150: 1, 250: 2}), "x")


def test_jpeg_lossy_mask_threshold_and_inverted(tmp_path: Path) -> None:
    m = np.zeros((40, 40), np.uint8)
    m[10:30, 12:28] = 255
    _save(tmp_path / "m.jpg", np.stack([m] * 3, axis=2), quality=60)
    raw, _ = read_raster(tmp_path / "m.jpg")
    assert len(np.unique(raw)) > 2  # really lossy
    out = read_mask(tmp_path / "m.jpg", _src(tmp_path, mask=MaskEncoding(threshold=127)))
    assert set(np.unique(out)) == {0, 1}
    assert (out == (m > 127)).mean() > 0.98
    inv = read_mask(tmp_path / "m.jpg", _src(tmp_path, mask=MaskEncoding(threshold=127, invert=True)))
    assert np.array_equal(inv, 1 - out)
    # a lossy mask under an exact value_map is refused, listing the values
    with pytest.raises(DataError, match=r"m\.jpg: mask values .* allowed keys: \[0, 255\]"):
        read_mask(tmp_path / "m.jpg", _src(tmp_path, mask=MaskEncoding(value_map={0: 0, 255: 1})))


def test_inverted_prostate_style_png(tmp_path: Path) -> None:
    m = np.full((12, 12), 255, np.uint8)
    m[4:8, 4:8] = 0  # foreground is 0
    _png(tmp_path / "m.png", m)
    out = read_mask(tmp_path / "m.png", _src(tmp_path, mask=MaskEncoding(threshold=127, invert=True)))
    assert out.sum() == 16 and out[5, 5] == 1 and out[0, 0] == 0


def test_bmp_and_identity_encoding(tmp_path: Path) -> None:
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:4] = 1
    m[5:7, 5:7] = 2
    _save(tmp_path / "m.bmp", m)
    out = read_mask(tmp_path / "m.bmp", _src(tmp_path))
    assert np.array_equal(out, m.astype(np.int64))


def test_multichannel_tiff_channel_selection(tmp_path: Path) -> None:
    a = np.random.default_rng(1).integers(0, 256, (10, 12, 5), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "five.tif", a, photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(tmp_path / "planar.tiff", np.moveaxis(a[..., :3], -1, 0), photometric="rgb", planarconfig="separate")
    img = read_image(tmp_path / "five.tif", _src(tmp_path, channels=[4, 0, 2]))
    np.testing.assert_allclose(img[..., 0], a[..., 4] / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(img[..., 2], a[..., 2] / 127.5 - 1, atol=1e-6)
    one = read_image(tmp_path / "five.tif", _src(tmp_path, channels=[1]))
    assert one.shape == (10, 12, 3) and np.allclose(one[..., 0], one[..., 2])
    planar, _ = read_raster(tmp_path / "planar.tiff")
    assert planar.shape == (10, 12, 3) and np.array_equal(planar, a[..., :3])
    with pytest.raises(DataError, match=r"five\.tif: the image has 5 channels.*`channels`"):
        read_image(tmp_path / "five.tif", _src(tmp_path))
    with pytest.raises(DataError, match=r"five\.tif: channels \[7\] asked for.*5 channel"):
        read_image(tmp_path / "five.tif", _src(tmp_path, channels=[7]))


def test_tiff_rgb_image_and_l_mask_lgg_style(tmp_path: Path) -> None:
    img = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    m = np.zeros((16, 16), np.uint8)
    m[3:9, 3:9] = 255
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images/P1_3.tif", img, photometric="rgb")
    tifffile.imwrite(tmp_path / "masks/P1_3.tif", m)
    src = _src(tmp_path, mask=MaskEncoding(value_map={0: 0, 255: 1}))
    (pair,) = list_pairs(src, tmp_path)
    x, y = read_pair(pair, src, 8, 1, "LGG")
    assert x.shape == (3, 8, 8) and y.sum() > 0


def test_grey_to_three_channels_and_rgb_to_grey() -> None:
    g = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    out = to_three_channels(g, "as_is")
    assert out.shape == (3, 4, 3) and np.array_equal(out[..., 0], out[..., 2])
    rgb = np.zeros((2, 2, 3), np.float32)
    rgb[..., 1] = 1.0
    grey = to_three_channels(rgb, "grey")
    assert np.allclose(grey, 0.587)
    assert select_channels(np.zeros((2, 2, 4), np.uint8), None, "x", alpha_last=True).shape == (2, 2, 3)


def test_rgba_png_drops_alpha_and_grey_png_becomes_three_channels(tmp_path: Path) -> None:
    rgba = np.random.default_rng(3).integers(0, 256, (6, 6, 4), dtype=np.uint8)
    _save(tmp_path / "a.png", rgba)
    _png(tmp_path / "g.png", rgba[..., 0])
    assert read_image(tmp_path / "a.png", _src(tmp_path)).shape == (6, 6, 3)
    g = read_image(tmp_path / "g.png", _src(tmp_path, image_channels="rgb"))
    assert g.shape == (6, 6, 3) and np.array_equal(g[..., 0], g[..., 1])


def test_intensity_normalisation_modes() -> None:
    u8 = np.array([[0, 255]], np.uint8)
    assert normalise_intensity(u8, "auto", "x").tolist() == [[-1.0, 1.0]]
    u16 = np.linspace(0, 4000, 1000).astype(np.uint16).reshape(10, 100)
    u16[0, 0] = 65000  # one outlier
    out = normalise_intensity(u16, "auto", "x", percentiles=(1, 99))
    assert out.min() == -1.0 and out.max() == 1.0 and np.median(out) > -0.2
    f = np.array([[2.0, 4.0, 6.0]], np.float32)
    assert normalise_intensity(f, "minmax", "x").tolist() == [[-1.0, 0.0, 1.0]]
    assert normalise_intensity(f, "auto", "x", window=(2.0, 4.0)).tolist() == [[-1.0, 1.0, 1.0]]
    assert np.all(normalise_intensity(np.ones((3, 3)), "minmax", "x") == -1.0)
    with pytest.raises(DataError, match="x: intensity 'uint8' expects 8-bit"):
        normalise_intensity(f, "uint8", "x")
    with pytest.raises(DataError, match="x: percentiles"):
        normalise_intensity(f, "percentile", "x", percentiles=(90, 10))
    with pytest.raises(DataError, match="x: window"):
        normalise_intensity(f, "auto", "x", window=(3.0, 1.0))


def test_resize_smooth_images_nearest_masks_variable_sizes(tmp_path: Path) -> None:
    # checkerboard shrinks to mid-grey with antialiasing (not aliased to black/white)
    cb = (np.indices((64, 64)).sum(0) % 2).astype(np.float32) * 2 - 1
    small = resize_image(np.repeat(cb[:, :, None], 3, axis=2), 8)
    assert small.shape == (3, 8, 8) and np.abs(small).max() < 0.1
    m = np.zeros((30, 50), np.int64)
    m[:, 25:] = 2
    r = resize_mask(m, 10)
    assert set(np.unique(r)) == {0, 2} and (r[:, :5] == 0).all() and (r[:, 5:] == 2).all()
    # different input sizes end at the same size
    src = _src(tmp_path, mask=MaskEncoding(threshold=127))
    for name, (h, w) in {"p": (21, 37), "q": (64, 48)}.items():
        _save(tmp_path / f"images/{name}.png", np.zeros((h, w, 3), np.uint8))
        mm = np.zeros((h, w), np.uint8)
        mm[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
        _png(tmp_path / f"masks/{name}.png", mm)
    for pair in list_pairs(src, tmp_path):
        x, y = read_pair(pair, src, 16, 1, "T")
        assert x.shape == (3, 16, 16) and y.shape == (16, 16)
        assert y[8, 8] == 1 and y[0, 0] == 0


def test_limit_and_image_glob(tmp_path: Path) -> None:
    for s in ("a1", "a2", "b1"):
        _png(tmp_path / f"images/{s}.png", np.zeros((4, 4), np.uint8))
        _png(tmp_path / f"masks/{s}.png", np.zeros((4, 4), np.uint8))
    assert [p.stem for p in list_pairs(_src(tmp_path, limit=2), tmp_path)] == ["a1", "a2"]
    assert [p.stem for p in list_pairs(_src(tmp_path, image_glob="b*"), tmp_path)] == ["b1"]


# --------------------------------------------------------------------------------------------------- NIfTI


def _nifti(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, np.eye(4)), str(path))
    return path


def _volume(shape=(12, 10, 4)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    img = rng.random(shape).astype(np.float32)
    lab = np.zeros(shape, np.uint8)
    lab[2:6, 2:6, 1] = 1
    lab[6:10, 3:8, 2] = 3
    return img, lab


def test_nifti_slices_axis_skip_empty_window_and_ids(tmp_path: Path) -> None:
    img, lab = _volume()
    _nifti(tmp_path / "images/patient001_frame01.nii.gz", img)
    _nifti(tmp_path / "labels/patient001_frame01.nii.gz", lab)
    _nifti(tmp_path / "images/patient002_frame01.nii", img)
    _nifti(tmp_path / "labels/patient002_frame01.nii.gz", lab)
    src = Nifti3DSource(root=str(tmp_path), mask=MaskEncoding(value_map={0: 0, 1: 1, 2: 2, 3: 3}))
    pairs = list_volume_pairs(src, tmp_path)
    assert [p.stem for p in pairs] == ["patient001_frame01", "patient002_frame01"]
    slices = read_volume_pair(pairs[0], src, 8, 3, "ACDC")
    assert len(slices) == 4 and slices[0].case_id == "patient001_frame01_s00"
    assert slices[1].mask.max() == 1 and slices[2].mask.max() == 3 and slices[0].mask.max() == 0
    skip = read_volume_pair(pairs[0], src.model_copy(update={"skip_empty_slices": True}), 8, 3, "ACDC")
    assert [s.case_id for s in skip] == ["patient001_frame01_s01", "patient001_frame01_s02"]
    along0 = read_volume_pair(pairs[0], src.model_copy(update={"axis": 0}), 8, 3, "ACDC")
    assert len(along0) == 12 and along0[0].image.shape == (3, 8, 8)
    win = read_volume_pair(pairs[0], src.model_copy(update={"window": (0.4, 0.6)}), 8, 3, "ACDC")
    assert win[0].image.min() >= -1 and win[0].image.max() <= 1
    # same slice, exact orientation: slice k of axis 2 is data[:, :, k] (rows x cols), resized
    src12 = src.model_copy(update={"intensity": "minmax"})
    full = read_volume_pair(pairs[0], src12, 12, 3, "ACDC")
    assert full[2].mask[7, 4] == 3  # lab[6:10, 3:8, 2] -> rows 6..9 resized 12/12 rows, 10->12 cols
    # patient id = the volume stem's patient part
    assert patient_ids([p.stem for p in pairs], SplitRule(patient_pattern=r"^(patient\d+)_"), "ACDC") == [
        "patient001", "patient002"]


def test_nifti_errors(tmp_path: Path) -> None:
    img, lab = _volume()
    _nifti(tmp_path / "images/v.nii.gz", img)
    _nifti(tmp_path / "labels/v.nii.gz", lab[:, :, :3])
    src = Nifti3DSource(root=str(tmp_path))
    (pair,) = list_volume_pairs(src, tmp_path)
    with pytest.raises(DataError, match=r"labels/v\.nii\.gz: label volume shape \(12, 10, 3\) does not match.*\(12, 10, 4\)"):
        read_volume_pair(pair, src, 8, 3, "T")
    _nifti(tmp_path / "labels/v.nii.gz", lab)
    with pytest.raises(DataError, match=r"labels/v\.nii\.gz: mask values \[3\] are not in mask.value_map; allowed keys: \[0, 1\]"):
        read_volume_pair(pair, src.model_copy(update={"mask": MaskEncoding(value_map={0: 0, 1: 1})}), 8, 3, "T")
    with pytest.raises(DataError, match=r"labels/v\.nii\.gz: mask classes \[3\] exceed the 1 class"):
        read_volume_pair(pair, src, 8, 1, "T")
    (tmp_path / "images/v.nii.gz").write_bytes(b"not a nifti at all")
    with pytest.raises(DataError, match=r"images/v\.nii\.gz: unreadable or corrupt NIfTI"):
        read_volume_pair(pair, src, 8, 3, "T")
    _nifti(tmp_path / "labels/w.nii.gz", lab)
    with pytest.raises(DataError, match=r"mask\(s\) without an image.*w\.nii\.gz"):
        list_volume_pairs(src, tmp_path)
    with pytest.raises(DataError, match=r"nowhere: data root .* not found"):
        list_volume_pairs(src, tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------- bad inputs


def test_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope: data root of source .* not found"):
        list_pairs(_src(tmp_path / "nope"), tmp_path / "nope")
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match=r"masks: mask folder not found"):
        list_pairs(_src(tmp_path), tmp_path)
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match=r"images: no image files found"):
        list_pairs(_src(tmp_path), tmp_path)
    with pytest.raises(DataError, match=r"gone\.png: file not found"):
        read_raster(tmp_path / "gone.png")


def test_image_without_mask_and_mask_without_image(tmp_path: Path) -> None:
    _png(tmp_path / "images/a.png", np.zeros((4, 4), np.uint8))
    _png(tmp_path / "images/b.png", np.zeros((4, 4), np.uint8))
    _png(tmp_path / "masks/a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match=r"image\(s\) without a mask .*: b\.png"):
        list_pairs(_src(tmp_path), tmp_path)
    _png(tmp_path / "masks/b.png", np.zeros((4, 4), np.uint8))
    _png(tmp_path / "masks/c.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match=r"mask\(s\) without an image .*: c\.png"):
        list_pairs(_src(tmp_path), tmp_path)


def test_duplicate_stem_and_unknown_extension(tmp_path: Path) -> None:
    _png(tmp_path / "images/a.png", np.zeros((4, 4), np.uint8))
    _save(tmp_path / "images/a.jpg", np.zeros((4, 4), np.uint8))
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match=r"two image files share the stem 'a'"):
        list_pairs(_src(tmp_path), tmp_path)
    (tmp_path / "images/a.jpg").unlink()
    (tmp_path / "images/notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"notes\.txt: unsupported file extension '\.txt'.*supported: \.png"):
        list_pairs(_src(tmp_path), tmp_path)
    with pytest.raises(DataError, match=r"notes\.txt: unsupported file extension"):
        read_raster(tmp_path / "images/notes.txt")


def test_corrupt_files(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"bad\.png: unreadable or corrupt PNG"):
        read_raster(tmp_path / "bad.png")
    good = tmp_path / "cut.jpg"
    _save(good, np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    good.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cut\.jpg: unreadable or corrupt JPG"):
        read_raster(good)
    (tmp_path / "bad.tif").write_bytes(b"II*\x00junk")
    with pytest.raises(DataError, match=r"bad\.tif: unreadable or corrupt TIF"):
        read_raster(tmp_path / "bad.tif")


def test_size_mismatch_and_class_overflow(tmp_path: Path) -> None:
    _save(tmp_path / "images/a.png", np.zeros((10, 12, 3), np.uint8))
    _png(tmp_path / "masks/a.png", np.zeros((10, 11), np.uint8))
    src = _src(tmp_path)
    (pair,) = list_pairs(src, tmp_path)
    with pytest.raises(DataError, match=r"masks/a\.png: mask size 11x10 \(WxH\) does not match its image a\.png \(12x10\)"):
        read_pair(pair, src, 8, 1, "T")
    m = np.zeros((10, 12), np.uint8)
    m[0, 0] = 5
    _png(tmp_path / "masks/a.png", m)
    with pytest.raises(DataError, match=r"masks/a\.png: mask classes \[5\] exceed the 2 class\(es\) of task 'T'"):
        read_pair(pair, src, 8, 2, "T")


# -------------------------------------------------------------------------------------------------- splits


def test_official_split_by_pattern_with_val_from_train() -> None:
    stems = [f"Domain{d}_{s}_{i}" for d in (1, 2) for s in ("train", "test") for i in range(5)]
    rule = SplitRule(train_pattern=r"_train_", test_pattern=r"_test_", val_from_train=0.2)
    parts = split_items(stems, rule, seed=0, task="F")
    assert {stems[i] for i in parts["test"]} == {s for s in stems if "_test_" in s}
    assert len(parts["val"]) == 2 and len(parts["train"]) == 8
    assert all("_train_" in stems[i] for i in parts["val"])
    assert parts == split_items(stems, rule, seed=0, task="F")
    assert parts != split_items(stems, rule, seed=1, task="F") or parts != split_items(stems, rule, seed=2, task="F")
    only_test = split_items(stems, SplitRule(test_pattern=r"_test_"), 0, "F")
    assert only_test["test"] == parts["test"]


def test_official_split_errors() -> None:
    with pytest.raises(DataError, match=r"task 'F': file stem 'odd' matches neither"):
        split_items(["a_train_1", "odd", "a_test_1"], SplitRule(train_pattern="_train_", test_pattern="_test_"), 0, "F")
    with pytest.raises(DataError, match=r"task 'F': file stem 'x_train_test' matches both"):
        split_items(["x_train_test"], SplitRule(train_pattern="_train", test_pattern="_test"), 0, "F")
    with pytest.raises(DataError, match=r"task 'F': patient 'P1' .* both the official train and test"):
        split_items(["P1_train_1", "P1_test_1"], SplitRule(train_pattern="_train_", test_pattern="_test_",
                                                           patient_pattern=r"^(P\d)_"), 0, "F")
    with pytest.raises(DataError, match=r"data\.split\.train_pattern = '\(' is not a valid regex"):
        split_items(["a"], SplitRule(train_pattern="("), 0, "F")
    with pytest.raises(DataError, match=r"task 'F': the test split is empty .*2 files.*test 0"):
        split_items(["a_train_1", "a_train_2"], SplitRule(train_pattern="_train_", test_pattern="_test_"), 0, "F")


def test_random_split_by_patient_and_by_image() -> None:
    stems = [f"P{p}_{s}" for p in range(10) for s in range(4)]
    rule = SplitRule(patient_pattern=r"^(P\d+)_\d+$")
    parts = split_items(stems, rule, 3, "LGG")
    pats = {k: {stems[i].split("_")[0] for i in v} for k, v in parts.items()}
    assert [len(pats[k]) for k in ("train", "val", "test")] == [5, 2, 3]  # 60/15/25 of 10 patients, halves rounded up
    assert not (pats["train"] & pats["val"] or pats["train"] & pats["test"] or pats["val"] & pats["test"])
    assert sorted(sum(parts.values(), [])) == list(range(len(stems)))
    assert parts == split_items(stems, rule, 3, "LGG")
    assert parts != split_items(stems, rule, 3, "Other-task")
    by_image = split_items([f"img{i:03d}" for i in range(100)], SplitRule(), 0, "J")
    assert [len(by_image[k]) for k in ("train", "val", "test")] == [60, 15, 25]
    with pytest.raises(DataError, match=r"task 'LGG': file stem 'oops' does not match data.split.patient_pattern"):
        split_items(stems + ["oops"], rule, 3, "LGG")
    with pytest.raises(DataError, match=r"task 'T': the val split is empty .*2 files, 2 cases: train 1 \(1 cases\), val 0"):
        split_items(["a", "b"], SplitRule(), 0, "T")


def test_stable_seed_is_stable() -> None:
    assert stable_seed(0, "task", "train") == stable_seed(0, "task", "train")
    assert stable_seed(0, "task", "train") != stable_seed(0, "task", "val")
    assert stable_seed("a") == 5374906597990186442  # fixed across processes and versions


def test_pair_key_pairs_images_and_masks_named_differently_as_drive_ships_them(tmp_path: Path) -> None:
    """DRIVE: images/21_training.tif with 1st_manual/21_manual1.gif (an LZW TIFF and a GIF, as published)."""
    rgb = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    vessels = (_disc_mask(24, 24) == 128).astype(np.uint8) * 255
    for case in ("21", "22"):
        _save(tmp_path / f"images/{case}_training.tif", rgb, compression="tiff_lzw")
        _save(tmp_path / f"1st_manual/{case}_manual1.gif", vessels)
    src = _src(tmp_path, masks="1st_manual", pair_key=r"^(\d+)_", mask=MaskEncoding(value_map={0: 0, 255: 1}))
    pairs = list_pairs(src, tmp_path)
    assert [(p.stem, p.image.name, p.mask.name) for p in pairs] == [
        ("21", "21_training.tif", "21_manual1.gif"), ("22", "22_training.tif", "22_manual1.gif")]
    img, mask = read_pair(pairs[0], src, 16, 1, "DRIVE")
    assert img.shape == (3, 16, 16) and set(np.unique(mask)) <= {0, 1} and mask.any()
    with pytest.raises(DataError, match="without a mask"):  # without the key, the names do not pair
        list_pairs(_src(tmp_path, masks="1st_manual"), tmp_path)


def test_pair_key_errors_name_the_file_and_the_pattern(tmp_path: Path) -> None:
    grey = np.zeros((8, 8), np.uint8)
    _save(tmp_path / "images/21_training.png", grey)
    _save(tmp_path / "images/notes_training.png", grey)
    _save(tmp_path / "masks/21_manual1.png", grey)
    with pytest.raises(DataError, match=r"notes_training.png.*does not match pair_key"):
        list_pairs(_src(tmp_path, pair_key=r"^(\d+)_"), tmp_path)
    (tmp_path / "images/notes_training.png").unlink()
    _save(tmp_path / "masks/21_manual2.png", grey)
    with pytest.raises(DataError, match=r"same pair_key '21'"):
        list_pairs(_src(tmp_path, pair_key=r"^(\d+)_"), tmp_path)
    with pytest.raises(ValueError, match="not a regular expression"):
        _src(tmp_path, pair_key="(unclosed")
