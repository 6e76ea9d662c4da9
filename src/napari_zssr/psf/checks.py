"""Argument checks shared by the PSF functions: numbers, lengths in micrometres, scales."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.config import MAX_SCALE

MIN_LENGTH_UM = 1e-4
"""Smallest accepted pixel size or z step, in micrometres."""
MAX_LENGTH_UM = 50.0
"""Largest accepted pixel size or z step, in micrometres."""
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
MAX_HR_RADIUS = 1024  # HR pixels: bound on the resampling canvas


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def check_number(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def check_length(name: str, value: Any) -> float:
    """A length in um, checked for plausibility."""
    v = check_number(name, value)
    if v <= 0:
        raise ValueError(f"{name} must be a positive length in micrometres (um), got {v:g}")
    if not MIN_LENGTH_UM <= v <= MAX_LENGTH_UM:
        hint = " (nanometres? divide by 1000)" if v > MAX_LENGTH_UM else ""
        raise ValueError(
            f"{name} = {v:g} is not a plausible length in micrometres (um): accepted range "
            f"[{MIN_LENGTH_UM:g}, {MAX_LENGTH_UM:g}] um{hint}"
        )
    return v


def length_pair(name: str, value: Any) -> tuple[float, float]:
    """A scalar or (y, x) pair of lengths in um."""
    if value is None:
        raise ValueError(
            f"{name} is required: give the pixel size in micrometres (um); it is never guessed"
        )
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        vals = list(np.asarray(value, dtype=object).ravel())
        if len(vals) != 2:
            raise ValueError(f"{name} must be one number or a (y, x) pair, got {len(vals)} values")
        return (check_length(f"{name}[0]", vals[0]), check_length(f"{name}[1]", vals[1]))
    v = check_length(name, value)
    return (v, v)


def scale_pair(scale: Any) -> tuple[float, float]:
    if isinstance(scale, (Sequence, np.ndarray)) and not isinstance(scale, str):
        vals = list(np.asarray(scale, dtype=object).ravel())
        if len(vals) != 2:
            raise ValueError(f"scale must be one number or a (y, x) pair, got {len(vals)} values")
        pair = (check_number("scale[0]", vals[0]), check_number("scale[1]", vals[1]))
    else:
        s = check_number("scale", scale)
        pair = (s, s)
    for s in pair:
        if not 1.0 <= s <= MAX_SCALE:
            raise ValueError(f"scale factors must be in [1, {MAX_SCALE:g}], got {s:g}")
    return pair


def check_fraction(name: str, value: Any, low: float, high: float) -> float:
    v = check_number(name, value)
    if not low < v <= high:
        raise ValueError(f"{name} must be in ({low:g}, {high:g}], got {v:g}")
    return v


def as_array(arr: Any, name: str, ndims: tuple[int, ...]) -> np.ndarray:
    """A float64 copy of a numeric array with one of ``ndims`` dimensions, all finite."""
    a = np.asarray(arr)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    a = np.squeeze(a) if a.ndim > max(ndims) else a
    if a.ndim not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name} must be {want}, got shape {a.shape}")
    if a.size == 0 or 0 in a.shape:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    a = np.array(a, dtype=np.float64, copy=True)  # never touch the caller's array
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or Inf values")
    return a


def positive_part(a: np.ndarray, name: str) -> np.ndarray:
    """Clip small negative values (noise, numerical error) of a PSF with positive mass."""
    pos = float(a[a > 0].sum())
    neg = float(-a[a < 0].sum())
    if pos == 0.0 and neg == 0.0:
        raise ValueError(f"{name} is all zero: there is no PSF in it")
    if pos <= neg:
        raise ValueError(
            f"{name} has a negative total mass (positive {pos:.4g}, negative {neg:.4g}): "
            "is the background subtracted twice, or the image inverted?"
        )
    if neg > 0.5 * pos:
        raise ValueError(
            f"{name} has too much negative mass ({neg / pos:.0%} of its positive mass, at most "
            "50% is accepted): subtract a smaller background"
        )
    return np.clip(a, 0.0, None)


def json_float(v: float) -> float:
    return float(f"{float(v):.6g}")


def check_wavelength(name: str, value: Any) -> float:
    v = check_number(name, value)
    if not 0.2 <= v <= 2.0:
        hint = " (nanometres? divide by 1000)" if v > 2.0 else ""
        raise ValueError(
            f"{name} = {v:g} is not a plausible wavelength in micrometres (um): accepted "
            f"range [0.2, 2] um{hint}"
        )
    return v


def check_z_ratio(z_ratio: Any) -> float:
    """z step / lateral pixel size, in (1, MAX_SCALE]."""
    if isinstance(z_ratio, (bool, np.bool_)) or not isinstance(z_ratio, (int, float, np.number)):
        raise TypeError(f"z_ratio must be a number, got {type(z_ratio).__name__}")
    r = float(z_ratio)
    if not math.isfinite(r) or not 1.0 < r <= MAX_SCALE:
        raise ValueError(
            f"z_ratio (z step / xy pixel size) must be in (1, {MAX_SCALE:g}], got {z_ratio!r}; "
            "a stack whose z step is not coarser than its pixel needs no isotropic reconstruction"
        )
    return r
