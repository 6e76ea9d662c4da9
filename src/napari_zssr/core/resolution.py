"""Image resolution without ground truth: decorrelation analysis (NumPy only).

Decorrelation analysis (Descloux, Grussmayer and Radenovic, "Parameter-free image resolution
estimation based on decorrelation analysis", Nature Methods 16, 918-924, 2019) correlates the
image's spectrum with its own phase-only spectrum restricted to a disc of growing radius.
While the disc holds signal the correlation rises; once it adds only noise it falls, so the
radius of the peak is where the signal ends. Gaussian high-pass filtered copies of the
spectrum reveal peaks that the strong low frequencies mask; the highest peak radius ``kc``
(in units of the Nyquist frequency) gives the resolution ``2 / kc`` pixels.

Everything here is NumPy (no torch), so :func:`estimate_resolution` is cheap to import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ResolutionEstimate",
    "StackResolution",
    "estimate_resolution",
    "resolution_gain",
]

#: Smallest plane side (pixels) with enough frequency rings for a meaningful curve.
MIN_SIDE = 32
#: Radii of the coarse curve (fraction of the Nyquist frequency), as in the paper.
N_RADII = 50
#: Cut-off radii of the Gaussian high-pass filters, spaced geometrically (fraction of Nyquist).
HIGH_PASS_RADII = tuple(np.geomspace(0.02, 0.8, 12))
#: A peak must reach this correlation to count (weaker peaks are noise fluctuations).
MIN_PEAK_AMPLITUDE = 0.05
#: How far ``d(r)`` must fall after a local maximum for it to count as a peak.
MIN_DROP = 1e-3
#: A peak this close to the Nyquist frequency means the signal reaches the sampling limit.
NYQUIST_RADIUS = 0.98
#: Fraction of each border tapered by the cosine (Tukey) window against edge artefacts.
APODISATION = 0.06


@dataclass(frozen=True)
class ResolutionEstimate:
    """Decorrelation estimate of one plane.

    Attributes
    ----------
    resolution_px : float
        Resolution in pixels (of the coarser axis for anisotropic pixels): ``2 / cutoff``.
        2.0 when the signal reaches the Nyquist frequency (see ``at_nyquist``).
    resolution_um : float or None
        The same in the unit of ``pixel_size`` (micrometres by convention); None without it.
    cutoff : float
        Highest frequency carrying signal, as a fraction of the Nyquist frequency (0, 1].
    at_nyquist : bool
        The signal (or noise) reaches the sampling limit: the true resolution is 2 pixels or
        finer and cannot be measured from this image.
    radii : ndarray
        Radii of ``curve`` (fraction of the Nyquist frequency).
    curve : ndarray
        Decorrelation function ``d(r)`` of the unfiltered image.
    peaks : list of (float, float)
        ``(radius, amplitude)`` of every valid peak (unfiltered and high-pass filtered).
    """

    resolution_px: float
    resolution_um: float | None
    cutoff: float
    at_nyquist: bool
    radii: np.ndarray = field(repr=False)
    curve: np.ndarray = field(repr=False)
    peaks: list[tuple[float, float]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the curve included)."""
        return {
            "resolution_px": self.resolution_px,
            "resolution_um": self.resolution_um,
            "cutoff": self.cutoff,
            "at_nyquist": self.at_nyquist,
            "radii": [float(v) for v in self.radii],
            "curve": [float(v) for v in self.curve],
            "peaks": [[float(r), float(a)] for r, a in self.peaks],
        }


@dataclass(frozen=True)
class StackResolution:
    """Decorrelation estimates of every plane of a ``(..., Y, X)`` stack.

    Attributes
    ----------
    planes : list of ResolutionEstimate
        One per plane, in C order of the stack axes.
    stack_shape : tuple of int
        Shape of the axes before Y, X.
    """

    planes: list[ResolutionEstimate]
    stack_shape: tuple[int, ...]

    @property
    def resolution_px(self) -> np.ndarray:
        """Resolution of each plane in pixels, shaped like the stack axes."""
        return np.array([p.resolution_px for p in self.planes]).reshape(self.stack_shape)

    @property
    def resolution_um(self) -> np.ndarray | None:
        """Resolution of each plane in the pixel size's unit, or None without a pixel size."""
        if self.planes[0].resolution_um is None:
            return None
        return np.array([p.resolution_um for p in self.planes]).reshape(self.stack_shape)

    def to_dict(self) -> dict[str, Any]:
        return {"stack_shape": list(self.stack_shape), "planes": [p.to_dict() for p in self.planes]}


def _check_pixel_size(pixel_size: Any) -> tuple[float, float] | None:
    if pixel_size is None:
        return None
    if isinstance(pixel_size, (bool, str, bytes)):
        raise TypeError(f"pixel_size must be a positive number or (y, x) pair, got {pixel_size!r}")
    vals = [pixel_size] if np.ndim(pixel_size) == 0 else list(np.ravel(pixel_size))
    try:
        pair = [float(v) for v in vals]
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"pixel_size must be a positive number or (y, x) pair, got {pixel_size!r}"
        ) from exc
    if len(pair) == 1:
        pair *= 2
    if len(pair) != 2 or not all(math.isfinite(v) and v > 0 for v in pair):
        raise ValueError(f"pixel_size must be one or two positive numbers, got {pixel_size!r}")
    return pair[0], pair[1]


def _check_image(image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype.kind not in "uif":
        raise TypeError(f"image must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise ValueError(f"image must have at least 2 dimensions (Y, X), got shape {arr.shape}")
    h, w = arr.shape[-2:]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(
            f"image planes must be at least {MIN_SIDE} x {MIN_SIDE} pixels for a resolution "
            f"estimate, got {h} x {w}"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("image contains NaN or Inf values; replace them first")
    return arr


def _tukey(n: int) -> np.ndarray:
    """Cosine-tapered window: flat in the middle, ``APODISATION * n`` pixels of taper."""
    win = np.ones(n)
    m = max(1, round(APODISATION * n))
    ramp = 0.5 * (1.0 - np.cos(np.pi * (np.arange(m) + 0.5) / m))
    win[:m] = ramp
    win[n - m :] = ramp[::-1]
    return win


@dataclass(frozen=True)
class _Grid:
    """Ring index and multiplicity of each sample of a half (rfft2) spectrum."""

    radius: np.ndarray  # fraction of the coarser axis's Nyquist frequency
    ring: np.ndarray  # int ring index, n_rings for samples beyond Nyquist
    weight: np.ndarray  # 2 for columns standing for their conjugate twin, else 1
    n_rings: int


def _grid(shape: tuple[int, int], spacing: tuple[float, float]) -> _Grid:
    h, w = shape
    fy = np.fft.fftfreq(h, d=spacing[0])[:, None]
    fx = np.fft.rfftfreq(w, d=spacing[1])[None, :]
    nyquist = 0.5 / max(spacing)
    radius = np.sqrt(fy**2 + fx**2) / nyquist
    n_rings = max(N_RADII, max(h, w) // 2)
    ring = np.minimum(np.floor(radius * n_rings).astype(np.int64), n_rings)
    weight = np.full(fx.shape, 2.0)
    weight[0, 0] = 1.0
    if w % 2 == 0:
        weight[0, -1] = 1.0
    return _Grid(radius, ring, np.broadcast_to(weight, radius.shape), n_rings)


def _peak(
    num: np.ndarray, energy: float, count: np.ndarray, coarse: np.ndarray
) -> tuple[float, float, np.ndarray] | None:
    """Peak ``(radius, amplitude)`` of ``d(r)`` from cumulative ring sums, and the coarse curve.

    ``num[j]`` and ``count[j]`` are cumulative over rings ``0..j``; ``coarse`` indexes the
    rings that end at the coarse radii. The peak is the highest local maximum of the coarse
    curve that the curve falls below afterwards by ``MIN_DROP`` (noise can make ``d`` rise
    again towards the Nyquist frequency, so the end point and the global maximum are not the
    answer); it is then refined at ring resolution.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(count > 0, num / np.sqrt(energy * count), 0.0)
    curve = d[coarse]
    after_min = np.minimum.accumulate(curve[::-1])[::-1]  # lowest value from i onwards
    best = None
    for i in range(1, len(curve) - 1):
        local = curve[i] >= curve[i - 1] and curve[i] > curve[i + 1]
        if local and curve[i] - after_min[i + 1] >= MIN_DROP:
            if best is None or curve[i] > curve[best]:
                best = i
    if best is None:
        return None
    lo, hi = coarse[best - 1] + 1, coarse[best + 1]
    j = lo + int(np.argmax(d[lo : hi + 1]))
    return (j + 1) / len(d), float(d[j]), curve


def _decorrelation(plane: np.ndarray, spacing: tuple[float, float]) -> tuple[float, bool, Any]:
    """Cut-off (fraction of Nyquist), at-Nyquist flag, radii, curve and peaks of one plane."""
    img = plane.astype(np.float64)
    img -= img.mean()
    img *= _tukey(img.shape[0])[:, None] * _tukey(img.shape[1])[None, :]
    mag = np.abs(np.fft.rfft2(img))
    top = float(mag.max())
    if not top > 0:
        raise ValueError("image plane is constant: no structure to estimate a resolution from")
    g = _grid(img.shape, spacing)
    inside = g.ring < g.n_rings
    ring, mult, radius = g.ring[inside], g.weight[inside], g.radius[inside]
    mag = mag[inside]
    # the phase-only spectrum is 1 wherever the spectrum is not (numerically) zero
    valid = mult * (mag > 1e-12 * top)
    count = np.cumsum(np.bincount(ring, weights=valid, minlength=g.n_rings))
    coarse = np.round(np.linspace(1, N_RADII, N_RADII) / N_RADII * g.n_rings).astype(int) - 1
    radii = (coarse + 1) / g.n_rings
    peaks: list[tuple[float, float]] = []
    curve0: np.ndarray | None = None
    for rc in (None, *HIGH_PASS_RADII):
        filt = mag if rc is None else mag * (1.0 - np.exp(-((radius / rc) ** 2)))
        num = np.cumsum(np.bincount(ring, weights=mult * filt, minlength=g.n_rings))
        energy = float(np.sum(mult * filt**2))
        found = _peak(num, energy, count, coarse) if energy > 0 else None
        if rc is None:
            with np.errstate(invalid="ignore", divide="ignore"):
                curve0 = np.where(count > 0, num / np.sqrt(energy * count), 0.0)[coarse]
        if found is not None and found[1] >= MIN_PEAK_AMPLITUDE:
            peaks.append((found[0], found[1]))
    kc = max((r for r, _ in peaks), default=1.0)
    at_nyquist = not peaks or kc >= NYQUIST_RADIUS
    return (1.0 if at_nyquist else kc), at_nyquist, (radii, curve0, peaks)


def _estimate_plane(plane: np.ndarray, pixel: tuple[float, float] | None) -> ResolutionEstimate:
    spacing = pixel if pixel is not None else (1.0, 1.0)
    kc, at_nyq, (radii, curve, peaks) = _decorrelation(plane, spacing)
    res_px = 2.0 / kc
    res_um = res_px * max(pixel) if pixel is not None else None
    return ResolutionEstimate(
        resolution_px=float(res_px),
        resolution_um=None if res_um is None else float(res_um),
        cutoff=float(kc),
        at_nyquist=bool(at_nyq),
        radii=radii,
        curve=np.asarray(curve),
        peaks=peaks,
    )


def estimate_resolution(
    image: np.ndarray, pixel_size: float | Sequence[float] | None = None
) -> ResolutionEstimate | StackResolution:
    """Estimate an image's resolution by decorrelation analysis, without ground truth.

    Method: Descloux, Grussmayer and Radenovic, "Parameter-free image resolution estimation
    based on decorrelation analysis", Nature Methods 16, 918-924 (2019). The mean is removed,
    the borders are apodised, and the correlation ``d(r)`` between the spectrum and its
    phase-only version inside a disc of radius ``r`` is computed for the image and for 12
    Gaussian high-pass filtered copies; the highest peak radius ``kc`` (fraction of the
    Nyquist frequency) gives the resolution ``2 / kc`` pixels, the period of the highest
    frequency that carries signal. Noise that looks like signal (correlated noise, or a
    sharpened output) makes the estimate finer than the truth. The image should span many
    periods of its resolution: on 128-pixel images, periods above about a tenth of the
    shorter side can come out up to twice too fine.

    Parameters
    ----------
    image : ndarray
        ``(Y, X)``, or ``(..., Y, X)`` for a stack estimated plane by plane (channels count
        as planes). Each plane at least 32 x 32 pixels, any real dtype. Not modified.
    pixel_size : float or (float, float), optional
        Pixel size (y, x), in micrometres by convention; gives ``resolution_um``. With
        unequal sizes the disc is isotropic in physical frequency and ends at the coarser
        axis's Nyquist frequency; ``resolution_px`` is then in pixels of the coarser axis.

    Returns
    -------
    ResolutionEstimate or StackResolution
        For a 2-D image one estimate (``resolution_px``, ``resolution_um``, ``cutoff``,
        ``at_nyquist``, the ``curve`` over ``radii``); for a stack the per-plane estimates,
        with ``resolution_px`` shaped like the stack axes.

    Raises
    ------
    TypeError
        If ``image`` is not a real numeric array or ``pixel_size`` is not a number or pair.
    ValueError
        If the image has fewer than 2 dimensions, a plane is smaller than 32 x 32 pixels,
        holds NaN or Inf, or is constant; or if ``pixel_size`` is not positive.
    """
    arr = _check_image(image)
    pixel = _check_pixel_size(pixel_size)
    if arr.ndim == 2:
        return _estimate_plane(arr, pixel)
    stack_shape = arr.shape[:-2]
    planes = []
    for idx in np.ndindex(*stack_shape):
        try:
            planes.append(_estimate_plane(arr[idx], pixel))
        except ValueError as exc:
            raise ValueError(f"plane {idx}: {exc}") from None
    return StackResolution(planes=planes, stack_shape=tuple(stack_shape))


#: A resolution reading changes by more than this fraction before it counts as a change: the
#: bicubic upscale cannot add resolution, so what it shows within this is the measure's own
#: spread; beyond it, the measure is reading noise or interpolation residues as detail.
GAIN_TOLERANCE = 0.1
#: Output readings up to this multiple of the output's sampling limit count as at the limit.
NYQUIST_MARGIN = 1.25


def resolution_gain(
    input_px: float, bicubic_px: float, output_px: float, scale: float = 2.0
) -> dict[str, Any]:
    """What a run's resolution readings allow to be said, honestly.

    Interpolation cannot add resolution. When the bicubic upscale of the input nonetheless
    reads finer than the input (by more than ``GAIN_TOLERANCE``), decorrelation is reading
    interpolated noise as signal (the bundled noisy sample: 3.28 px -> 1.34 px for bicubic),
    and an input -> output gain would credit the run with what bicubic "gains" too. Then only
    the comparison with the bicubic upscale is reported, and only when the output reads
    finer than it by more than the tolerance; otherwise the gain is not measurable. When
    bicubic reads as the input does, the input -> output gain is reported if the output
    reads finer than the input by more than the tolerance. An output reading within
    ``NYQUIST_MARGIN`` of the output grid's sampling limit (2 output pixels) is noise or
    sharpening at that limit, not a resolution: not measurable either.

    Parameters
    ----------
    input_px, bicubic_px, output_px : float
        Decorrelation resolutions of the input, of its bicubic upscale and of the output, all
        in input pixels.
    scale : float
        The run's scale factor (the output's sampling limit is ``2 / scale`` input pixels).

    Returns
    -------
    dict
        ``measurable`` (bool); ``basis`` (``"input"``, ``"bicubic"`` or None); ``gain``
        (the reference's resolution over the output's, > 1 is finer; None when not
        measurable); ``text``, a one-line summary in input pixels.
    """
    values = (float(input_px), float(bicubic_px), float(output_px))
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"resolutions must be positive and finite, got {values}")
    inp, bic, out = values
    if not scale >= 1.0:
        raise ValueError(f"scale must be at least 1, got {scale!r}")
    limit = NYQUIST_MARGIN * 2.0 / float(scale)
    fooled = bic < (1.0 - GAIN_TOLERANCE) * inp
    ref, basis = (bic, "bicubic") if fooled else (inp, "input")
    if out < (1.0 - GAIN_TOLERANCE) * ref and out > limit:
        gain = ref / out
        if fooled:
            text = (
                f"{out:.2f} px, finer than the bicubic upscale ({bic:.2f} px) by x{gain:.2f}; "
                f"the input ({inp:.2f} px) is not comparable: bicubic reads finer than it, "
                "so the measure reads noise as detail"
            )
        else:
            text = f"{inp:.2f} px -> {out:.2f} px (x{gain:.2f}; bicubic upscale {bic:.2f} px)"
        return {"measurable": True, "basis": basis, "gain": gain, "text": text, "limit": limit}
    why = (
        f"the bicubic upscale reads {bic:.2f} px against the input's {inp:.2f} px, so the "
        "measure reads noise as detail, and the output"
        if fooled
        else "the output"
    )
    if out <= limit:
        where = f"is at the output grid's sampling limit ({2.0 / float(scale):.2f} px)"
    else:
        where = f"is within {GAIN_TOLERANCE:.0%} of {'bicubic' if fooled else 'the input'}"
    text = f"gain not measurable: {why} ({out:.2f} px) {where}"
    return {
        "measurable": False,
        "basis": None,
        "gain": None,
        "text": text,
        "limit": limit,
        "fooled": fooled,
        "at_limit": out <= limit,
    }
