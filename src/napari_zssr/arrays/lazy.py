"""Arrays that are read plane by plane: dask and zarr arrays, NumPy memmaps, other array-likes.

:func:`~napari_zssr.super_resolve` never turns such an array into one NumPy array: the
intensity range is gathered in one pass over the planes, and every later step reads one
``(C, Y, X)`` plane at a time (:func:`read_plane`). Outputs are written back the same way
(:func:`write_plane`). Pure NumPy: no file is opened here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["check_lazy", "is_lazy", "lazy_intensity_info", "plane_key", "read_plane", "write_plane"]


def is_lazy(image: Any) -> bool:
    """Whether ``image`` is read plane by plane: a memmap, or an array-like that is not a
    NumPy array but has ``shape``, ``dtype`` and indexing (dask, zarr, h5py, xarray)."""
    if isinstance(image, np.memmap):
        return True
    if isinstance(image, np.ndarray):
        return False
    return all(hasattr(image, name) for name in ("shape", "dtype", "__getitem__"))


def check_lazy(image: Any) -> Any:
    """The checks of an in-memory image that need no pass over the data (dtype, size).

    NaN and Inf are found later, plane by plane, by :func:`lazy_intensity_info`.
    """
    dtype = np.dtype(image.dtype)
    if dtype.kind == "O":
        raise TypeError("image has dtype object; pass a numeric array")
    if math.prod(int(n) for n in image.shape) == 0:
        raise ValueError(f"image is empty (shape {tuple(image.shape)})")
    return image


def plane_key(layout: Any, idx: tuple[int, ...]) -> tuple[Any, ...]:
    """The index of stack position ``idx`` in the user's array: an integer on every stack
    axis, everything on the channel, Y and X axes."""
    key: list[Any] = [slice(None)] * len(layout.shape)
    for axis, i in zip(layout.stack_axes, idx):
        key[axis] = int(i)
    return tuple(key)


def _plane_axes(layout: Any) -> list[int]:
    """Where C, Y and X are among the axes left after :func:`plane_key` indexing."""
    rest = [a for a in range(len(layout.shape)) if a not in layout.stack_axes]
    return [rest.index(a) for a in (layout.channel_axis, layout.y_axis, layout.x_axis)]


def read_plane(layout: Any, arr: Any, idx: tuple[int, ...]) -> np.ndarray:
    """Read one ``(C, Y, X)`` plane of ``arr`` (only that plane is read)."""
    sub = np.asarray(arr[plane_key(layout, idx)])
    if layout.channel_axis is None:
        return sub[None]
    return np.moveaxis(sub, _plane_axes(layout), [0, 1, 2])


def write_plane(layout: Any, out: Any, idx: tuple[int, ...], plane: np.ndarray) -> None:
    """Write a ``(C, Y, X)`` plane into ``out`` (laid out as ``layout``) at stack ``idx``."""
    value = (
        plane[0]
        if layout.channel_axis is None
        else np.moveaxis(plane, [0, 1, 2], _plane_axes(layout))
    )
    out[plane_key(layout, idx)] = value


class _ChannelStats:
    """Exact minimum and maximum of one channel, and the values its percentile is taken of."""

    def __init__(self, total: int, sample: int) -> None:
        self.total, self.sample = total, sample
        self.vmin: Any = None
        self.vmax: Any = None
        self.values: list[np.ndarray] = []

    def add(self, values: np.ndarray, rng: np.random.Generator) -> None:
        integer = values.dtype.kind in "ui"
        lo = int(values.min()) if integer else float(values.min())
        hi = int(values.max()) if integer else float(values.max())
        self.vmin = lo if self.vmin is None else min(self.vmin, lo)
        self.vmax = hi if self.vmax is None else max(self.vmax, hi)
        flat = values.reshape(-1)
        if self.total > self.sample:  # a share of the sample proportional to the plane's size
            n = max(1, math.ceil(self.sample * flat.size / self.total))
            flat = flat[rng.integers(0, flat.size, size=n)]
        self.values.append(np.array(flat))


def lazy_intensity_info(arr: Any, layout: Any) -> Any:
    """:func:`napari_zssr.arrays.planes.intensity_info` in one pass over the planes of ``arr``.

    Minimum and maximum are exact; the robust percentile is taken of all values when a
    channel has at most 2 million (then the result equals the in-memory one), else of a
    random sample spread over the planes in proportion to their size.

    Raises
    ------
    ValueError
        For NaN or Inf values, and as :func:`~napari_zssr.arrays.planes.intensity_info`.
    """
    from .planes import _SAMPLE, IntensityInfo, _check_dtype, _range_from, info_from_ranges

    dtype = np.dtype(arr.dtype)
    _check_dtype(dtype)
    c = layout.channels
    if dtype == np.uint8:  # the full 0-255 range, as in memory (and no NaN to look for)
        return IntensityInfo(dtype, np.zeros(c), np.full(c, 255.0), 1.0)
    rng = np.random.default_rng(0)
    per_channel = layout.n_planes * layout.plane_shape[0] * layout.plane_shape[1]
    stats = [_ChannelStats(per_channel, _SAMPLE) for _ in range(c)]
    for idx in np.ndindex(*layout.stack_shape):
        plane = read_plane(layout, arr, idx)
        if dtype.kind == "f" and not np.isfinite(plane).all():
            raise ValueError(
                "image contains NaN or Inf values; replace them before super-resolving"
            )
        for ch in range(c):
            stats[ch].add(plane[ch], rng)
    ranges = [
        _range_from(s.vmin, s.vmax, np.concatenate(s.values), dtype.kind in "ui") for s in stats
    ]
    return info_from_ranges(dtype, ranges)
