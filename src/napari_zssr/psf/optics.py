"""Kernels from a model of the microscope's optics (``psfmodels``)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .checks import (
    check_number,
    check_wavelength,
    json_float,
)
from .geometry import (
    PSFKernel,
    check_fits,
    common_options,
    describe_kernel,
    hr_pixel,
    kernel_on_hr_grid,
    resample_psf,
)


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
    max_fwhm: float | None = None,
    image_shape: Sequence[int] | None = None,
) -> PSFKernel:
    """Downscaling kernel from a PSF model of the microscope (``psfmodels``).

    The in-focus plane of the PSF is computed on the HR grid (``psfmodels`` averages each HR
    pixel over 3 x 3 sub-samples), over a window of ``max_fwhm + 2`` estimated FWHMs around
    the centre (8 without a cap), then integrated over the camera pixel, cropped to
    ``energy`` and normalised. No FWHM cap by default: the model is noise-free, and the
    rings and tails beyond 3 FWHMs (about 10% of a widefield PSF's energy) belong to the
    forward model the consistency step checks the output against (the sons are made with
    the kernel's core only: :func:`napari_zssr.core.kernels.son_kernel`).

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
    px, sc, hr = hr_pixel(image_pixel_size, scale)
    e, mf = common_options(energy, max_fwhm)
    o = _check_optics(
        na=na,
        wavelength=wavelength,
        ni=ni,
        ns=ns,
        modality=modality,
        pinhole_au=pinhole_au,
        excitation_wavelength=excitation_wavelength,
        depth=depth,
        model=model,
    )
    wvl, ex_wvl, ni_v, ns_v, na_v, depth_v, pin = (
        o["wvl"],
        o["ex_wvl"],
        o["ni"],
        o["ns"],
        o["na"],
        o["depth"],
        o["pin"],
    )

    d = min(hr)
    half, psf = _model_psf(o, modality, model, d, mf)
    if hr[0] == hr[1]:
        resampled = psf
    else:
        resampled = resample_psf(psf, (half, half), (d, d), hr)
    kernel, psf_fwhm = kernel_on_hr_grid(resampled, sc, bool(integrate_pixel), e, mf)
    kernel = check_fits(kernel, image_shape, sc)
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
        "image_pixel_size_um": [json_float(v) for v in px],
        "scale": [json_float(v) for v in sc],
        "hr_pixel_size_um": [json_float(v) for v in hr],
        "integrate_pixel": bool(integrate_pixel),
        "energy": e,
        "max_fwhm": mf,
        "psf_fwhm_um": [json_float(psf_fwhm[0] * hr[0]), json_float(psf_fwhm[1] * hr[1])],
    }
    what = f"{modality} {model} PSF, NA {na_v:g}, {wvl * 1000:.0f} nm"
    if modality == "confocal":
        what += f" (excitation {ex_wvl * 1000:.0f} nm, pinhole {pin:g} AU)"
    return PSFKernel(kernel, describe_kernel(kernel, what, hr), source)


def _check_optics(
    *,
    na: Any,
    wavelength: Any,
    ni: Any,
    ns: Any,
    modality: str,
    pinhole_au: Any,
    excitation_wavelength: Any,
    depth: Any,
    model: str,
) -> dict[str, float]:
    """Checked optical parameters (lengths in um) of :func:`kernel_from_optics`."""
    wvl = check_wavelength("wavelength", wavelength)
    ex_wvl = (
        wvl
        if excitation_wavelength is None
        else check_wavelength("excitation_wavelength", excitation_wavelength)
    )
    ni_v = check_number("ni", ni)
    ns_v = check_number("ns", ns)
    for name, v in (("ni", ni_v), ("ns", ns_v)):
        if not 1.0 <= v <= 2.0:
            raise ValueError(f"{name} is a refractive index in [1, 2], got {v:g}")
    na_v = check_number("na", na)
    if not 0 < na_v < ni_v:
        raise ValueError(
            f"na must be in (0, ni) = (0, {ni_v:g}) (the NA cannot exceed the immersion "
            f"medium's refractive index), got {na_v:g}"
        )
    depth_v = check_number("depth", depth)
    if not 0 <= depth_v <= 1000:
        raise ValueError(f"depth must be in [0, 1000] um above the coverslip, got {depth_v:g}")
    if modality not in ("widefield", "confocal"):
        raise ValueError(f"modality must be 'widefield' or 'confocal', got {modality!r}")
    if model not in ("vectorial", "scalar", "gaussian"):
        raise ValueError(f"model must be 'vectorial', 'scalar' or 'gaussian', got {model!r}")
    pin = check_number("pinhole_au", pinhole_au)
    if modality == "confocal" and not 0 < pin <= 100:
        raise ValueError(f"pinhole_au must be in (0, 100] Airy units, got {pin:g}")

    return {
        "wvl": wvl,
        "ex_wvl": ex_wvl,
        "ni": ni_v,
        "ns": ns_v,
        "na": na_v,
        "depth": depth_v,
        "pin": pin,
    }


def _model_psf(
    o: dict[str, float], modality: str, model: str, d: float, max_fwhm: float | None
) -> tuple[int, np.ndarray]:
    """In-focus plane of the model PSF on a square grid of pixel ``d`` um, and its half-size."""
    import psfmodels

    wvl, na_v = o["wvl"], o["na"]
    fwhm_est = 0.51 * wvl / na_v
    reach = ((max_fwhm if max_fwhm is not None else 6.0) + 2.0) * fwhm_est
    half = min(math.ceil(reach / d), 400)
    nx = 2 * half + 1
    common = {
        "dxy": d,
        "NA": na_v,
        "ns": o["ns"],
        "ni": o["ni"],
        "ni0": o["ni"],
        "pz": o["depth"],
        "model": model,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if modality == "widefield":
            psf = psfmodels.make_psf([o["depth"]], nx, wvl=wvl, **common)[0]
        else:
            psf = psfmodels.confocal_psf(
                [o["depth"]], nx, ex_wvl=o["ex_wvl"], em_wvl=wvl, pinhole_au=o["pin"], **common
            )[0]
    psf = np.asarray(psf, dtype=np.float64)
    if not np.all(np.isfinite(psf)) or not psf.sum() > 0:
        raise ValueError("psfmodels returned an invalid PSF for these parameters")
    return half, np.clip(psf, 0.0, None)
