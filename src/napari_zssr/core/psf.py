"""Point spread functions turned into ZSSR downscaling kernels.

ZSSR degrades its training fathers with the blur of the imaging system *on the HR grid*: a
grid whose pixel is the image pixel divided by the scale factor. That blur is the optical PSF
sampled on the HR grid, convolved with the camera pixel (a box of ``s x s`` HR pixels, with
fractional edges for a non-integer ``s``), normalised to sum 1. The functions here build it
from the three usual sources and return a :class:`PSFKernel`:

* :func:`kernel_from_bead_stack`: a measured image of sub-resolution beads;
* :func:`kernel_from_psf`: a PSF array with a known pixel size (measured or computed elsewhere);
* :func:`kernel_from_optics`: a model PSF computed with ``psfmodels`` from the objective's
  numerical aperture, the wavelength and the refractive indices.

:func:`axial_profile` gives the 1-D axial kernel used to make anisotropic stacks isotropic,
:func:`load_psf_file` reads PSF files (TIFF, ``.npy``, ``.mat``) and :func:`kernel_fwhm`
measures a kernel.

Units: every length is in micrometres (um). Pixel sizes outside [1e-4, 50] um and
wavelengths outside [0.2, 2] um are rejected as a probable unit mistake (nanometres given
for micrometres). A missing pixel size is an error: it is never guessed.

Phase: the box of an even factor has an even width, so a PSF centred on a pixel, convolved
with it, comes out even-sized with its centre between two pixels: exactly the phase the
engine needs for that factor, so no interpolation is spent on re-centring it.

This module needs only numpy, scipy and psfmodels (no torch, no napari).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage, signal

__all__ = [
    "PSFKernel",
    "axial_profile",
    "kernel_from_bead_stack",
    "kernel_from_optics",
    "kernel_from_psf",
    "kernel_fwhm",
    "load_psf_file",
]

MIN_LENGTH_UM = 1e-4
"""Smallest accepted pixel size or z step, in micrometres."""
MAX_LENGTH_UM = 50.0
"""Largest accepted pixel size or z step, in micrometres."""
MAX_SCALE = 16.0
"""Largest accepted scale factor."""
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_MAX_HR_RADIUS = 1024  # HR pixels: bound on the resampling canvas


@dataclass(frozen=True, eq=False)
class PSFKernel:
    """A downscaling kernel on the HR grid and where it came from.

    Attributes
    ----------
    kernel : numpy.ndarray
        2-D float64 kernel, finite, non-negative, sum 1, read-only; ready for the ``kernel``
        argument of :func:`napari_zssr.super_resolve`.
    description : str
        One line for people (source, parameters, size, FWHM).
    source : dict
        JSON-able parameters of the source (lengths in um), for result metadata.
    """

    kernel: np.ndarray
    description: str
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the kernel."""
        return (int(self.kernel.shape[0]), int(self.kernel.shape[1]))

    @property
    def fwhm(self) -> tuple[float, float]:
        """(y, x) full width at half maximum of the kernel, in HR pixels."""
        return kernel_fwhm(self.kernel)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _number(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def _length(name: str, value: Any) -> float:
    """A length in um, checked for plausibility."""
    v = _number(name, value)
    if v <= 0:
        raise ValueError(f"{name} must be a positive length in micrometres (um), got {v:g}")
    if not MIN_LENGTH_UM <= v <= MAX_LENGTH_UM:
        hint = " (nanometres? divide by 1000)" if v > MAX_LENGTH_UM else ""
        raise ValueError(
            f"{name} = {v:g} is not a plausible length in micrometres (um): accepted range "
            f"[{MIN_LENGTH_UM:g}, {MAX_LENGTH_UM:g}] um{hint}"
        )
    return v


def _length_pair(name: str, value: Any) -> tuple[float, float]:
    """A scalar or (y, x) pair of lengths in um."""
    if value is None:
        raise ValueError(
            f"{name} is required: give the pixel size in micrometres (um); it is never guessed"
        )
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        vals = list(np.asarray(value, dtype=object).ravel())
        if len(vals) != 2:
            raise ValueError(f"{name} must be one number or a (y, x) pair, got {len(vals)} values")
        return (_length(f"{name}[0]", vals[0]), _length(f"{name}[1]", vals[1]))
    v = _length(name, value)
    return (v, v)


def _scale_pair(scale: Any) -> tuple[float, float]:
    if isinstance(scale, (Sequence, np.ndarray)) and not isinstance(scale, str):
        vals = list(np.asarray(scale, dtype=object).ravel())
        if len(vals) != 2:
            raise ValueError(f"scale must be one number or a (y, x) pair, got {len(vals)} values")
        pair = (_number("scale[0]", vals[0]), _number("scale[1]", vals[1]))
    else:
        s = _number("scale", scale)
        pair = (s, s)
    for s in pair:
        if not 1.0 <= s <= MAX_SCALE:
            raise ValueError(f"scale factors must be in [1, {MAX_SCALE:g}], got {s:g}")
    return pair


def _fraction(name: str, value: Any, low: float, high: float) -> float:
    v = _number(name, value)
    if not low < v <= high:
        raise ValueError(f"{name} must be in ({low:g}, {high:g}], got {v:g}")
    return v


def _as_array(arr: Any, name: str, ndims: tuple[int, ...]) -> np.ndarray:
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


def _positive_part(a: np.ndarray, name: str) -> np.ndarray:
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


def _json_float(v: float) -> float:
    return float(f"{float(v):.6g}")


# --------------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------------


def _box_1d(width: float) -> np.ndarray:
    """Weights of a box ``width`` pixels wide at its natural phase, sum 1.

    An integer width gives ``width`` equal taps; a fractional one has partial end taps. The
    number of taps has the parity of the nearest integer width, so the box of factor 2 is
    even (centred between two pixels) and that of factor 3 odd.
    """
    if width <= 1.0 + 1e-9:
        return np.ones(1)
    n_round = math.floor(width + 0.5)
    n = math.ceil(width - 1e-9)
    if (n - n_round) % 2:
        n += 1
    c = (n - 1) / 2.0
    lo, hi = c - width / 2.0, c + width / 2.0
    i = np.arange(n, dtype=np.float64)
    w = np.clip(np.minimum(i + 0.5, hi) - np.maximum(i - 0.5, lo), 0.0, None)
    return w / w.sum()


def _keys(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (a + 2) * ax3 - (a + 3) * ax2 + 1
    far = a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a
    return np.where(ax <= 1, near, np.where(ax < 2, far, 0.0))


def _resample_matrix(n_in: int, centre: float, p: float, h: float, radius: int) -> np.ndarray:
    """Linear operator from ``n_in`` pixels of size ``p`` to ``2 * radius + 1`` of size ``h``.

    Output pixel ``k`` (``-radius..radius``) is centred at ``k * h`` from the input position
    ``centre`` (in input pixels). When ``h >= p`` each output pixel integrates the input over
    its area (exact for a pixel-integrated input, energy preserving and anti-aliased); when
    ``h < p`` the input density is interpolated with the Keys cubic (a = -0.5) and scaled by
    ``h / p``. Outside the input the PSF is zero.
    """
    k = np.arange(-radius, radius + 1, dtype=np.float64)[:, None]
    i = np.arange(n_in, dtype=np.float64)[None, :]
    if h >= p * (1 - 1e-9):
        out_lo, out_hi = (k - 0.5) * h, (k + 0.5) * h
        in_lo, in_hi = (i - centre - 0.5) * p, (i - centre + 0.5) * p
        return np.clip(np.minimum(out_hi, in_hi) - np.maximum(out_lo, in_lo), 0.0, None) / p
    pos = centre + k * (h / p)
    return _keys(pos - i) * (h / p)


def _resample(
    img: np.ndarray,
    centre: Sequence[float],
    p: Sequence[float],
    h: Sequence[float],
) -> np.ndarray:
    """Resample a 2-D PSF with pixel ``p`` onto an odd grid of pixel ``h`` centred on ``centre``.

    The output covers the whole input and its middle pixel sits exactly on ``centre``.
    """
    mats = []
    for ax in range(2):
        n = img.shape[ax]
        c = float(centre[ax])
        reach = max(c + 0.5, n - 0.5 - c) * p[ax] / h[ax]
        radius = min(max(0, math.ceil(reach + 0.5 - 1e-9) - 1), _MAX_HR_RADIUS)
        mats.append(_resample_matrix(n, c, p[ax], h[ax], radius))
    out = mats[0] @ img @ mats[1].T
    return np.clip(out, 0.0, None)


def _centre_of_mass(a: np.ndarray) -> np.ndarray:
    total = a.sum()
    return np.array(
        [
            (
                np.arange(n, dtype=np.float64)
                * a.sum(axis=tuple(j for j in range(a.ndim) if j != i))
            ).sum()
            / total
            for i, n in enumerate(a.shape)
        ]
    )


def _profile_fwhm(values: np.ndarray, positions: np.ndarray) -> float:
    """FWHM of a finely sampled 1-D profile (crossings by linear interpolation)."""
    peak = int(np.argmax(values))
    half = values[peak] / 2.0
    if not half > 0:
        return 0.0
    right = peak
    while right + 1 < len(values) and values[right + 1] >= half:
        right += 1
    left = peak
    while left - 1 >= 0 and values[left - 1] >= half:
        left -= 1
    if right + 1 < len(values):
        v0, v1 = values[right], values[right + 1]
        x_r = positions[right] + (v0 - half) / (v0 - v1) * (positions[right + 1] - positions[right])
    else:
        x_r = positions[right]
    if left - 1 >= 0:
        v0, v1 = values[left], values[left - 1]
        x_l = positions[left] - (v0 - half) / (v0 - v1) * (positions[left] - positions[left - 1])
    else:
        x_l = positions[left]
    return float(x_r - x_l)


def _fwhm_1d(profile: np.ndarray) -> float:
    """FWHM in pixels of a 1-D profile (cubic-spline interpolated, zero outside)."""
    n = len(profile)
    if n == 1:
        return 0.0
    t = np.arange(-2.0, n + 1.0 + 1e-9, 0.01)
    vals = ndimage.map_coordinates(profile, t[None], order=3, mode="grid-constant", cval=0.0)
    return _profile_fwhm(vals, t)


def kernel_fwhm(kernel: np.ndarray) -> tuple[float, float]:
    """Full width at half maximum of a 2-D kernel along y and x, in pixels.

    Each width is measured on the profile through the kernel's centre of mass (cubic-spline
    interpolation, so even-sized kernels and sub-pixel centres are handled). An axis of
    length 1 has width 0.

    Parameters
    ----------
    kernel : numpy.ndarray
        2-D non-negative array with a positive sum.

    Returns
    -------
    (float, float)
        FWHM along y and along x, in pixels.
    """
    k = _positive_part(_as_array(kernel, "kernel", (2,)), "kernel")
    com = _centre_of_mass(k)
    out = []
    for ax in range(2):
        n = k.shape[ax]
        if n == 1:
            out.append(0.0)
            continue
        t = np.arange(-2.0, n + 1.0 + 1e-9, 0.01)
        coords = np.empty((2, t.size))
        coords[ax] = t
        coords[1 - ax] = com[1 - ax]
        vals = ndimage.map_coordinates(k, coords, order=3, mode="grid-constant", cval=0.0)
        out.append(_profile_fwhm(vals, t))
    return (out[0], out[1])


def _symmetric_trim(marginal: np.ndarray, keep: float, min_trim: int) -> int:
    """Largest number of samples to cut from each end that keeps ``keep`` of the mass."""
    n = len(marginal)
    total = marginal.sum()
    csum = np.concatenate([[0.0], np.cumsum(marginal)])
    best = 0
    for t in range(1, (n - 1) // 2 + 1):
        if csum[n - t] - csum[t] >= keep * total:
            best = t
        else:
            break
    return min(max(best, min_trim), (n - 1) // 2)


def _crop(
    kernel: np.ndarray, energy: float, max_half: Sequence[int | None], psf_radius: Sequence[int]
) -> np.ndarray:
    """Crop symmetrically (keeping the phase) to ``energy`` of the mass, capped in size.

    ``psf_radius`` is the half-size of the PSF before pixel integration and ``max_half`` the
    largest half-size allowed for it (None: no cap).
    """
    keep = 1.0 - (1.0 - energy) / 2.0  # per axis, so that both together keep >= energy
    slices = []
    for ax in range(2):
        marginal = kernel.sum(axis=1 - ax)
        cap = max_half[ax]
        min_trim = max(0, psf_radius[ax] - cap) if cap is not None else 0
        t = _symmetric_trim(marginal, keep, min_trim) if kernel.shape[ax] > 1 else 0
        slices.append(slice(t, kernel.shape[ax] - t))
    return kernel[tuple(slices)]


def _finish(kernel: np.ndarray) -> np.ndarray:
    k = np.clip(np.asarray(kernel, dtype=np.float64), 0.0, None)
    total = k.sum()
    if not total > 0:
        raise ValueError("the kernel came out empty: the PSF holds no energy on the HR grid")
    k = np.ascontiguousarray(k / total)
    k.setflags(write=False)
    return k


def _check_fits(kernel: np.ndarray, image_shape: Any, scale: tuple[float, float]) -> None:
    if image_shape is None:
        return
    shape = tuple(int(n) for n in np.asarray(image_shape).ravel())
    if len(shape) < 2 or min(shape[-2:]) < 1:
        raise ValueError(f"image_shape must end with the (Y, X) size of the image, got {shape}")
    hr = [math.ceil(round(shape[-2 + ax] * scale[ax], 9)) for ax in range(2)]
    if kernel.shape[0] > hr[0] or kernel.shape[1] > hr[1]:
        raise ValueError(
            f"the PSF kernel ({kernel.shape[0]} x {kernel.shape[1]} HR pixels) is larger than "
            f"the image on the HR grid ({hr[0]} x {hr[1]}): check the pixel sizes (um) of the "
            "PSF and of the image"
        )


def _kernel_on_hr_grid(
    resampled: np.ndarray,
    scale: tuple[float, float],
    integrate_pixel: bool,
    energy: float,
    max_fwhm: float | None,
) -> tuple[np.ndarray, tuple[float, float]]:
    """Pixel-integrate, crop and normalise a PSF already centred on the HR grid.

    Returns the kernel and the FWHM (HR pixels) of the PSF before pixel integration.
    """
    if not resampled.sum() > 0:
        raise ValueError("the PSF holds no energy once resampled to the HR grid")
    psf_fwhm = kernel_fwhm(resampled)
    psf_radius = [(resampled.shape[ax] - 1) // 2 for ax in range(2)]
    k = resampled
    if integrate_pixel:
        box = np.outer(_box_1d(scale[0]), _box_1d(scale[1]))
        if box.size > 1:
            k = signal.convolve2d(resampled, box, mode="full")
    max_half: list[int | None] = [None, None]
    if max_fwhm is not None:
        for ax in range(2):
            if psf_fwhm[ax] > 0:
                max_half[ax] = max(1, math.ceil(max_fwhm * psf_fwhm[ax]))
    k = _crop(k, energy, max_half, psf_radius)
    return _finish(k), psf_fwhm


def _hr_pixel(
    image_pixel_size: Any, scale: Any
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    px = _length_pair("image_pixel_size", image_pixel_size)
    sc = _scale_pair(scale)
    hr = (px[0] / sc[0], px[1] / sc[1])
    return px, sc, hr


def _common_options(energy: Any, max_fwhm: Any) -> tuple[float, float | None]:
    e = _fraction("energy", energy, 0.5, 1.0)
    if max_fwhm is None:
        return e, None
    m = _number("max_fwhm", max_fwhm)
    if not m >= 0.5:
        raise ValueError(f"max_fwhm must be >= 0.5 (FWHMs from the centre) or None, got {m:g}")
    return e, m


def _describe(kernel: np.ndarray, what: str, hr: tuple[float, float]) -> str:
    fy, fx = kernel_fwhm(kernel)
    hr_txt = f"{hr[0]:.4g} um" if hr[0] == hr[1] else f"{hr[0]:.4g} x {hr[1]:.4g} um"
    return (
        f"{what}; {kernel.shape[0]}x{kernel.shape[1]} kernel on the {hr_txt} HR grid, "
        f"FWHM {fy:.2f} x {fx:.2f} HR px ({fy * hr[0]:.3f} x {fx * hr[1]:.3f} um)"
    )


# --------------------------------------------------------------------------------------------
# Background and bead finding
# --------------------------------------------------------------------------------------------


def _border_stats(stack: np.ndarray) -> tuple[float, float]:
    """Median and robust standard deviation (MAD) of the lateral border of a (Z, Y, X) stack."""
    _, ny, nx = stack.shape
    b = max(2, min(ny, nx) // 10)
    if 2 * b >= min(ny, nx):
        values = stack.ravel()
    else:
        mask = np.ones((ny, nx), dtype=bool)
        mask[b:-b, b:-b] = False
        values = stack[:, mask].ravel()
    med = float(np.median(values))
    sigma = 1.4826 * float(np.median(np.abs(values - med)))
    return med, sigma


def _background(stack: np.ndarray, background: Any) -> tuple[float, float]:
    """Background level and noise sigma of a (Z, Y, X) stack."""
    med, sigma = _border_stats(stack)
    if background is None or (isinstance(background, str) and background == "auto"):
        return med, sigma
    if isinstance(background, str):
        raise ValueError(f"background must be None, 'auto' or a number, got {background!r}")
    return _number("background", background), sigma


@dataclass
class _Bead:
    z: int
    centre: tuple[float, float]  # sub-pixel (y, x) in the in-focus plane
    plane: np.ndarray  # background-subtracted in-focus plane, masked to the bead, >= 0
    mask: np.ndarray  # lateral region that belongs to the bead
    peak: float
    touches_border: bool


def _find_beads(
    work: np.ndarray, sigma: float, noise_sigmas: float, detect_fraction: float
) -> list[_Bead]:
    """Beads of a background-subtracted (Z, Y, X) stack, brightest first."""
    nz, ny, nx = work.shape
    smooth = ndimage.gaussian_filter(work, sigma=(0.7 if nz > 1 else 0.0, 1.0, 1.0))
    top = float(smooth.max())
    if not top > max(noise_sigmas * sigma, 0.0):
        raise ValueError(
            "no bead found: nothing rises above the background noise "
            f"(peak {top:.4g} after subtracting the background, noise sigma {sigma:.4g})"
        )
    threshold = max(noise_sigmas * sigma, detect_fraction * top)
    labels, n = ndimage.label(smooth > threshold)
    beads = []
    for lab, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        region = labels[sl] == lab
        vals = np.where(region, smooth[sl], -np.inf)
        zz, yy, xx = np.unravel_index(int(np.argmax(vals)), vals.shape)
        z0 = zz + sl[0].start
        peak = float(vals[zz, yy, xx])
        comp = labels[z0] == lab
        # Voronoi split of the plane between beads, then a disc around this bead.
        plane_labels = labels[z0]
        if n > 1 and np.any((plane_labels > 0) & (plane_labels != lab)):
            idx = ndimage.distance_transform_edt(
                plane_labels == 0, return_distances=False, return_indices=True
            )
            owner = plane_labels[idx[0], idx[1]]
            own = owner == lab
        else:
            own = np.ones((ny, nx), dtype=bool)
        radius = math.sqrt(comp.sum() / math.pi)
        dist = ndimage.distance_transform_edt(~comp)
        mask = own & (dist <= max(3.0, 2.0 * radius))
        plane = np.clip(work[z0], 0.0, None) * mask
        if not plane.sum() > 0:
            continue
        com = _centre_of_mass(plane)
        touches = bool(
            comp[0, :].any() or comp[-1, :].any() or comp[:, 0].any() or comp[:, -1].any()
        )
        beads.append(_Bead(int(z0), (float(com[0]), float(com[1])), plane, mask, peak, touches))
    if not beads:
        raise ValueError("no bead found above the background")
    beads.sort(key=lambda b: -b.peak)
    return beads


# --------------------------------------------------------------------------------------------
# Public: kernels
# --------------------------------------------------------------------------------------------


def kernel_from_bead_stack(
    stack: np.ndarray,
    *,
    voxel_size: Any,
    image_pixel_size: Any,
    scale: Any,
    background: float | str | None = None,
    beads: str = "brightest",
    integrate_pixel: bool = True,
    energy: float = 0.999,
    max_fwhm: float | None = 3.0,
    noise_sigmas: float = 5.0,
    image_shape: Sequence[int] | None = None,
) -> PSFKernel:
    """Downscaling kernel from a measured image of sub-resolution beads.

    Steps: subtract the background; find the beads (connected regions of the lightly
    smoothed stack above ``noise_sigmas`` noise sigmas and 10% of the brightest bead); for
    each bead take its in-focus plane (the plane of its peak), keep the region around it
    (closer to it than to any other bead), and locate its sub-pixel centroid; resample that
    plane from the bead image's pixel size to the HR grid centred on the centroid (area
    integration when the HR pixel is the larger, cubic interpolation otherwise); integrate
    over the camera pixel; crop to where the energy is; normalise to sum 1.

    Parameters
    ----------
    stack : numpy.ndarray
        ``(Z, Y, X)`` bead stack, or a single ``(Y, X)`` plane. Not modified.
    voxel_size : float or sequence of float
        Voxel size of ``stack`` in um: ``(z, y, x)``, ``(y, x)`` or one lateral number. Only
        the lateral part is used for the kernel.
    image_pixel_size : float or (float, float)
        Pixel size in um of the images the kernel is for (the LR input of ZSSR).
    scale : float or (float, float)
        Super-resolution factor(s), in [1, 16]. HR pixel = ``image_pixel_size / scale``.
    background : float, "auto" or None
        Background level to subtract; None or "auto" estimates it as the median of the
        lateral border of the stack (robust to the beads).
    beads : {"brightest", "average"}
        Use the brightest bead, or average every bead found (weighted by its brightness,
        each centred on its own centroid).
    integrate_pixel : bool
        Include the camera pixel's integration over its area (a box of ``scale`` HR pixels).
    energy : float
        Fraction of the kernel's energy kept by the crop, in (0.5, 1].
    max_fwhm : float or None
        The crop never reaches further than this many FWHMs of the PSF from its centre
        (before pixel integration); None for no cap.
    noise_sigmas : float
        Detection threshold in noise standard deviations (robust estimate from the border).
    image_shape : sequence of int, optional
        ``(..., Y, X)`` shape of the LR image: a kernel larger than the image on the HR grid
        is refused.

    Returns
    -------
    PSFKernel

    Raises
    ------
    ValueError
        Missing or implausible pixel sizes (not in um), no bead found, empty, all-zero or
        non-finite input, a kernel larger than the image.
    TypeError
        Non-numeric input.
    """
    a = _as_array(stack, "bead stack", (2, 3))
    if a.ndim == 2:
        a = a[None]
    if voxel_size is None:
        raise ValueError(
            "voxel_size is required: give the bead stack's (z, y, x) voxel size in micrometres "
            "(um); it is never guessed"
        )
    vs = np.asarray(voxel_size, dtype=object).ravel()
    if vs.size == 3:
        # the z step is not needed for the lateral kernel: a file may not know it
        z_um: float | None = None if vs[0] is None else _length("voxel_size[0] (z)", vs[0])
        lateral = _length_pair("voxel_size (y, x)", list(vs[1:]))
    elif vs.size in (1, 2):
        z_um = None
        lateral = _length_pair("voxel_size", list(vs) if vs.size == 2 else vs[0])
    else:
        raise ValueError(f"voxel_size must hold 1, 2 or 3 lengths in um, got {vs.size}")
    px, sc, hr = _hr_pixel(image_pixel_size, scale)
    e, mf = _common_options(energy, max_fwhm)
    ns = _number("noise_sigmas", noise_sigmas)
    if beads not in ("brightest", "average"):
        raise ValueError(f"beads must be 'brightest' or 'average', got {beads!r}")

    bg, sigma = _background(a, background)
    work = a - bg
    if not np.any(work > 0):
        raise ValueError(
            "the bead stack is empty after subtracting the background "
            f"({bg:.4g}): all-zero image, or background too high"
        )
    found = _find_beads(work, sigma, ns, 0.1)
    used = found[:1] if beads == "brightest" else [b for b in found if not b.touches_border]
    if not used:
        used = found[:1]
    if used[0].touches_border and beads == "brightest":
        warnings.warn(
            "the brightest bead touches the edge of the image: its PSF is cut off",
            stacklevel=2,
        )
    acc: np.ndarray | None = None
    for b in used:
        r = _resample(b.plane, b.centre, lateral, hr)
        if acc is None:
            acc = r
        else:  # grids may differ by a pixel: pad both to the larger one, centred
            shape = np.maximum(acc.shape, r.shape)
            acc = _pad_centred(acc, shape) + _pad_centred(r, shape)
    assert acc is not None
    kernel, psf_fwhm = _kernel_on_hr_grid(acc, sc, bool(integrate_pixel), e, mf)
    _check_fits(kernel, image_shape, sc)
    first = used[0]
    source = {
        "type": "bead_stack",
        "voxel_size_um": [_json_float(v) for v in ([z_um] if z_um else []) + list(lateral)],
        "image_pixel_size_um": [_json_float(v) for v in px],
        "scale": [_json_float(v) for v in sc],
        "hr_pixel_size_um": [_json_float(v) for v in hr],
        "background": _json_float(bg),
        "beads": beads,
        "n_beads": len(used),
        "bead_position_px": [first.z, _json_float(first.centre[0]), _json_float(first.centre[1])],
        "integrate_pixel": bool(integrate_pixel),
        "energy": e,
        "max_fwhm": mf,
        "psf_fwhm_um": [_json_float(psf_fwhm[0] * hr[0]), _json_float(psf_fwhm[1] * hr[1])],
    }
    what = (
        f"bead PSF ({len(used)} bead{'s' if len(used) > 1 else ''}, plane z={first.z}, "
        f"{lateral[1]:.4g} um pixels)"
    )
    return PSFKernel(kernel, _describe(kernel, what, hr), source)


def _pad_centred(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Zero-pad an odd-sized centred array to a larger odd shape, keeping the centre."""
    pads = [((int(s) - n) // 2, (int(s) - n) - (int(s) - n) // 2) for s, n in zip(shape, a.shape)]
    return np.pad(a, pads)


def _in_focus_plane(psf: np.ndarray) -> int:
    """Index of the plane with the highest (lightly smoothed) peak of a (Z, Y, X) PSF."""
    smooth = ndimage.gaussian_filter(psf, sigma=(0.0, 1.0, 1.0))
    return int(np.argmax(smooth.reshape(smooth.shape[0], -1).max(axis=1)))


def kernel_from_psf(
    psf: np.ndarray,
    *,
    psf_pixel_size: Any,
    image_pixel_size: Any,
    scale: Any,
    integrate_pixel: bool = True,
    background: float | str | None = None,
    energy: float = 0.999,
    max_fwhm: float | None = 3.0,
    image_shape: Sequence[int] | None = None,
) -> PSFKernel:
    """Downscaling kernel from a PSF array with a known pixel size.

    The PSF is centred on its centre of mass, resampled from ``psf_pixel_size`` to the HR grid
    (area integration when the HR pixel is the larger, cubic interpolation otherwise),
    integrated over the camera pixel, cropped to where its energy is and normalised.

    Parameters
    ----------
    psf : numpy.ndarray
        2-D PSF ``(Y, X)``, or 3-D ``(Z, Y, X)`` of which the in-focus plane (highest peak) is
        used. Not modified.
    psf_pixel_size : float or (float, float) or (float, float, float)
        Lateral pixel size of ``psf`` in um (required; never guessed); a ``(z, y, x)``
        triple, as :func:`load_psf_file` returns for a stack, is accepted.
    image_pixel_size : float or (float, float)
        Pixel size in um of the images the kernel is for.
    scale : float or (float, float)
        Super-resolution factor(s) in [1, 16].
    integrate_pixel : bool
        Include the camera pixel's integration (a box of ``scale`` HR pixels).
    background : float, "auto" or None
        None: the PSF has no background (computed PSFs). A number is subtracted; "auto"
        subtracts the median of the PSF's border (measured PSFs).
    energy, max_fwhm, image_shape
        As in :func:`kernel_from_bead_stack`.

    Returns
    -------
    PSFKernel

    Raises
    ------
    ValueError
        Missing or implausible pixel sizes, empty, all-zero, non-finite or negative-mass PSF,
        a kernel larger than the image.
    TypeError
        Non-numeric input.
    """
    a = _as_array(psf, "psf", (2, 3))
    if psf_pixel_size is None:
        raise ValueError(
            "psf_pixel_size is required: give the PSF's pixel size in micrometres (um); "
            "it is never guessed"
        )
    p_vals = np.asarray(psf_pixel_size, dtype=object).ravel()
    if p_vals.size == 3:  # (z, y, x) as load_psf_file gives it for a stack: lateral part
        p_vals = p_vals[1:]
    p = _length_pair("psf_pixel_size", p_vals[0] if p_vals.size == 1 else list(p_vals))
    px, sc, hr = _hr_pixel(image_pixel_size, scale)
    e, mf = _common_options(energy, max_fwhm)
    stack = a if a.ndim == 3 else a[None]
    bg = 0.0
    if background is not None:
        bg, _ = _background(stack, background)
        stack = stack - bg
    z = _in_focus_plane(stack) if stack.shape[0] > 1 else 0
    plane = _positive_part(stack[z], "psf")
    resampled = _resample(plane, _centre_of_mass(plane), p, hr)
    kernel, psf_fwhm = _kernel_on_hr_grid(resampled, sc, bool(integrate_pixel), e, mf)
    _check_fits(kernel, image_shape, sc)
    source = {
        "type": "psf_array",
        "psf_pixel_size_um": [_json_float(v) for v in p],
        "psf_shape": [int(n) for n in a.shape],
        "plane": z if a.ndim == 3 else None,
        "background": _json_float(bg),
        "image_pixel_size_um": [_json_float(v) for v in px],
        "scale": [_json_float(v) for v in sc],
        "hr_pixel_size_um": [_json_float(v) for v in hr],
        "integrate_pixel": bool(integrate_pixel),
        "energy": e,
        "max_fwhm": mf,
        "psf_fwhm_um": [_json_float(psf_fwhm[0] * hr[0]), _json_float(psf_fwhm[1] * hr[1])],
    }
    what = f"PSF array {'x'.join(str(n) for n in a.shape)} at {p[1]:.4g} um pixels"
    return PSFKernel(kernel, _describe(kernel, what, hr), source)


def kernel_from_optics(
    *,
    image_pixel_size: Any,
    scale: Any,
    na: float,
    wavelength: float,
    ni: float = 1.515,
    ns: float = 1.33,
    modality: str = "widefield",
    pinhole_au: float = 1.0,
    excitation_wavelength: float | None = None,
    depth: float = 0.0,
    model: str = "vectorial",
    integrate_pixel: bool = True,
    energy: float = 0.999,
    max_fwhm: float | None = 3.0,
    image_shape: Sequence[int] | None = None,
) -> PSFKernel:
    """Downscaling kernel from a PSF model of the microscope (``psfmodels``).

    The in-focus plane of the PSF is computed on the HR grid (``psfmodels`` averages each HR
    pixel over 3 x 3 sub-samples), over a window of ``max_fwhm + 2`` estimated FWHMs around
    the centre, then integrated over the camera pixel, cropped and normalised.

    Confocal: the excitation PSF times the emission PSF convolved with the pinhole
    (``psfmodels.confocal_psf``). The pinhole is a geometric disc of diameter ``pinhole_au``
    Airy units (1 AU = 1.22 emission wavelength / NA) projected onto the sample, its own
    diffraction ignored.

    Parameters
    ----------
    image_pixel_size : float or (float, float)
        Pixel size in um of the images the kernel is for.
    scale : float or (float, float)
        Super-resolution factor(s) in [1, 16].
    na : float
        Numerical aperture of the objective, in (0, ni).
    wavelength : float
        Emission wavelength in um (e.g. 0.52 for GFP).
    ni : float
        Refractive index of the immersion medium: 1.515 (oil) by default; 1.33 water,
        1.0 air, 1.40-1.47 silicone or glycerol.
    ns : float
        Refractive index of the sample: 1.33 (live cells in aqueous medium) by default;
        about 1.45-1.52 for mounted, fixed samples.
    modality : {"widefield", "confocal"}
        Widefield (emission PSF) or point-scanning confocal.
    pinhole_au : float
        Confocal pinhole diameter in Airy units (default 1).
    excitation_wavelength : float, optional
        Confocal excitation wavelength in um; None uses the emission wavelength (a slightly
        broader, conservative PSF).
    depth : float
        Depth of the focal plane above the coverslip in um (spherical aberration when
        ``ns != ni``); 0 by default.
    model : {"vectorial", "scalar", "gaussian"}
        ``psfmodels`` model: vectorial (Aguet et al.), scalar (Gibson-Lanni) or Gaussian.
    integrate_pixel, energy, max_fwhm, image_shape
        As in :func:`kernel_from_bead_stack`.

    Returns
    -------
    PSFKernel

    Raises
    ------
    ValueError
        Implausible lengths (not in um), NA not below ni, unknown modality or model.
    """
    import psfmodels

    px, sc, hr = _hr_pixel(image_pixel_size, scale)
    e, mf = _common_options(energy, max_fwhm)
    wvl = _wavelength("wavelength", wavelength)
    ex_wvl = (
        wvl
        if excitation_wavelength is None
        else _wavelength("excitation_wavelength", excitation_wavelength)
    )
    ni_v = _number("ni", ni)
    ns_v = _number("ns", ns)
    for name, v in (("ni", ni_v), ("ns", ns_v)):
        if not 1.0 <= v <= 2.0:
            raise ValueError(f"{name} is a refractive index in [1, 2], got {v:g}")
    na_v = _number("na", na)
    if not 0 < na_v < ni_v:
        raise ValueError(
            f"na must be in (0, ni) = (0, {ni_v:g}) (the NA cannot exceed the immersion "
            f"medium's refractive index), got {na_v:g}"
        )
    depth_v = _number("depth", depth)
    if not 0 <= depth_v <= 1000:
        raise ValueError(f"depth must be in [0, 1000] um above the coverslip, got {depth_v:g}")
    if modality not in ("widefield", "confocal"):
        raise ValueError(f"modality must be 'widefield' or 'confocal', got {modality!r}")
    if model not in ("vectorial", "scalar", "gaussian"):
        raise ValueError(f"model must be 'vectorial', 'scalar' or 'gaussian', got {model!r}")
    pin = _number("pinhole_au", pinhole_au)
    if modality == "confocal" and not 0 < pin <= 100:
        raise ValueError(f"pinhole_au must be in (0, 100] Airy units, got {pin:g}")

    d = min(hr)
    fwhm_est = 0.51 * wvl / na_v
    reach = ((mf if mf is not None else 6.0) + 2.0) * fwhm_est
    half = min(math.ceil(reach / d), 400)
    nx = 2 * half + 1
    common = {
        "dxy": d,
        "NA": na_v,
        "ns": ns_v,
        "ni": ni_v,
        "ni0": ni_v,
        "pz": depth_v,
        "model": model,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if modality == "widefield":
            psf = psfmodels.make_psf([depth_v], nx, wvl=wvl, **common)[0]
        else:
            psf = psfmodels.confocal_psf(
                [depth_v], nx, ex_wvl=ex_wvl, em_wvl=wvl, pinhole_au=pin, **common
            )[0]
    psf = np.asarray(psf, dtype=np.float64)
    if not np.all(np.isfinite(psf)) or not psf.sum() > 0:
        raise ValueError("psfmodels returned an invalid PSF for these parameters")
    psf = np.clip(psf, 0.0, None)
    if hr[0] == hr[1]:
        resampled = psf
    else:
        resampled = _resample(psf, (half, half), (d, d), hr)
    kernel, psf_fwhm = _kernel_on_hr_grid(resampled, sc, bool(integrate_pixel), e, mf)
    _check_fits(kernel, image_shape, sc)
    source = {
        "type": "optics",
        "modality": modality,
        "model": model,
        "na": na_v,
        "wavelength_um": wvl,
        "excitation_wavelength_um": ex_wvl if modality == "confocal" else None,
        "pinhole_au": pin if modality == "confocal" else None,
        "ni": ni_v,
        "ns": ns_v,
        "depth_um": depth_v,
        "image_pixel_size_um": [_json_float(v) for v in px],
        "scale": [_json_float(v) for v in sc],
        "hr_pixel_size_um": [_json_float(v) for v in hr],
        "integrate_pixel": bool(integrate_pixel),
        "energy": e,
        "max_fwhm": mf,
        "psf_fwhm_um": [_json_float(psf_fwhm[0] * hr[0]), _json_float(psf_fwhm[1] * hr[1])],
    }
    what = f"{modality} {model} PSF, NA {na_v:g}, {wvl * 1000:.0f} nm"
    if modality == "confocal":
        what += f" (excitation {ex_wvl * 1000:.0f} nm, pinhole {pin:g} AU)"
    return PSFKernel(kernel, _describe(kernel, what, hr), source)


def _wavelength(name: str, value: Any) -> float:
    v = _number(name, value)
    if not 0.2 <= v <= 2.0:
        hint = " (nanometres? divide by 1000)" if v > 2.0 else ""
        raise ValueError(
            f"{name} = {v:g} is not a plausible wavelength in micrometres (um): accepted "
            f"range [0.2, 2] um{hint}"
        )
    return v


# --------------------------------------------------------------------------------------------
# Public: axial profile
# --------------------------------------------------------------------------------------------


def _gaussian_taps(fwhm_px: float) -> np.ndarray:
    """Gaussian of FWHM ``fwhm_px`` integrated over unit pixels, odd length, sum 1."""
    from scipy.special import ndtr

    sigma = fwhm_px / _FWHM_PER_SIGMA
    radius = max(1, math.ceil(4.0 * sigma + 0.5))
    edges = (np.arange(-radius, radius + 2) - 0.5) / sigma
    taps = np.diff(ndtr(edges))
    return taps / taps.sum()


def _finish_1d(
    profile: np.ndarray, integrate: float | None, energy: float, max_fwhm: float | None
) -> np.ndarray:
    """Integrate over ``integrate`` pixels (box), crop, normalise a centred odd 1-D profile."""
    fwhm = _fwhm_1d(profile)
    radius = (len(profile) - 1) // 2
    k = profile
    if integrate is not None and integrate > 1.0 + 1e-9:
        k = np.convolve(profile, _box_1d(integrate), mode="full")
    cap = max(1, math.ceil(max_fwhm * fwhm)) if max_fwhm is not None and fwhm > 0 else None
    k2 = _crop(k[None, :], energy, [None, cap], [0, radius])
    return np.asarray(_finish(k2)[0]).copy()


def axial_profile(
    psf: np.ndarray | None = None,
    *,
    target_step: float,
    psf_voxel_size: Any = None,
    fwhm: float | None = None,
    integrate_step: float | None = None,
    mode: str = "peak",
    background: float | str | None = None,
    energy: float = 0.999,
    max_fwhm: float | None = 3.0,
) -> np.ndarray:
    """1-D axial kernel for isotropic reconstruction, on the target z grid.

    Either from a 3-D PSF or bead stack (``psf`` with ``psf_voxel_size``), or from a Gaussian
    of axial full width at half maximum ``fwhm``. For anisotropic-Z super-resolution the
    target grid is the lateral pixel size (the HR grid) and ``integrate_step`` is the stack's
    z step, so the kernel also holds the integration over one z step (a box of
    ``integrate_step / target_step`` samples).

    Parameters
    ----------
    psf : numpy.ndarray, optional
        ``(Z, Y, X)`` PSF or bead stack. The brightest bead is used; the background is
        subtracted (see ``background``).
    target_step : float
        Sampling step in um of the kernel (e.g. the lateral pixel size).
    psf_voxel_size : float or sequence of float
        z step of ``psf`` in um, or its ``(z, y, x)`` voxel size; required with ``psf``.
    fwhm : float, optional
        Axial FWHM in um of a Gaussian profile (instead of ``psf``).
    integrate_step : float, optional
        Length in um integrated by one output sample (the stack's z step); None for none.
    mode : {"peak", "sum"}
        With ``psf``: ``"peak"`` (default) takes the intensity on the optical axis through
        the bead's centre (the classic axial profile: the z factor of a PSF that separates
        into lateral x axial parts); ``"sum"`` sums each plane over the bead's lateral
        region (the response to a thin layer; for a widefield PSF it decays slowly, since
        out-of-focus light is conserved, so it gives long kernels).
    background : float, "auto" or None
        With ``psf``: level to subtract; None or "auto" estimates it from the border.
    energy, max_fwhm : float
        Crop as in :func:`kernel_from_bead_stack`.

    Returns
    -------
    numpy.ndarray
        1-D float64 kernel, non-negative, sum 1, centred (odd length when the integration box
        has odd length). Use ``k[None, :]`` for a ``1 x n`` kernel along X.

    Raises
    ------
    ValueError
        Neither or both of ``psf`` and ``fwhm``, a missing z step, implausible lengths.
    """
    h = _length("target_step", target_step)
    e, mf = _common_options(energy, max_fwhm)
    integ = None
    if integrate_step is not None:
        integ = _length("integrate_step", integrate_step) / h
        if integ > 64:
            raise ValueError(
                f"integrate_step / target_step = {integ:.3g} is too large (at most 64): "
                "check the units (um) of both"
            )
    if (psf is None) == (fwhm is None):
        raise ValueError("give exactly one of psf (a 3-D PSF) or fwhm (a Gaussian axial FWHM)")
    if fwhm is not None:
        f = _length("fwhm", fwhm)
        profile = _gaussian_taps(f / h)
        return _finish_1d(profile, integ, e, mf)

    a = _as_array(psf, "psf", (3,))
    if psf_voxel_size is None:
        raise ValueError(
            "psf_voxel_size is required with psf: give the PSF's z step (or (z, y, x) voxel "
            "size) in micrometres (um); it is never guessed"
        )
    vs = np.asarray(psf_voxel_size, dtype=object).ravel()
    if vs.size not in (1, 3):
        raise ValueError(
            f"psf_voxel_size must be the z step or a (z, y, x) triple, got {vs.size} values"
        )
    if vs[0] is None:
        raise ValueError(
            "the PSF's z step is unknown (psf_voxel_size[0] is None): give it in micrometres "
            "(um); it is never guessed"
        )
    dz = _length("psf_voxel_size (z)", vs[0])
    if a.shape[0] < 3:
        raise ValueError(f"psf must have at least 3 z planes for an axial profile, got {a.shape}")
    if mode not in ("sum", "peak"):
        raise ValueError(f"mode must be 'sum' or 'peak', got {mode!r}")
    bg, sigma = _background(a, background)
    work = a - bg
    if not np.any(work > 0):
        raise ValueError("the PSF is empty after subtracting the background (all zero?)")
    bead = _find_beads(work, sigma, 5.0, 0.1)[0]
    if mode == "sum":
        profile = (work * bead.mask[None]).sum(axis=(1, 2))
    else:
        smooth = ndimage.gaussian_filter(work, sigma=(0.0, 1.0, 1.0))
        cy, cx = bead.centre
        coords = np.array([[cy], [cx]])
        profile = np.array(
            [ndimage.map_coordinates(p, coords, order=1)[0] for p in smooth], dtype=np.float64
        )
    profile = _positive_part(profile, "axial profile")
    centre = float(_centre_of_mass(profile)[0])
    reach = max(centre + 0.5, len(profile) - 0.5 - centre) * dz / h
    radius = min(max(0, math.ceil(reach + 0.5 - 1e-9) - 1), _MAX_HR_RADIUS)
    m = _resample_matrix(len(profile), centre, dz, h, radius)
    resampled = np.clip(m @ profile, 0.0, None)
    if not resampled.sum() > 0:
        raise ValueError("the axial profile holds no energy on the target grid")
    return _finish_1d(resampled, integ, e, mf)


# --------------------------------------------------------------------------------------------
# Public: files
# --------------------------------------------------------------------------------------------


def load_psf_file(
    path: str | os.PathLike[str],
) -> tuple[np.ndarray, tuple[float | None, ...] | None]:
    """Read a PSF (or bead stack) from a file.

    Parameters
    ----------
    path : str or path-like
        ``.tif``/``.tiff`` (pixel size from OME or ImageJ metadata, or the TIFF resolution
        tags when they carry a physical unit), ``.npy``, or ``.mat`` (the variable
        ``Kernel``, ``kernel``, ``psf`` or ``PSF``, else the first 2-D or 3-D numeric array).

    Returns
    -------
    array : numpy.ndarray
        The 2-D or 3-D PSF, singleton axes removed.
    pixel_size : tuple or None
        One size in um per array axis (``(y, x)`` or ``(z, y, x)``; an unknown z is None),
        or None when the file does not say (``.npy``, ``.mat``, TIFF without units): pass
        the pixel size explicitly then.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        Unknown extension, no 2-D/3-D numeric array in the file, unreadable file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such PSF file: {p}")
    ext = p.suffix.lower()
    pixel_size: tuple[float | None, ...] | None = None
    if ext in (".tif", ".tiff"):
        from ..io import read_tiff

        arr, meta = read_tiff(p)
        arr = np.asarray(arr)
        if "S" in meta.axes and arr.shape[meta.axes.index("S")] > 1:
            raise ValueError(f"{p.name}: an RGB TIFF is not a PSF; save the PSF as grayscale")
        z, y, x = meta.pixel_size
        arr = np.squeeze(arr)
        if y is not None and x is not None:
            pixel_size = (y, x) if arr.ndim == 2 else (z, y, x)
    elif ext == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            # numpy's own text speaks of allow_pickle for any file without an array header
            raise ValueError(
                f"{p.name}: not a readable NumPy .npy array file (no valid array header or "
                "truncated data); save the PSF with numpy.save"
            ) from err
    elif ext == ".mat":
        from scipy.io import loadmat

        try:
            data = loadmat(p)
        except Exception as err:  # scipy raises several types for corrupt files
            raise ValueError(f"{p.name}: not a readable MATLAB file ({err})") from err
        arr = None
        for key in ("Kernel", "kernel", "psf", "PSF"):
            if key in data:
                arr = np.asarray(data[key])
                break
        if arr is None:
            for key, value in data.items():
                if key.startswith("__"):
                    continue
                v = np.asarray(value)
                if v.dtype.kind in "biuf" and np.squeeze(v).ndim in (2, 3):
                    arr = v
                    break
        if arr is None:
            raise ValueError(f"{p.name}: no 2-D or 3-D numeric array in the MATLAB file")
    else:
        raise ValueError(f"{p.name}: unknown PSF file type {ext!r}; use .tif, .npy or .mat")
    arr = np.squeeze(np.asarray(arr))
    if arr.dtype.kind not in "biuf" or arr.ndim not in (2, 3):
        raise ValueError(
            f"{p.name}: a PSF must be a 2-D or 3-D numeric array, got shape {arr.shape}, "
            f"dtype {arr.dtype}"
        )
    if pixel_size is not None:
        pixel_size = tuple(None if v is None else float(v) for v in pixel_size)
    return arr, pixel_size
