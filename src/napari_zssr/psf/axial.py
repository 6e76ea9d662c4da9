"""The 1-D axial kernel used for isotropic reconstruction of Z stacks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from .beads import bead_background, find_beads
from .checks import (
    MAX_HR_RADIUS,
    as_array,
    check_length,
    check_z_ratio,
    positive_part,
)
from .geometry import (
    box_1d,
    centre_of_mass,
    common_options,
    finish_1d,
    gaussian_taps,
    resample_matrix,
)


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
    h = check_length("target_step", target_step)
    e, mf = common_options(energy, max_fwhm)
    integ = None
    if integrate_step is not None:
        integ = check_length("integrate_step", integrate_step) / h
        if integ > 64:
            raise ValueError(
                f"integrate_step / target_step = {integ:.3g} is too large (at most 64): "
                "check the units (um) of both"
            )
    if (psf is None) == (fwhm is None):
        raise ValueError("give exactly one of psf (a 3-D PSF) or fwhm (a Gaussian axial FWHM)")
    if fwhm is not None:
        f = check_length("fwhm", fwhm)
        profile = gaussian_taps(f / h)
        return finish_1d(profile, integ, e, mf)

    a = as_array(psf, "psf", (3,))
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
    dz = check_length("psf_voxel_size (z)", vs[0])
    if a.shape[0] < 3:
        raise ValueError(f"psf must have at least 3 z planes for an axial profile, got {a.shape}")
    if mode not in ("sum", "peak"):
        raise ValueError(f"mode must be 'sum' or 'peak', got {mode!r}")
    bg, sigma = bead_background(a, background)
    work = a - bg
    if not np.any(work > 0):
        raise ValueError("the PSF is empty after subtracting the background (all zero?)")
    bead = find_beads(work, sigma, 5.0, 0.1)[0]
    if mode == "sum":
        profile = (work * bead.mask[None]).sum(axis=(1, 2))
    else:
        smooth = ndimage.gaussian_filter(work, sigma=(0.0, 1.0, 1.0))
        cy, cx = bead.centre
        coords = np.array([[cy], [cx]])
        profile = np.array(
            [ndimage.map_coordinates(p, coords, order=1)[0] for p in smooth], dtype=np.float64
        )
    profile = positive_part(profile, "axial profile")
    centre = float(centre_of_mass(profile)[0])
    reach = max(centre + 0.5, len(profile) - 0.5 - centre) * dz / h
    radius = min(max(0, math.ceil(reach + 0.5 - 1e-9) - 1), MAX_HR_RADIUS)
    m = resample_matrix(len(profile), centre, dz, h, radius)
    resampled = np.clip(m @ profile, 0.0, None)
    if not resampled.sum() > 0:
        raise ValueError("the axial profile holds no energy on the target grid")
    return finish_1d(resampled, integ, e, mf)


def axial_kernel_for(
    z_ratio: float,
    axial_kernel: np.ndarray | None = None,
    axial_fwhm: float | None = None,
) -> np.ndarray:
    """The ``1 x n`` axial downscaling kernel on the lateral (HR) grid.

    Parameters
    ----------
    z_ratio : float
        z step / lateral pixel size, in (1, 16].
    axial_kernel : numpy.ndarray, optional
        The complete 1-D kernel on the lateral grid (e.g. from
        :func:`napari_zssr.psf.axial_profile` with ``integrate_step`` = the z step),
        used as given apart from normalisation.
    axial_fwhm : float, optional
        FWHM, in lateral pixels, of a Gaussian axial blur *beyond* the lateral one (for
        Gaussian-like PSFs ``sqrt(fwhm_z**2 - fwhm_xy**2)`` in pixels); it is convolved with
        the integration over one z step.

    Returns
    -------
    numpy.ndarray
        ``(1, n)`` float64, non-negative, sum 1. With neither argument: the integration over
        one z step alone (a box ``z_ratio`` lateral pixels wide).
    """
    r = check_z_ratio(z_ratio)
    if axial_kernel is not None and axial_fwhm is not None:
        raise ValueError("give axial_kernel or axial_fwhm, not both")
    if axial_kernel is not None:
        k = np.asarray(axial_kernel)
        if k.dtype == object or k.dtype.kind not in "biuf":
            raise TypeError(f"axial_kernel must be a real numeric array, got dtype {k.dtype}")
        k = np.array(k, dtype=np.float64).reshape(-1) if k.ndim == 1 or 1 in k.shape else None
        if k is None:
            raise ValueError(
                f"axial_kernel must be 1-D (or 1 x n), got shape {np.shape(axial_kernel)}"
            )
        if k.size == 0:
            raise ValueError("axial_kernel is empty")
        if not np.all(np.isfinite(k)):
            raise ValueError("axial_kernel contains NaN or Inf values")
        if np.any(k < 0) or not k.sum() > 0:
            raise ValueError("axial_kernel must be non-negative with a positive sum")
        if k.size > 257:
            raise ValueError(f"axial_kernel has {k.size} taps; at most 257 are accepted")
        return (k / k.sum())[None, :]
    if axial_fwhm is not None:
        if isinstance(axial_fwhm, (bool, np.bool_)) or not isinstance(
            axial_fwhm, (int, float, np.number)
        ):
            raise TypeError(f"axial_fwhm must be a number, got {type(axial_fwhm).__name__}")
        f = float(axial_fwhm)
        if not math.isfinite(f) or not 0.0 < f <= 64.0:
            raise ValueError(f"axial_fwhm must be in (0, 64] lateral pixels, got {axial_fwhm!r}")
        return finish_1d(gaussian_taps(f), r, 0.999, 3.0)[None, :]
    return box_1d(r)[None, :]
