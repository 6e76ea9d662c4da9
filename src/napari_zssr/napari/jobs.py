"""From the widget's form and the viewer to :class:`~napari_zssr.napari.worker.Job` s.

Each selected layer becomes one :class:`~napari_zssr.pipeline.RunRequest` (its data, lazily:
read in the worker) plus what the widget needs to place and name the result. The request's
checks run here, in the main thread, so that a bad setting is refused before any work starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image

from ..arrays.placement import axis_factors
from ..pipeline import PSFFileSpec, RunRequest, default_axes, read_source
from .choices import STACK_MODES, JobKind, Planes
from .layers import level_placement, plane_index, visible_box
from .panels.input import level_data
from .worker import Job

if TYPE_CHECKING:
    from .widget import ZSSRWidget

__all__ = ["build_jobs", "request_for", "result_name"]


def _fmt(value: float) -> str:
    return f"{value:g}"


def result_name(layer: Image, iso: bool, scale: tuple[float, float], z: float) -> str:
    """``cells ZSSR x2``, ``cells ZSSR x2×2.5`` or ``cells ZSSR isotropic z x3``."""
    if iso:
        return f"{layer.name} ZSSR isotropic z x{_fmt(z)}"
    if scale[0] == scale[1]:
        return f"{layer.name} ZSSR x{_fmt(scale[0])}"
    return f"{layer.name} ZSSR x{_fmt(scale[0])}×{_fmt(scale[1])}"


def request_for(
    w: ZSSRWidget, layer: Image, preview: bool = False, iso: bool = False
) -> RunRequest:
    """The request for ``layer`` from the form (its whole data at the chosen level)."""
    spec = None if iso else w.psf_panel.spec()
    py, px = w.psf_panel.image_pixel_size(layer)
    pz = abs(float(layer.scale[-3])) if layer.ndim >= 3 and iso else None
    return RunRequest(
        source=level_data(layer, w.inputs.chosen_level(layer)),
        # an axis labelled "t" or "time" (by the layer, or the "Stack axis" box) is time:
        # its frames also read the noise
        axes=default_axes(
            int(layer.ndim) + (1 if layer.rgb else 0),
            bool(layer.rgb),
            None if iso else w.inputs.axis_labels(layer),
        ),
        pixel_size=(pz, py, px),
        scale=None if iso else w.inputs.scale_pair(),
        z_isotropic=iso,
        z_ratio=float(w.inputs.z_ratio.value) if iso else None,
        axial_fwhm_px=w.inputs.axial_fwhm_px() if iso else None,
        psf=spec,
        preset=w.training.preset_name(preview),
        overrides=w.training.overrides(preview, spec),
        noise_std=w.training.noise_std(iso),
        noise_model=w.training.noise_model_name(iso),
        device=str(w.training.device.value),
        seed=int(w.training.seed.value),
        stack_mode=STACK_MODES[str(w.inputs.stack_mode.value)],  # type: ignore[arg-type]
        maps=bool(w.quality_maps.value) and not preview and not iso,
        labels=w.labels,
        # a saved network to apply, or keep this run's (one plane)
        **w.model_panel.request_fields(int(layer.ndim) == 2 and not preview, iso),
    )


def _region(
    w: ZSSRWidget, layer: Image, shape: tuple[int, ...], n_lead: int, current: bool, preview: bool
) -> tuple[tuple | None, list[float], tuple[int, int, int, int] | None]:
    """Index into the data, the offset of its first element, and the preview's Y/X box."""
    index: list[slice] | None = None
    offset = [0.0] * int(layer.ndim)
    box = None
    if n_lead > 0 and current:
        lead = plane_index(w.viewer, layer, n_lead, shape)
        index = [slice(k, k + 1) for k in lead]
        offset[:n_lead] = [float(k) for k in lead]
    if preview:
        y0, y1, x0, x1 = visible_box(w.viewer, layer, shape)
        index = [*(index or [slice(None)] * (int(layer.ndim) - 2)), slice(y0, y1), slice(x0, x1)]
        offset[-2:] = [float(y0), float(x0)]
        box = (y0, y1, x0, x1)
    return (tuple(index) if index is not None else None), offset, box


def _job(w: ZSSRWidget, layer: Image, preview: bool, iso: bool) -> Job:
    request = request_for(w, layer, preview, iso)
    shape = tuple(np.shape(request.source))
    nd = int(layer.ndim)
    n_lead = nd - 3 if iso else nd - 2
    current = preview or w.inputs.planes.value == Planes.CURRENT
    region, offset, box = _region(w, layer, shape, n_lead, current, preview)
    request = request.replace(region=region)
    plan = request.validate()
    snapshot = isinstance(request.source, np.ndarray)
    if snapshot:  # a private copy, so that edits during the run cannot leak into the result
        request = request.replace(source=np.array(read_source(request), copy=True), region=None)
    z_ratio = float(w.inputs.z_ratio.value)
    if not (preview or iso):  # a large result goes to an OME-Zarr store (created here)
        request = request.replace(out=_result_store(w, layer, request, plan))
    factors = axis_factors(nd, 1.0, z_factor=z_ratio) if iso else axis_factors(nd, plan.scale)
    level = w.inputs.chosen_level(layer)
    down = np.asarray(level_data(layer, 0).shape[:nd], float) / np.asarray(shape[:nd], float)
    lead_index = [int(v) for v in offset[:n_lead]]
    factors, offset = level_placement(factors, offset, down)
    planes = (Planes.CURRENT if (current and n_lead > 0) else Planes.ALL).value
    record = {
        "source_layer": layer.name,
        "mode": (JobKind.ISOTROPIC_Z if iso else JobKind.UPSCALE).value,
        "preview": preview,
        "preset": request.preset,
        "scale": [float(v) for v in (plan.scale or (1.0, 1.0))],
        "noise_std_estimated": request.noise_std == "auto",
        "noise_std": request.noise_std if request.noise_std != "auto" else None,
        "seed": int(request.seed),
        "device_requested": request.device,
        "planes": planes if nd > 2 else "single plane",
        "stack_mode": request.stack_mode,
        "plane_index": lead_index if region is not None else None,
        "region": list(box) if box is not None else None,
        "pyramid_level": level if layer.multiscale else None,
        "pyramid_level_shape": list(shape) if layer.multiscale else None,
        "input_snapshot": snapshot,
    }
    if iso:
        record.update(
            z_ratio=z_ratio,
            axial_fwhm=request.axial_fwhm_px,
            psf={"source": "axial model", "axial_fwhm": request.axial_fwhm_px},
        )
    name = (
        f"{layer.name} ZSSR preview"
        if preview
        else result_name(layer, iso, plan.scale or (1.0, 1.0), z_ratio)
    )
    psf_array = w.psf_panel.cached_file() if isinstance(request.psf, PSFFileSpec) else None
    return Job(
        request,
        layer,
        layer.name,
        name,
        record["mode"],
        tuple(offset),
        tuple(factors),
        preview,
        bool(w.inputs.replace.value),
        record,
        psf_array,
    )


def _result_store(w: ZSSRWidget, layer: Image, request: RunRequest, plan: Any) -> Any:
    """The output panel's OME-Zarr store for this result, or None (kept in memory; also with
    quality maps, which are computed in memory)."""
    from ..core.resize import output_shape

    if request.maps:
        return None

    region = request.region if request.region is not None else ()
    shape = np.shape(request.source)
    out = list(np.broadcast_to(np.zeros((), np.uint8), shape)[region].shape)  # no data read
    out[-2:] = output_shape(out[-2:], plan.scale)
    _, py, px = request.pixel_size
    name = result_name(layer, False, plan.scale, 1.0)
    axes = request.axes or ""
    return w.output_panel.store_for(
        name, tuple(out), request.source.dtype, axes, (None, py, px), plan.scale
    )


def build_jobs(w: ZSSRWidget, preview: bool) -> list[Job]:
    """One job per layer to process (one for a preview); raises ValueError on a bad setting."""
    layers = w.layers_to_process()
    if preview:
        layers = layers[:1]
    iso = not preview and w.iso_mode()
    w.output_panel.note = ""
    return [_job(w, layer, preview, iso) for layer in layers]
