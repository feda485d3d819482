"""Decoding one file into an array, through MONAI's image readers (`monai.data.PILReader`,
`NibabelReader` and a tifffile-backed `ImageReader`).

    read_raster(path) -> (array (H, W) or (H, W, C) in the file's dtype, last channel is alpha)
    read_volume(path) -> (array (X, Y, Z) in the file's dtype, affine (4, 4) float64)

2D rasters go through MONAI's PILReader (PNG, JPEG, BMP, GIF, TIFF) in row-major order (H, W[, C]), not MONAI's
default (W, H) spatial order, so arrays line up with the masks and with what an image viewer shows. A GIF's pixels
are its palette colours (grey levels for a grey palette), not the palette indices; other paletted files (label
PNGs) keep their indices. TIFF is decoded by tifffile first (multi-channel, planar, 16-bit and float stacks), and by
Pillow when tifffile lacks the codec (LZW without the optional `imagecodecs`, as DRIVE ships its images).
NIfTI goes through MONAI's NibabelReader, keeping the stored axes (no reorientation) and the affine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...errors import DataError

RASTER_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
TIFF_EXTENSIONS = (".tif", ".tiff")
NIFTI_EXTENSIONS = (".nii.gz", ".nii")
_ALPHA_MODES = ("RGBA", "LA")


def _pil_as_shown(im: Any) -> Any:
    """PILReader converter: GIF palettes to their colours, bilevel and exotic modes to L / RGB / RGBA."""
    if im.mode == "P" and im.format == "GIF":
        palette = im.getpalette() or []
        rgb = np.asarray(palette[: 3 * (len(palette) // 3)], dtype=np.int64).reshape(-1, 3)
        grey = bool(rgb.size) and bool((rgb[:, 0] == rgb[:, 1]).all() and (rgb[:, 1] == rgb[:, 2]).all())
        return im.convert("L" if grey else "RGB")
    if im.mode == "1":
        return im.convert("L")  # 0 / 255
    if im.mode in ("CMYK", "YCbCr", "HSV", "LAB", "PA", "RGBX", "RGBa", "La"):
        return im.convert("RGBA" if "A" in im.mode or "a" in im.mode else "RGB")
    return im


def _monai_readers() -> tuple[Any, Any, Any]:
    from monai.data import ImageReader, NibabelReader, PILReader

    return ImageReader, NibabelReader, PILReader


def _pil_reader() -> Any:
    _, _, PILReader = _monai_readers()

    class RasterReader(PILReader):  # type: ignore[misc, valid-type]
        """MONAI's PILReader for every 2D extension Pillow decodes, in (H, W[, C]) order."""

        def verify_suffix(self, filename: Sequence[str] | str) -> bool:
            names = [filename] if isinstance(filename, (str, Path)) else list(filename)
            return all(str(n).lower().endswith(RASTER_EXTENSIONS) for n in names)

    return RasterReader(converter=_pil_as_shown, reverse_indexing=False)


def _tiff_reader() -> Any:
    ImageReader, _, _ = _monai_readers()

    class TiffStackReader(ImageReader):  # type: ignore[misc, valid-type]
        """A MONAI ImageReader over tifffile: one 2D image, channels last (planar storage is moved)."""

        def verify_suffix(self, filename: Sequence[str] | str) -> bool:
            names = [filename] if isinstance(filename, (str, Path)) else list(filename)
            return all(str(n).lower().endswith(TIFF_EXTENSIONS) for n in names)

        def read(self, data: Any, **kwargs: Any) -> Any:
            import tifffile

            name = data[0] if isinstance(data, (list, tuple)) else data
            with tifffile.TiffFile(name) as tif:
                series = tif.series[0]
                arr, axes = np.asarray(series.asarray()), series.axes
            while arr.ndim > 2 and arr.shape[0] == 1 and len(axes) > 2:  # a 1-page stack
                arr, axes = arr[0], axes[1:]
            if arr.ndim == 3 and axes.endswith("YX"):  # planar / channel-first storage -> channels last
                arr = np.moveaxis(arr, 0, -1)
            return arr

        def get_data(self, img: Any) -> tuple[np.ndarray, dict]:
            return np.array(img), {"mode": "", "spatial_shape": np.asarray(img.shape[:2]), "original_channel_dim": float("nan")}

    return TiffStackReader()


def _load(path: Path, readers: list[Any]) -> tuple[np.ndarray, dict]:
    """The first of MONAI's `readers` (in order of preference) that decodes the file wins. Unlike LoadImage this
    never falls back to readers not listed (MONAI's default PILReader would swap the axes)."""
    errors: list[str] = []
    for reader in readers:
        try:
            arr, meta = reader.get_data(reader.read(str(path)))
        except Exception as exc:  # decoders raise many different types for corrupt files
            errors.append(f"{type(reader).__name__}: {type(exc).__name__}: {exc}")
            continue
        return np.asarray(arr), dict(meta)
    raise ValueError("; ".join(errors))


def _tiff_compression(path: Path) -> str | None:
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            compression = tif.pages[0].compression
        return str(getattr(compression, "name", compression))
    except Exception:
        return None


def read_raster(path: Path) -> tuple[np.ndarray, bool]:
    """Decode one 2D raster file -> (array (H, W) or (H, W, C), whether the last channel is alpha)."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    ext = path.suffix.lower()
    if ext not in RASTER_EXTENSIONS:
        raise DataError(f"{path}: unsupported file extension {ext!r}; supported: {', '.join(RASTER_EXTENSIONS)}")
    readers = [_tiff_reader(), _pil_reader()] if ext in TIFF_EXTENSIONS else [_pil_reader()]
    try:
        arr, meta = _load(path, readers)
    except Exception as exc:  # decoders raise many different types for corrupt files
        compression = _tiff_compression(path) if ext in TIFF_EXTENSIONS and "imagecodecs" in str(exc) else None
        if compression is not None:
            raise DataError(
                f"{path}: TIFF compressed with {compression}, which neither tifffile (without the optional "
                f"'imagecodecs' package) nor Pillow can decode ({exc}); pip install imagecodecs, or re-save "
                "the file uncompressed") from None
        raise DataError(f"{path}: unreadable or corrupt {ext[1:].upper()} file ({exc})") from None
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim not in (2, 3):
        raise DataError(f"{path}: expected one 2D image (H, W[, C]); found shape {arr.shape}")
    return arr, str(meta.get("mode", "")) in _ALPHA_MODES


def read_volume(path: Path, allow_4d: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Decode a NIfTI file -> (array (X, Y, Z) in its stored axis order, or (X, Y, Z, T|C) with allow_4d; affine
    (4, 4)). Trailing singleton axes beyond the third are dropped; scaled NIfTI (scl_slope) gives scaled values."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    _, NibabelReader, _ = _monai_readers()
    try:
        arr, meta = _load(path, [NibabelReader()])
    except Exception as exc:
        raise DataError(f"{path}: unreadable or corrupt NIfTI file ({exc})") from None
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3 and not (allow_4d and arr.ndim == 4):
        raise DataError(f"{path}: expected a 3D volume{' (or 4D)' if allow_4d else ''}, got shape {arr.shape}")
    affine = np.asarray(meta.get("original_affine", meta.get("affine", np.eye(4))), dtype=np.float64)
    return arr, affine
