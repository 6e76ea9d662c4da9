"""N-D orchestration: axes, channels, stacks, and intensity range/dtype handling.

The engine works on ``(C, Y, X)`` float32 planes in [0, 1]. This module maps a user's array
(any of ``(Y, X)``, ``(..., Y, X)``, ``(..., Y, X, 3|4)`` RGB, or a channel axis anywhere
before Y) onto such planes, and maps results back to the input's axis order, range and
dtype. Nothing here copies the whole array in float: planes are converted one at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
# Narrowest range that still holds 2**24 float64 steps (float32's resolution): below it
# (deep in the subnormals) the normalised values would be visibly quantised.
_MIN_SPAN = float(np.finfo(np.float64).smallest_subnormal) * 2**24


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
        """Yield ``(stack index, (C, Y, X) view)`` for every plane (read one at a time from
        a lazy array)."""
        for idx in np.ndindex(*self.stack_shape):
            yield idx, self.plane(arr, idx)

    def plane(self, arr: Any, idx: tuple[int, ...]) -> np.ndarray:
        """The ``(C, Y, X)`` plane at stack index ``idx``: a view of a NumPy array, or read
        from a lazy one (dask, zarr, memmap; see :mod:`napari_zssr.arrays.lazy`)."""
        from .lazy import is_lazy, read_plane

        if is_lazy(arr):
            return read_plane(self, arr, idx)
        return self.canonical(arr)[idx]

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

    ``normalised = (value - lo) / (hi - lo)`` per channel, computed in float64 with the
    offset subtracted first (exactly, in integer arithmetic, for integer dtypes) and only
    then cast to float32, so a large offset does not swallow the detail. ``vmax`` is the
    largest normalised value of the data (above 1 only when ``hi`` is a robust percentile
    that excludes a few outlier pixels), used to clip the output to the input's range.
    ``top`` is each channel's largest data value: outputs are clipped per channel to
    ``[lo, top]`` (None: ``lo + vmax * (hi - lo)``). ``offset`` holds each channel's exact
    minimum (a Python int for integer dtypes, where float64 ``lo`` may be rounded) and
    ``top_delta`` each channel's exact ``top - offset``, ``span`` the float64 ``hi - lo``
    computed before rounding (``hi - lo`` of the rounded values can be 0 near 2**64); all
    three None for infos built by hand.
    """

    dtype: np.dtype
    lo: np.ndarray
    hi: np.ndarray
    vmax: float
    top: np.ndarray | None = None
    offset: tuple[int | float, ...] | None = None
    top_delta: tuple[int | float, ...] | None = None
    span: np.ndarray | None = None

    def to_dict(self) -> dict:
        return {
            "dtype": str(self.dtype),
            "lo": [float(v) for v in self.lo],
            "hi": [float(v) for v in self.hi],
        }

    def offsets(self) -> tuple[int | float, ...]:
        """Each channel's exact offset (``lo``, as a Python int for integer dtypes)."""
        if self.offset is not None:
            return self.offset
        if self.dtype.kind in "ui":
            return tuple(int(v) for v in self.lo)
        return tuple(float(v) for v in self.lo)

    def spans(self) -> np.ndarray:
        """``hi - lo`` per channel, float64."""
        if self.span is not None:
            return self.span
        return np.asarray(self.hi, np.float64) - np.asarray(self.lo, np.float64)


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.kind == "b":
        raise TypeError("boolean images cannot be super-resolved; convert to uint8 first")
    if dtype.kind not in "uif":
        raise TypeError(
            f"unsupported image dtype {dtype}; use uint8, uint16, another integer type, "
            "float32 or float64"
        )


def _delta(values: np.ndarray, offset: int | float) -> np.ndarray:
    """``values - offset`` in float64, the subtraction exact for integer data.

    Integers go through uint64 arithmetic modulo 2**64: for ``values >= offset`` the true
    difference lies in [0, 2**64), so the wrapped result is exact (float64 alone cannot
    hold ``2**62 + 1`` apart from ``2**62``).
    """
    values = np.asarray(values)
    if values.dtype.kind in "ui":
        diff = values.astype(np.uint64) - np.uint64(int(offset) % 2**64)
        return diff.astype(np.float64)
    return values.astype(np.float64) - float(offset)


def _sample(view: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """All values of ``view`` (flat), or a random sample of ``_SAMPLE`` of them."""
    if view.size <= _SAMPLE:
        return view.reshape(-1)
    idx = rng.integers(0, view.size, size=_SAMPLE)
    return np.asarray(view).reshape(-1)[idx] if view.flags.c_contiguous else np.ravel(view)[idx]


def _channel_range(view: np.ndarray, rng: np.random.Generator) -> tuple[Any, Any, float]:
    """Exact minimum, exact ``max - min`` and the robust span of one channel."""
    integer = view.dtype.kind in "ui"
    vmin = int(np.min(view)) if integer else float(np.min(view))
    vmax = int(np.max(view)) if integer else float(np.max(view))
    return _range_from(vmin, vmax, _sample(view, rng), integer)


def _range_from(vmin: Any, vmax: Any, sample: np.ndarray, integer: bool) -> tuple[Any, Any, float]:
    """Exact minimum, exact ``max - min`` and the robust span, from the exact extremes and
    the values (or a sample of them) of one channel.

    The span is the distance from the minimum to the 99.99th percentile when a few outliers
    stretch the range more than twice, else to the maximum; 1.0 for a constant channel.
    """
    top_delta = vmax - vmin
    full = float(top_delta) if integer else vmax - vmin  # Python floats: inf, no warning
    if not math.isfinite(full):
        raise ValueError(
            f"the image's intensity range ({vmin:g} to {vmax:g}) is too wide to compute with "
            "(it overflows float64); rescale the data before super-resolving"
        )
    robust = float(np.percentile(_delta(sample, vmin), _ROBUST_PERCENTILE))
    span = robust if (robust > 0 and full > 2 * robust) else full
    if span <= 0:
        return vmin, top_delta, 1.0
    if span < _MIN_SPAN:
        raise ValueError(
            f"the image's intensity range ({full:g}) is too small to compute with (float64 "
            "holds fewer distinct values in it than float32 resolves); rescale the data "
            "before super-resolving"
        )
    return vmin, top_delta, span


def intensity_info(arr: np.ndarray, layout: Layout) -> IntensityInfo:
    """Per-channel range of ``arr`` (uint8: the full 0-255 range; others: robust data range).

    Raises
    ------
    TypeError
        For an unsupported dtype.
    ValueError
        When the range cannot be represented: wider than float64 or so narrow that float64
        has no precision left in it.
    """
    from .lazy import is_lazy, lazy_intensity_info

    if is_lazy(arr):  # one pass over the planes, never the whole array in memory
        return lazy_intensity_info(arr, layout)
    dtype = np.dtype(arr.dtype)
    _check_dtype(dtype)
    c = layout.channels
    if dtype == np.uint8:
        lo, hi = np.zeros(c), np.full(c, 255.0)
        return IntensityInfo(dtype, lo, hi, 1.0)
    canon = layout.canonical(arr)
    rng = np.random.default_rng(0)
    return info_from_ranges(dtype, [_channel_range(canon[..., ch, :, :], rng) for ch in range(c)])


def info_from_ranges(dtype: np.dtype, ranges: list[tuple[Any, Any, float]]) -> IntensityInfo:
    """The :class:`IntensityInfo` of per-channel ``(minimum, max - min, span)``."""
    offsets = [r[0] for r in ranges]
    deltas = [r[1] for r in ranges]
    lo = np.array([float(v) for v in offsets])
    span_arr = np.array([r[2] for r in ranges])
    vmax = max(1.0, *(float(d) / s for d, s in zip(deltas, span_arr)))
    tops = np.array([float(v) + float(d) for v, d in zip(offsets, deltas)])
    return IntensityInfo(
        dtype, lo, lo + span_arr, float(vmax), tops, tuple(offsets), tuple(deltas), span_arr
    )


def normalise_plane(plane: np.ndarray, info: IntensityInfo) -> np.ndarray:
    """``(C, Y, X)`` plane in the input dtype -> float32 in [0, vmax].

    The offset is subtracted and the result scaled in float64; only the normalised values
    (within [0, vmax]) are cast to float32.
    """
    spans = info.spans()
    out = np.empty(plane.shape, np.float32)
    for ch, offset in enumerate(info.offsets()):
        out[ch] = _delta(plane[ch], offset) / spans[ch]
    return out


def restore_plane(plane: np.ndarray, info: IntensityInfo) -> np.ndarray:
    """float32 ``(C, Y, X)`` -> the input's range and dtype (integers rounded and clipped).

    Each channel is clipped to its own data range ``[lo, top]``. Integer outputs are built
    as an exact integer ``offset + rounded difference``, so values near the ends of 64-bit
    types stay exact and inside the type.
    """
    spans = info.spans()
    out = np.empty(plane.shape, info.dtype)
    for ch, offset in enumerate(info.offsets()):
        delta = np.asarray(plane[ch], np.float64) * spans[ch]
        top = _top_delta(info, ch)
        delta = np.clip(delta, 0.0, top)
        if info.dtype.kind in "ui":
            wrapped = np.rint(delta).astype(np.uint64) + np.uint64(int(offset) % 2**64)
            out[ch] = wrapped.astype(info.dtype)  # modulo the type's width: exact in range
        else:
            out[ch] = (delta + float(offset)).astype(info.dtype)
    return out


def _top_delta(info: IntensityInfo, ch: int) -> float:
    """Largest difference from the offset an output may have on channel ``ch`` (float64).

    For integers it is rounded down to a float64 that converts back into uint64 without
    overflow (the largest uint64 itself is not a float64).
    """
    if info.top_delta is not None:
        exact = info.top_delta[ch]
    elif info.top is not None:
        exact = float(info.top[ch]) - float(info.lo[ch])
    else:
        exact = info.vmax * float(info.spans()[ch])
    top = float(exact)
    if info.dtype.kind in "ui":
        lim = np.iinfo(info.dtype)
        room = int(lim.max) - info.offsets()[ch]
        top = min(top, float(room))
        while top > 0 and int(top) > min(int(exact), room):
            top = float(np.nextafter(top, 0.0))
    return max(top, 0.0)


def normalise_intensity(arr: np.ndarray) -> tuple[np.ndarray, IntensityInfo]:
    """Whole-array convenience for one-channel data: float32 copy in [0, vmax] and its info."""
    arr = np.asarray(arr)
    layout = Layout(arr.shape, None, False, arr.ndim - 2, arr.ndim - 1)
    info = intensity_info(arr, layout)
    return (_delta(arr, info.offsets()[0]) / info.spans()[0]).astype(np.float32), info


def restore_intensity(arr: np.ndarray, info: IntensityInfo) -> np.ndarray:
    """Inverse of :func:`normalise_intensity` for an array of any shape."""
    arr = np.asarray(arr)
    return restore_plane(arr.reshape(1, -1, arr.shape[-1]), info).reshape(arr.shape)
