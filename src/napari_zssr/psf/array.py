"""Kernels from a PSF array of known pixel size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .beads import bead_background, in_focus_plane
from .checks import (
    as_array,
    json_float,
    length_pair,
    positive_part,
)
from .geometry import (
    PSFKernel,
    centre_of_mass,
    check_fits,
    common_options,
    describe_kernel,
    hr_pixel,
    kernel_on_hr_grid,
    resample_psf,
)


def kernel_from_psf(
    psf: np.ndarray,
    *,
    psf_pixel_size: Any,
    image_pixel_size: Any,
    scale: Any,
    integrate_pixel: bool = True,
    background: float | str | None = None,
    energy: float = 0.999,
    max_fwhm: float | None = 6.0,
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
    a = as_array(psf, "psf", (2, 3))
    if psf_pixel_size is None:
        raise ValueError(
            "psf_pixel_size is required: give the PSF's pixel size in micrometres (um); "
            "it is never guessed"
        )
    p_vals = np.asarray(psf_pixel_size, dtype=object).ravel()
    if p_vals.size == 3:  # (z, y, x) as load_psf_file gives it for a stack: lateral part
        p_vals = p_vals[1:]
    p = length_pair("psf_pixel_size", p_vals[0] if p_vals.size == 1 else list(p_vals))
    px, sc, hr = hr_pixel(image_pixel_size, scale)
    e, mf = common_options(energy, max_fwhm)
    stack = a if a.ndim == 3 else a[None]
    bg = 0.0
    if background is not None:
        bg, _ = bead_background(stack, background)
        stack = stack - bg
    z = in_focus_plane(stack) if stack.shape[0] > 1 else 0
    plane = positive_part(stack[z], "psf")
    resampled = resample_psf(plane, centre_of_mass(plane), p, hr)
    kernel, psf_fwhm = kernel_on_hr_grid(resampled, sc, bool(integrate_pixel), e, mf)
    kernel = check_fits(kernel, image_shape, sc)
    source = {
        "type": "psf_array",
        "psf_pixel_size_um": [json_float(v) for v in p],
        "psf_shape": [int(n) for n in a.shape],
        "plane": z if a.ndim == 3 else None,
        "background": json_float(bg),
        "image_pixel_size_um": [json_float(v) for v in px],
        "scale": [json_float(v) for v in sc],
        "hr_pixel_size_um": [json_float(v) for v in hr],
        "integrate_pixel": bool(integrate_pixel),
        "energy": e,
        "max_fwhm": mf,
        "psf_fwhm_um": [json_float(psf_fwhm[0] * hr[0]), json_float(psf_fwhm[1] * hr[1])],
    }
    what = f"PSF array {'x'.join(str(n) for n in a.shape)} at {p[1]:.4g} um pixels"
    return PSFKernel(kernel, describe_kernel(kernel, what, hr), source)
