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

:func:`axial_profile` gives the 1-D axial kernel used to make anisotropic stacks isotropic and
:func:`kernel_fwhm` measures a kernel. PSF files are read by
:func:`napari_zssr.io.load_psf_file` (re-exported here).

Units: every length is in micrometres (um). Pixel sizes outside [1e-4, 50] um and
wavelengths outside [0.2, 2] um are rejected as a probable unit mistake (nanometres given
for micrometres). A missing pixel size is an error: it is never guessed.

Phase: the box of an even factor has an even width, so a PSF centred on a pixel, convolved
with it, comes out even-sized with its centre between two pixels: exactly the phase the
engine needs for that factor, so no interpolation is spent on re-centring it.

This package needs only numpy, scipy and psfmodels (no torch, no napari); files are read in
:mod:`napari_zssr.io`.
"""

from __future__ import annotations

from ..io.psf_file import load_psf_file
from .array import kernel_from_psf
from .axial import axial_profile
from .beads import kernel_from_bead_stack
from .geometry import PSFKernel, kernel_fwhm
from .optics import kernel_from_optics

__all__ = [
    "PSFKernel",
    "axial_profile",
    "kernel_from_bead_stack",
    "kernel_from_optics",
    "kernel_from_psf",
    "kernel_fwhm",
    "load_psf_file",
]
