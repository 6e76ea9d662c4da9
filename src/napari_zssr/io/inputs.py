"""Opening an input image: a TIFF (ImageJ, OME or plain), an OME-Zarr store, or a microscope
file (Zeiss CZI, Nikon ND2, Leica LIF, an OME-TIFF of several images) through bioio.

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


def open_input(path: str | os.PathLike[str], scene: int | str | None = None) -> tuple[Any, Any]:
    """The pixels of the input ``path`` and its metadata (``axes``, ``pixel_size``, ``extra``).

    An OME-Zarr store (or plain zarr array) is opened lazily (a zarr array); a TIFF of one
    image is read into memory (:func:`~napari_zssr.io.read_tiff`); a CZI, ND2 or LIF file and
    an OME-TIFF of several images are read through bioio, one scene
    (:func:`~napari_zssr.io.formats.read_image`: pixel size in micrometres, channel names in
    ``extra``).

    Parameters
    ----------
    path : str or path-like
        The input file or store.
    scene : int or str, optional
        The scene of a file of several scenes: its index from 0 (also as a string) or its id
        (for example ``"Image:1"``). A file or store of one image takes None or 0.

    Raises
    ------
    FileNotFoundError, ValueError
        For a missing or unreadable input, a file of several scenes without ``scene``
        (the message lists them), or a ``scene`` the file does not hold.
    ImportError
        For a CZI, ND2 or LIF file without the ``formats`` extra (the message says what to
        install).
    """
    from .zarr_store import is_zarr_path, open_ome_zarr

    if is_zarr_path(path):
        if scene not in (None, 0, "0"):
            raise ValueError(f"{path}: an OME-Zarr store holds one image, not scene {scene!r}")
        array, zmeta = open_ome_zarr(path)
        return array, InputMeta(axes=zmeta.axes, pixel_size=zmeta.pixel_size)
    from .formats import read_image

    return read_image(path, scene)


def open_pixels(
    path: str | os.PathLike[str],
    shape: tuple[int, ...],
    dtype: Any,
    scene: int | str | None = None,
) -> Any:
    """The pixels of ``path`` (its ``scene``) without reading them whole where the format allows.

    A TIFF of one image whose pixels are stored plainly is mapped (``tifffile.memmap``) when
    the mapping has the ``shape`` and ``dtype`` the input was found to have; anything else is
    opened by :func:`open_input` (lazily for zarr, read whole otherwise).
    """
    from .formats import needs_bioio
    from .zarr_store import is_zarr_path

    # tifffile maps the first image only: a chosen scene is read through bioio
    if scene is None and not is_zarr_path(path) and not needs_bioio(path):
        import tifffile

        try:
            mapped = tifffile.memmap(str(path), mode="r")
        except Exception:  # compressed or tiled pixels cannot be mapped: read them
            mapped = None
        if mapped is not None and mapped.shape == shape and mapped.dtype == dtype:
            return mapped
    return open_input(path, scene)[0]
