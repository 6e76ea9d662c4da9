"""Quality maps of a run as napari layers, and the resolution note of the status line.

With the widget's "quality maps" option on, a run's :class:`~napari_zssr.pipeline.RunResult`
carries the maps of :mod:`napari_zssr.core.maps` in ``extra["maps"]``, in the result's layout.
Each becomes an image layer placed exactly over the result layer (the same placement, computed
by :func:`~napari_zssr.napari.layers.result_placement`), added hidden above it so that the
result stays in view. A result that replaces an earlier one takes its maps' place too.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox
from napari.layers import Image

from ..pipeline import MAP_MEANINGS, RunResult, describe_resolution
from .layers import add_result, find_previous, image_layers, result_placement, unwrap
from .worker import Job

__all__ = [
    "MAP_COLORMAPS",
    "add_result_with_maps",
    "maps_checkbox",
    "maps_of",
    "resolution_note",
]

MAP_COLORMAPS = {"spread": "magma", "consistency": "bop orange", "added": "bop blue"}
"""Sequential colormaps of distinct hues, black at zero: every map is a non-negative magnitude,
and with additive blending a map shown over the result leaves it unchanged where all is well."""
CONTRAST_PERCENTILE = 99.5
"""Upper contrast limit of a map layer: this percentile of the map, so a few hot pixels do not
flatten the rest."""
_KEY = "zssr_map"

_TIP = (
    "Also compute three quality maps from the same run, at little extra cost (no second "
    "training), and add them as hidden layers placed exactly over the result: "
    "spread: where the network is unsure (its rotated and flipped answers disagree); "
    "consistency: where its output, blurred back to the input grid before back-projection, "
    "disagrees with the input; added: what ZSSR added beyond bicubic interpolation. Added "
    "detail where the spread is high is the first place to doubt. The status line then shows "
    "the decorrelation resolution before and after. For the lateral upscaling only (not Z to "
    "isotropic, not previews); for an RGB image each map is the mean over R, G and B."
)


def maps_checkbox() -> CheckBox:
    """The widget's "quality maps" option (off by default)."""
    return CheckBox(text="quality maps", value=False, tooltip=_TIP)


def maps_of(viewer: Any, result: Image | None) -> list[Image]:
    """The map layers that belong to the result layer ``result``."""
    meta = result.metadata.get("zssr") if result is not None else None
    token = meta.get("quality_maps") if isinstance(meta, dict) else None
    if token is None:
        return []
    found = []
    for layer in image_layers(viewer):
        own = layer.metadata.get(_KEY) if isinstance(layer.metadata, dict) else None
        if isinstance(own, dict) and own.get("of_result") == token:
            found.append(layer)
    return found


def _contrast(data: np.ndarray) -> tuple[float, float]:
    """(0, high percentile) of a non-negative map; (0, 1) for an all-zero one."""
    finite = data[np.isfinite(data)]
    high = float(np.percentile(finite, CONTRAST_PERCENTILE)) if finite.size else 0.0
    if not high > 0:
        high = float(finite.max()) if finite.size else 0.0
    return 0.0, high if high > 0 else 1.0


def _map_layer(job: Job, new: Image, name: str, data: np.ndarray, token: str) -> Image:
    rgb = bool(job.source.rgb)
    if rgb:  # a magnitude per colour channel is no colour: show their mean
        data = data.mean(axis=-1, dtype=np.float32)
    kwargs: dict[str, Any] = {
        "name": f"{new.name} {name}",
        "colormap": MAP_COLORMAPS[name],
        "blending": "additive",
        "contrast_limits": _contrast(data),
        "visible": False,
        "metadata": {
            _KEY: {
                "map": name,
                "shows": MAP_MEANINGS[name],
                "unit": "input intensity",
                "channels": "mean over R, G and B" if rgb else "as the result",
                "source_layer": job.source_name,
                "result_layer": new.name,
                "of_result": token,
            }
        },
        **result_placement(job).layer_kwargs(),
    }
    for attr in ("units", "axis_labels"):
        if hasattr(new, attr):
            kwargs[attr] = getattr(new, attr)
    return Image(data, **kwargs)


def add_result_with_maps(
    viewer: Any, job: Job, result: RunResult, preview_layer: Image | None
) -> tuple[Image, list[Image]]:
    """Add the result layer (:func:`~napari_zssr.napari.layers.add_result`) and its maps.

    The maps of a result that the new one replaces go too; the new maps sit just above the
    new result, hidden.

    Returns
    -------
    result_layer : napari.layers.Image
    map_layers : list of napari.layers.Image
        Empty when the run has no maps.
    """
    stale = maps_of(viewer, find_previous(viewer, job, preview_layer))
    new = add_result(viewer, job, result, preview_layer)
    layers = viewer.layers
    for layer in stale:
        layers.remove(layer)
    maps = result.extra.get("maps")
    if not maps:
        return new, []
    token = uuid.uuid4().hex
    new.metadata["zssr"]["quality_maps"] = token
    index = next(k for k, x in enumerate(layers) if unwrap(x) is new)
    added = []
    for k, name in enumerate(MAP_MEANINGS):
        layer = _map_layer(job, new, name, np.asarray(maps[name]), token)
        layers.insert(index + 1 + k, layer)
        added.append(layer)
    return new, added


def _pixel_size(job: Job) -> tuple[float | None, str]:
    """Lateral pixel size of the processed input and its unit, from the source layer.

    A length unit on the layer's X axis wins; otherwise the run's pixel size in micrometres
    (the layer's scale or the value entered), shown in nm below one micrometre.
    """
    src = job.source
    sx = float(job.record.get("scale", [1.0, 1.0])[-1])
    level = sx / float(job.factors[-1])  # > 1 when a pyramid level was processed
    unit = (getattr(src, "units", None) or [None])[-1]
    if unit is not None and str(unit) not in ("pixel", "") and _is_length(unit):
        return abs(float(src.scale[-1])) * level, f"{unit:~}".replace("µ", "u")
    pixel = job.request.pixel_size[2]
    if pixel is None:
        return None, "px"
    return float(pixel) * level, "um"


def _is_length(unit: Any) -> bool:
    try:
        return bool(unit.dimensionality == {"[length]": 1})
    except AttributeError:
        return False


def resolution_note(job: Job, result: RunResult) -> str:
    """``resolution 312 nm -> 241 nm (bicubic upscale 300 nm; decorrelation)`` (or why the
    gain is not measurable), or "" without maps."""
    if "maps" not in result.extra:
        return ""
    resolution = result.info.get("resolution")
    pixel, unit = _pixel_size(job)
    if pixel is None and resolution:
        sx = float(job.record.get("scale", [1.0, 1.0])[-1])
        pixel, unit = sx / float(job.factors[-1]), "px"  # level-0 pixels of a pyramid
    elif unit == "um" and resolution and pixel * float(resolution["input"]) < 1.0:
        pixel, unit = pixel * 1000.0, "nm"
    scale = float(job.record.get("scale", [1.0, 1.0])[-1])
    return f"resolution {describe_resolution(resolution, pixel, unit, scale)}"
