"""N-D orchestration: axes, channels, stacks, and intensity range/dtype handling.

The engine works on ``(C, Y, X)`` float32 planes in [0, 1]. This module maps a user's array
(any of ``(Y, X)``, ``(..., Y, X)``, ``(..., Y, X, 3|4)`` RGB, or a channel axis anywhere
before Y) onto such planes, and maps results back to the input's axis order, range and
dtype. Nothing here copies the whole array in float: planes are converted one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "IntensityInfo",
    "Layout",
    "intensity_info",
    "make_layout",
    "normalise_intensity",
    "normalise_plane",
    "restore_intensity",
    "restore_plane",
]

MIN_PLANE = 8
_ROBUST_PERCENTILE = 99.99
_SAMPLE = 2_000_000


@dataclass(frozen=True)
class Layout:
    """Where the stack, channel and spatial axes of a user array are.

    Attributes
    ----------
    shape : tuple of int
        The user's array shape.
    channel_axis : int or None
        Axis holding channels (the last one for RGB), or None for one channel.
    rgb : bool
        Whether the array is ``(..., Y, X, 3|4)``.
    y_axis, x_axis : int
        The two spatial axes.
    """

    shape: tuple[int, ...]
    channel_axis: int | None
    rgb: bool
    y_axis: int
    x_axis: int

    @property
    def stack_axes(self) -> tuple[int, ...]:
        special = {self.y_axis, self.x_axis}
        if self.channel_axis is not None:
            special.add(self.channel_axis)
        return tuple(a for a in range(len(self.shape)) if a not in special)

    @property
    def stack_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[a] for a in self.stack_axes)

    @property
    def n_planes(self) -> int:
        return int(np.prod(self.stack_shape, dtype=np.int64)) if self.stack_shape else 1

    @property
    def channels(self) -> int:
        return 1 if self.channel_axis is None else self.shape[self.channel_axis]

    @property
    def plane_shape(self) -> tuple[int, int]:
        return self.shape[self.y_axis], self.shape[self.x_axis]

    def canonical(self, arr: np.ndarray) -> np.ndarray:
        """A view of ``arr`` (same shape as the layout's) ordered ``(stack..., C, Y, X)``."""
        if self.channel_axis is None:
            return np.expand_dims(arr, axis=-3)  # stack axes first already: (..., 1, Y, X)
        src = [*self.stack_axes, self.channel_axis, self.y_axis, self.x_axis]
        return np.moveaxis(arr, src, list(range(len(src))))

    def planes(self, arr: np.ndarray) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
        """Yield ``(stack index, (C, Y, X) view)`` for every plane."""
        canon = self.canonical(arr)
        for idx in np.ndindex(*self.stack_shape):
            yield idx, canon[idx]

    def output_shape(self, out_yx: tuple[int, int]) -> tuple[int, ...]:
        shape = list(self.shape)
        shape[self.y_axis], shape[self.x_axis] = out_yx
        return tuple(shape)


def make_layout(
    shape: tuple[int, ...], channel_axis: int | None = None, rgb: bool = False
) -> Layout:
    """Validate the axis arguments for an array of ``shape`` and describe its axes.

    Raises
    ------
    TypeError
        If ``channel_axis`` is not an integer.
    ValueError
        If an axis is out of range, ``rgb`` and ``channel_axis`` are both given, the RGB
        axis is not 3 or 4 long, or a plane is smaller than 8 x 8 pixels.
    """
    ndim = len(shape)
    if rgb and channel_axis is not None:
        raise ValueError("give either rgb=True or channel_axis, not both")
    if rgb:
        if ndim < 3:
            raise ValueError(f"rgb=True needs an array (..., Y, X, 3|4), got shape {shape}")
        if shape[-1] not in (3, 4):
            raise ValueError(f"rgb=True needs a last axis of length 3 or 4, got shape {shape}")
        layout = Layout(shape, ndim - 1, True, ndim - 3, ndim - 2)
    else:
        if ndim < 2:
            raise ValueError(f"image must have at least 2 dimensions (Y, X), got shape {shape}")
        if channel_axis is not None:
            if isinstance(channel_axis, (bool, np.bool_)) or not isinstance(
                channel_axis, (int, np.integer)
            ):
                raise TypeError(f"channel_axis must be an integer, got {channel_axis!r}")
            ca = int(channel_axis)
            if not -ndim <= ca < ndim:
                raise ValueError(
                    f"channel_axis {ca} is out of range for an array with {ndim} dimensions "
                    f"(accepted: {-ndim} to {ndim - 1})"
                )
            ca %= ndim
            if ca >= ndim - 2:
                raise ValueError(
                    f"channel_axis {channel_axis} points at a spatial axis: the last two axes "
                    f"are Y and X; accepted: 0 to {ndim - 3} (or {-ndim} to -3)"
                )
            channel_axis = ca
        layout = Layout(shape, channel_axis, False, ndim - 2, ndim - 1)
    h, w = layout.plane_shape
    if h < MIN_PLANE or w < MIN_PLANE:
        hint = (
            "; is the last axis RGB? pass rgb=True"
            if not rgb and shape[-1] in (3, 4) and min(shape[-3:-1], default=0) >= MIN_PLANE
            else ""
        )
        raise ValueError(
            f"image planes must be at least {MIN_PLANE} x {MIN_PLANE} pixels, got {h} x {w}{hint}"
        )
    return layout


@dataclass(frozen=True)
class IntensityInfo:
    """How intensities were mapped to [0, 1] and how to map them back.

    ``normalised = (value - lo) / (hi - lo)`` per channel. ``vmax`` is the largest
    normalised value of the data (above 1 only when ``hi`` is a robust percentile that
    excludes a few outlier pixels), used to clip the output to the input's range.
    ``top`` is each channel's largest data value: outputs are clipped per channel to
    ``[lo, top]`` (None: ``lo + vmax * (hi - lo)``).
    """

    dtype: np.dtype
    lo: np.ndarray
    hi: np.ndarray
    vmax: float
    top: np.ndarray | None = None

    def to_dict(self) -> dict:
        return {
            "dtype": str(self.dtype),
            "lo": [float(v) for v in self.lo],
            "hi": [float(v) for v in self.hi],
        }


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.kind == "b":
        raise TypeError("boolean images cannot be super-resolved; convert to uint8 first")
    if dtype.kind not in "uif":
        raise TypeError(
            f"unsupported image dtype {dtype}; use uint8, uint16, another integer type, "
            "float32 or float64"
        )


def intensity_info(arr: np.ndarray, layout: Layout) -> IntensityInfo:
    """Per-channel range of ``arr`` (uint8: the full 0-255 range; others: robust data range)."""
    dtype = np.dtype(arr.dtype)
    _check_dtype(dtype)
    c = layout.channels
    if dtype == np.uint8:
        lo, hi = np.zeros(c), np.full(c, 255.0)
        return IntensityInfo(dtype, lo, hi, 1.0)
    canon = layout.canonical(arr)
    lo, hi, vmax = np.zeros(c), np.ones(c), 1.0
    tops = np.ones(c)
    rng = np.random.default_rng(0)
    for ch in range(c):
        view = canon[..., ch, :, :]
        vmin_c, vmax_c = float(np.min(view)), float(np.max(view))
        flat = view.reshape(-1) if view.size <= _SAMPLE else None
        if flat is None:
            idx = rng.integers(0, view.size, size=_SAMPLE)
            flat = (
                np.asarray(view).reshape(-1)[idx]
                if view.flags.c_contiguous
                else np.ravel(view)[idx]
            )
        robust = float(np.percentile(flat, _ROBUST_PERCENTILE))
        top = robust if (robust > vmin_c and vmax_c - vmin_c > 2 * (robust - vmin_c)) else vmax_c
        span = top - vmin_c if top > vmin_c else 1.0
        lo[ch], hi[ch] = vmin_c, vmin_c + span
        tops[ch] = vmax_c
        vmax = max(vmax, (vmax_c - vmin_c) / span)
    return IntensityInfo(dtype, lo, hi, float(vmax), tops)


def normalise_plane(plane: np.ndarray, info: IntensityInfo) -> np.ndarray:
    """``(C, Y, X)`` plane in the input dtype -> float32 in [0, vmax]."""
    out = plane.astype(np.float32)
    out -= info.lo.astype(np.float32)[:, None, None]
    out /= (info.hi - info.lo).astype(np.float32)[:, None, None]
    return out


def restore_plane(plane: np.ndarray, info: IntensityInfo) -> np.ndarray:
    """float32 ``(C, Y, X)`` -> the input's range and dtype (integers rounded and clipped)."""
    span = (info.hi - info.lo)[:, None, None]
    out = plane.astype(np.float64) * span + info.lo[:, None, None]
    if info.top is not None:  # each channel within its own data range
        vtop = np.asarray(info.top, dtype=np.float64)[:, None, None]
    else:
        vtop = info.lo[:, None, None] + info.vmax * span
    out = np.clip(out, info.lo[:, None, None], vtop)
    if info.dtype.kind in "ui":
        lim = np.iinfo(info.dtype)
        out = np.clip(np.rint(out), lim.min, lim.max)
    return out.astype(info.dtype)


def normalise_intensity(arr: np.ndarray) -> tuple[np.ndarray, IntensityInfo]:
    """Whole-array convenience for one-channel data: float32 copy in [0, vmax] and its info."""
    arr = np.asarray(arr)
    layout = Layout(arr.shape, None, False, arr.ndim - 2, arr.ndim - 1)
    info = intensity_info(arr, layout)
    out = arr.astype(np.float32)
    out -= np.float32(info.lo[0])
    out /= np.float32(info.hi[0] - info.lo[0])
    return out, info


def restore_intensity(arr: np.ndarray, info: IntensityInfo) -> np.ndarray:
    """Inverse of :func:`normalise_intensity` for an array of any shape."""
    arr = np.asarray(arr)
    return restore_plane(arr.reshape(1, -1, arr.shape[-1]), info).reshape(arr.shape)
