"""Read and write microscopy TIFF files with their axes, pixel sizes and metadata.

:func:`read_tiff` understands ImageJ hyperstacks, OME-TIFF and tifffile's "shaped" TIFF
(axes, Z/Y/X pixel sizes in micrometres, JSON metadata). :func:`write_tiff` writes an
ImageJ-compatible hyperstack whenever the axes and dtype allow it, else an OME-TIFF, else a
shaped TIFF, always through a temporary file in the destination folder that is renamed into
place only once complete, so an interrupted write never leaves a partial file behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from .atomic import Terminated, atomic_write, check_writable

__all__ = [
    "Terminated",
    "TiffMeta",
    "atomic_write",
    "check_fits_in_memory",
    "check_writable",
    "read_tiff",
    "write_tiff",
]

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
    extra : dict
        Other ImageJ or OME fields that an upscale in Y/X does not change, to hand back to
        :func:`write_tiff`: ``{"imagej": {...}}`` (frame interval and its unit, fps, loop,
        display mode, display range, channel ranges, LUTs, slice labels, properties) or
        ``{"ome": {...}}`` (time increment and its unit, per-channel attributes such as
        names, colours and wavelengths). Empty for other flavours.
    """

    axes: str
    pixel_size: PixelSize = (None, None, None)
    format: str = "tiff"
    metadata: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


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
    with _tifffile_errors() as logged:
        try:
            with tifffile.TiffFile(path) as tif:
                array, meta = _read_open(tif, path)
        except _DeclaredTooLarge:
            raise
        except MemoryError as exc:
            raise ValueError(f"{path}: not enough memory to read the image ({exc})") from exc
        except Exception as exc:  # tifffile and its codecs raise many types on bad files
            cause = logged[0] if logged else _first_line(exc)
            raise ValueError(f"{path}: not a readable TIFF file ({cause})") from exc
    # tifffile skipped pages or tags it could not parse: the pixels may be incomplete. (A
    # metadata flavour it could not parse, "... series raised ...", only costs the axes: it
    # falls back to the plain pages, whose pixels are whole.)
    damage = [m for m in logged if " series raised " not in m]
    if damage:
        raise ValueError(f"{path}: damaged TIFF file ({damage[0]})")
    return array, meta


class _DeclaredTooLarge(ValueError):
    """The file declares more pixels than the memory can hold."""


def _first_line(exc: BaseException) -> str:
    """``exc`` on one line; the type is named unless it is a plain ValueError."""
    text = " ".join(str(exc).split())
    if isinstance(exc, ValueError) and text:
        return text
    name = type(exc).__name__
    if name == "error":  # zlib.error, struct.error: the module says what failed
        name = f"{type(exc).__module__}.error"
    return f"{name}: {text}" if text else name


@contextlib.contextmanager
def _tifffile_errors() -> Iterator[list[str]]:
    """Collect the errors tifffile logs (instead of printing them) while reading a file."""
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(" ".join(record.getMessage().split()))

    log = logging.getLogger("tifffile")
    handler = _Collect(level=logging.ERROR)
    propagate = log.propagate
    log.addHandler(handler)
    log.propagate = False  # one clear message instead of tifffile's log lines
    try:
        yield messages
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or None where it cannot be told.

    Linux: ``MemAvailable`` of ``/proc/meminfo``; elsewhere the free physical pages
    (``os.sysconf``), where the platform has them.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def check_fits_in_memory(
    path: Path,
    shape: tuple[int, ...],
    dtype: Any,
    *,
    what: str = "the file declares",
    hint: str = "; the file may be damaged",
    error: type[ValueError] = ValueError,
) -> None:
    """Refuse before reading when ``shape`` pixels of ``dtype`` exceed the available memory
    (one line: the path, ``what`` the pixels are, their size and the memory's, ``hint``)."""
    declared = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    available = available_memory()
    if available is not None and declared > available:
        dims = " x ".join(str(n) for n in shape)
        raise error(
            f"{path}: {what} {dims} {np.dtype(dtype)} pixels ({_human_bytes(declared)}), more "
            f"than the available memory ({_human_bytes(available)}){hint}"
        )


def _read_open(tif: tifffile.TiffFile, path: Path) -> tuple[np.ndarray, TiffMeta]:
    """Pixels and metadata of the first series of an open TIFF file."""
    if not tif.series:
        raise ValueError("no image in the file (its first IFD offset is invalid)")
    series = tif.series[0]
    check_fits_in_memory(path, tuple(series.shape), series.dtype, error=_DeclaredTooLarge)
    array = series.asarray()
    axes = series.axes.upper()
    page = tif.pages.first
    z = y = x = None
    metadata: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if tif.is_imagej:
        fmt = "imagej"
        ij = tif.imagej_metadata or {}
        factor = _unit_factor(ij.get("unit"))
        y, x = _resolution_um(page, factor)
        spacing = _positive(ij.get("spacing"))
        z = spacing * factor if spacing is not None and factor is not None else None
        metadata = _json_dict(ij.get("Info"))
        extra = _imagej_extra(ij)
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
        extra = _ome_extra(pixels)
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
    meta = TiffMeta(axes=axes, pixel_size=(z, y, x), format=fmt, metadata=metadata, extra=extra)
    return array, meta


# ImageJ fields that an upscale in Y/X leaves valid (frame timing, display, per-channel and
# per-slice annotations). Sizes, spacing, unit and origins are rewritten from the result.
_IJ_CARRY = (
    "finterval",
    "tunit",
    "fps",
    "loop",
    "mode",
    "min",
    "max",
    "Ranges",
    "LUTs",
    "Labels",
    "Properties",
)
# OME Pixels attributes and Channel attributes carried the same way.
_OME_CARRY = ("TimeIncrement", "TimeIncrementUnit")
_OME_CHANNEL_CARRY = (
    "Name",
    "Color",
    "AcquisitionMode",
    "ContrastMethod",
    "EmissionWavelength",
    "EmissionWavelengthUnit",
    "ExcitationWavelength",
    "ExcitationWavelengthUnit",
    "Fluor",
    "IlluminationType",
    "NDFilter",
    "PinholeSize",
    "PinholeSizeUnit",
    "PockelCellSetting",
)


def _imagej_extra(ij: Mapping[str, Any]) -> dict[str, Any]:
    """The carried ImageJ fields present in ``ij`` (see ``TiffMeta.extra``)."""
    kept = {k: ij[k] for k in _IJ_CARRY if k in ij and ij[k] is not None}
    return {"imagej": kept} if kept else {}


def _ome_extra(pixels: Mapping[str, Any]) -> dict[str, Any]:
    """The carried OME Pixels and Channel attributes (see ``TiffMeta.extra``)."""
    kept: dict[str, Any] = {k: pixels[k] for k in _OME_CARRY if k in pixels}
    channels = pixels.get("Channel", [])
    channels = channels if isinstance(channels, list) else [channels]
    per_channel: dict[str, list[Any]] = {}
    for name in _OME_CHANNEL_CARRY:
        values = [ch.get(name) if isinstance(ch, dict) else None for ch in channels]
        if values and all(v is not None for v in values):
            per_channel[name] = values
    if per_channel:
        kept["Channel"] = per_channel
    return {"ome": kept} if kept else {}


def _extra_for(fmt: str, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Writer keywords of ``fmt`` from a ``TiffMeta.extra`` dictionary.

    Fields of the same flavour are written back as they were; the frame interval also
    crosses between ImageJ (``finterval``, seconds) and OME (``TimeIncrement``).
    """
    extra = dict(extra or {})
    ij = dict(extra.get("imagej", {}))
    ome = dict(extra.get("ome", {}))
    if fmt == "imagej":
        if "finterval" not in ij and "TimeIncrement" in ome:
            if ome.get("TimeIncrementUnit", "s") == "s":
                ij["finterval"] = ome["TimeIncrement"]
        return {k: v for k, v in ij.items() if k in _IJ_CARRY}
    if fmt == "ome":
        if "TimeIncrement" not in ome and "finterval" in ij:
            ome.update(TimeIncrement=ij["finterval"], TimeIncrementUnit="s")
        return {k: v for k, v in ome.items() if k in (*_OME_CARRY, "Channel")}
    return {}


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
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = True,
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
    extra : mapping, optional
        ImageJ or OME fields to carry over, as :attr:`TiffMeta.extra` of a file read with
        :func:`read_tiff` (frame interval, channel names, ranges, LUTs...); fields the
        written flavour cannot hold are left out.
    overwrite : bool
        Whether an existing ``path`` is replaced. If False, a file that appeared at ``path``
        during the write (another run's) is kept and FileExistsError raised.

    Returns
    -------
    str
        The flavour written: ``"imagej"``, ``"ome"`` or ``"shaped"``.

    Raises
    ------
    ValueError
        If the axes do not match the array, a pixel size is not positive, or the metadata
        is not JSON-serialisable.
    FileExistsError
        With ``overwrite=False``, when ``path`` exists once the file is complete.
    OSError
        If the file cannot be written (:class:`~napari_zssr.io.errors.WriteFailure`: the
        path, the cause in words and, for a full disk, the space needed).
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
        meta: dict[str, Any] = {**_extra_for(fmt, extra), "axes": axes, "Info": info}
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
            meta = {**_extra_for(fmt, extra), "axes": axes, "Description": info}
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

    _atomic_imwrite(path, array, kwargs, overwrite)
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


def _atomic_imwrite(
    path: Path, array: np.ndarray, kwargs: dict[str, Any], overwrite: bool = True
) -> None:
    """Write a TIFF through :func:`atomic_write` (its size: the pixels and a little more)."""
    size = int(array.nbytes) + 4096
    atomic_write(
        path, lambda fh: tifffile.imwrite(fh, array, **kwargs), size=size, replace=overwrite
    )
