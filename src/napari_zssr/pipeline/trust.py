"""What the front ends say about a run's quality maps and resolution (no torch, no Qt).

The widget and the command line show the same words: the names and meanings of the maps of
``super_resolve(..., maps=True)`` (:mod:`napari_zssr.core.maps`), and the decorrelation
resolution before and after the run (:func:`describe_resolution`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MAP_MEANINGS", "describe_resolution", "format_length"]

MAP_MEANINGS = {
    "spread": "spread of the self-ensemble outputs (median absolute deviation): where the "
    "network is unsure",
    "consistency": "absolute difference between the input and the network's output before "
    "back-projection, degraded back to the input grid: where the answer disagrees with the "
    "measured data",
    "added": "local RMS of the output minus the bicubic upscale of the input: what ZSSR added "
    "beyond interpolation",
}
"""Each quality map (in the order the front ends show them) and what it shows; every map is
in the input's intensity unit, on the output grid."""


def format_length(value: float, unit: str) -> str:
    """``312 nm``, ``0.312 um`` or ``3.12 px``: three significant digits, no exponent."""
    text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}"


def describe_resolution(
    resolution: Mapping[str, Any] | None, pixel_size: float | None = None, unit: str = "um"
) -> str:
    """The decorrelation resolution before and after a run, for a status line or a summary.

    Parameters
    ----------
    resolution : mapping or None
        The run's ``info["resolution"]``: ``input``, ``bicubic`` and ``output`` in input
        pixels (medians over planes; ``planes`` lists them for a stack). None when no plane
        could be measured.
    pixel_size : float, optional
        Lateral pixel size of the input in ``unit``; None: the values stay in pixels.
    unit : str
        Unit of ``pixel_size`` and of the text (``"um"``, ``"nm"``...).

    Returns
    -------
    str
        E.g. ``"312 nm -> 241 nm (bicubic upscale 250 nm; decorrelation)"``. The bicubic value
        is the one to read the output against: interpolation residues count as signal too.
    """
    if not resolution:
        return "not measured (planes smaller than 32 x 32 pixels, or constant)"
    if pixel_size is None or not pixel_size > 0:
        factor, unit = 1.0, "px"
    else:
        factor = float(pixel_size)
    before, bicubic, after = (
        format_length(float(resolution[k]) * factor, unit) for k in ("input", "bicubic", "output")
    )
    n_planes = len(resolution.get("planes") or ())
    how = f"decorrelation, median of {n_planes} planes" if n_planes > 1 else "decorrelation"
    return f"{before} -> {after} (bicubic upscale {bicubic}; {how})"
