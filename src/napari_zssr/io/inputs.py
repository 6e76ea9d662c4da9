"""Opening an input image: a TIFF (ImageJ, OME or plain) or an OME-Zarr store.

:func:`open_input` is the one place that decides how a file is read; other formats join it
here. :func:`open_pixels` opens the same inputs without reading them whole, for tasks that
compute a few planes of a large stack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["InputMeta", "open_input", "open_pixels"]


@dataclass(frozen=True)
class InputMeta:
    """What an input that is not a TIFF says about itself (a TIFF gives a
    :class:`~napari_zssr.io.TiffMeta`, which has the same fields and more).

    Attributes
    ----------
    axes : str or None
        Axis letters, None where the input does not name them.
    pixel_size : (z, y, x)
        Micrometres per pixel, None where unknown.
    extra : dict
        Format fields to carry into a TIFF output; empty.
    """

    axes: str | None
    pixel_size: tuple[float | None, float | None, float | None] = (None, None, None)
    extra: dict[str, Any] = field(default_factory=dict)


def open_input(path: str | os.PathLike[str]) -> tuple[Any, Any]:
    """The pixels of the input ``path`` and its metadata (``axes``, ``pixel_size``, ``extra``).

    An OME-Zarr store (or plain zarr array) is opened lazily (a zarr array); a TIFF is read
    into memory (:func:`~napari_zssr.io.read_tiff`).

    Raises
    ------
    FileNotFoundError, ValueError
        For a missing or unreadable input.
    """
    from .zarr_store import is_zarr_path, open_ome_zarr

    if is_zarr_path(path):
        array, zmeta = open_ome_zarr(path)
        return array, InputMeta(axes=zmeta.axes, pixel_size=zmeta.pixel_size)
    from .tiff import read_tiff

    return read_tiff(path)


def open_pixels(path: str | os.PathLike[str], shape: tuple[int, ...], dtype: Any) -> Any:
    """The pixels of ``path`` without reading them whole where the format allows.

    A TIFF whose pixels are stored plainly is mapped (``tifffile.memmap``) when the mapping
    has the ``shape`` and ``dtype`` the input was found to have; anything else is opened by
    :func:`open_input` (lazily for zarr, read whole otherwise).
    """
    from .zarr_store import is_zarr_path

    if not is_zarr_path(path):
        import tifffile

        try:
            mapped = tifffile.memmap(str(path), mode="r")
        except Exception:  # compressed or tiled pixels cannot be mapped: read them
            mapped = None
        if mapped is not None and mapped.shape == shape and mapped.dtype == dtype:
            return mapped
    return open_input(path)[0]
