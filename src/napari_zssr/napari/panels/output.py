"""Where large results go: an OME-Zarr store, shown as a lazy layer.

A result above :data:`LARGE_RESULT_BYTES` (or any result, with "write to OME-Zarr" ticked) is
written plane by plane into an OME-Zarr store in the chosen folder (or a temporary folder,
named in the status line), so that it never has to fit in memory; the widget then shows it
as a dask-backed layer (:func:`lazy_layer_data`).
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, Container, FileEdit

__all__ = ["LARGE_RESULT_BYTES", "OutputPanel", "lazy_layer_data"]

#: Results larger than this (bytes) go to an OME-Zarr store whatever the checkbox says.
LARGE_RESULT_BYTES = 2 * 1024**3


def lazy_layer_data(output: Any) -> Any:
    """The layer data of a result: a NumPy array as it is, a zarr array as a dask array."""
    if isinstance(output, np.ndarray):
        return output
    import dask.array as da

    return da.from_zarr(output)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "result"


class OutputPanel(Container):
    """ "Write to OME-Zarr" and the folder of the stores."""

    def __init__(self) -> None:
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.to_zarr = CheckBox(
            value=False,
            text="write to OME-Zarr",
            tooltip="Write the result plane by plane into an OME-Zarr store and show it "
            f"lazily. Results above {LARGE_RESULT_BYTES / 1024**3:g} GiB always are.",
        )
        self.zarr_folder = FileEdit(
            mode="d",
            nullable=True,  # empty shows empty (not the working directory) and means temporary
            label="OME-Zarr folder",
            tooltip="Folder of the OME-Zarr stores; empty: a temporary folder (named in the "
            "status line when the run ends)",
        )
        self.extend([self.to_zarr, self.zarr_folder])
        self.note = ""

    def _folder(self) -> Path:
        text = str(self.zarr_folder.value or "").strip()
        if text in ("", "."):
            return Path(tempfile.mkdtemp(prefix="napari-zssr-"))
        return Path(text)

    def store_for(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: Any,
        axes: str,
        pixel: tuple,
        scale: tuple[float, float],
    ) -> Any:
        """A new OME-Zarr array for a result of ``shape`` and ``dtype``, or None (in memory).

        ``axes`` are the result's letters; results OME-NGFF cannot hold (RGB, more than two
        stack axes) stay in memory. ``pixel`` is the input's ``(z, y, x)`` pixel size in the
        layer's units and ``scale`` the upscaling ``(sy, sx)``: the store records the
        result's. Raises on a folder that cannot be written (before any training).
        """
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        big = nbytes > LARGE_RESULT_BYTES
        if not (self.to_zarr.value or big) or not set(axes) <= set("TCZYX"):
            return None
        from ...io.zarr_store import output_store

        folder = self._folder()
        path = folder / f"{_safe_name(name)}.ome.zarr"
        k = 2
        while path.exists():  # never write into an earlier result
            path = folder / f"{_safe_name(name)}_{k}.ome.zarr"
            k += 1
        store = output_store(
            path, shape=shape, dtype=dtype, axes=axes, pixel_size=pixel, scale=scale, unit=None
        )
        self.note = f"written to {path}"
        return store
