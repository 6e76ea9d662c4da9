"""Intensities: each channel's range, and planes mapped to float32 in [0, vmax] and exactly back.

Nothing here copies the whole array in float: planes are converted one at a time. A lazy
array's range is gathered in one pass over its planes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .planes import Layout, is_lazy, read_plane

__all__ = [
    "IntensityInfo",
    "check_dtype",
    "intensity_info",
    "normalise_intensity",
    "normalise_plane",
    "restore_intensity",
    "restore_plane",
]

_ROBUST_PERCENTILE = 99.99
_SAMPLE = 2_000_000
# Narrowest range that still holds 2**24 float64 steps (float32's resolution): below it
# (deep in the subnormals) the normalised values would be visibly quantised.
_MIN_SPAN = float(np.finfo(np.float64).smallest_subnormal) * 2**24


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


def check_dtype(dtype: np.dtype) -> None:
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
    if is_lazy(arr):  # one pass over the planes, never the whole array in memory
        return lazy_intensity_info(arr, layout)
    dtype = np.dtype(arr.dtype)
    check_dtype(dtype)
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


def lazy_intensity_info(arr: Any, layout: Layout) -> IntensityInfo:
    """:func:`intensity_info` in one pass over the planes of ``arr``.

    Minimum and maximum are exact; the robust percentile is taken of all values when a
    channel has at most 2 million (then the result equals the in-memory one), else of a
    random sample spread over the planes in proportion to their size.

    Raises
    ------
    ValueError
        For NaN or Inf values, and as :func:`intensity_info`.
    """
    dtype = np.dtype(arr.dtype)
    check_dtype(dtype)
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
