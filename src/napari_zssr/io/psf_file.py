"""Reading PSF files: TIFF (with pixel sizes), ``.npy`` and MATLAB ``.mat``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def load_psf_file(
    path: str | os.PathLike[str],
) -> tuple[np.ndarray, tuple[float | None, ...] | None]:
    """Read a PSF (or bead stack) from a file.

    Parameters
    ----------
    path : str or path-like
        ``.tif``/``.tiff`` (pixel size from OME or ImageJ metadata, or the TIFF resolution
        tags when they carry a physical unit), ``.npy``, or ``.mat`` (the variable
        ``Kernel``, ``kernel``, ``psf`` or ``PSF``, else the first 2-D or 3-D numeric array).

    Returns
    -------
    array : numpy.ndarray
        The 2-D or 3-D PSF, singleton axes removed.
    pixel_size : tuple or None
        One size in um per array axis (``(y, x)`` or ``(z, y, x)``; an unknown z is None),
        or None when the file does not say (``.npy``, ``.mat``, TIFF without units): pass
        the pixel size explicitly then.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        Unknown extension, no 2-D/3-D numeric array in the file, unreadable file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such PSF file: {p}")
    ext = p.suffix.lower()
    pixel_size: tuple[float | None, ...] | None = None
    if ext in (".tif", ".tiff"):
        from .tiff import read_tiff

        arr, meta = read_tiff(p)
        arr = np.asarray(arr)
        if "S" in meta.axes and arr.shape[meta.axes.index("S")] > 1:
            raise ValueError(f"{p.name}: an RGB TIFF is not a PSF; save the PSF as grayscale")
        z, y, x = meta.pixel_size
        arr = np.squeeze(arr)
        if y is not None and x is not None:
            pixel_size = (y, x) if arr.ndim == 2 else (z, y, x)
    elif ext == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            # numpy's own text speaks of allow_pickle for any file without an array header
            raise ValueError(
                f"{p.name}: not a readable NumPy .npy array file (no valid array header or "
                "truncated data); save the PSF with numpy.save"
            ) from err
    elif ext == ".mat":
        from scipy.io import loadmat

        try:
            data = loadmat(p)
        except Exception as err:  # scipy raises several types for corrupt files
            raise ValueError(f"{p.name}: not a readable MATLAB file ({err})") from err
        arr = None
        for key in ("Kernel", "kernel", "psf", "PSF"):
            if key in data:
                arr = np.asarray(data[key])
                break
        if arr is None:
            for key, value in data.items():
                if key.startswith("__"):
                    continue
                v = np.asarray(value)
                if v.dtype.kind in "biuf" and np.squeeze(v).ndim in (2, 3):
                    arr = v
                    break
        if arr is None:
            raise ValueError(f"{p.name}: no 2-D or 3-D numeric array in the MATLAB file")
    else:
        raise ValueError(f"{p.name}: unknown PSF file type {ext!r}; use .tif, .npy or .mat")
    arr = np.squeeze(np.asarray(arr))
    if arr.dtype.kind not in "biuf" or arr.ndim not in (2, 3):
        raise ValueError(
            f"{p.name}: a PSF must be a 2-D or 3-D numeric array, got shape {arr.shape}, "
            f"dtype {arr.dtype}"
        )
    if pixel_size is not None:
        pixel_size = tuple(None if v is None else float(v) for v in pixel_size)
    return arr, pixel_size
