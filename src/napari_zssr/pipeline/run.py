"""One run, whatever the front end: :func:`run` turns a request into a :class:`RunResult`.

Steps: check the request, read the part of the source it names, arrange its axes, make the
kernel from the PSF specification, upscale Y/X (:func:`napari_zssr.super_resolve`), then, for a
Z-isotropic run, upsample Z of every volume (:func:`napari_zssr.arrays.isotropic.isotropic_z`), and
write the run record. No Qt, no argparse, no files other than a PSF file the request names.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..core.progress import ProgressCallback, relay
from .kernel import estimated_kernel, kernel_for
from .layout import Arranged, arrange, volumes
from .request import EstimateSpec, RequestError, RunPlan, RunRequest

__all__ = ["RunResult", "run"]


@dataclass
class RunResult:
    """What a run produced.

    Attributes
    ----------
    output : numpy.ndarray
        The result, in the input's dtype, axes as ``axes``.
    axes : str
        Axes of ``output`` (an ``S`` axis of non-RGB samples becomes ``C``).
    pixel_size : (z, y, x)
        Pixel size of ``output`` in micrometres (None where the input's is unknown).
    info : dict
        The engine's account of the run (device, configuration, seconds, loss, iterations).
    record : dict
        JSON-able record of the run for file metadata: parameters, kernel, engine runs.
    kernel : numpy.ndarray or None
        The lateral downscaling kernel used (None: bicubic).
    psf : dict
        Where the kernel came from and its description.
    extra : dict
        Further outputs of the run, keyed by name: ``"maps"`` (the quality maps, in the
        output's layout) when the request asks for them, ``"model"`` (the run's network, a
        :class:`~napari_zssr.ZSSRModel`, or None) with ``keep_model``.
    """

    output: np.ndarray
    axes: str
    pixel_size: tuple[float | None, float | None, float | None]
    info: dict[str, Any]
    record: dict[str, Any]
    kernel: np.ndarray | None = None
    psf: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def read_source(request: RunRequest) -> np.ndarray:
    """The part of the source the request names, as a NumPy array (reads lazy arrays)."""
    if request.source is None:
        raise RequestError("there is no image to process", "source")
    data = request.source[request.region] if request.region is not None else request.source
    from ..arrays.planes import is_lazy

    return data if is_lazy(data) else np.asarray(data)  # dask, zarr: read plane by plane


def run(
    request: RunRequest,
    callback: ProgressCallback | None = None,
    *,
    psf_array: tuple[np.ndarray, Any] | None = None,
) -> RunResult:
    """Run a request: upscaling and/or Z to isotropic, any number of dimensions.

    Parameters
    ----------
    request : RunRequest
        What to do.
    callback : callable, optional
        Receives :class:`~napari_zssr.Progress` reports (``fraction`` over the whole run);
        returning False stops the run with :class:`~napari_zssr.Cancelled`.
    psf_array : (array, voxel), optional
        The PSF file's content when the caller has read it already.

    Returns
    -------
    RunResult

    Raises
    ------
    RequestError
        A request that cannot run (a ``ValueError``).
    napari_zssr.Cancelled
        When the callback stopped the run.
    """
    t0 = time.perf_counter()
    plan = request.validate()
    if request.out is not None and request.z_isotropic:
        raise RequestError(
            "a Z-isotropic run needs the whole volume: it cannot write to out", "out"
        )
    arranged = arrange(read_source(request), plan.axes or "")
    kernel, psf = (None, {"source": "none", "description": "none"})
    if plan.scale is not None:
        kernel, psf = kernel_for(request, plan.scale, arranged.plane_shape, psf_array)
    share = 0.5 if plan.scale is not None and request.z_isotropic else 1.0
    out, info, extra = arranged.image, {}, {}
    if plan.scale is not None:
        out, info = _upscale(plan, arranged, kernel, relay(callback, (0.0, share)))
        if isinstance(request.psf, EstimateSpec):  # known once the run has made it
            kernel, psf = estimated_kernel(info)
        if "maps" in info:  # arrays: an output of their own, not part of the record
            extra["maps"] = info.pop("maps")
        if "model" in info:  # a kept network: an output too
            extra["model"] = info.pop("model")
    iso_info = None
    if request.z_isotropic:
        lateral = dataclasses.replace(arranged, image=out)
        out, iso_info = _isotropic(plan, lateral, relay(callback, (1.0 - share, 1.0)))
        info = info or _summary(iso_info)
    pixel = _output_pixel(plan)
    record = {
        "software": "napari-zssr",
        "version": __version__,
        "parameters": _parameters(plan, arranged, psf),
        "input_shape": list(arranged.image.shape),
        "output_pixel_size_um": list(pixel),
        "run": _in_words(info) if plan.scale is not None else {},
        "isotropic": iso_info,  # isotropic_z's accounts are JSON-able as they are
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return RunResult(out, arranged.axes, pixel, info, record, kernel, psf, extra)


def _upscale(
    plan: RunPlan, arranged: Arranged, kernel: np.ndarray | None, callback: Any
) -> tuple[np.ndarray, dict[str, Any]]:
    from ..arrays import upscale as api  # looked up at call time (tests replace api.super_resolve)

    req = plan.request
    return api.super_resolve(
        arranged.image,
        plan.scale,
        kernel="estimate" if isinstance(req.psf, EstimateSpec) else kernel,
        noise_std=req.noise_std,
        preset=req.preset,
        config=plan.config,
        channel_axis=arranged.channel_axis,
        rgb=arranged.rgb,
        device=req.device,
        seed=int(req.seed),
        callback=callback,
        stack_mode=req.stack_mode,
        return_info=True,
        maps=bool(req.maps),
        **_network_args(req),
        noise_model=req.noise_model,
        out=req.out,
        batch_planes=req.batch_planes,
        # a T axis holds frames of one field: their differences read the noise as well
        time_axis=arranged.axes.index("T") if "T" in arranged.axes else None,
    )


def _network_args(req: RunRequest) -> dict[str, Any]:
    """The saved-network arguments of :func:`~napari_zssr.super_resolve`, when used."""
    args: dict[str, Any] = {}
    if req.model is not None:
        args.update(model=req.model, finetune=int(req.finetune))
    if req.keep_model:
        args["keep_model"] = True
    return args


def _isotropic(
    plan: RunPlan, arranged: Arranged, callback: ProgressCallback | None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Upsample Z of every (Z, Y, X) volume, channels (C or RGB) jointly."""
    from ..arrays import isotropic

    req = plan.request
    ratio = float(plan.z_ratio)  # type: ignore[arg-type]
    fwhm_px = req.axial_fwhm_px
    if req.axial_fwhm_um is not None:
        fwhm_px = req.axial_fwhm_um / _output_pixel(plan)[2]
    channels = "C" in arranged.axes or arranged.rgb
    infos: list[dict[str, Any]] = []

    def one(volume: np.ndarray, k: int, n: int) -> np.ndarray:
        where = f"volume {k + 1}/{n}: " if n > 1 else ""
        report = relay(callback, (k / n, (k + 1) / n), message=lambda p: where + p.message)
        out, info = isotropic.isotropic_z(
            volume,
            ratio,
            axial_fwhm=fwhm_px,
            channel_axis=0 if channels else None,
            preset=req.preset,
            config=plan.config,
            device=req.device,
            seed=int(req.seed),
            callback=report,
            return_info=True,
        )
        infos.append(info)
        return out

    out = volumes(arranged, one)
    return out, {"z_ratio": ratio, "axial_fwhm_px": fwhm_px, "runs": infos}


def _in_words(info: dict[str, Any]) -> dict[str, Any]:
    """An engine account for the JSON record: the kernel as its one-line summary, not its taps."""
    if "kernel_summary" not in info:
        return info
    return {**info, "kernel": info["kernel_summary"]}


def _summary(iso_info: dict[str, Any]) -> dict[str, Any]:
    """One engine account for a Z-isotropic run over one or more volumes."""
    runs = iso_info["runs"]
    losses = [r["final_loss"] for r in runs if r.get("final_loss") is not None]
    summary = dict(runs[0])
    summary.update(
        seconds=float(sum(r["seconds"] for r in runs)),
        iterations=int(sum(r["iterations"] for r in runs)),
        final_loss=float(np.mean(losses)) if losses else None,
        n_volumes=len(runs),
    )
    return summary


def _output_pixel(plan: RunPlan) -> tuple[float | None, float | None, float | None]:
    pz, py, px = plan.request.pixel_size
    sy, sx = plan.scale if plan.scale is not None else (1.0, 1.0)
    out_y = py / sy if py is not None else None
    out_x = px / sx if px is not None else None
    out_z = pz / plan.z_ratio if pz is not None and plan.z_ratio else pz
    return out_z, out_y, out_x


def _parameters(plan: RunPlan, arranged: Arranged, psf: dict[str, Any]) -> dict[str, Any]:
    from .request import PSFFileSpec

    req = plan.request
    spec = req.psf
    params = req.to_record()
    params.update(
        scale=list(plan.scale) if plan.scale is not None else None,
        axes=arranged.axes,
        channel_axis=arranged.channel_axis,
        rgb=arranged.rgb,
        kernel=psf.get("description"),
        kernel_source=({"path": psf["path"]} if "path" in psf else {}) | psf.get("details", {}),
        psf_pixel_size=(
            list(spec.pixel_size)
            if isinstance(spec, PSFFileSpec) and spec.pixel_size is not None
            else None
        ),
        psf_is_kernel=isinstance(spec, PSFFileSpec) and spec.is_kernel,
        z_ratio=plan.z_ratio,
    )
    return params


def describe_noise(info: dict[str, Any]) -> str:
    """The noise a run added to the sons and where it came from, for a status line or summary.

    ``info`` is the engine's run information (``noise_std``, ``noise_std_source``,
    ``noise_estimate``), e.g. ``"0.0183 (estimated from the image)"``.
    """
    text = _describe_level(info)
    if info.get("noise_model") == "poisson-gaussian" and float(info["noise_std"]) > 0:
        a, b = float(info["noise_gain"]), float(info["noise_offset"])
        text += f"; Poisson-Gaussian, variance {a:.3g} x intensity + {b:.3g}"
    return text


def _describe_level(info: dict[str, Any]) -> str:
    used, estimate = float(info["noise_std"]), float(info["noise_estimate"])
    if info.get("noise_std_source") == "auto":
        if used == 0:
            return f"none (the image's estimated noise, {estimate:.4f}, counts as noise-free)"
        if info.get("noise_estimate_from") == "beyond the kernel's cutoff":
            return f"{used:.4f} (estimated from the image, beyond the PSF's cutoff)"
        if info.get("noise_estimate_from") == "flat high frequencies":
            return f"{used:.4f} (estimated from the image's flat high frequencies)"
        if info.get("noise_estimate_from") == "frame differences":
            return f"{used:.4f} (estimated from the differences of consecutive time points)"
        return f"{used:.4f} (estimated from the image)"
    origin = "set" if info.get("noise_std_source") == "set" else "the preset's"
    return f"{used:.4g} ({origin}; the image's estimated noise is {estimate:.4f})"
