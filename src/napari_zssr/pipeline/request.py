"""What a run is asked to do: :class:`RunRequest`, its PSF specifications and their checks.

A request is plain data, built by a front end (the command line from its arguments, the napari
widget from its form, a script by hand). :meth:`RunRequest.validate` holds every limit and every
error message of a run; the messages name each parameter the way the front end that built the
request names it (``labels``: ``--psf-pixel-size`` on the command line, the field's label in the
widget), so the user reads the name of the control to change.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..core.config import (
    MAX_NOISE_STD,
    MAX_SCALE,
    NOISE_MODELS,
    PRESETS,
    ZSSRConfig,
    resolve_config,
)
from .layout import check_axes, default_axes

__all__ = [
    "MODALITIES",
    "STACK_MODES",
    "EstimateSpec",
    "KernelSpec",
    "OpticsSpec",
    "PSFArraySpec",
    "PSFFileSpec",
    "PSFSpec",
    "RequestError",
    "RunPlan",
    "RunRequest",
]

STACK_MODES = ("shared", "per_plane")
"""Ways to train on a stack: one shared network (fine-tuned per plane), or one per plane."""
MODALITIES = ("widefield", "confocal")
"""Microscope types of a model PSF."""
PLAUSIBLE_UM = (1e-3, 1e3)
"""Pixel sizes, in micrometres, beyond which a value is probably in the wrong unit (a warning)."""
PixelSize = tuple[float | None, float | None, float | None]


class RequestError(ValueError):
    """A request that cannot run; ``param`` is the field at fault (a key of ``labels``)."""

    def __init__(self, message: str, param: str = "") -> None:
        super().__init__(message)
        self.param = param


# --------------------------------------------------------------------------------- PSF specs


@dataclass(frozen=True)
class KernelSpec:
    """A downscaling kernel already on the output (HR) grid, used as given (normalised).

    Attributes
    ----------
    kernel : numpy.ndarray
        2-D, non-negative, positive sum.
    origin : str
        Where it came from, for the run record (``"kernel"`` by default).
    """

    kernel: Any
    origin: str = "kernel"


@dataclass(frozen=True)
class PSFArraySpec:
    """A measured or computed PSF: a 2-D PSF or a 3-D ``(Z, Y, X)`` bead stack.

    Attributes
    ----------
    array : array-like
        The PSF or bead stack (not modified).
    pixel_size : (z, y, x)
        Its voxel size in micrometres; the lateral part is required, z is optional (only the
        lateral in-focus plane makes the kernel).
    origin : str
        Where it came from, for the run record (e.g. ``"layer 'beads'"``).
    """

    array: Any
    pixel_size: PixelSize = (None, None, None)
    origin: str = "array"


@dataclass(frozen=True)
class PSFFileSpec:
    """A PSF file (``.tif``, ``.npy``, ``.mat``), read by :mod:`napari_zssr.io` when the run starts.

    Attributes
    ----------
    path : str or path-like
        The file.
    pixel_size : (z, y, x), optional
        Voxel size in micrometres; None: the one the file records.
    is_kernel : bool
        The file already holds the 2-D kernel on the output (HR) grid.
    """

    path: str | os.PathLike[str]
    pixel_size: PixelSize | None = None
    is_kernel: bool = False


@dataclass(frozen=True)
class OpticsSpec:
    """A model PSF computed from the optics (``psfmodels``).

    Attributes
    ----------
    na : float
        Numerical aperture of the objective.
    wavelength : float
        Emission wavelength in micrometres.
    immersion_index : float
        Refractive index of the immersion medium (oil 1.515, water 1.33, air 1.0).
    modality : {"widefield", "confocal"}
        Microscope type.
    """

    na: float
    wavelength: float
    immersion_index: float = 1.515
    modality: str = "widefield"


@dataclass(frozen=True)
class EstimateSpec:
    """The kernel estimated from the image itself when the run starts (``kernel="estimate"``
    of :func:`napari_zssr.super_resolve`): no PSF and no pixel size needed.

    Attributes
    ----------
    origin : str
        For the run record.
    """

    origin: str = "estimated from the image"


PSFSpec = KernelSpec | PSFArraySpec | PSFFileSpec | OpticsSpec | EstimateSpec


# --------------------------------------------------------------------------------- request


@dataclass(frozen=True)
class RunRequest:
    """Everything one run needs, as plain data.

    Attributes
    ----------
    source : array-like or None
        The image: NumPy, dask or zarr (read by :func:`~napari_zssr.pipeline.run`, only the
        ``region`` of it). None while a front end checks its options before reading a file.
    axes : str, optional
        One letter per axis of ``source`` (``T``, ``Z``, ``C``, ``Y``, ``X``, ``S`` for RGB
        samples...). None: stack axes, then ``YX`` (and ``S`` when ``rgb``).
    rgb : bool
        Used when ``axes`` is None: the last axis holds RGB(A) samples.
    region : tuple, optional
        Index into ``source`` of the part to process (a plane, a crop); None for all of it.
    pixel_size : (z, y, x)
        Pixel size of the source in micrometres (each may be None when unknown).
    scale : float or (float, float), optional
        Lateral (Y, X) upscaling factor in [1, 16]; None for a Z-only run.
    z_isotropic : bool
        Also upsample Z (after the lateral upscaling) to the lateral pixel size.
    z_ratio : float, optional
        Z factor; None: the Z pixel size over the (upscaled) X pixel size.
    axial_fwhm_um, axial_fwhm_px : float, optional
        Axial blur beyond the lateral one (FWHM, in micrometres or in output lateral pixels);
        neither: only the integration over one Z step.
    psf : PSFSpec, optional
        The lateral degradation model; None: MATLAB's bicubic.
    preset : str
        Configuration preset.
    overrides : mapping
        :class:`~napari_zssr.ZSSRConfig` fields that replace the preset's.
    noise_std : float, "auto" or None
        Noise on the LR sons (normalised units), ``"auto"`` to estimate it; None: the preset's.
    device, seed, stack_mode
        As in :func:`napari_zssr.super_resolve`.
    maps : bool
        Also compute the quality maps of the upscaling (``RunResult.extra["maps"]``).
    model : path or ZSSRModel, optional
        A saved network applied instead of training one (``.zssr`` file, or in memory);
        it brings its kernel, so ``psf`` must be None. See :mod:`napari_zssr.arrays.networks`.
    finetune : int
        With ``model``: training iterations on each plane from the saved weights (0: none).
    keep_model : bool
        Keep the run's network (``RunResult.extra["model"]``), to save it.
    noise_model : {"gaussian", "poisson-gaussian"}
        Shape of the noise on the LR sons (see :func:`napari_zssr.super_resolve`).
    labels : mapping
        How the front end names each parameter in error messages (default: the field names).
    out : array-like or path, optional
        Where the upscaled planes go (``super_resolve``'s ``out``: a zarr array or an
        OME-Zarr path), written plane by plane and resumable; None: a NumPy array.
    batch_planes : int, optional
        ``super_resolve``'s ``batch_planes`` (per-plane networks trained together).
    """

    source: Any = None
    axes: str | None = None
    rgb: bool = False
    region: tuple | None = None
    pixel_size: PixelSize = (None, None, None)
    scale: float | tuple[float, float] | None = None
    z_isotropic: bool = False
    z_ratio: float | None = None
    axial_fwhm_um: float | None = None
    axial_fwhm_px: float | None = None
    psf: PSFSpec | None = None
    preset: str = "balanced"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    noise_std: float | str | None = None
    device: str = "auto"
    seed: int = 0
    stack_mode: Literal["shared", "per_plane"] = "shared"
    maps: bool = False
    model: Any = None
    finetune: int = 0
    keep_model: bool = False
    noise_model: str = "gaussian"
    labels: Mapping[str, str] = field(default_factory=dict)
    out: Any = None
    batch_planes: int | None = None

    def name(self, param: str) -> str:
        """How the front end calls ``param`` (for messages)."""
        return self.labels.get(param, param)

    def replace(self, **changes: Any) -> RunRequest:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def validate(self) -> RunPlan:
        """Check every parameter (and the source's axes, when there is a source).

        Returns
        -------
        RunPlan
            The checked values the run uses.

        Raises
        ------
        RequestError
            The first problem found, naming the parameter as ``labels`` does.
        """
        scale = _check_scale(self)
        _check_mode(self, scale)
        _check_psf(self, scale)
        config = _check_training(self)
        _check_model(self, scale)
        axes = z_ratio = None
        if self.source is not None:  # the pixel size may come with the source: checked then
            axes = _check_source(self)
            _check_psf_pixel(self)
            z_ratio = _z_ratio(self, scale, axes) if self.z_isotropic else None
        return RunPlan(self, scale, config, axes, z_ratio)

    def warnings(self) -> list[str]:
        """Values that are allowed but probably a unit slip (pixel sizes outside 1 nm-1 mm)."""
        found = []
        sizes = [("pixel_size", self.pixel_size)]
        if isinstance(self.psf, (PSFFileSpec, PSFArraySpec)) and self.psf.pixel_size is not None:
            sizes.append(("psf_pixel_size", tuple(self.psf.pixel_size)))
        for param, values in sizes:
            odd = [
                v for v in values if v is not None and not PLAUSIBLE_UM[0] <= v <= PLAUSIBLE_UM[1]
            ]
            if odd:
                found.append(
                    f"{self.name(param)} {odd[0]:g} um is outside the usual microscopy range "
                    f"({PLAUSIBLE_UM[0]:g} to {PLAUSIBLE_UM[1]:g} um, 1 nm to 1 mm); it is in "
                    "micrometres"
                )
        return found

    def to_record(self) -> dict[str, Any]:
        """The request's parameters, JSON-able, for the run record."""
        psf = self.psf
        overrides = dict(self.overrides)
        gradual = overrides.get("gradual_scales")
        record: dict[str, Any] = {
            "scale": list(_pair(self.scale)) if self.scale is not None else None,
            "axes": self.axes,
            "pixel_size_um": list(self.pixel_size),
            "psf": _psf_record(psf),
            "na": psf.na if isinstance(psf, OpticsSpec) else None,
            "emission_um": psf.wavelength if isinstance(psf, OpticsSpec) else None,
            "immersion_index": psf.immersion_index if isinstance(psf, OpticsSpec) else None,
            "modality": psf.modality if isinstance(psf, OpticsSpec) else None,
            "noise_std": self.noise_std if self.noise_std is not None else "default",
            "noise_model": self.noise_model,
            "preset": self.preset,
            "overrides": _jsonable(overrides),
            "max_iters": overrides.get("max_iters"),
            "one_jump": gradual is not None and len(tuple(gradual)) == 0,
            "stack_mode": self.stack_mode,
            "device": self.device,
            "seed": int(self.seed),
            "z_isotropic": bool(self.z_isotropic),
            "z_ratio": self.z_ratio,
            "axial_fwhm_um": self.axial_fwhm_um,
            "axial_fwhm_px": self.axial_fwhm_px,
        }
        if self.model is not None:  # a saved network: where it came from
            where = self.model if isinstance(self.model, (str, os.PathLike)) else "in memory"
            record.update(model=str(where), finetune=int(self.finetune))
        return record


@dataclass(frozen=True)
class RunPlan:
    """A checked request: the values a run uses.

    Attributes
    ----------
    request : RunRequest
        The request as given.
    scale : (float, float) or None
        Lateral factors.
    config : ZSSRConfig
        The configuration (preset, overrides and a numeric ``noise_std`` applied).
    axes : str or None
        The source's axes (None without a source).
    z_ratio : float or None
        The Z factor of a Z-isotropic run (None when it needs pixel sizes not yet known).
    """

    request: RunRequest
    scale: tuple[float, float] | None
    config: ZSSRConfig
    axes: str | None
    z_ratio: float | None


# --------------------------------------------------------------------------------- checks


def _pair(scale: Any) -> tuple[float, float]:
    if np.isscalar(scale):
        return float(scale), float(scale)
    sy, sx = scale
    return float(sy), float(sx)


def _number(req: RunRequest, param: str, value: Any, lo: float, hi: float, unit: str = "") -> float:
    """A finite number in ``(lo, hi]``, or a :class:`RequestError` that names ``param``."""
    bad = isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number))
    if bad or not math.isfinite(float(value)) or not lo < float(value) <= hi:
        raise RequestError(
            f"{req.name(param)} must be a number in ({lo:g}, {hi:g}]{unit}, got {value!r}", param
        )
    return float(value)


def _check_scale(req: RunRequest) -> tuple[float, float] | None:
    if req.scale is None:
        if not req.z_isotropic:
            raise RequestError(
                f"give {req.name('scale')} (e.g. 2) and/or {req.name('z_isotropic')}", "scale"
            )
        return None
    try:
        sy, sx = _pair(req.scale)
    except (TypeError, ValueError):
        raise RequestError(
            f"{req.name('scale')} must be one factor or a (Y, X) pair, got {req.scale!r}", "scale"
        ) from None
    for axis, s in (("Y", sy), ("X", sx)):
        if not (math.isfinite(s) and 1.0 <= s <= MAX_SCALE):
            raise RequestError(
                f"{axis} scale must be between 1 and {MAX_SCALE:g}, got {s:g}", "scale"
            )
    if sy == 1.0 and sx == 1.0:
        raise RequestError("scale must be greater than 1 on at least one axis", "scale")
    return sy, sx


def _check_mode(req: RunRequest, scale: tuple[float, float] | None) -> None:
    if not req.z_isotropic:
        for param in ("axial_fwhm_um", "axial_fwhm_px", "z_ratio"):
            if getattr(req, param) is not None:
                raise RequestError(
                    f"{req.name(param)} applies to {req.name('z_isotropic')} only", param
                )
        return
    if req.maps:  # the maps are on the lateral grid, which Z to isotropic then resamples
        raise RequestError(
            f"{req.name('maps')} applies to the lateral upscaling only, not with "
            f"{req.name('z_isotropic')}",
            "maps",
        )
    if req.axial_fwhm_um is not None and req.axial_fwhm_px is not None:
        raise RequestError("give the axial FWHM in micrometres or in pixels, not both", "axial")
    if req.axial_fwhm_um is not None:
        _number(req, "axial_fwhm_um", req.axial_fwhm_um, 0.0, 50.0, " um")
    if req.axial_fwhm_px is not None:
        _number(req, "axial_fwhm_px", req.axial_fwhm_px, 0.0, 64.0, " lateral pixels")
    if req.z_ratio is not None:
        _number(req, "z_ratio", req.z_ratio, 1.0, MAX_SCALE)
    if req.noise_std == "auto":
        raise RequestError(
            f"{req.name('noise_std')} auto is not available with {req.name('z_isotropic')}; "
            "give a number",
            "noise_std",
        )


def _check_psf(req: RunRequest, scale: tuple[float, float] | None) -> None:
    psf = req.psf
    if psf is None:
        return
    if scale is None:
        raise RequestError(
            f"a PSF applies to the lateral scale: give {req.name('scale')} too", "psf"
        )
    if isinstance(psf, OpticsSpec):
        ni = _number(req, "immersion_index", psf.immersion_index, 0.999, 2.0)
        _number(req, "na", psf.na, 0.0, ni)
        _number(req, "wavelength", psf.wavelength, 0.0, 2.0, " um")
        if psf.modality not in MODALITIES:
            raise RequestError(
                f"{req.name('modality')} must be one of {', '.join(MODALITIES)}, got "
                f"{psf.modality!r}",
                "modality",
            )
    elif isinstance(psf, PSFFileSpec):
        if psf.is_kernel and psf.pixel_size is not None:
            raise RequestError(
                f"{req.name('psf_is_kernel')} and {req.name('psf_pixel_size')} contradict each "
                "other",
                "psf_pixel_size",
            )
        if not Path(psf.path).is_file():
            raise RequestError(f"PSF file not found: {psf.path}", "psf_file")
    elif isinstance(psf, PSFArraySpec):
        ndim = np.ndim(psf.array)
        if ndim not in (2, 3):
            raise RequestError(
                f"the PSF ({psf.origin}) must be a 2D PSF or a 3D bead stack (Z, Y, X), got "
                f"{ndim} dimensions",
                "psf",
            )
    elif not isinstance(psf, (KernelSpec, EstimateSpec)):
        raise RequestError(f"unknown PSF specification {type(psf).__name__}", "psf")


def _check_psf_pixel(req: RunRequest) -> None:
    """A PSF meets the image on its pixel size: known, never guessed."""
    psf = req.psf
    if psf is None or isinstance(psf, (KernelSpec, EstimateSpec)):
        return
    if isinstance(psf, PSFFileSpec) and (psf.is_kernel or psf.pixel_size is None):
        return  # the file may hold its pixel size: checked once it is read
    if req.pixel_size[1] is None or req.pixel_size[2] is None:
        raise RequestError(
            f"a PSF needs the image pixel size: give {req.name('pixel_size')} (micrometres); "
            "it is never guessed",
            "pixel_size",
        )


def _check_training(req: RunRequest) -> ZSSRConfig:
    if req.preset not in PRESETS:
        raise RequestError(
            f"{req.name('preset')} must be one of {', '.join(PRESETS)}, got {req.preset!r}",
            "preset",
        )
    noise = req.noise_std
    if isinstance(noise, str):
        if noise.strip().lower() != "auto":
            raise RequestError(
                f"{req.name('noise_std')} must be in [0, {MAX_NOISE_STD}] or 'auto', got {noise!r}",
                "noise_std",
            )
    elif noise is not None:
        bad = isinstance(noise, bool) or not isinstance(noise, (int, float, np.number))
        if bad or not 0.0 <= float(noise) <= MAX_NOISE_STD:
            raise RequestError(
                f"{req.name('noise_std')} must be in [0, {MAX_NOISE_STD}] (fraction of the "
                f"intensity range) or 'auto', got {noise!r}",
                "noise_std",
            )
    if req.noise_model not in NOISE_MODELS:
        raise RequestError(
            f"{req.name('noise_model')} must be one of {', '.join(NOISE_MODELS)}, got "
            f"{req.noise_model!r}",
            "noise_model",
        )
    if req.stack_mode not in STACK_MODES:
        raise RequestError(
            f"{req.name('stack_mode')} must be one of {', '.join(STACK_MODES)}, got "
            f"{req.stack_mode!r}",
            "stack_mode",
        )
    seed = req.seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise RequestError(f"{req.name('seed')} must be an integer in [0, 2**32 - 1]", "seed")
    overrides = dict(req.overrides)
    if isinstance(noise, (int, float)):
        overrides["noise_std"] = float(noise)
    try:
        return resolve_config(req.preset, **overrides)
    except (TypeError, ValueError) as exc:
        key = next((k for k in overrides if k in str(exc)), "preset")
        raise RequestError(f"{req.name(key)}: {exc}", key) from None


def _check_model(req: RunRequest, scale: tuple[float, float] | None) -> None:
    """A saved network: a readable ``.zssr`` file for this factor, without a PSF (read
    before any training: its header only)."""
    if isinstance(req.finetune, bool) or not isinstance(req.finetune, (int, np.integer)):
        raise RequestError(f"{req.name('finetune')} must be a whole number", "finetune")
    if req.finetune < 0 or (req.finetune and req.model is None):
        raise RequestError(
            f"{req.name('finetune')} must be >= 0 and needs {req.name('model')}", "finetune"
        )
    if req.model is None:
        return
    if scale is None:
        raise RequestError(
            f"{req.name('model')} applies to the lateral scale: give {req.name('scale')} too",
            "model",
        )
    if req.psf is not None:
        raise RequestError(
            f"{req.name('model')}: a saved network brings the kernel it was trained for; "
            f"leave {req.name('psf')} unset",
            "model",
        )
    from ..core.model import ZSSRModel, check_model_scale
    from ..io.model_file import read_model_header

    where = "a network in memory"
    if isinstance(req.model, ZSSRModel):
        net_scale = req.model.scale
    else:
        where = str(req.model)
        try:
            net_scale = tuple(read_model_header(req.model)["scale"])
        except (OSError, ValueError) as exc:
            raise RequestError(f"{req.name('model')}: {exc}", "model") from None
    try:
        check_model_scale(net_scale, scale, where)
    except ValueError as exc:
        raise RequestError(str(exc), "scale") from None


def _check_source(req: RunRequest) -> str:
    shape = region_shape(tuple(np.shape(req.source)), req.region)
    try:
        axes = req.axes.upper() if req.axes else default_axes(len(shape), req.rgb)
        axes = check_axes(axes, shape)
    except ValueError as exc:
        raise RequestError(str(exc), "axes") from None
    if req.z_isotropic and ("Z" not in axes or shape[axes.index("Z")] < 2):
        raise RequestError(
            f"{req.name('z_isotropic')} needs a Z axis of 2 or more planes (axes {axes!r})", "axes"
        )
    return axes


def region_shape(shape: tuple[int, ...], region: tuple | None) -> tuple[int, ...]:
    """Shape of ``array[region]`` without reading it (a zarr array reads when indexed)."""
    if region is None:
        return shape
    out = []
    for k, n in enumerate(shape):
        index = region[k] if k < len(region) else slice(None)
        if isinstance(index, slice):
            out.append(len(range(*index.indices(n))))
        elif not isinstance(index, (int, np.integer)):
            raise RequestError(f"region must hold slices and integers, got {index!r}", "region")
    return tuple(out)


def _z_ratio(req: RunRequest, scale: Any, axes: str | None) -> float | None:
    """The Z factor: given, or the Z pixel size over the output X pixel size."""
    if req.z_ratio is not None:
        return float(req.z_ratio)
    pz, _, px = req.pixel_size
    if pz is None or px is None:
        raise RequestError(
            f"{req.name('z_isotropic')} needs the Z and X pixel sizes: give "
            f"{req.name('pixel_size')} (micrometres) or use a file that records them",
            "pixel_size",
        )
    sx = scale[1] if scale is not None else 1.0
    ratio = float(pz) / (float(px) / sx)
    if not 1.0 < ratio <= MAX_SCALE:
        raise RequestError(
            f"the Z step is {ratio:.3g} times the lateral pixel size; Z to isotropic needs a "
            f"ratio in (1, {MAX_SCALE:g}]: check {req.name('pixel_size')}",
            "pixel_size",
        )
    return ratio


def _psf_record(psf: PSFSpec | None) -> dict[str, Any] | None:
    if psf is None:
        return None
    if isinstance(psf, PSFFileSpec):
        pixel = list(psf.pixel_size) if psf.pixel_size is not None else None
        return {
            "kind": "file",
            "path": str(psf.path),
            "pixel_size": pixel,
            "is_kernel": psf.is_kernel,
        }
    if isinstance(psf, PSFArraySpec):
        return {"kind": "array", "origin": psf.origin, "pixel_size": list(psf.pixel_size)}
    if isinstance(psf, OpticsSpec):
        return {"kind": "optics", **dataclasses.asdict(psf)}
    if isinstance(psf, EstimateSpec):
        return {"kind": "estimate", "origin": psf.origin}
    return {"kind": "kernel", "origin": psf.origin}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
