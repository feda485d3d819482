"""Arrays are parsed, not trusted: the serialised bytes must be exactly numpy's canonical .npy header for the
declared dtype and shape followed by exactly the data, with no comment in the header and no trailing bytes."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np

NUMPY_STYPE = "numpy.ndarray"
"""The only serialisation type an array may declare (Flower's Array.stype for numpy arrays)."""


@lru_cache(maxsize=4096)
def canonical_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    """The header numpy.save writes for a C-ordered array of this dtype and shape (format 1.0, else 2.0)."""
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    header = {"descr": descr, "fortran_order": False, "shape": tuple(int(s) for s in shape)}
    buf = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buf, header)
    except ValueError:  # header too long for format 1.0: numpy.save uses 2.0
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue()


def npy_problem(data: bytes, dtype: str, shape: tuple[int, ...]) -> str | None:
    """None when `data` is exactly the canonical serialisation of a `dtype` array of `shape`; else what differs."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return f"dtype label is not a numpy dtype ({len(dtype)} chars)"
    if dt.hasobject or dt.fields is not None or dt.subdtype is not None:
        return "dtype must be a plain numeric dtype"
    header = canonical_header(dtype, tuple(shape))
    n = 1
    for s in shape:
        n *= int(s)
    want = len(header) + dt.itemsize * n
    if bytes(data[: len(header)]) != header:
        return "serialised header is not the canonical .npy header of the declared dtype and shape"
    if len(data) != want:
        return f"serialised size {len(data)} bytes differs from the {want} bytes of header + data"
    return None
