"""Microscope files through bioio: Zeiss CZI, Nikon ND2, Leica LIF and OME-TIFF with scenes.

:func:`read_image` is the one reader the command line needs: a plain TIFF, an ImageJ
hyperstack or a single-image OME-TIFF goes through :func:`~napari_zssr.io.tiff.read_tiff` as
before; a CZI, ND2 or LIF file, and an OME-TIFF holding several images (scenes), go through
bioio and the reader plugin of their format. Both return the pixels and a
:class:`~napari_zssr.io.tiff.TiffMeta`: axes in tifffile's letters, the ``(z, y, x)`` pixel size
in micrometres, and the channel names in ``extra`` so that :func:`~napari_zssr.io.write_tiff`
writes them back (OME ``Channel`` names, or ImageJ slice labels).

bioio and its readers come with the ``formats`` extra (``pip install "napari-zssr[formats]"``)
and are imported only when such a file is read; without them the error says which extra to
install.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .outputs import MICROSCOPE_SUFFIXES
from .tiff import TiffMeta, check_fits_in_memory, read_tiff

__all__ = [
    "BIOIO_SUFFIXES",
    "FORMATS_INSTALL",
    "MissingFormatReader",
    "list_scenes",
    "needs_bioio",
    "read_image",
]

FORMATS_INSTALL = 'pip install "napari-zssr[formats]"'

# suffix -> (reader module, format name for messages and TiffMeta.format)
_READERS = {
    ".czi": ("bioio_czi", "CZI"),
    ".nd2": ("bioio_nd2", "ND2"),
    ".lif": ("bioio_lif", "LIF"),
    ".ome.tif": ("bioio_ome_tiff", "OME-TIFF"),
    ".ome.tiff": ("bioio_ome_tiff", "OME-TIFF"),
}
BIOIO_SUFFIXES = MICROSCOPE_SUFFIXES
"""Suffixes that only bioio reads (OME-TIFF goes through bioio for its scenes only)."""

_ORDER = "TZCYXS"
_LENGTH_UM = {
    "pm": 1e-6,
    "Å": 1e-4,
    "nm": 1e-3,
    "µm": 1.0,
    "um": 1.0,
    "mm": 1e3,
    "cm": 1e4,
    "m": 1e6,
}


class MissingFormatReader(ImportError):
    """bioio or the reader of a file's format is not installed (the ``formats`` extra)."""


def _suffix(path: Path) -> str:
    """The format's suffix of ``path`` (``.ome.tif`` before ``.tif``), lower case."""
    name = path.name.lower()
    for suffix in _READERS:
        if suffix.startswith(".ome") and name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def needs_bioio(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a CZI, ND2 or LIF file, which only bioio reads.

    Parameters
    ----------
    path : str or path-like
        A file name; the file need not exist.

    Returns
    -------
    bool
        True for ``.czi``, ``.nd2`` and ``.lif`` (any case).
    """
    return _suffix(Path(path)) in BIOIO_SUFFIXES


def _reader_class(path: Path, suffix: str) -> tuple[Any, str]:
    """bioio's reader class for ``suffix`` and the format's name; a clear error if missing."""
    if suffix not in _READERS:
        raise ValueError(
            f"{path}: unknown image format {suffix or '(no suffix)'!r}; "
            "expected .czi, .nd2, .lif or .ome.tif"
        )
    module_name, fmt = _READERS[suffix]
    package = module_name.replace("_", "-")
    try:
        importlib.import_module("bioio")
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = "bioio" if exc.name == "bioio" else package
        raise MissingFormatReader(
            f"reading {fmt} files needs the 'formats' extra ({missing} is missing): "
            f"{FORMATS_INSTALL}"
        ) from exc
    return module.Reader, fmt


def _open(path: Path, suffix: str | None = None) -> tuple[Any, str]:
    """An open ``bioio.BioImage`` of ``path`` and the format's name (from ``suffix``, by
    default the file's own)."""
    reader, fmt = _reader_class(path, suffix or _suffix(path))
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    import bioio

    try:
        return bioio.BioImage(path, reader=reader), fmt
    except Exception as exc:  # the readers raise many types on bad files
        cause = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{path}: not a readable {fmt} file ({cause[:200]})") from exc


def list_scenes(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The scenes (images, positions, series) of a microscope file, in the file's order.

    Parameters
    ----------
    path : str or path-like
        A CZI, ND2, LIF or OME-TIFF file.

    Returns
    -------
    tuple of str
        bioio's scene ids (for example ``"Image:0"``); one per scene, at least one.

    Raises
    ------
    MissingFormatReader
        If bioio or the format's reader is not installed (the ``formats`` extra).
    FileNotFoundError, ValueError
        If the file does not exist or cannot be read.
    """
    path = Path(path)
    if not needs_bioio(path) and _tiff_series(path) <= 1:
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        return ("Image:0",)  # one image: no need for bioio
    image, _ = _open(path, _bioio_suffix(path))
    return tuple(str(s) for s in image.scenes)


def _pick_scene(path: Path, scenes: Sequence[str], scene: int | str | None) -> int:
    """The index of ``scene`` (an index, a digit string or an id) among ``scenes``."""
    listing = ", ".join(f"{i}: {name}" for i, name in enumerate(scenes))
    if scene is None:
        if len(scenes) == 1:
            return 0
        raise ValueError(
            f"{path} holds {len(scenes)} scenes ({listing}); choose one with "
            "scene= (--scene on the command line)"
        )
    if isinstance(scene, str) and scene in scenes:
        return list(scenes).index(scene)
    try:
        index = int(scene)
    except (TypeError, ValueError):
        index = -1
    if not 0 <= index < len(scenes):
        raise ValueError(f"{path}: no scene {scene!r}; the file holds {listing}")
    return index


def _um(value: Any, unit: Any = "µm") -> float | None:
    """``value`` in ``unit`` as a positive finite number of micrometres, else None."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    unit = getattr(unit, "value", unit)  # ome-types gives an enum
    factor = _LENGTH_UM.get(str(unit).replace("\u03bc", "µ")) if unit is not None else 1.0
    if factor is None or not np.isfinite(v) or v <= 0:
        return None
    return v * factor


def _pixel_size(image: Any, fmt: str) -> tuple[float | None, float | None, float | None]:
    """``(z, y, x)`` in micrometres of the current scene.

    bioio's ``physical_pixel_sizes`` are micrometres for CZI, ND2 and LIF, but its OME-TIFF
    reader passes the numbers on in whatever unit the file states, so the OME units are read.
    """
    if fmt == "OME-TIFF":
        pixels = image.ome_metadata.images[image.current_scene_index].pixels
        z, y, x = (
            _um(getattr(pixels, f"physical_size_{a}"), getattr(pixels, f"physical_size_{a}_unit"))
            for a in "zyx"
        )
    else:
        sizes = image.physical_pixel_sizes
        z, y, x = (_um(sizes.Z), _um(sizes.Y), _um(sizes.X))
    if y is None and x is not None:
        y = x
    if x is None and y is not None:
        x = y
    return z, y, x


def _channel_names(image: Any, fmt: str) -> list[str]:
    """The current scene's channel names as the file states them (none where it does not).

    For OME-TIFF, bioio makes up ``Channel:i:c`` for unnamed channels; those are not kept.
    """
    if fmt == "OME-TIFF":
        pixels = image.ome_metadata.images[image.current_scene_index].pixels
        names = [channel.name for channel in pixels.channels]
        return [str(n) for n in names] if names and all(names) else []
    return [str(n) for n in (image.channel_names or [])]


def _layout(dims: Any) -> tuple[str, str]:
    """bioio's dimension order and the axes kept: size-1 axes other than Y and X dropped,
    the rest in tifffile/ImageJ order (other letters first, then T, Z, C, Y, X, S)."""
    order = str(dims.order)
    shape = dict(zip(order, dims.shape, strict=True))
    keep = [a for a in order if a in "YX" or shape[a] > 1]
    others = [a for a in keep if a not in _ORDER]
    return order, "".join([*others, *sorted((a for a in keep if a in _ORDER), key=_ORDER.index)])


def _channel_fields(names: Sequence[str], axes: str, shape: Sequence[int]) -> dict[str, Any]:
    """Channel names as ``TiffMeta.extra``: OME ``Channel`` names and, for an ImageJ output,
    one slice label per plane: the plane's channel name (the axes end in C, Y, X, so the
    channel is the fastest of the plane axes, as in ImageJ's T, Z, C plane order)."""
    if not names or "S" in axes:
        return {}
    n_channels = shape[axes.index("C")] if "C" in axes else 1
    if len(names) != n_channels:
        return {}
    n_planes = int(np.prod([n for a, n in zip(axes, shape, strict=True) if a not in "YX"]))
    return {
        "ome": {"Channel": {"Name": list(names)}},
        "imagej": {"Labels": [names[k % n_channels] for k in range(n_planes)]},
    }


def _read_bioio(path: Path, scene: int | str | None) -> tuple[np.ndarray, TiffMeta]:
    """Pixels and metadata of one scene of a file bioio reads."""
    image, fmt = _open(path, _bioio_suffix(path))
    scenes = tuple(str(s) for s in image.scenes)
    index = _pick_scene(path, scenes, scene)
    try:
        image.set_scene(index)
        order, axes = _layout(image.dims)
        shape = [image.dims.shape[order.index(a)] for a in axes]
        dtype = image.dtype
    except Exception as exc:  # the readers raise many types on bad files
        raise ValueError(f"{path}: cannot read scene {scenes[index]} ({exc})") from exc
    check_fits_in_memory(path, tuple(shape), dtype, what="the scene holds", hint="")
    try:
        array = np.asarray(image.get_image_data(axes))
        names = _channel_names(image, fmt)
        pixel_size = _pixel_size(image, fmt)
    except MemoryError as exc:
        raise ValueError(f"{path}: not enough memory to read scene {scenes[index]}") from exc
    except Exception as exc:
        raise ValueError(f"{path}: cannot read scene {scenes[index]} ({exc})") from exc
    metadata = {"reader": type(image.reader).__module__.split(".")[0], "scene": scenes[index]}
    if len(scenes) > 1:
        metadata["scenes"] = len(scenes)
    meta = TiffMeta(
        axes=axes,
        pixel_size=pixel_size,
        format=fmt.lower(),
        metadata=metadata,
        extra=_channel_fields(names, axes, array.shape),
    )
    return array, meta


def _bioio_suffix(path: Path) -> str:
    """The reader's key for ``path``: its own suffix, ``.ome.tif`` for any other TIFF."""
    suffix = _suffix(path)
    return suffix if suffix in _READERS else ".ome.tif"


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Keep tifffile's log lines (on a damaged file) off the terminal for a while."""
    log = logging.getLogger("tifffile")
    handler = logging.NullHandler()
    propagate = log.propagate
    log.addHandler(handler)  # without a handler, logging would print them anyway
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


def _tiff_series(path: Path) -> int:
    """How many images (series) an OME-TIFF holds, counted by tifffile."""
    import tifffile

    if not path.is_file():
        return 1
    # tifffile's log lines on a damaged file are kept quiet: read_tiff says what is wrong
    with _quiet_tifffile():
        try:
            with tifffile.TiffFile(path) as tif:
                return len(tif.series) if tif.is_ome else 1
        except Exception:
            return 1


def read_image(
    path: str | os.PathLike[str], scene: int | str | None = None
) -> tuple[np.ndarray, TiffMeta]:
    """Read a microscope image with its axes, pixel sizes and channel names.

    Parameters
    ----------
    path : str or path-like
        A TIFF, ImageJ hyperstack or OME-TIFF file, or (with the ``formats`` extra) a Zeiss
        CZI, Nikon ND2 or Leica LIF file.
    scene : int or str, optional
        For a file of several scenes (positions, series, images), the scene to read: its
        index (0 for the first, also as a string such as ``"1"``) or its id as
        :func:`list_scenes` gives it. Needed when the file holds several scenes; a file of one
        scene accepts 0 or None.

    Returns
    -------
    array : numpy.ndarray
        The pixels of the scene, axes as in ``meta.axes``; size-1 axes other than Y and X are
        left out.
    meta : TiffMeta
        Axes (tifffile's letters: ``T``, ``Z``, ``C``, ``Y``, ``X``, ``S`` for RGB samples),
        the ``(z, y, x)`` pixel size in micrometres (None where the file does not say), the
        format (``"czi"``, ``"nd2"``, ``"lif"``, ``"ome-tiff"`` through bioio; the TIFF
        flavour through :func:`~napari_zssr.io.tiff.read_tiff`), the reader and scene in
        ``metadata``, and the channel names in ``extra`` (``{"ome": {"Channel": {"Name":
        [...]}}}`` and, where the channel is the fastest plane axis, ImageJ slice labels).

    Raises
    ------
    MissingFormatReader
        If the file needs bioio or a reader that is not installed: the message names
        ``pip install "napari-zssr[formats]"``.
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be read, it holds several scenes and none was chosen (the message
        lists them), or ``scene`` names none of them.
    """
    path = Path(path)
    if needs_bioio(path) or _tiff_series(path) > 1:  # an OME-TIFF of several images too
        return _read_bioio(path, scene)
    if scene not in (None, 0, "0", "Image:0"):
        raise ValueError(f"{path}: a TIFF file of one image has no scene {scene!r}")
    return read_tiff(path)
