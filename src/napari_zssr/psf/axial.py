"""The 1-D axial kernel used for isotropic reconstruction of Z stacks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from .beads import _background, _find_beads
from .checks import (
    _MAX_HR_RADIUS,
    _as_array,
    _length,
    _positive_part,
)
from .geometry import (
    _centre_of_mass,
    _common_options,
    _finish_1d,
    _gaussian_taps,
    _resample_matrix,
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
