"""User N-D arrays as engine planes: axes, channels, stacks, and reading and writing one plane.

The engine works on ``(C, Y, X)`` planes. A :class:`Layout` maps a user's array (any of
``(Y, X)``, ``(..., Y, X)``, ``(..., Y, X, 3|4)`` RGB, or a channel axis anywhere before Y)
onto such planes and back to the input's axis order. Arrays that are read plane by plane
(dask and zarr arrays, NumPy memmaps, other array-likes: :func:`is_lazy`) are never turned
into one NumPy array: every step reads one ``(C, Y, X)`` plane at a time (:func:`read_plane`)
and outputs are written back the same way (:func:`write_plane`). Pure NumPy: no file is
opened here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.config import MAX_FATHER_PLANES, father_planes

__all__ = [
    "MIN_PLANE",
    "Layout",
    "is_lazy",
    "make_layout",
    "plane_key",
    "read_plane",
    "sampled_planes",
    "write_plane",
]

MIN_PLANE = 8


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
        from a lazy one (dask, zarr, memmap; see :func:`read_plane`)."""
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


def is_lazy(image: Any) -> bool:
    """Whether ``image`` is read plane by plane: a memmap, or an array-like that is not a
    NumPy array but has ``shape``, ``dtype`` and indexing (dask, zarr, h5py, xarray)."""
    if isinstance(image, np.memmap):
        return True
    if isinstance(image, np.ndarray):
        return False
    return all(hasattr(image, name) for name in ("shape", "dtype", "__getitem__"))


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
    """Read one ``(C, Y, X)`` plane of ``arr`` (only that plane is read).

    Raises
    ------
    napari_zssr.io.errors.ReadFailure
        When the plane cannot be read (a damaged chunk, a truncated or vanished file): one
        line naming the source, the plane and the cause, the original error chained.
    """
    try:
        sub = np.asarray(arr[plane_key(layout, idx)])
    except _READ_ERRORS as exc:
        raise _read_failure(arr, idx, exc) from exc
    if layout.channel_axis is None:
        return sub[None]
    return np.moveaxis(sub, _plane_axes(layout), [0, 1, 2])


#: What a codec or a file system raises when stored data cannot be read: a damaged chunk
#: gives RuntimeError or ValueError (the codecs), a vanished or truncated file OSError,
#: EOFError or KeyError (a store missing a key).
_READ_ERRORS = (OSError, RuntimeError, ValueError, EOFError, KeyError)


def source_name(arr: Any) -> str | None:
    """The file or store an array is read from, where it says (zarr, memmap, h5py)."""
    store = getattr(arr, "store", None)
    root = getattr(store, "root", None) or getattr(store, "path", None)
    if root is not None:
        inner = getattr(arr, "path", "") or ""
        return f"{root}/{inner}" if inner else str(root)
    for name in ("filename", "file"):  # np.memmap, h5py
        value = getattr(arr, name, None)
        if isinstance(value, str):
            return value
        value = getattr(value, "filename", None)
        if isinstance(value, str):
            return value
    return None


def _read_failure(arr: Any, idx: tuple[int, ...], exc: BaseException) -> Exception:
    from ..io.errors import ReadFailure, cause_in_words, describe_plane

    if isinstance(exc, ReadFailure):
        return exc
    name = source_name(arr)
    where = f" of {name}" if name else " of the input"
    cause = cause_in_words(exc)
    return ReadFailure(
        f"cannot read {describe_plane(idx)}{where}: {cause}",
        path=name,
        plane=idx,
        cause=cause,
        errno_=getattr(exc, "errno", None),
    )


def write_plane(layout: Any, out: Any, idx: tuple[int, ...], plane: np.ndarray) -> None:
    """Write a ``(C, Y, X)`` plane into ``out`` (laid out as ``layout``) at stack ``idx``."""
    value = (
        plane[0]
        if layout.channel_axis is None
        else np.moveaxis(plane, [0, 1, 2], _plane_axes(layout))
    )
    out[plane_key(layout, idx)] = value


def sampled_planes(layout: Layout, limit: int = MAX_FATHER_PLANES) -> list[tuple[int, ...]]:
    """Stack indices of up to ``limit`` planes spread evenly over the stack (the planes a
    shared network trains on and the noise and kernel estimates measure)."""
    indices = list(np.ndindex(*layout.stack_shape))
    return [indices[i] for i in father_planes(len(indices), limit)]
