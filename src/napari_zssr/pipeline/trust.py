"""What the front ends say about a run's quality maps and resolution (no torch, no Qt).

The widget and the command line show the same words: the names and meanings of the maps of
``super_resolve(..., maps=True)`` (:mod:`napari_zssr.core.maps`), and the decorrelation
resolution before and after the run (:func:`describe_resolution`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MAP_MEANINGS", "describe_resolution", "format_length", "likely_harm"]

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
    resolution: Mapping[str, Any] | None,
    pixel_size: float | None = None,
    unit: str = "um",
    scale: float = 2.0,
) -> str:
    """The decorrelation resolution before and after a run, for a status line or a summary,
    never crediting the run with a gain the bicubic upscale also shows.

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
    scale : float
        The run's lateral factor (the output grid's sampling limit is ``2 / scale`` input
        pixels).

    Returns
    -------
    str
        E.g. ``"312 nm -> 241 nm (bicubic upscale 300 nm; decorrelation)"`` when the output
        reads finer than the input and the bicubic upscale reads as the input does. When
        bicubic reads finer than the input (decorrelation reading interpolated noise as
        signal), the output is compared with bicubic only; when the output is not finer than
        its reference, or sits at the output grid's sampling limit, the gain is "not
        measurable" (:func:`~napari_zssr.core.resolution.resolution_gain`).
    """
    from ..core.resolution import GAIN_TOLERANCE, resolution_gain

    if not resolution:
        return "not measured (planes smaller than 32 x 32 pixels, or constant)"
    if pixel_size is None or not pixel_size > 0:
        factor, unit = 1.0, "px"
    else:
        factor = float(pixel_size)
    values = [float(resolution[k]) for k in ("input", "bicubic", "output")]
    before, bicubic, after = (format_length(v * factor, unit) for v in values)
    n_planes = len(resolution.get("planes") or ())
    how = f"decorrelation, median of {n_planes} planes" if n_planes > 1 else "decorrelation"
    gain = resolution_gain(*values, scale=max(float(scale), 1.0))
    if gain["measurable"] and gain["basis"] == "input":
        return f"{before} -> {after} (bicubic upscale {bicubic}; {how})"
    if gain["measurable"]:
        return (
            f"{after}, finer than the bicubic upscale ({bicubic}) by x{gain['gain']:.2f}; not "
            f"compared with the input's {before}: bicubic reads finer than it, noise read as "
            f"detail ({how})"
        )
    where = (
        f"is at the output grid's sampling limit ({format_length(gain['limit'] * factor, unit)})"
        if gain["at_limit"]
        else f"is within {GAIN_TOLERANCE:.0%} of "
        f"{'the bicubic upscale' if gain['fooled'] else 'the input'}"
    )
    fooled = (
        f"the bicubic upscale reads {bicubic} against the input's {before} (noise read as "
        "detail), and "
        if gain["fooled"]
        else ""
    )
    return f"gain not measurable: {fooled}the output ({after}) {where} ({how})"


def likely_harm(info: Mapping[str, Any]) -> list[str]:
    """Signs in a run's information that its output may be worse than the input, one
    sentence each (empty when there are none), for the widget's and the command line's
    warnings.

    The sign read here is the consistency step's (``info["consistency_step"]``,
    :mod:`napari_zssr.core.consistency`): planes where the step ran (a kernel was given) and
    left the output disagreeing with the input by clearly more than the input's noise
    (``HARM_DISCREPANCY`` times its variance). Either the noise was
    read too low (the step then fits part of it, and the network learned from sons that were
    too clean) or the kernel does not match the data (the network learned the wrong blur).

    A residual far below the noise is not read as a sign: it would say that the output
    carries the input's noise, but bicubic interpolation, which averages the noise down,
    reproduces its input as closely.

    The kernel estimate's own checks and a noise level set by hand warn where they are
    decided (``info["warnings"]``); they are not repeated here.
    """
    notes = []
    rec = info.get("consistency_step") or {}
    short = int(rec.get("planes_not_within_noise") or 0)
    if short:
        worst = rec.get("worst_discrepancy_after")
        planes = f"{short} of {rec.get('planes', short)} planes"
        notes.append(
            f"likely harm on {planes}: the output still disagrees with the input by "
            f"{float(worst):.2g} times the input's noise variance after the consistency "
            "step; the noise may be read too low (set the noise level by "
            "hand, higher) or the PSF may not match the data. Compare the output with the "
            "input before using it."
        )
    return notes
