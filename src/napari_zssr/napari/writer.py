"""The writer contribution: an image layer saved as OME-TIFF with its pixel size and run record.

napari calls :func:`write_ome_tiff` from *File > Save Selected Layers...* (and
``napari.save_layers(..., plugin="napari-zssr")``) with the layer's data and its state. The
file is written by :func:`napari_zssr.io.write_tiff` (atomically), so that
``napari-zssr run`` and the widget's results give the same kind of file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._version import __version__

__all__ = ["write_ome_tiff"]

_TO_UM = {"nm": 1e-3, "nanometer": 1e-3, "um": 1.0, "µm": 1.0, "micrometer": 1.0, "micron": 1.0,
          "mm": 1e3, "millimeter": 1e3, "m": 1e6, "meter": 1e6}  # fmt: skip
_LEAD_LETTERS = "QTZ"  # OME holds at most T, Z and one extra (Q) axis before Y and X


def _unit_factor(unit: Any) -> float | None:
    """Micrometres per unit of a napari axis unit, None for pixels or an unknown unit."""
    name = str(unit or "pixel").strip().lower().replace("metre", "meter")
    return _TO_UM.get(name[:-1] if name.endswith("meters") else name)


def pixel_size_um(meta: dict[str, Any], ndim: int) -> tuple[float | None, ...]:
    """(z, y, x) pixel size in um from a layer's scale and units.

    A scale in pixels that is not 1 is taken as micrometres (the widget's convention: a layer
    scale is a physical size); a scale of 1 in pixels is unknown.
    """
    scale = list(meta.get("scale") or [1.0] * ndim)
    units = list(meta.get("units") or [None] * ndim)
    sizes: list[float | None] = []
    for axis in (-3, -2, -1):
        if -axis > ndim:
            sizes.append(None)
            continue
        value, factor = abs(float(scale[axis])), _unit_factor(units[axis])
        sizes.append(None if factor is None and value == 1.0 else value * (factor or 1.0))
    return tuple(sizes)


def write_ome_tiff(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Save one image layer as OME-TIFF (npe2 single-layer writer).

    Parameters
    ----------
    path : str
        Destination (``.tif``, ``.tiff``, ``.ome.tif``).
    data : array-like or list of array-like
        The layer's data; of a multiscale layer, the finest level is written.
    meta : dict
        The layer's state (``scale``, ``units``, ``rgb``, ``metadata``, ``name``...).

    Returns
    -------
    list of str
        The written path.
    """
    from ..io import write_tiff

    array = np.asarray(data[0] if meta.get("multiscale") else data)
    rgb = bool(meta.get("rgb", False))
    ndim = array.ndim - (1 if rgb else 0)
    if ndim - 2 > len(_LEAD_LETTERS):
        raise ValueError(f"OME-TIFF holds at most {len(_LEAD_LETTERS) + 2} axes, got {ndim}")
    axes = _LEAD_LETTERS[len(_LEAD_LETTERS) - (ndim - 2) :] + "YX" + ("S" if rgb else "")
    layer_meta = dict(meta.get("metadata") or {})
    record = {
        "software": "napari-zssr",
        "version": __version__,
        "layer": meta.get("name"),
        "zssr": layer_meta.get("zssr"),
    }
    write_tiff(
        path, array, axes=axes, pixel_size=pixel_size_um(meta, ndim), metadata=record, ome=True
    )
    return [path]
