"""Kernels from measured bead stacks: background, bead finding, in-focus plane."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .checks import (
    as_array,
    check_length,
    check_number,
    json_float,
    length_pair,
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


def bead_background(stack: np.ndarray, background: Any) -> tuple[float, float]:
    """Background level and noise sigma of a (Z, Y, X) stack."""
    med, sigma = _border_stats(stack)
    if background is None or (isinstance(background, str) and background == "auto"):
        return med, sigma
    if isinstance(background, str):
        raise ValueError(f"background must be None, 'auto' or a number, got {background!r}")
    return check_number("background", background), sigma


@dataclass
class _Bead:
    z: int
    centre: tuple[float, float]  # sub-pixel (y, x) in the in-focus plane
    plane: np.ndarray  # background-subtracted in-focus plane, masked to the bead, >= 0
    mask: np.ndarray  # lateral region that belongs to the bead
    peak: float
    touches_border: bool


def find_beads(
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
        com = centre_of_mass(plane)
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
    max_fwhm: float | None = 6.0,
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
        (before pixel integration); None for no cap. 6 keeps a widefield PSF's rings (the
        consistency step's forward model needs them; the sons are made with the kernel's
        3-FWHM core) while measured noise far out stays out.
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
    a = as_array(stack, "bead stack", (2, 3))
    if a.ndim == 2:
        a = a[None]
    z_um, lateral = _bead_voxel(voxel_size)
    px, sc, hr = hr_pixel(image_pixel_size, scale)
    e, mf = common_options(energy, max_fwhm)
    ns = check_number("noise_sigmas", noise_sigmas)
    if beads not in ("brightest", "average"):
        raise ValueError(f"beads must be 'brightest' or 'average', got {beads!r}")

    bg, sigma = bead_background(a, background)
    work = a - bg
    if not np.any(work > 0):
        raise ValueError(
            "the bead stack is empty after subtracting the background "
            f"({bg:.4g}): all-zero image, or background too high"
        )
    found = find_beads(work, sigma, ns, 0.1)
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
        r = resample_psf(b.plane, b.centre, lateral, hr)
        if acc is None:
            acc = r
        else:  # grids may differ by a pixel: pad both to the larger one, centred
            shape = np.maximum(acc.shape, r.shape)
            acc = _pad_centred(acc, shape) + _pad_centred(r, shape)
    assert acc is not None
    kernel, psf_fwhm = kernel_on_hr_grid(acc, sc, bool(integrate_pixel), e, mf)
    kernel = check_fits(kernel, image_shape, sc)
    first = used[0]
    source = {
        "type": "bead_stack",
        "voxel_size_um": [json_float(v) for v in ([z_um] if z_um else []) + list(lateral)],
        "image_pixel_size_um": [json_float(v) for v in px],
        "scale": [json_float(v) for v in sc],
        "hr_pixel_size_um": [json_float(v) for v in hr],
        "background": json_float(bg),
        "beads": beads,
        "n_beads": len(used),
        "bead_position_px": [first.z, json_float(first.centre[0]), json_float(first.centre[1])],
        "integrate_pixel": bool(integrate_pixel),
        "energy": e,
        "max_fwhm": mf,
        "psf_fwhm_um": [json_float(psf_fwhm[0] * hr[0]), json_float(psf_fwhm[1] * hr[1])],
    }
    what = (
        f"bead PSF ({len(used)} bead{'s' if len(used) > 1 else ''}, plane z={first.z}, "
        f"{lateral[1]:.4g} um pixels)"
    )
    return PSFKernel(kernel, describe_kernel(kernel, what, hr), source)


def _pad_centred(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Zero-pad an odd-sized centred array to a larger odd shape, keeping the centre."""
    pads = [((int(s) - n) // 2, (int(s) - n) - (int(s) - n) // 2) for s, n in zip(shape, a.shape)]
    return np.pad(a, pads)


def in_focus_plane(psf: np.ndarray) -> int:
    """Index of the plane with the highest (lightly smoothed) peak of a (Z, Y, X) PSF."""
    smooth = ndimage.gaussian_filter(psf, sigma=(0.0, 1.0, 1.0))
    return int(np.argmax(smooth.reshape(smooth.shape[0], -1).max(axis=1)))


def _bead_voxel(voxel_size: Any) -> tuple[float | None, tuple[float, float]]:
    """(z step or None, (y, x) pixel) in um from a bead stack's voxel size."""
    if voxel_size is None:
        raise ValueError(
            "voxel_size is required: give the bead stack's (z, y, x) voxel size in micrometres "
            "(um); it is never guessed"
        )
    vs = np.asarray(voxel_size, dtype=object).ravel()
    if vs.size == 3:
        # the z step is not needed for the lateral kernel: a file may not know it
        z_um: float | None = None if vs[0] is None else check_length("voxel_size[0] (z)", vs[0])
        lateral = length_pair("voxel_size (y, x)", list(vs[1:]))
    elif vs.size in (1, 2):
        z_um = None
        lateral = length_pair("voxel_size", list(vs) if vs.size == 2 else vs[0])
    else:
        raise ValueError(f"voxel_size must hold 1, 2 or 3 lengths in um, got {vs.size}")
    return z_um, lateral
