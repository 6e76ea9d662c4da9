"""Read and write microscopy TIFF files with their axes, pixel sizes and metadata.

:func:`read_tiff` understands ImageJ hyperstacks, OME-TIFF and tifffile's "shaped" TIFF
(axes, Z/Y/X pixel sizes in micrometres, JSON metadata). :func:`write_tiff` writes an
ImageJ-compatible hyperstack whenever the axes and dtype allow it, else an OME-TIFF, else a
shaped TIFF, always through a temporary file in the destination folder that is renamed into
place only once complete, so an interrupted write never leaves a partial file behind.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

__all__ = ["TiffMeta", "read_tiff", "write_tiff"]

PixelSize = tuple[float | None, float | None, float | None]

# Length units seen in ImageJ and OME metadata, as micrometres per unit.
_UNIT_UM = {
    "um": 1.0,
    "µm": 1.0,
    "μm": 1.0,
    "\\u00b5m": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "nanometre": 1e-3,
    "pm": 1e-6,
    "å": 1e-4,
    "angstrom": 1e-4,
    "mm": 1e3,
    "millimeter": 1e3,
    "millimetre": 1e3,
    "cm": 1e4,
    "m": 1e6,
}
# TIFF ResolutionUnit values with a physical length (inch is left out on purpose: it is
# almost always a meaningless "72 dpi" default of non-microscopy software).
_RESUNIT_UM = {3: 1e4, 4: 1e3, 5: 1.0}  # centimetre, millimetre, micrometre
_IMAGEJ_ORDER = "TZCYXS"
_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)
_OME_LETTERS = set("TZCQYXS")
_IMAGEJ_MAX_BYTES = 2**32 - 2**25


@dataclass(frozen=True)
class TiffMeta:
    """What :func:`read_tiff` found besides the pixels.

    Attributes
    ----------
    axes : str
        One letter per array axis, tifffile's convention: ``T`` time, ``Z`` depth,
        ``C`` channel, ``Y``/``X`` the plane, ``S`` colour samples (RGB), ``Q``/``I`` or
        other letters for unlabelled stack axes.
    pixel_size : tuple of (float or None)
        ``(z, y, x)`` voxel size in micrometres, None where the file does not say.
    format : str
        ``"imagej"``, ``"ome"``, ``"shaped"`` (tifffile's JSON description) or ``"tiff"``.
    metadata : dict
        JSON metadata stored in the file (ImageJ ``Info``, OME image ``Description`` or
        shaped description), empty when there is none or it is not JSON.
    """

    axes: str
    pixel_size: PixelSize = (None, None, None)
    format: str = "tiff"
    metadata: dict[str, Any] = field(default_factory=dict)


def _unit_factor(unit: Any) -> float | None:
    """Micrometres per ``unit``, or None for a missing, "pixel" or unknown unit."""
    if not isinstance(unit, str):
        return None
    return _UNIT_UM.get(unit.strip().lower())


def _positive(value: Any) -> float | None:
    """``value`` as a positive finite float, else None."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


def _resolution_um(page: tifffile.TiffPage, factor: float | None) -> tuple[float | None, ...]:
    """(y, x) pixel size in micrometres from the X/YResolution tags (pixels per unit)."""
    if factor is None:
        return (None, None)
    out = []
    for name in ("YResolution", "XResolution"):
        tag = page.tags.get(name)
        if tag is None:
            out.append(None)
            continue
        num, den = tag.value if isinstance(tag.value, tuple) else (tag.value, 1)
        per_unit = _positive(num / den) if den else None
        out.append(factor / per_unit if per_unit else None)
    return tuple(out)


def _json_dict(text: Any) -> dict[str, Any]:
    """Parse ``text`` as a JSON object; anything else gives an empty dict."""
    if not isinstance(text, str) or not text.strip().startswith("{"):
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_tiff(path: str | os.PathLike[str]) -> tuple[np.ndarray, TiffMeta]:
    """Read the first image series of a TIFF file with its axes and pixel sizes.

    Parameters
    ----------
    path : str or path-like
        A TIFF, ImageJ hyperstack or OME-TIFF file.

    Returns
    -------
    array : numpy.ndarray
        The pixels, axes as in ``meta.axes``.
    meta : TiffMeta
        Axes, ``(z, y, x)`` pixel size in micrometres (None where unknown), file flavour and
        JSON metadata.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a readable TIFF.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        array = series.asarray()
        axes = series.axes.upper()
        page = tif.pages[0]
        z = y = x = None
        metadata: dict[str, Any] = {}
        if tif.is_imagej:
            fmt = "imagej"
            ij = tif.imagej_metadata or {}
            factor = _unit_factor(ij.get("unit"))
            y, x = _resolution_um(page, factor)
            spacing = _positive(ij.get("spacing"))
            z = spacing * factor if spacing is not None and factor is not None else None
            metadata = _json_dict(ij.get("Info"))
        elif tif.is_ome:
            fmt = "ome"
            ome = tifffile.xml2dict(tif.ome_metadata).get("OME", {})
            image = ome.get("Image", {})
            image = image[0] if isinstance(image, list) else image
            pixels = image.get("Pixels", {})
            sizes = []
            for ax in "ZYX":
                value = _positive(pixels.get(f"PhysicalSize{ax}"))
                factor = _unit_factor(pixels.get(f"PhysicalSize{ax}Unit", "µm"))
                sizes.append(value * factor if value is not None and factor else None)
            z, y, x = sizes
            metadata = _json_dict(image.get("Description"))
        else:
            fmt = "shaped" if tif.is_shaped else "tiff"
            resunit = page.tags.get("ResolutionUnit")
            y, x = _resolution_um(page, _RESUNIT_UM.get(int(resunit.value) if resunit else 1))
            if tif.is_shaped and tif.shaped_metadata:
                shaped = tif.shaped_metadata[0]
                metadata = _json_dict(shaped.get("info"))
                stored = shaped.get("pixel_size_um")
                if isinstance(stored, list) and len(stored) == 3:
                    z = _positive(stored[0])
    if y is None and x is not None:
        y = x
    if x is None and y is not None:
        x = y
    return array, TiffMeta(axes=axes, pixel_size=(z, y, x), format=fmt, metadata=metadata)


def _normalise_pixel_size(pixel_size: Any) -> PixelSize:
    """Accept None, a scalar (y = x), ``(y, x)`` or ``(z, y, x)``; check values are > 0."""
    if pixel_size is None:
        return (None, None, None)
    if np.isscalar(pixel_size):
        values: list[Any] = [None, pixel_size, pixel_size]
    else:
        values = list(pixel_size)
        if len(values) == 2:
            values = [None, *values]
        if len(values) != 3:
            raise ValueError(
                f"pixel_size must be a number, (y, x) or (z, y, x); got {pixel_size!r}"
            )
    out = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        f = _positive(v)
        if f is None:
            raise ValueError(f"pixel sizes must be positive finite numbers; got {pixel_size!r}")
        out.append(f)
    return (out[0], out[1], out[2])


def _check_axes(axes: str | None, array: np.ndarray) -> str:
    """Validate (or default, for 2D) the axes string of ``array``."""
    if axes is None:
        if array.ndim != 2:
            raise ValueError(f"axes are required for a {array.ndim}-D array (e.g. 'ZYX')")
        return "YX"
    if not isinstance(axes, str):
        raise TypeError(f"axes must be a string such as 'TZCYX', got {type(axes).__name__}")
    axes = axes.upper()
    if len(axes) != array.ndim:
        raise ValueError(
            f"axes {axes!r} has {len(axes)} letters but the array has {array.ndim} dimensions"
        )
    if len(set(axes)) != len(axes) or "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} must name each axis once and include Y and X")
    return axes


def _choose_format(array: np.ndarray, axes: str, imagej: bool = True) -> str:
    """The richest TIFF flavour that can hold ``array`` with these axes."""
    letters = [a for a in axes]
    imagej_ok = (
        imagej
        and set(letters) <= set(_IMAGEJ_ORDER)
        and letters == sorted(letters, key=_IMAGEJ_ORDER.index)
        and array.dtype.type in _IMAGEJ_DTYPES
        and array.nbytes < _IMAGEJ_MAX_BYTES
        and ("S" not in axes or (array.dtype == np.uint8 and array.shape[-1] == 3))
    )
    if imagej_ok:
        return "imagej"
    stripped = axes[:-1] if axes.endswith("S") else axes
    if (
        set(axes) <= _OME_LETTERS
        and axes.count("Q") <= 1
        and stripped.endswith("YX")
        and "S" not in stripped
    ):
        return "ome"
    return "shaped"


def write_tiff(
    path: str | os.PathLike[str],
    array: np.ndarray,
    *,
    axes: str | None = None,
    pixel_size: float | Sequence[float | None] | None = None,
    metadata: Mapping[str, Any] | None = None,
    ome: bool = False,
) -> str:
    """Write ``array`` to a TIFF file atomically, with axes, pixel size and JSON metadata.

    The flavour is an ImageJ hyperstack when ImageJ can represent the data (axes a subset of
    ``TZCYXS`` in that order; uint8, uint16 or float32; RGB only as uint8 with 3 samples),
    else OME-TIFF (axes from ``TZCYXS`` plus at most one ``Q``, in any order), else a shaped
    TIFF. The data go to a hidden temporary file in the destination folder, which replaces
    ``path`` only once complete; on any error or interruption it is removed.

    Parameters
    ----------
    path : str or path-like
        Destination file; an existing file is replaced.
    array : numpy.ndarray
        Pixels to write (not modified).
    axes : str, optional
        One letter per axis (see :class:`TiffMeta`); required unless ``array`` is 2D.
    pixel_size : float or sequence, optional
        Micrometres: a number (Y = X), ``(y, x)`` or ``(z, y, x)``; None entries are unknown.
    metadata : mapping, optional
        JSON-serialisable values stored as the ImageJ ``Info`` text, the OME image
        ``Description`` or in the shaped description.
    ome : bool
        Write OME-TIFF even where ImageJ could hold the data (an error where OME cannot).

    Returns
    -------
    str
        The flavour written: ``"imagej"``, ``"ome"`` or ``"shaped"``.

    Raises
    ------
    ValueError
        If the axes do not match the array, a pixel size is not positive, or the metadata
        is not JSON-serialisable.
    OSError
        If the file cannot be written.
    """
    path = Path(path)
    array = np.asarray(array)
    axes = _check_axes(axes, array)
    z, y, x = _normalise_pixel_size(pixel_size)
    try:
        info = json.dumps(dict(metadata or {}), allow_nan=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-serialisable: {exc}") from exc
    fmt = _choose_format(array, axes)
    if ome and fmt != "ome":
        fmt = _choose_format(array, axes, imagej=False)
        if fmt != "ome":
            raise ValueError(f"OME-TIFF cannot hold axes {axes!r} (shape {array.shape})")

    kwargs: dict[str, Any] = {}
    if fmt == "imagej":
        meta: dict[str, Any] = {"axes": axes, "Info": info}
        if y is not None and x is not None:
            kwargs["resolution"] = (1.0 / x, 1.0 / y)
            meta["unit"] = "um"
            if z is not None:
                meta["spacing"] = z
        kwargs.update(imagej=True, metadata=meta)
    else:
        if y is not None and x is not None:
            kwargs.update(resolution=(1e4 / x, 1e4 / y), resolutionunit="CENTIMETER")
        if fmt == "ome":
            meta = {"axes": axes, "Description": info}
            for ax, value in zip("ZYX", (z, y, x)):
                if value is not None:
                    meta[f"PhysicalSize{ax}"] = value
                    meta[f"PhysicalSize{ax}Unit"] = "µm"
            kwargs.update(ome=True, metadata=meta)
        else:
            meta = {"axes": axes, "info": info, "pixel_size_um": [z, y, x]}
            kwargs.update(ome=False, shaped=True, metadata=meta)
        if axes.endswith("S"):
            kwargs["photometric"] = "rgb" if array.shape[-1] in (3, 4) else "minisblack"
            if array.shape[-1] not in (3, 4):
                kwargs["planarconfig"] = "contig"
        else:
            kwargs["photometric"] = "minisblack"

    _atomic_imwrite(path, array, kwargs)
    return fmt


def _json_default(value: Any) -> Any:
    """JSON encoder fallback for numpy scalars, arrays and paths."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _atomic_imwrite(path: Path, array: np.ndarray, kwargs: dict[str, Any]) -> None:
    """Write through a temporary sibling file, then rename it over ``path``."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    tmp = folder / f".{path.name}.{secrets.token_hex(4)}.part"
    try:
        with open(tmp, "xb") as fh:  # exclusive create, default permissions
            tifffile.imwrite(fh, array, **kwargs)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
