"""Results as napari layers: placed exactly over their source, styled like it, recorded.

Also where the widget reads the viewer: which plane is shown, which region is visible.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.layers import Image

from ..arrays.placement import Placement, upscaled_placement, visible_data_box
from ..pipeline import RunResult
from .choices import JobKind
from .worker import Job

__all__ = [
    "add_result",
    "find_previous",
    "new_layer",
    "plane_index",
    "refill_layer",
    "result_placement",
    "swap_in",
    "unwrap",
    "visible_box",
]

PREVIEW_MAX_SIDE = 256
"""Largest side, in input pixels, of the region a preview processes."""


def unwrap(obj: Any) -> Any:
    """The napari object behind the read-only proxy napari hands to plugin widgets."""
    return getattr(obj, "__wrapped__", obj)


def image_layers(viewer: Any) -> list[Image]:
    """The viewer's image layers (unwrapped)."""
    return [unwrap(x) for x in viewer.layers if isinstance(x, Image)]


def plane_index(viewer: Any, layer: Image, n_lead: int, shape: tuple[int, ...]) -> list[int]:
    """Indices, on the first ``n_lead`` axes of ``shape``, of the plane the viewer shows."""
    point = np.asarray(viewer.dims.point)
    pos = np.asarray(layer.world_to_data(point), dtype=float)
    factors = _downsample(layer, shape)
    return [int(np.clip(round(pos[a] / factors[a]), 0, shape[a] - 1)) for a in range(n_lead)]


def visible_box(viewer: Any, layer: Image, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Y/X box (in the data of ``shape``) of ``layer`` visible in the canvas, preview-sized."""
    if viewer.dims.ndisplay != 2:
        raise ValueError("preview works in the 2D view: switch the viewer to 2D")
    displayed = list(viewer.dims.displayed)
    scene = getattr(viewer, "scene", None)
    camera = getattr(scene, "camera", None) or viewer.camera
    canvas = getattr(viewer, "canvas", None)
    size = canvas.size if hasattr(canvas, "size") else viewer._canvas_size
    h, w = (float(v) for v in size)
    zoom = float(camera.zoom)
    cy, cx = (float(v) for v in camera.center[-2:])
    half = np.array([h, w]) / (2.0 * zoom)
    point = np.asarray(viewer.dims.point, dtype=float)
    factors = _downsample(layer, shape)[-2:]
    corners = []
    for dy in (-1, 1):
        for dx in (-1, 1):
            world = point.copy()
            world[displayed[0]] = cy + dy * half[0]
            world[displayed[1]] = cx + dx * half[1]
            data = np.asarray(layer.world_to_data(world), dtype=float)
            corners.append(data[-2:] / factors)
    ny, nx = shape[layer.ndim - 2], shape[layer.ndim - 1]
    return visible_data_box(np.asarray(corners), (ny, nx), min_size=8, max_size=PREVIEW_MAX_SIDE)


def _downsample(layer: Image, shape: tuple[int, ...]) -> np.ndarray:
    """Per-axis factor from the level of ``shape`` to the layer's level 0 (1 if not multiscale)."""
    base = layer.data[0].shape if layer.multiscale else shape
    return np.asarray(base[: layer.ndim], dtype=float) / np.asarray(shape[: layer.ndim])


def level_placement(factors: Any, offset: Any, downsample: Any) -> tuple[np.ndarray, np.ndarray]:
    """Factors and offset relative to level 0 of a result computed on a pyramid level.

    napari maps pixel ``j`` of a level downsampled by ``d`` to level-0 coordinate ``j * d``;
    a result upscaled ``f`` times from that level is then ``f / d`` times finer than level 0,
    and its grid starts ``(d - 1) / 2`` level-0 pixels earlier than the formula for level 0
    assumes.
    """
    d = np.asarray(downsample, dtype=float)
    f = np.asarray(factors, dtype=float)
    off = np.asarray(offset, dtype=float)
    return f / d, off * d - 0.5 * (d - 1.0)


def find_previous(viewer: Any, job: Job, preview_layer: Image | None) -> Image | None:
    """The layer a job's result replaces: the last preview, or the source's last result."""
    layers = image_layers(viewer)
    if job.preview:
        return preview_layer if any(preview_layer is x for x in layers) else None
    if not job.replace:
        return None
    for layer in reversed(layers):
        meta = layer.metadata.get("zssr") if isinstance(layer.metadata, dict) else None
        if (
            isinstance(meta, dict)
            and not meta.get("preview", False)
            and meta.get("source_layer") == job.source_name
            and meta.get("mode") == job.kind
        ):
            return layer
    return None


def _record(job: Job, result: RunResult) -> dict[str, Any]:
    info = result.info
    record: dict[str, Any] = dict(info)
    record.update(job.record)
    record.update(
        noise_std=float(info.get("noise_std", job.record.get("noise_std") or 0.0)),
        psf=dict(result.psf) if job.kind == JobKind.UPSCALE else dict(job.record.get("psf", {})),
        config=dict(info.get("config", {})),
        world_factors=[float(f) for f in job.factors],
    )
    for key in ("device", "seconds", "final_loss"):
        record.setdefault(key, None)
    return record


def result_placement(job: Job) -> Placement:
    """Where a job's result (and each of its quality maps) lies: exactly over its source."""
    src = job.source
    return upscaled_placement(
        job.factors,
        scale=src.scale,
        translate=src.translate,
        rotate=src.rotate,
        shear=src.shear,
        affine=src.affine.affine_matrix,
        offset=job.offset,
    )


def new_layer(job: Job, data: Any, record: dict[str, Any], name: str | None = None) -> Image:
    """A layer of ``data`` (a job's result, or a preview of it) placed and styled like its source.

    Parameters
    ----------
    job : Job
        The job whose source and factors place the layer.
    data : array
        Shaped like the job's result (an OME-Zarr result is shown lazily).
    record : dict
        The layer's ``zssr`` metadata.
    name : str, optional
        The layer's name (the job's result name by default).
    """
    from .panels.output import lazy_layer_data

    src = job.source
    placement = result_placement(job)
    kwargs: dict[str, Any] = {
        "name": job.result_name if name is None else name,
        "rgb": bool(src.rgb),
        "blending": src.blending,
        "opacity": float(src.opacity),
        "contrast_limits": list(src.contrast_limits),
        "gamma": float(src.gamma),
        "metadata": _metadata(job, record),
        **placement.layer_kwargs(),
    }
    if not src.rgb:
        kwargs["colormap"] = src.colormap
    for attr in ("units", "axis_labels"):
        if hasattr(src, attr):
            kwargs[attr] = getattr(src, attr)
    return Image(lazy_layer_data(data), **kwargs)


def _metadata(job: Job, record: dict[str, Any]) -> dict[str, Any]:
    """A result layer's metadata: its source's, less the source's own run records, and ours."""
    src_meta = dict(job.source.metadata)
    metadata = {k: v for k, v in src_meta.items() if k not in ("zssr", "zssr_map")}
    metadata["zssr"] = record
    return metadata


def refill_layer(layer: Image, job: Job, data: Any, record: dict[str, Any]) -> bool:
    """Put ``data`` (a preview of ``job``) into the preview ``layer`` in place, if it fits.

    Why not a new layer: removing a layer from the viewer makes napari collect garbage in
    the main thread (``gc.collect``), which a preview that follows the settings paid before
    its first image: 0.40 s from the end of the snapshot to its image, against 0.07-0.16 s in
    place (2-core CPU, ``benchmarks/preview_breakdown.py``). The layer takes the data when it
    shows a preview of the same source with the same dtype, dimensionality and RGB-ness; its
    placement, metadata and contrast limits are then set as :func:`new_layer` would set
    them (the user's colormap, opacity and blending stay).

    Returns
    -------
    bool
        False when the layer cannot take the data (nothing was changed).
    """
    src = job.source
    old = layer.data
    meta = layer.metadata.get("zssr") if isinstance(layer.metadata, dict) else None
    if (
        not isinstance(meta, dict)
        or meta.get("source_layer") != job.source_name
        or bool(layer.rgb) != bool(src.rgb)
        or getattr(old, "ndim", None) != np.ndim(data)
        or getattr(old, "dtype", None) != getattr(data, "dtype", None)
    ):
        return False
    for key, value in result_placement(job).layer_kwargs().items():
        setattr(layer, key, value)
    layer.data = data
    layer.metadata = _metadata(job, record)
    layer.contrast_limits = list(src.contrast_limits)
    return True


def swap_in(viewer: Any, new: Image, previous: Image | None) -> None:
    """Put ``new`` where ``previous`` is in the layer list (appended when there is none)."""
    layers = viewer.layers
    if previous is not None and any(unwrap(x) is previous for x in layers):
        index = next(k for k, x in enumerate(layers) if unwrap(x) is previous)
        layers.remove(previous)
        layers.insert(index, new)
    else:
        layers.append(new)


def add_result(viewer: Any, job: Job, result: RunResult, preview_layer: Image | None) -> Image:
    """Add (or swap in) the layer of a job's result, placed over its source.

    Returns
    -------
    napari.layers.Image
        The new layer.
    """
    record = _record(job, result)
    previous = find_previous(viewer, job, preview_layer)
    if job.preview and previous is not None and refill_layer(previous, job, result.output, record):
        return previous
    new = new_layer(job, result.output, record)
    swap_in(viewer, new, previous)
    return new
