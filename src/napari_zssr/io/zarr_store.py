"""OME-Zarr stores in and out (zarr and ome-zarr-py), opened lazily.

:func:`output_store` makes (or reopens, to resume a run) the one-level OME-Zarr image of
an upscaled result, whose ``coordinateTransformations`` give the output pixel size: the
input's divided by the scale on Y and X (the one place that divides it); it calls
:func:`create_ome_zarr`. :func:`open_ome_zarr` opens an OME-Zarr image (or a plain zarr
array) without reading its pixels. Finished planes and the completion flag live in the
array's attributes (see :mod:`napari_zssr.arrays.output`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ZarrMeta",
    "create_ome_zarr",
    "is_zarr_path",
    "open_ome_zarr",
    "output_pixel_size",
    "output_store",
    "remove_store",
    "write_run_record",
]

#: Largest Y/X chunk side: a 4096 x 4096 plane is 16 chunks, each read or written whole.
CHUNK_YX = 1024
_AXIS_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}
_ORDER = "TCZYX"  # the order OME-NGFF requires


def _zarr() -> Any:
    from .extras import require

    return require("zarr", "OME-Zarr input and output")


def is_zarr_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a zarr store (ends in ``.zarr``, or is a folder holding one)."""
    p = Path(path)
    if p.name.lower().endswith(".zarr"):
        return True
    return p.is_dir() and any((p / name).exists() for name in ("zarr.json", ".zarray", ".zgroup"))


@dataclass(frozen=True)
class ZarrMeta:
    """What an OME-Zarr image says about itself.

    Attributes
    ----------
    axes : str or None
        Axis letters (``"TCZYX"`` order or a subset); None for a plain zarr array.
    pixel_size : (z, y, x)
        Micrometres per pixel where the store gives them in micrometres, else None.
    """

    axes: str | None
    pixel_size: tuple[float | None, float | None, float | None]


def _multiscales(attrs: dict[str, Any]) -> dict[str, Any] | None:
    ome = attrs.get("ome", attrs)  # 0.5 keeps it under "ome", 0.4 at the top
    ms = ome.get("multiscales") if isinstance(ome, dict) else None
    return ms[0] if ms else None


def open_ome_zarr(path: str | os.PathLike[str]) -> tuple[Any, ZarrMeta]:
    """The full-resolution array of an OME-Zarr image (or a zarr array), not read.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is not a zarr array or an OME-Zarr image.
    """
    zarr = _zarr()
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"input not found: {p}")
    try:
        node = zarr.open(str(p), mode="r")
    except Exception as exc:
        raise ValueError(f"{p} is not a zarr store: {exc}") from None
    if isinstance(node, zarr.Array):
        return node, ZarrMeta(None, (None, None, None))
    ms = _multiscales(dict(node.attrs))
    if ms is None:
        raise ValueError(f"{p} is a zarr group without OME-Zarr multiscales metadata")
    level = ms["datasets"][0]
    axes = "".join(a["name"][0].upper() for a in ms.get("axes", []))
    return node[level["path"]], ZarrMeta(axes or None, _pixel_size(ms, level, axes))


def _pixel_size(ms: dict[str, Any], level: dict[str, Any], axes: str) -> tuple[Any, Any, Any]:
    scale = next(
        (t["scale"] for t in level.get("coordinateTransformations", []) if t["type"] == "scale"),
        None,
    )
    if scale is None or not axes:
        return None, None, None
    units = {a["name"][0].upper(): a.get("unit") for a in ms.get("axes", [])}
    out = []
    for letter in "ZYX":
        ok = letter in axes and units.get(letter) == "micrometer"
        out.append(float(scale[axes.index(letter)]) if ok else None)
    return out[0], out[1], out[2]


def _check_axes(axes: str) -> None:
    letters = [a for a in axes.upper() if a in _ORDER]
    if letters != sorted(letters, key=_ORDER.index) or len(letters) != len(axes) or len(axes) > 5:
        raise ValueError(
            f"an OME-Zarr image needs axes in T, C, Z, Y, X order (at most 5), got {axes!r}; "
            "write TIFF instead (--format tiff)"
        )


def create_ome_zarr(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, ...],
    dtype: Any,
    axes: str,
    pixel_size: tuple[float | None, float | None, float | None] = (None, None, None),
    unit: str | None = "micrometer",
    overwrite: bool = False,
) -> Any:
    """Create the output OME-Zarr image ``path`` (one level, ``"0"``), or reopen it.

    An existing store of the same shape and dtype is reopened, so that a rerun continues
    where the last one stopped; ``overwrite`` replaces it. Pixel sizes (``(z, y, x)``,
    micrometres, the output's) go into the ``scale`` transformation, 1 where unknown;
    ``unit=None`` writes them without a unit (sizes in input pixels).

    Raises
    ------
    ValueError
        For axes OME-NGFF cannot hold, or an existing store of another shape or dtype.
    FileNotFoundError, PermissionError
        When the store cannot be created; the message names ``path``.
    """
    zarr = _zarr()
    import numpy as np

    p = Path(path)
    axes = axes.upper()
    _check_axes(axes)
    if not p.parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {p.parent}")
    if p.exists() and overwrite:
        shutil.rmtree(p)
    if p.exists():
        existing, _ = open_ome_zarr(p)
        if tuple(existing.shape) != tuple(shape) or existing.dtype != np.dtype(dtype):
            raise ValueError(
                f"the output store {p} holds a {existing.dtype} array of shape "
                f"{tuple(existing.shape)}, not {np.dtype(dtype)} {tuple(shape)}: remove it or "
                "use --overwrite"
            )
        return _writable(zarr, p, existing)
    try:
        group = zarr.open_group(str(p), mode="w-")
        chunks = tuple(1 if a not in "YX" else min(n, CHUNK_YX) for a, n in zip(axes, shape))
        group.create_array("0", shape=shape, dtype=dtype, chunks=chunks, fill_value=0)
        _write_metadata(group, axes, pixel_size, unit)
    except OSError as exc:
        raise PermissionError(f"cannot write the output store {p}: {exc.strerror or exc}") from None
    return group["0"]


def output_pixel_size(
    pixel_size: tuple[float | None, float | None, float | None], scale: tuple[float, float]
) -> tuple[float | None, float | None, float | None]:
    """The ``(z, y, x)`` pixel size of a result upscaled by ``scale`` = ``(sy, sx)``.

    Y and X are divided by their factors; Z is kept (a Z upsampling writes TIFF); an unknown
    (None or 0) size stays unknown (None).
    """
    pz, py, px = pixel_size
    sy, sx = scale
    return pz, (py / sy if py else None), (px / sx if px else None)


def output_store(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, ...],
    dtype: Any,
    axes: str,
    pixel_size: tuple[float | None, float | None, float | None] = (None, None, None),
    scale: tuple[float, float] = (1.0, 1.0),
    unit: str | None = "micrometer",
    overwrite: bool = False,
) -> Any:
    """The OME-Zarr store of a result: created, or reopened to resume (:func:`create_ome_zarr`).

    Parameters
    ----------
    path : path
        The store (a folder, ``*.ome.zarr``).
    shape, dtype, axes
        The result's array shape, dtype and axis letters (T, C, Z, Y, X order).
    pixel_size : (z, y, x)
        The *input's* pixel size (micrometres with the default ``unit``; None where unknown).
    scale : (sy, sx)
        The upscaling factors: the store records ``pixel_size`` divided by them
        (:func:`output_pixel_size`). ``(1, 1)`` records ``pixel_size`` as given.
    unit : str or None
        Unit of the pixel sizes; None writes them without one (sizes in input pixels).
    overwrite : bool
        Replace an existing store instead of reopening it.

    Raises
    ------
    ValueError, FileNotFoundError, PermissionError
        As :func:`create_ome_zarr`.
    """
    return create_ome_zarr(
        path,
        shape=shape,
        dtype=dtype,
        axes=axes,
        pixel_size=output_pixel_size(pixel_size, scale),
        unit=unit,
        overwrite=overwrite,
    )


def _writable(zarr: Any, p: Path, existing: Any) -> Any:
    """The reopened array, for writing; a clear error when the store is read-only."""
    path = existing.path
    try:
        arr = zarr.open_group(str(p), mode="r+")[path]
        arr.attrs.update({})  # a write of the metadata: fails at once on a read-only store
    except OSError as exc:
        raise PermissionError(f"cannot write the output store {p}: {exc.strerror or exc}") from None
    return arr


def _write_metadata(
    group: Any, axes: str, pixel_size: tuple[Any, Any, Any], unit: str | None
) -> None:
    from ome_zarr.writer import write_multiscales_metadata

    known = dict(zip("ZYX", pixel_size))
    scale, spec = [], []
    for letter in axes:
        size = known.get(letter)
        entry = {"name": letter.lower(), "type": _AXIS_TYPES[letter]}
        if size is not None and unit is not None:
            entry["unit"] = unit
        spec.append(entry)
        scale.append(float(size) if size is not None else 1.0)
    datasets = [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}]
    write_multiscales_metadata(group, datasets=datasets, axes=spec)


def remove_store(path: str | os.PathLike[str]) -> None:
    """Remove the output store ``path`` (one that a failed run created and left empty);
    nothing when it is gone already."""
    shutil.rmtree(path, ignore_errors=True)


def write_run_record(array: Any, record: dict[str, Any]) -> None:
    """Keep the run's record (parameters, kernel, times) in the array's attributes."""
    array.attrs["napari_zssr_run"] = record
