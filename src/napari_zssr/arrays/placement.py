"""Exact placement of an upscaled layer over its source, in napari's conventions (pure numpy).

napari puts the centre of pixel ``i`` at data coordinate ``i``, so pixel ``i`` covers
``[i - 1/2, i + 1/2]``. Upscaling an axis by ``f`` makes new pixel ``j`` cover the source
interval ``[j/f - 1/2, (j + 1)/f - 1/2]``: the centre of new pixel ``j`` sits at source data
coordinate ``x = j/f + c`` with ``c = (1/f - 1)/2``. A crop or a single plane of the source
adds an ``offset`` (the source index of the new array's first element), so in general

    x_source = offset + D @ x_new + c,        D = diag(1/f)

and with napari's data-to-world map ``world = A(R @ Sh @ S @ x + t)`` (``A`` the layer's
``affine``, ``R`` its rotation, ``Sh`` its shear, ``S = diag(scale)``, ``t`` its translate) the
new layer keeps ``A``, ``R`` and ``Sh`` and takes

    scale_new = scale / f,          translate_new = t + R @ Sh @ S @ (offset + c).

Without rotation or shear this is ``s_new = s/f`` and ``t_new = t + 0.5*(s_new - s)`` (plus
``s * offset``). Both layers then cover exactly the same world region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Placement",
    "axis_factors",
    "data_to_world_matrix",
    "linear_matrix",
    "shear_matrix",
    "upscaled_placement",
    "visible_data_box",
]


def shear_matrix(shear: np.ndarray | Sequence[float] | None, ndim: int) -> np.ndarray:
    """Expand napari's shear parameter into an ``ndim x ndim`` matrix.

    Parameters
    ----------
    shear : array-like or None
        Either the ``ndim*(ndim-1)/2`` upper-triangular coefficients (row-major order, as
        ``layer.shear`` returns them), or a full triangular matrix with ones on the diagonal.
        None means no shear.
    ndim : int
        Number of data dimensions.

    Returns
    -------
    numpy.ndarray
        The ``(ndim, ndim)`` shear matrix.
    """
    if shear is None:
        return np.eye(ndim)
    arr = np.asarray(shear, dtype=float)
    if arr.ndim == 2:
        if arr.shape != (ndim, ndim):
            raise ValueError(f"shear matrix must have shape {(ndim, ndim)}, got {arr.shape}")
        return arr.copy()
    if arr.ndim != 1 or arr.size != ndim * (ndim - 1) // 2:
        raise ValueError(
            f"shear must hold {ndim * (ndim - 1) // 2} upper-triangular values for {ndim} "
            f"dimensions, got shape {arr.shape}"
        )
    mat = np.eye(ndim)
    mat[np.triu_indices(ndim, k=1)] = arr
    return mat


def _vector(name: str, value: Any, ndim: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float).reshape(-1)
    if arr.size != ndim:
        raise ValueError(f"{name} must have {ndim} values (one per axis), got {arr.size}")
    return arr


def _rotation(rotate: Any, ndim: int) -> np.ndarray:
    if rotate is None:
        return np.eye(ndim)
    arr = np.asarray(rotate, dtype=float)
    if arr.shape != (ndim, ndim):
        raise ValueError(
            f"rotate must be a ({ndim}, {ndim}) matrix as layer.rotate returns it, "
            f"got shape {arr.shape}"
        )
    return arr


def _affine(affine: Any, ndim: int) -> np.ndarray:
    if affine is None:
        return np.eye(ndim + 1)
    arr = np.asarray(affine, dtype=float)
    if arr.shape != (ndim + 1, ndim + 1):
        raise ValueError(
            f"affine must be a ({ndim + 1}, {ndim + 1}) homogeneous matrix, got shape {arr.shape}"
        )
    return arr


def linear_matrix(
    scale: Sequence[float] | np.ndarray,
    rotate: np.ndarray | None = None,
    shear: np.ndarray | Sequence[float] | None = None,
) -> np.ndarray:
    """Linear part ``R @ Sh @ diag(scale)`` of a layer's data-to-physical transform.

    Parameters
    ----------
    scale : array-like
        Per-axis scale (``layer.scale``).
    rotate : numpy.ndarray, optional
        Rotation matrix (``layer.rotate``); identity when None.
    shear : array-like, optional
        Shear coefficients or matrix (``layer.shear``); none when None.

    Returns
    -------
    numpy.ndarray
        ``(ndim, ndim)`` matrix.
    """
    s = np.asarray(scale, dtype=float).reshape(-1)
    ndim = s.size
    return _rotation(rotate, ndim) @ shear_matrix(shear, ndim) @ np.diag(s)


def data_to_world_matrix(
    scale: Sequence[float] | np.ndarray,
    translate: Sequence[float] | np.ndarray,
    rotate: np.ndarray | None = None,
    shear: np.ndarray | Sequence[float] | None = None,
    affine: np.ndarray | None = None,
) -> np.ndarray:
    """Homogeneous data-to-world matrix of a napari layer.

    Parameters
    ----------
    scale, translate : array-like
        Per-axis scale and translate of the layer.
    rotate, shear : optional
        As :func:`linear_matrix`.
    affine : numpy.ndarray, optional
        The layer's extra ``(ndim+1, ndim+1)`` affine matrix (``layer.affine.affine_matrix``).

    Returns
    -------
    numpy.ndarray
        ``(ndim+1, ndim+1)`` matrix ``M`` with ``world = M @ [x, 1]``.
    """
    s = np.asarray(scale, dtype=float).reshape(-1)
    ndim = s.size
    physical = np.eye(ndim + 1)
    physical[:ndim, :ndim] = linear_matrix(s, rotate, shear)
    physical[:ndim, ndim] = _vector("translate", translate, ndim)
    return _affine(affine, ndim) @ physical


def axis_factors(ndim: int, factors_yx: float | Sequence[float], z_factor: float = 1.0) -> tuple:
    """Per-axis factors for an ``ndim``-D layer upscaled on its last two axes.

    Parameters
    ----------
    ndim : int
        Number of dimensions of the layer (``layer.ndim``: an RGB axis is not counted).
    factors_yx : float or (float, float)
        Upscaling factor of Y and X.
    z_factor : float
        Factor of axis ``-3`` (Z), 1 unless an axial upscaling is placed.

    Returns
    -------
    tuple of float
        One factor per axis, 1 on the axes that keep their sampling.
    """
    if ndim < 2:
        raise ValueError(f"a layer to upscale needs at least 2 dimensions, got {ndim}")
    fy, fx = (factors_yx, factors_yx) if np.isscalar(factors_yx) else tuple(factors_yx)
    factors = [1.0] * ndim
    factors[-2], factors[-1] = float(fy), float(fx)
    if z_factor != 1.0:
        if ndim < 3:
            raise ValueError("a Z factor needs a layer with at least 3 dimensions")
        factors[-3] = float(z_factor)
    return tuple(factors)


@dataclass(frozen=True)
class Placement:
    """World placement of a new layer: the keyword arguments of ``viewer.add_image``.

    Attributes
    ----------
    scale, translate : numpy.ndarray
        Per-axis scale and translate of the new layer.
    rotate : numpy.ndarray
        Rotation matrix (unchanged from the source).
    shear : numpy.ndarray
        Shear matrix (unchanged from the source).
    affine : numpy.ndarray
        Homogeneous affine matrix (unchanged from the source).
    """

    scale: np.ndarray
    translate: np.ndarray
    rotate: np.ndarray
    shear: np.ndarray
    affine: np.ndarray

    def layer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``viewer.add_image`` / ``napari.layers.Image``."""
        return {
            "scale": self.scale.copy(),
            "translate": self.translate.copy(),
            "rotate": self.rotate.copy(),
            "shear": self.shear.copy(),
            "affine": self.affine.copy(),
        }

    def data_to_world(self) -> np.ndarray:
        """Homogeneous data-to-world matrix of the placed layer."""
        return data_to_world_matrix(
            self.scale, self.translate, self.rotate, self.shear, self.affine
        )


def upscaled_placement(
    factors: Sequence[float],
    *,
    scale: Sequence[float] | np.ndarray,
    translate: Sequence[float] | np.ndarray,
    rotate: np.ndarray | None = None,
    shear: np.ndarray | Sequence[float] | None = None,
    affine: np.ndarray | None = None,
    offset: Sequence[float] | None = None,
) -> Placement:
    """Placement of an upscaled (part of a) layer that lies exactly over its source.

    Parameters
    ----------
    factors : sequence of float
        Upscaling factor of every axis of the source (1 where unchanged; see
        :func:`axis_factors`). Each must be > 0.
    scale, translate, rotate, shear, affine
        The source layer's transform parameters (``layer.scale``, ``layer.translate``,
        ``layer.rotate``, ``layer.shear``, ``layer.affine.affine_matrix``).
    offset : sequence of float, optional
        Source data index of the new array's first element on every axis: the start of a crop,
        or the index of a plane taken out of a stack (kept as a length-1 axis). Zero when None.

    Returns
    -------
    Placement
        Scale, translate (and the unchanged rotate, shear, affine) of the new layer.

    Notes
    -----
    The factor must be the exact sampling ratio (``ceil(n*f)`` output pixels for ``n`` input
    pixels still means factor ``f``): the first ``n*f`` output pixels then cover the source's
    pixels exactly.
    """
    s = np.asarray(scale, dtype=float).reshape(-1)
    ndim = s.size
    f = _vector("factors", factors, ndim)
    if np.any(~np.isfinite(f)) or np.any(f <= 0):
        raise ValueError(f"factors must be finite and > 0, got {f.tolist()}")
    t = _vector("translate", translate, ndim)
    off = np.zeros(ndim) if offset is None else _vector("offset", offset, ndim)
    rot = _rotation(rotate, ndim)
    sh = shear_matrix(shear, ndim)
    aff = _affine(affine, ndim)
    c = 0.5 * (1.0 / f - 1.0)
    lin = rot @ sh @ np.diag(s)
    new_translate = t + lin @ (off + c)
    return Placement(
        scale=s / f,
        translate=new_translate,
        rotate=rot.copy(),
        shear=sh,
        affine=aff.copy(),
    )


def visible_data_box(
    corners: np.ndarray,
    shape: Sequence[int],
    *,
    min_size: int = 8,
    max_size: int | None = None,
) -> tuple[int, int, int, int]:
    """Integer Y/X box of an image covered by a set of points given in data coordinates.

    Parameters
    ----------
    corners : numpy.ndarray
        ``(k, 2)`` array of (y, x) data coordinates, e.g. the canvas corners mapped to the layer.
    shape : (int, int)
        Height and width of the image plane.
    min_size : int
        Smallest accepted side of the box after clipping to the image.
    max_size : int, optional
        Largest side: a bigger box is shrunk around its centre to this size.

    Returns
    -------
    (y0, y1, x0, x1) : tuple of int
        Half-open pixel bounds, inside the image.

    Raises
    ------
    ValueError
        When the box, clipped to the image, is smaller than ``min_size`` on a side (for example
        when the visible region does not overlap the image).
    """
    pts = np.asarray(corners, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 1:
        raise ValueError(f"corners must be a (k, 2) array of (y, x) points, got {pts.shape}")
    if len(shape) != 2:
        raise ValueError(f"shape must be (height, width), got {tuple(shape)}")
    bounds = []
    for axis, n in enumerate(shape):
        lo = int(np.floor(pts[:, axis].min() + 0.5))
        hi = int(np.ceil(pts[:, axis].max() + 0.5))
        lo, hi = max(lo, 0), min(hi, int(n))
        if hi - lo < min_size:
            raise ValueError(
                f"the visible region covers {max(hi - lo, 0)} pixels of the image along "
                f"{'YX'[axis]}; at least {min_size} are needed (zoom out or pan onto the image)"
            )
        if max_size is not None and hi - lo > max_size:
            mid = (lo + hi) // 2
            lo = max(0, min(mid - max_size // 2, int(n) - max_size))
            hi = lo + max_size
        bounds.extend([lo, hi])
    return bounds[0], bounds[1], bounds[2], bounds[3]
