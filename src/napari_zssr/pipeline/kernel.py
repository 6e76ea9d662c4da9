"""A request's PSF specification turned into the 2-D downscaling kernel on the output grid.

The one place where a PSF (file, array, bead stack, optics) meets the image's pixel size and the
scale; the command line and the widget both come through here (the widget for its kernel
preview too, in a worker thread: reading a file and computing a model PSF take time).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .request import (
    EstimateSpec,
    KernelSpec,
    OpticsSpec,
    PSFArraySpec,
    PSFFileSpec,
    PSFSpec,
    RequestError,
    RunRequest,
)

__all__ = ["BICUBIC", "ESTIMATE_PENDING", "estimated_kernel", "kernel_for", "psf_voxel", "read_psf"]

BICUBIC = "MATLAB bicubic (antialiased)"
"""Description of the default degradation model."""
ESTIMATE_PENDING = "estimated from the image when the run starts"
"""Description of an estimated kernel before the run."""


def psf_voxel(given: Any) -> tuple[float | None, float, float] | None:
    """(z, y, x) in um from one lateral size, a (y, x) pair or a (z, y, x) triple; None stays."""
    if given is None:
        return None
    values = [given] if np.isscalar(given) else list(given)
    values = [None if v is None else float(v) for v in values]
    if len(values) == 1:
        return None, values[0], values[0]
    if len(values) == 2:
        return None, values[0], values[1]
    if len(values) == 3 and values[1] is not None and values[2] is not None:
        return values[0], values[1], values[2]
    raise ValueError(f"a PSF pixel size has 1, 2 or 3 values (z, y, x), got {given!r}")


def read_psf(spec: PSFFileSpec) -> tuple[np.ndarray, tuple[float | None, float, float] | None]:
    """The PSF array of a file and its (z, y, x) pixel size (the spec's, else the file's)."""
    from ..io import load_psf_file

    array, from_file = load_psf_file(Path(spec.path))
    voxel = psf_voxel(spec.pixel_size) if spec.pixel_size is not None else psf_voxel(from_file)
    return np.asarray(array), voxel


def _record(origin: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"source": origin, "description": description, **extra}


def kernel_for(
    request: RunRequest,
    scale: tuple[float, float],
    plane_shape: tuple[int, int],
    psf_array: tuple[np.ndarray, Any] | None = None,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The kernel for ``request.psf`` at ``scale``, and its JSON-able record.

    Parameters
    ----------
    request : RunRequest
        Its ``psf``, ``pixel_size`` (Y and X used) and ``labels`` (for messages).
    scale : (float, float)
        Lateral factors.
    plane_shape : (int, int)
        (Y, X) size of the image: a kernel larger than the image on the HR grid is refused.
    psf_array : (array, voxel), optional
        A PSF file's content already read (what :func:`read_psf` returns), to avoid reading
        it again.

    Returns
    -------
    kernel : numpy.ndarray or None
        None for the bicubic model, and for an :class:`EstimateSpec` (the estimate is made
        by the run: :func:`estimated_kernel` reads it from the run's information).
    record : dict
        ``source`` (where the PSF came from), ``description`` and the parameters used.

    Raises
    ------
    RequestError
        A missing pixel size, a PSF of the wrong shape; messages name the parameter.
    """
    spec: PSFSpec | None = request.psf
    if spec is None:
        return None, _record("none", BICUBIC)
    if isinstance(spec, EstimateSpec):
        return None, _record("estimate", ESTIMATE_PENDING)
    if isinstance(spec, KernelSpec):
        kernel = np.asarray(spec.kernel, dtype=np.float64)
        note = f"kernel from {spec.origin} (used as given, HR grid)"
        return kernel, _record(spec.origin, note, kernel_shape=list(kernel.shape))
    if isinstance(spec, PSFFileSpec):
        if psf_array is None:
            array, voxel = read_psf(spec)
        else:  # read earlier; a pixel size given in the spec still wins over the file's
            array, voxel = psf_array
            if spec.pixel_size is not None:
                voxel = psf_voxel(spec.pixel_size)
        return _from_array(request, spec, array, voxel, scale, plane_shape)
    if isinstance(spec, PSFArraySpec):
        array = np.asarray(spec.array)
        return _from_array(request, spec, array, psf_voxel(spec.pixel_size), scale, plane_shape)
    return _from_optics(request, spec, scale, plane_shape)


def estimated_kernel(info: dict[str, Any]) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The kernel a run estimated from the image and its record (what :func:`kernel_for`
    gives for other PSFs), from the run's ``info["kernel_estimate"]``.

    Returns
    -------
    kernel : numpy.ndarray or None
        The estimated kernel on the output (HR) grid; None when the estimate was not reliable
        and the run fell back to the bicubic model.
    record : dict
        ``source`` ``"estimate"``, ``description``, ``kernel_shape`` and ``details``: the
        fitted parameters (widths in HR pixels, angle in degrees), ``reliable``, ``planes``.
    """
    est = info.get("kernel_estimate")
    if not est:
        return None, _record("estimate", f"no estimate in the run: {BICUBIC}")
    params = {
        "sigma_major_hr_px": round(float(est["sigma_major_hr_px"]), 4),
        "sigma_minor_hr_px": round(float(est["sigma_minor_hr_px"]), 4),
        "angle_deg": round(math.degrees(float(est["angle_rad"])), 2),
        "pixel_box": bool(est["pixel_box"]),
        "planes": int(est["planes"]),
        "reliable": bool(est["reliable"]),
        "seconds": round(float(est["seconds"]), 3),
        "family": est.get("family", "anisotropic"),
    }
    if not est["reliable"]:
        note = f"estimate from the image not usable (no cross-scale recurrence): {BICUBIC}"
        if est.get("fallback"):  # the estimate's own reason, with the kernel it fitted
            note = f"estimate from the image not usable: {est['fallback']}"
        return None, _record("estimate", note, details=params)
    kernel = np.asarray(est["kernel"], dtype=np.float64)
    box = ", LR pixel box" if est["pixel_box"] else ""
    note = (
        f"estimated from the image: {params['family']} Gaussian "
        f"{params['sigma_major_hr_px']:.2f} x "
        f"{params['sigma_minor_hr_px']:.2f} HR px at {params['angle_deg']:.0f} deg{box} "
        f"({params['planes']} plane{'s' if params['planes'] > 1 else ''})"
    )
    return kernel, _record("estimate", note, kernel_shape=list(kernel.shape), details=params)


def _image_pixel(request: RunRequest, what: str) -> tuple[float, float]:
    _, py, px = request.pixel_size
    if py is None or px is None:
        raise RequestError(
            f"{what} needs the image pixel size: give {request.name('pixel_size')} "
            "(micrometres); it is never guessed",
            "pixel_size",
        )
    return float(py), float(px)


def _from_optics(
    request: RunRequest, spec: OpticsSpec, scale: tuple[float, float], plane: tuple[int, int]
) -> tuple[np.ndarray, dict[str, Any]]:
    from ..psf import kernel_from_optics

    image_px = _image_pixel(request, "a model PSF")
    result = kernel_from_optics(
        image_pixel_size=image_px,
        scale=scale,
        na=float(spec.na),
        wavelength=float(spec.wavelength),
        ni=float(spec.immersion_index),
        modality=spec.modality,
        image_shape=plane,
    )
    kernel = np.asarray(result.kernel, dtype=np.float64)
    record = _record(
        "optics",
        result.description,
        image_pixel_size_um=list(image_px),
        na=float(spec.na),
        wavelength_um=float(spec.wavelength),
        immersion_index=float(spec.immersion_index),
        modality=spec.modality,
        details=dict(result.source),
        kernel_shape=list(kernel.shape),
    )
    return kernel, record


def _from_array(
    request: RunRequest,
    spec: PSFFileSpec | PSFArraySpec,
    array: np.ndarray,
    voxel: tuple[float | None, float, float] | None,
    scale: tuple[float, float],
    plane: tuple[int, int],
) -> tuple[np.ndarray, dict[str, Any]]:
    from .. import psf as psf_module

    origin = f"file {Path(spec.path).name}" if isinstance(spec, PSFFileSpec) else spec.origin
    if array.ndim not in (2, 3):
        raise RequestError(
            f"the PSF ({origin}) must be a 2D PSF or a 3D bead stack (Z, Y, X), got shape "
            f"{array.shape}",
            "psf",
        )
    extra: dict[str, Any] = {"psf_shape": list(array.shape)}
    if isinstance(spec, PSFFileSpec):
        extra["path"] = str(spec.path)
        if spec.is_kernel:
            if array.ndim != 2:
                raise RequestError(
                    f"{request.name('psf_is_kernel')} needs a 2D kernel, the file holds a 3D stack",
                    "psf_is_kernel",
                )
            kernel = array.astype(np.float64)
            note = f"kernel from {Path(spec.path).name} (used as given, HR grid)"
            return kernel, _record(origin, note, kernel_shape=list(kernel.shape), **extra)
    _, py, px = request.pixel_size
    if voxel is None or py is None or px is None:
        raise _missing_sizes(request, spec, voxel is None, py is None or px is None)
    image_px = (float(py), float(px))
    common = {"image_pixel_size": image_px, "scale": scale, "image_shape": plane}
    if array.ndim == 2:
        result = psf_module.kernel_from_psf(array, psf_pixel_size=voxel[1:], **common)
    else:  # a bead stack: background, bead detection and in-focus plane are handled there
        size = voxel if voxel[0] is not None else voxel[1:]
        result = psf_module.kernel_from_bead_stack(array, voxel_size=size, **common)
        if voxel[0] is not None:
            extra["psf_z_step_um"] = voxel[0]
    kernel = np.asarray(result.kernel, dtype=np.float64)
    record = _record(
        origin,
        result.description,
        image_pixel_size_um=list(image_px),
        psf_pixel_size_um=voxel[2],
        details=dict(result.source),
        kernel_shape=list(kernel.shape),
        **extra,
    )
    return kernel, record


def _missing_sizes(
    request: RunRequest, spec: PSFSpec, psf_missing: bool, image_missing: bool
) -> RequestError:
    parts = []
    if psf_missing:
        parts.append(f"the PSF pixel size ({request.name('psf_pixel_size')})")
    if image_missing:
        parts.append(f"the image pixel size ({request.name('pixel_size')})")
    message = f"the PSF needs {' and '.join(parts)} to resample it onto the output grid"
    if isinstance(spec, PSFFileSpec):
        message += (
            f", or {request.name('psf_is_kernel')} if the file already is the kernel on the "
            "output (high-resolution) pixel grid"
        )
    return RequestError(message, "psf_pixel_size" if psf_missing else "pixel_size")
