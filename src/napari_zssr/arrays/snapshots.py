"""Training snapshots in the user's terms: the engine's quick output as a run's output array.

The engine offers, with each training report of a single network, a function that returns the
network's current output (:attr:`~napari_zssr.Progress.snapshot`, a normalised ``(C, h, w)``
tensor at the factor being trained). :func:`snapshot_relay` wraps a run's progress callback so
that the function its callers receive returns instead an array shaped and typed like the run's
output: resized to the output's Y/X size (an intermediate factor of gradual SR is brought there
by bicubic interpolation), clipped to the intensity range, restored to the input's dtype and
axes. Only single-plane runs get snapshots (a stack's training images are not its output).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.progress import Progress, ProgressCallback, relay
from .intensity import restore_plane
from .planes import Layout

__all__ = ["snapshot_relay"]


def _as_output(plane: Any, layout: Layout, info: Any, out_shape: tuple[int, ...]) -> np.ndarray:
    """A normalised ``(C, h, w)`` tensor as an array of the run's output shape and dtype."""
    from ..core.resize import imresize

    out_yx = (out_shape[layout.y_axis], out_shape[layout.x_axis])
    if tuple(plane.shape[-2:]) != out_yx:
        sy, sx = out_yx[0] / plane.shape[-2], out_yx[1] / plane.shape[-1]
        plane = imresize(plane, (sy, sx), out_yx)
    values = plane.clamp(0.0, info.vmax).float().cpu().numpy()
    out = np.empty(out_shape, dtype=info.dtype)
    canon = layout.canonical(out)
    canon[next(np.ndindex(*layout.stack_shape))] = restore_plane(values, info)
    return out


def snapshot_relay(
    callback: ProgressCallback | None, layout: Layout, info: Any, out_shape: tuple[int, ...]
) -> ProgressCallback | None:
    """``callback`` receiving snapshots of the run's output (or none, for a stack).

    Parameters
    ----------
    callback : callable or None
        The run's progress callback.
    layout : Layout
        Axes of the run's input.
    info : IntensityInfo
        Intensity range and dtype of the input (what the output is restored to).
    out_shape : tuple of int
        Shape of the run's output.

    Returns
    -------
    callable or None
        A callback whose reports carry ``snapshot(network=True)`` returning a NumPy array of
        ``out_shape`` in the input's dtype (see :class:`~napari_zssr.Progress`); None when
        ``callback`` is None.
    """
    if callback is None:
        return None
    single = layout.n_planes == 1

    def convert(raw: Callable[..., Any]) -> Callable[..., np.ndarray]:
        def snapshot(network: bool = True) -> np.ndarray:
            return _as_output(raw(network=network), layout, info, out_shape)

        return snapshot

    def change(p: Progress) -> Progress:
        if p.snapshot is not None:
            p = dataclasses.replace(p, snapshot=convert(p.snapshot) if single else None)
        return p

    return relay(callback, change=change)
