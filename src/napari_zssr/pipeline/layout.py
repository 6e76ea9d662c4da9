"""Axes letters of an array and what they mean for a run (pure NumPy).

``T``, ``Z`` and other letters are stack axes (processed plane by plane), ``C`` holds channels
that one network processes jointly, ``S`` holds samples: RGB(A) when 3 or 4 long, else
channels. ``Y`` and ``X`` must be the last axes (before an RGB ``S``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Arranged", "arrange", "check_axes", "default_axes", "is_time_label", "volumes"]

_STACK_LETTERS = "VUQTZ"  # leading axes of an array given without axes, outermost first


#: Axis labels (napari's ``Layer.axis_labels``, lower case) that name time.
_TIME_LABELS = frozenset({"t", "time"})


def is_time_label(label: object) -> bool:
    """Whether an axis label (any case, spaces around it ignored) names time."""
    return str(label).strip().lower() in _TIME_LABELS


def default_axes(ndim: int, rgb: bool = False, labels: Sequence[str] | None = None) -> str:
    """Axes of an array given without them: stack axes, then ``YX`` (and ``S`` for RGB).

    ``labels``: names of the array's axes (a napari layer's ``axis_labels``); the one stack
    axis labelled ``t`` or ``time`` becomes ``T`` (its frames' differences then read the
    noise, :func:`~napari_zssr.super_resolve`'s ``time_axis``), the letter it had moving to
    the axis that had ``T``.
    """
    n_lead = ndim - 2 - (1 if rgb else 0)
    if n_lead < 0:
        raise ValueError(f"an image needs at least {ndim - n_lead} dimensions, got {ndim}")
    if n_lead > len(_STACK_LETTERS):
        raise ValueError(f"at most {len(_STACK_LETTERS) + 2} image dimensions, got {ndim}")
    axes = list(_STACK_LETTERS[len(_STACK_LETTERS) - n_lead :] + "YX" + ("S" if rgb else ""))
    timed = [i for i, label in enumerate(list(labels or ())[:n_lead]) if is_time_label(label)]
    if len(timed) == 1 and axes[timed[0]] != "T":
        if "T" in axes:
            axes[axes.index("T")] = axes[timed[0]]
        axes[timed[0]] = "T"
    return "".join(axes)


def check_axes(axes: str, shape: tuple[int, ...]) -> str:
    """``axes`` in upper case after checking them against ``shape``.

    Raises
    ------
    ValueError
        Wrong number of letters, a repeated letter, no Y or X, Y/X not last.
    """
    axes = axes.upper()
    if len(axes) != len(shape):
        raise ValueError(
            f"axes {axes!r} name {len(axes)} dimensions but the image has {len(shape)} "
            f"(shape {shape}); give one letter per dimension"
        )
    if len(set(axes)) != len(axes) or not {"Y", "X"} <= set(axes):
        raise ValueError(f"axes {axes!r} must name each dimension once and include Y and X")
    if "S" in axes and "C" in axes:
        raise ValueError(f"axes {axes!r} have both C and S: samples are channels already")
    plane = axes.replace("S", "")
    if not plane.endswith("YX"):
        raise ValueError(
            f"Y and X must be the last axes (before an RGB S axis), got {axes!r}; "
            "reorder the image or give its axes"
        )
    return axes


@dataclass(frozen=True)
class Arranged:
    """An image with its axes put in the engine's order.

    Attributes
    ----------
    image : numpy.ndarray
        The image (a view where possible), samples last.
    axes : str
        Its axes.
    channel_axis : int or None
        Index of ``C``.
    rgb : bool
        Whether the last axis holds RGB(A) samples.
    """

    image: np.ndarray
    axes: str
    channel_axis: int | None
    rgb: bool

    @property
    def plane_shape(self) -> tuple[int, int]:
        """(Y, X) size."""
        return (
            int(self.image.shape[self.axes.index("Y")]),
            int(self.image.shape[self.axes.index("X")]),
        )


def arrange(image: np.ndarray, axes: str) -> Arranged:
    """Move a sample axis ``S`` last (RGB) or in front of Y and X (channels ``C``).

    Parameters
    ----------
    image : numpy.ndarray
        The image.
    axes : str
        Its axes, checked by :func:`check_axes`.
    """
    axes = check_axes(axes, image.shape)
    rgb = False
    if "S" in axes:
        if axes[-1] != "S":  # planar (separated) samples: make them interleaved
            image = np.moveaxis(image, axes.index("S"), -1)
            axes = axes.replace("S", "") + "S"
        if image.shape[-1] in (3, 4) and "C" not in axes:
            rgb = True
        else:  # samples that are not RGB: channels
            image = np.moveaxis(image, -1, -3)
            axes = axes[:-3] + "C" + axes[-3:-1]
    channel_axis = axes.index("C") if "C" in axes else None
    return Arranged(image, axes, channel_axis, rgb)


def volumes(
    arranged: Arranged,
    per_volume: Callable[[np.ndarray, int, int], np.ndarray],
) -> np.ndarray:
    """Apply ``per_volume`` to every ``(C, Z, Y, X)`` or ``(Z, Y, X)`` volume of an image.

    Parameters
    ----------
    arranged : Arranged
        The image; it must have a Z axis. Channels (``C`` or RGB) stay together.
    per_volume : callable
        ``per_volume(volume, k, n)`` for volume ``k`` of ``n``; returns the processed volume
        (channels first when the input has them).

    Returns
    -------
    numpy.ndarray
        The processed volumes back in the image's axis order.
    """
    image, axes = arranged.image, arranged.axes
    channel = axes.index("C") if "C" in axes else (image.ndim - 1 if arranged.rgb else None)
    core = [axes.index("Z"), axes.index("Y"), axes.index("X")]
    if channel is not None:
        core.insert(0, channel)
    others = [i for i in range(image.ndim) if i not in core]
    order = others + core
    moved = np.transpose(image, order)
    lead = moved.shape[: len(others)]
    stack = moved.reshape((-1, *moved.shape[len(others) :]))
    outs = [per_volume(volume, k, len(stack)) for k, volume in enumerate(stack)]
    stacked = np.stack(outs).reshape((*lead, *outs[0].shape))
    return np.transpose(stacked, np.argsort(order))
