"""The PSF kernel type and the geometry that puts a PSF on the HR grid.

Resampling reuses the Keys cubic of :mod:`napari_zssr.core.resize` (MATLAB's bicubic, a = -0.5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, signal

from ..core.kernels import crop_to_plane
from ..core.resize import cubic
from .checks import (
    FWHM_PER_SIGMA,
    MAX_HR_RADIUS,
    as_array,
    check_fraction,
    check_number,
    length_pair,
    positive_part,
    scale_pair,
)


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
# Geometry helpers
# --------------------------------------------------------------------------------------------


def box_1d(width: float) -> np.ndarray:
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


def resample_matrix(n_in: int, centre: float, p: float, h: float, radius: int) -> np.ndarray:
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
    return cubic(pos - i) * (h / p)


def resample_psf(
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
        radius = min(max(0, math.ceil(reach + 0.5 - 1e-9) - 1), MAX_HR_RADIUS)
        mats.append(resample_matrix(n, c, p[ax], h[ax], radius))
    out = mats[0] @ img @ mats[1].T
    return np.clip(out, 0.0, None)


def centre_of_mass(a: np.ndarray) -> np.ndarray:
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
    k = positive_part(as_array(kernel, "kernel", (2,)), "kernel")
    com = centre_of_mass(k)
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


def check_fits(kernel: np.ndarray, image_shape: Any, scale: tuple[float, float]) -> np.ndarray:
    """The kernel, cropped to the image on the HR grid where only its tails beyond the
    3-FWHM core reach past it (:func:`napari_zssr.core.kernels.crop_to_plane`, the rule the
    engine applies to any kernel) and renormalised; refused when more would have to go.

    The rings beyond 3 FWHMs are kept by default for the consistency step, but on an image
    smaller than them they would describe light from outside the image.
    """
    if image_shape is None:
        return kernel
    shape = tuple(int(n) for n in np.asarray(image_shape).ravel())
    if len(shape) < 2 or min(shape[-2:]) < 1:
        raise ValueError(f"image_shape must end with the (Y, X) size of the image, got {shape}")
    hr = [math.ceil(round(shape[-2 + ax] * scale[ax], 9)) for ax in range(2)]
    try:
        cropped = crop_to_plane(kernel, hr)
    except ValueError:
        raise ValueError(
            f"the PSF kernel ({kernel.shape[0]} x {kernel.shape[1]} HR pixels) is larger than "
            f"the image on the HR grid ({hr[0]} x {hr[1]}): check the pixel sizes (um) of the "
            "PSF and of the image"
        ) from None
    return kernel if cropped is kernel else _finish(cropped)


def kernel_on_hr_grid(
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
        box = np.outer(box_1d(scale[0]), box_1d(scale[1]))
        if box.size > 1:
            k = signal.convolve2d(resampled, box, mode="full")
    max_half: list[int | None] = [None, None]
    if max_fwhm is not None:
        for ax in range(2):
            if psf_fwhm[ax] > 0:
                max_half[ax] = max(1, math.ceil(max_fwhm * psf_fwhm[ax]))
    k = _crop(k, energy, max_half, psf_radius)
    return _finish(k), psf_fwhm


def hr_pixel(
    image_pixel_size: Any, scale: Any
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    px = length_pair("image_pixel_size", image_pixel_size)
    sc = scale_pair(scale)
    hr = (px[0] / sc[0], px[1] / sc[1])
    return px, sc, hr


def common_options(energy: Any, max_fwhm: Any) -> tuple[float, float | None]:
    e = check_fraction("energy", energy, 0.5, 1.0)
    if max_fwhm is None:
        return e, None
    m = check_number("max_fwhm", max_fwhm)
    if not m >= 0.5:
        raise ValueError(f"max_fwhm must be >= 0.5 (FWHMs from the centre) or None, got {m:g}")
    return e, m


def describe_kernel(kernel: np.ndarray, what: str, hr: tuple[float, float]) -> str:
    fy, fx = kernel_fwhm(kernel)
    hr_txt = f"{hr[0]:.4g} um" if hr[0] == hr[1] else f"{hr[0]:.4g} x {hr[1]:.4g} um"
    return (
        f"{what}; {kernel.shape[0]}x{kernel.shape[1]} kernel on the {hr_txt} HR grid, "
        f"FWHM {fy:.2f} x {fx:.2f} HR px ({fy * hr[0]:.3f} x {fx * hr[1]:.3f} um)"
    )


def gaussian_taps(fwhm_px: float) -> np.ndarray:
    """Gaussian of FWHM ``fwhm_px`` integrated over unit pixels, odd length, sum 1."""
    from scipy.special import ndtr

    sigma = fwhm_px / FWHM_PER_SIGMA
    radius = max(1, math.ceil(4.0 * sigma + 0.5))
    edges = (np.arange(-radius, radius + 2) - 0.5) / sigma
    taps = np.diff(ndtr(edges))
    return taps / taps.sum()


def finish_1d(
    profile: np.ndarray, integrate: float | None, energy: float, max_fwhm: float | None
) -> np.ndarray:
    """Integrate over ``integrate`` pixels (box), crop, normalise a centred odd 1-D profile."""
    fwhm = _fwhm_1d(profile)
    radius = (len(profile) - 1) // 2
    k = profile
    if integrate is not None and integrate > 1.0 + 1e-9:
        k = np.convolve(profile, box_1d(integrate), mode="full")
    cap = max(1, math.ceil(max_fwhm * fwhm)) if max_fwhm is not None and fwhm > 0 else None
    k2 = _crop(k[None, :], energy, [None, cap], [0, radius])
    return np.asarray(_finish(k2)[0]).copy()
