"""Blind estimation of the downscaling kernel from the image's own cross-scale recurrence.

Principle (KernelGAN: Bell-Kligler, Shocher and Irani, "Blind Super-Resolution Kernel
Estimation using an Internal-GAN", NeurIPS 2019): small patches of a natural or microscopy
image recur across its scales, so the kernel that degrades the image by the SR factor is the
one under which the image's downscaled copy ``I * k, subsampled`` has the same patch
distribution as ``I`` itself. KernelGAN fits a free-form kernel (a deep linear generator)
against a patch discriminator. Here the same criterion fits a constrained family instead:

* family: an anisotropic Gaussian (two widths and an angle, in HR pixels) integrated over each
  HR tap and, with ``pixel_box=True``, convolved with the box of one LR pixel (camera pixel
  integration). Three parameters cannot produce the off-centre, ringing or noise-fitted
  kernels a free-form generator can, and every candidate is a valid blur.
* criterion: the second moment of all mean-free 5 x 5 patches (the local autocorrelation up
  to 4 pixels in every direction), divided by its trace, of ``I`` and of its downscaled copy;
  the kernel minimises the squared difference, summed over the planes. A too-narrow kernel
  leaves an aliased copy whose patches decorrelate faster than those of ``I``; a too-wide one
  the opposite; an anisotropic blur shows as an elongated correlation. The distance is
  computed for a coarse grid of widths and angles, then refined by Nelder-Mead: no training,
  nothing drawn at random (the noise field below has a fixed seed), the same result on every
  run.

Whitening (the same statistics of the image's first differences) estimates natural
photographs much better (DIV2KRK: mean |log(estimated / true FWHM)| 0.17 against 0.41,
``benchmarks/kernel_accuracy.py``) and widefield microscopy much worse (correlation with the
true kernel 0.53-0.98 against 0.96-0.996 on the microscopy benchmark's cases,
``--set microscopy``). The difference is noise: the microscopy images' finest scales are mostly
noise (its estimate makes up 0.15-0.97 of their first differences' variance), DIV2KRK's are
not (at most 0.012), and the noise taken out of the statistics is only an estimate. So
:func:`estimate_kernel` whitens when the noise's share is below ``WHITEN_MAX_NOISE_SHARE``
(0.05), and compares the intensities otherwise.

Why this and not a GAN or other distances (measured with the intensities' statistics, before
whitening existed; x2, 8 BSD100 HR crops of 320 px, each degraded by a random anisotropic
Gaussian, widths 0.6-3 HR px; normalised correlation of the estimate with the true kernel,
mean / worst): this criterion 0.944 / 0.84 in about 3 s per
image on one CPU thread; a sliced Wasserstein distance between the patch sets (64 directions,
full distributions as a discriminator would compare them) 0.930 / 0.83 in 6 s, with a bias
towards needle-thin kernels; the untrace-normalised second moment 0.865 / 0.67 (too wide: the
contrast of real images changes across scales); a symmetric nearest-neighbour patch distance
chose kernels about twice too wide on three DIV2KRK images. On a scale-invariant synthetic
scene (dead leaves) isotropic widths of 1, 1.6 and 3 HR px come out within 10%, a 2.5 x 0.8 px
kernel at 60 degrees as 2.03 x 1.02 px at 59 degrees (correlation 0.975 to 0.999).
Images whose fine texture does not recur across scales can make it collapse to the pixel box
alone (DIV2KRK images 2 and 6: correlation 0.71); such fits are marked not ``reliable`` and
``super_resolve`` then falls back to the bicubic kernel with a warning. So are fits wider than
the image's own resolution allows (``MAX_BLUR_TO_RESOLUTION``): on 5 of the 20 DIV2KRK images
the fit came out 1.5 to 3 times too wide and made ZSSR 2 to 11 dB worse than the bicubic
assumption.

Noise: white noise adds to the zero lag of the image's patch statistics (in the downscaled
copy the kernel spreads it to the neighbouring lags), and made noisy images look sharper than
their blur: on the four low-SNR images of the microscopy benchmark it was run on (BPAE actin,
mitochondria, nuclei, membrane t=0) the fit ran to the narrowest kernel. The noise level
estimated from each plane (``core/noise.py``) is therefore taken out of the image's
statistics, and out of the copy's what the kernel leaves of it: the statistics of a fixed
field of white noise downscaled with the same kernel. (A first version took it for white
noise of variance ``var * sum(k**2)``, ignoring the correlation the kernel gives it; the exact
version fits the six low-SNR microscopy images with a texture 2-13% wider, closer to the true
PSF: correlation with it 0.94-0.996 before, 0.96-0.996 now, ``benchmarks/kernel_accuracy.py
--set microscopy``.) A synthetic image with noise 0.06 of its range still gives its kernel at a
correlation of 0.95 or more (``tests/test_kernel_estimate.py``); DIV2KRK's clean images hardly
change (mean |log ratio| 0.413 either way).

The kernel fitted this way is the one ZSSR's sons need by construction: the sons must relate
to the image as the image relates to the unseen HR scene.
Measured: see ``docs/benchmarks.md`` ("Blind kernel estimation").
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .kernels import CUTOFF_POWER, centre_of_mass, downscale, power_transfer, prepare_kernel

__all__ = [
    "FAMILIES",
    "KernelEstimate",
    "NotEstimable",
    "choose_family",
    "estimate_kernel",
    "gaussian_kernel",
    "min_estimate_size",
    "spectral_check",
]


class NotEstimable(ValueError):
    """The image cannot carry a kernel estimate: its planes are too small or too flat."""


PATCH = 5  # patch side, in pixels of the image (and of its downscaled copy)
MIN_COPY = 24  # the downscaled copy needs at least this many pixels per axis
MAX_SIDE = 192  # larger planes: the most textured crop of this size is used
MIN_STD = 1e-3  # normalised units: a plane flatter than this carries no scale information
SIGMAS = tuple(float(v) for v in np.geomspace(0.3, 6.0, 8))  # HR pixels, the coarse grid
ANGLES = tuple(float(v) for v in np.arange(4) * math.pi / 4)
MAX_PLANES = 4
REFINE_ITERS = 40
#: Largest kernel FWHM (major axis, on the image's grid) accepted, as a multiple of the image's
#: own resolution (decorrelation analysis, core/resolution.py): a blur that wide would have
#: removed details the image visibly has. The true kernels of the 20 DIV2KRK images come out at
#: 0.56-1.10 times their image's resolution; the fits that made ZSSR far worse than the bicubic
#: assumption at 1.21-2.49 (images 53, 44, 38, 39: -2.4 to -11.4 dB). 1.2 leaves a fifth for
#: the resolution estimate's own error. Noise makes the measured resolution coarser, so noisy
#: images are checked more leniently, not less.
MAX_BLUR_TO_RESOLUTION = 1.2
#: Automatic whitening (``estimate_kernel(whiten=None)``): the first differences are compared
#: when the planes' noise makes up less than this share of the differences' variance, i.e.
#: when the finest scales carry signal rather than noise. Measured on the crops the estimate
#: uses: 0.000-0.012 on the 20 DIV2KRK images, 0.145-0.974 on the microscopy benchmark's 14
#: widefield cases (0.145-0.678 at high SNR); 0.05 sits between them with a factor of about 3
#: to 4 to either side.
WHITEN_MAX_NOISE_SHARE = 0.05
#: :func:`spectral_check`: the kernel's cutoff is where its power transfer falls below this
#: fraction of its value at zero frequency (:data:`~napari_zssr.core.kernels.CUTOFF_POWER`) ...
KERNEL_CUTOFF_POWER = CUTOFF_POWER
#: ... and the image's signal ends at the highest frequency band whose power exceeds this
#: multiple of the noise's (white noise of the estimated level; at least 0.001 of the range
#: for clean images).
SIGNAL_OVER_NOISE = 4.0
#: Radial frequency bands of the check, up to Nyquist.
SPECTRAL_BANDS = 16
#: Families of :func:`estimate_kernel`.
FAMILIES = ("auto", "isotropic", "anisotropic")
#: ``family="auto"`` on noisy (microscopy-like) images takes the anisotropic fit only where
#: the image clearly supports it (:func:`choose_family`): its criterion at most this fraction
#: of the isotropic fit's, ...
ANISOTROPIC_MAX_SCORE_RATIO = 0.8
#: ... a minor width of at least this many HR pixels (before the box): a fit thinner than
#: that across and wide along is the orientation of the image's structure leaking into the
#: estimate, not optics (held-out widefield images: minor widths of 0.1-0.4 px where the PSF
#: is isotropic with a 4 px FWHM).
ANISOTROPIC_MIN_MINOR = 0.5
#: ... elongated by at least this ratio of widths (a fit of 1.77 x 1.47 HR px came out of
#: sharp spots blurred by an isotropic Gaussian of 2 px), ...
ANISOTROPIC_MIN_ELONGATION = 1.4
#: An anisotropy the image supports shows in every quadrant: the whole image's anisotropic
#: kernel, turned to the quadrant's best angle, scores better there than an isotropic kernel
#: of the same area (at most this fraction of its criterion; a quadrant's criterion is
#: noisier than the whole image's) ...
CROP_MAX_SCORE_RATIO = 0.95
#: ... and that angle is the grid angle nearest the whole image's (within this, radians; the
#: grid's four angles are 45 degrees apart, so randomly oriented structure passes in all four
#: quadrants with a chance of 1 in 256).
CROP_MAX_ANGLE = math.pi / 8 + 1e-6


@dataclass(frozen=True)
class KernelEstimate:
    """The fitted kernel and its parameters.

    Attributes
    ----------
    kernel : np.ndarray
        float64 kernel on the HR (output) grid, sum 1.
    sigma_major, sigma_minor : float
        Gaussian standard deviations along and across ``angle``, in HR pixels (before the
        pixel box).
    angle : float
        Direction of the major axis, radians from the X axis towards Y, in [0, pi).
    pixel_box : bool
        Whether the LR pixel's box is part of the kernel.
    score : float
        The criterion at the optimum (mean squared patch distance, normalised units).
    planes : int
        Number of planes the estimate was made from.
    seconds : float
        Time the estimate took.
    fwhm_lr_px : float
        FWHM of the kernel's major axis (box included) on the image's own (LR) grid, in
        pixels, from its second moments.
    resolution_px : float
        The image's resolution by decorrelation analysis, in its pixels (median over the
        planes used); NaN when it could not be measured.
    whitened : bool
        Whether the first differences' statistics were compared (see :func:`estimate_kernel`).
    noise_share : float
        The estimated noise's share of the variance of the planes' first differences (mean
        over the planes): what the automatic choice of ``whitened`` is made from.
    family : str
        ``"isotropic"`` (one width: an in-focus microscope PSF) or ``"anisotropic"`` (two
        widths and an angle).
    family_check : dict
        How the family was chosen with ``family="auto"``: both fits' criteria and widths and
        the reason (see :func:`choose_family`); empty when the family was given.
    spectral_check : dict
        The check of the kernel against the image's spectrum (:func:`spectral_check`):
        ``signal_cutoff`` and ``kernel_cutoff`` in cycles per image pixel and ``passed``;
        empty when not made.
    """

    kernel: np.ndarray
    sigma_major: float
    sigma_minor: float
    angle: float
    pixel_box: bool
    score: float
    planes: int
    seconds: float = 0.0
    fwhm_lr_px: float = math.nan
    resolution_px: float = math.nan
    whitened: bool = False
    noise_share: float = math.nan
    family: str = "anisotropic"
    family_check: dict[str, Any] = dataclasses.field(default_factory=dict)
    spectral_check: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-able record: the kernel as a list of lists and the fitted parameters."""
        return {
            "kernel": self.kernel.tolist(),
            "sigma_major_hr_px": self.sigma_major,
            "sigma_minor_hr_px": self.sigma_minor,
            "angle_rad": self.angle,
            "pixel_box": self.pixel_box,
            "score": self.score,
            "planes": self.planes,
            "seconds": self.seconds,
            "method": f"{self.family} Gaussian fitted by cross-scale patch recurrence"
            + (" of the first differences" if self.whitened else ""),
            "family": self.family,
            "family_check": dict(self.family_check),
            "whitened": self.whitened,
            "noise_share_of_differences": self.noise_share,
            "fwhm_lr_px": self.fwhm_lr_px,
            "image_resolution_px": self.resolution_px,
            "spectral_check": dict(self.spectral_check),
            "reliable": self.reliable,
            "fallback": None if self.reliable else self.fallback_message(),
        }

    @property
    def reliable(self) -> bool:
        """False when the fit ran to the narrowest kernels of the family.

        The image's patches then decorrelate faster than those of even the sharpest copy:
        its fine texture does not recur across scales (or it is barely blurred), the
        criterion decreases all the way to the pixel box and the fitted width says nothing
        about the blur (measured on DIV2KRK images 2 and 6, whose true kernels are about 1 HR
        px wide: ZSSR with the estimate lost 0.3 dB to the bicubic assumption on image 2).
        """
        return self.sigma_major >= SIGMAS[0] and not self.too_wide and not self.contradicted

    @property
    def contradicted(self) -> bool:
        """True when the image holds signal at frequencies the kernel would have removed
        (:func:`spectral_check`): a blur that wide cannot have made this image."""
        return self.spectral_check.get("passed") is False

    @property
    def too_wide(self) -> bool:
        """True when the kernel is wider than the image's own resolution allows.

        Its FWHM on the image grid exceeds ``MAX_BLUR_TO_RESOLUTION`` times the resolution
        measured on the image: such a blur would have removed details the image has. Fits like
        this made ZSSR 2 to 11 dB worse than the bicubic assumption on DIV2KRK (see
        ``docs/benchmarks.md``, "Blind kernel estimation").
        """
        return self.fwhm_lr_px > MAX_BLUR_TO_RESOLUTION * self.resolution_px  # NaN: False

    def fallback_message(self) -> str:
        """Why an unreliable estimate is not used."""
        if self.contradicted and not self.too_wide:
            c = self.spectral_check
            return (
                f"kernel='estimate': the fitted kernel ({self.family} Gaussian, "
                f"{self.sigma_major:.2f} x {self.sigma_minor:.2f} HR px) would remove every "
                f"frequency above {c['kernel_cutoff']:.3f} cycles/px, but the image holds "
                f"signal above its noise up to {c['signal_cutoff']:.3f}: the fit is not "
                "trusted, and the bicubic kernel (kernel=None) is used instead"
            )
        if self.too_wide:
            return (
                f"kernel='estimate': the fitted kernel (FWHM {self.fwhm_lr_px:.2f} image px) is "
                f"wider than the image's own resolution allows ({self.resolution_px:.2f} px, "
                f"at most {MAX_BLUR_TO_RESOLUTION:g} times that): the fit is not trusted, and "
                "the bicubic kernel (kernel=None) is used instead"
            )
        return (
            f"kernel='estimate': the fit ran to the narrowest kernel of its family (Gaussian "
            f"width {self.sigma_major:.2f} HR px, below {SIGMAS[0]:.2f}): the image's fine "
            "texture does not recur across scales, so its kernel cannot be estimated; the "
            "bicubic kernel (kernel=None) is used instead"
        )


def min_estimate_size(scale: Sequence[float]) -> tuple[int, int]:
    """Smallest plane (Y, X) the estimate accepts: a copy of ``MIN_COPY`` px per axis."""
    return tuple(math.ceil(MIN_COPY * float(s)) for s in scale[:2])  # type: ignore[return-value]


def _support(sigma: float, s: float, pixel_box: bool) -> int:
    """Taps per axis: 3 sigma (box included) each side, parity matching the factor's phase."""
    half = 3.0 * math.sqrt(sigma**2 + (s * s / 12.0 if pixel_box else 0.0)) + 1.0
    n = 2 * math.ceil(half) + 1
    if abs(s - round(s)) < 1e-6 and round(s) % 2 == 0:
        n += 1  # even factors need the centre between two taps
    return n


def gaussian_kernel(
    sigma_major: float,
    sigma_minor: float,
    angle: float,
    scale: Sequence[float],
    *,
    pixel_box: bool = True,
    oversample: int = 3,
) -> np.ndarray:
    """Anisotropic Gaussian on the HR grid, integrated over each tap (and the LR pixel).

    Parameters
    ----------
    sigma_major, sigma_minor : float
        Standard deviations in HR pixels along ``angle`` and across it (> 0).
    angle : float
        Major-axis direction, radians from X towards Y.
    scale : (float, float)
        SR factor (s_y, s_x): sets the box width (``s`` HR pixels) and the tap parity.
    pixel_box : bool
        Convolve with the box of one LR pixel (camera pixel integration).
    oversample : int
        Sub-samples per tap and axis for the integration.

    Returns
    -------
    np.ndarray
        float64, sum 1, centre of mass at the array centre.
    """
    sy, sx = float(scale[0]), float(scale[1])
    big = max(sigma_major, sigma_minor)
    ny, nx = _support(big, sy, pixel_box), _support(big, sx, pixel_box)
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    offs_y, offs_x = sub, sub
    if pixel_box:  # integrate over the LR pixel too: a finer set of offsets spanning s taps
        offs_y = _box_offsets(sy, oversample)
        offs_x = _box_offsets(sx, oversample)
    y = np.arange(ny) - (ny - 1) / 2.0
    x = np.arange(nx) - (nx - 1) / 2.0
    yy = y[:, None, None, None] + offs_y[None, None, :, None]
    xx = x[None, :, None, None] + offs_x[None, None, None, :]
    c, s = math.cos(angle), math.sin(angle)
    u = xx * c + yy * s
    v = -xx * s + yy * c
    g = np.exp(-0.5 * ((u / sigma_major) ** 2 + (v / sigma_minor) ** 2))
    k = g.sum(axis=(2, 3))
    return k / k.sum()


def _box_offsets(s: float, oversample: int) -> np.ndarray:
    """Sample offsets covering a tap (width 1) convolved with a box of width ``s``."""
    tap = (np.arange(oversample) + 0.5) / oversample - 0.5
    n_box = max(1, round(s * oversample))
    box = ((np.arange(n_box) + 0.5) / n_box - 0.5) * s
    return (tap[:, None] + box[None, :]).ravel()


def _difference_noise(axis: int) -> torch.Tensor:
    """Covariance, over the PATCH x PATCH positions of a patch, of the first difference along
    ``axis`` (0: Y, 1: X) of unit white noise, after each patch's mean is taken out."""
    ys, xs = np.divmod(np.arange(PATCH * PATCH), PATCH)
    along, across = (ys, xs) if axis == 0 else (xs, ys)
    same_line = across[:, None] == across[None, :]
    lag = np.abs(along[:, None] - along[None, :])
    # d[i] = n[i+1] - n[i]: variance 2, covariance -1 with its neighbours, 0 further
    cov = np.where(same_line & (lag == 0), 2.0, np.where(same_line & (lag == 1), -1.0, 0.0))
    centre = np.eye(PATCH * PATCH) - 1.0 / (PATCH * PATCH)
    return torch.from_numpy(centre @ cov @ centre).float()


#: The image's own noise is white: the covariance of its patches (the intensities', or with
#: ``whiten`` their differences along Y and X) is known exactly.
_WHITE_NOISE_MOMENTS = {
    False: (torch.eye(PATCH * PATCH) - 1.0 / (PATCH * PATCH),),
    True: (_difference_noise(0), _difference_noise(1)),
}


def _patch_moments(img: torch.Tensor, whiten: bool = False) -> tuple[torch.Tensor, ...]:
    """Second moments of the mean-free PATCH x PATCH patches of a (Y, X) tensor, or with
    ``whiten`` of its first differences along Y and along X (two matrices).

    The intensities' local autocorrelation up to PATCH - 1 pixels in every direction carries the
    blur's width, anisotropy and angle. Whitening (natural images have power spectra close to
    1/f^2, which differences flatten) takes the coarse structure of the crop out of the
    statistics: on the 20 DIV2KRK images (``benchmarks/kernel_accuracy.py``) the mean
    |log(estimated / true FWHM)| falls from 0.41 to 0.17, but on the microscopy benchmark's
    widefield cases the correlation with the true kernel falls from 0.96-0.996 to 0.53-0.98
    (worst at low SNR): band-limited optics leave little but noise in the highest frequencies
    the differences weigh most. Hence the automatic choice of :func:`estimate_kernel`.
    """
    parts = (img,)
    if whiten:
        parts = (img[1:, :-1] - img[:-1, :-1], img[:-1, 1:] - img[:-1, :-1])
    out = []
    for part in parts:
        p = F.unfold(part[None, None].contiguous(), PATCH)[0]  # (PATCH**2, positions)
        p = p - p.mean(dim=0, keepdim=True)
        out.append(p @ p.T / p.shape[1])
    return tuple(out)


def _patch_correlation(
    moments: Sequence[torch.Tensor], noise_var: float, noise: Sequence[torch.Tensor] | None
) -> torch.Tensor:
    """The moment matrices, less ``noise_var`` times the unit noise's (``noise``, one matrix
    each; None or ``noise_var`` 0: nothing taken out), each with trace 1.

    Dividing by the trace removes the contrast, which is not scale-invariant in real images;
    with ``whiten`` each direction by its own (one common trace, which keeps the share of
    energy between the directions, gave 0.19 on DIV2KRK against 0.17: that share depends on the
    scene's orientations as much as on the blur). The noise (white in the image, correlated by the
    kernel in its downscaled copy) is taken out first, so that it does not make the image look
    sharper than its blur.
    """
    if noise is not None and noise_var > 0:
        moments = [c - noise_var * n for c, n in zip(moments, noise)]
    return torch.cat([c / c.trace().clamp_min(1e-20) for c in moments])


def _textured_crop(plane: np.ndarray, side: int) -> np.ndarray:
    """The crop of at most ``side`` px per axis with the highest gradient energy."""
    h, w = plane.shape
    ch, cw = min(h, side), min(w, side)
    if (ch, cw) == (h, w):
        return plane
    gy, gx = np.gradient(plane.astype(np.float64))
    energy = np.pad(np.cumsum(np.cumsum(gy * gy + gx * gx, 0), 1), ((1, 0), (1, 0)))
    best, pos = -1.0, (0, 0)
    for y0 in np.linspace(0, h - ch, 5).astype(int):
        for x0 in np.linspace(0, w - cw, 5).astype(int):
            e = (
                energy[y0 + ch, x0 + cw]
                - energy[y0, x0 + cw]
                - energy[y0 + ch, x0]
                + energy[y0, x0]
            )
            if e > best:
                best, pos = e, (y0, x0)
    return plane[pos[0] : pos[0] + ch, pos[1] : pos[1] + cw]


def _check_planes(planes: Sequence[np.ndarray], scale: tuple[float, float]) -> list[np.ndarray]:
    if len(planes) == 0:
        raise ValueError("estimate_kernel needs at least one plane")
    need = min_estimate_size(scale)
    out = []
    for p in planes:
        a = np.asarray(p, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"estimate_kernel needs 2-D planes, got shape {a.shape}")
        if a.shape[0] < need[0] or a.shape[1] < need[1]:
            raise NotEstimable(
                f"image plane {a.shape} is too small to estimate the kernel from at scale "
                f"{scale}: at least {need[0]} x {need[1]} pixels are needed (pass a kernel, "
                "or kernel=None for the bicubic assumption)"
            )
        out.append(_textured_crop(a, MAX_SIDE))
    if max(float(np.std(a)) for a in out) < MIN_STD:
        raise NotEstimable(
            f"image is too flat to estimate the kernel from (standard deviation below "
            f"{MIN_STD} of its range): pass a kernel, or kernel=None for the bicubic assumption"
        )
    return out


class _Criterion:
    """Patch-recurrence distance of a kernel: how far the downscaled copies' patch
    correlations are from the planes' own (squared Frobenius norm, summed over planes)."""

    #: Side of the unit white noise field whose downscaled copy gives the copies' noise
    #: statistics (fixed: the criterion stays a deterministic, smooth function of the kernel).
    NOISE_FIELD = 256

    def __init__(
        self,
        planes: list[np.ndarray],
        scale: tuple[float, float],
        noise_var: list[float],
        whiten: bool,
    ) -> None:
        self.scale = scale
        self.whiten = whiten
        self.planes = [torch.from_numpy(np.ascontiguousarray(p, dtype=np.float32)) for p in planes]
        # the planes' noise (variance per plane), left out of their patch statistics and of
        # their copies' (where the kernel has averaged it down and correlated it from pixel to
        # pixel: measured on a fixed field of white noise downscaled the same way)
        self.noise_var = noise_var
        gen = torch.Generator().manual_seed(0)
        side = self.NOISE_FIELD
        noisy = any(v > 0 for v in noise_var)
        self.white = torch.randn((side, side), generator=gen) if noisy else None
        self.reference = [
            _patch_correlation(_patch_moments(p, whiten), v, _WHITE_NOISE_MOMENTS[whiten])
            for p, v in zip(self.planes, noise_var)
        ]

    def __call__(self, kernel: np.ndarray) -> float:
        dk = prepare_kernel(kernel, self.scale)
        noise = None
        if self.white is not None:
            noise = _patch_moments(downscale(self.white, dk), self.whiten)
        total = 0.0
        for plane, ref, var in zip(self.planes, self.reference, self.noise_var):
            copy = _patch_correlation(_patch_moments(downscale(plane, dk), self.whiten), var, noise)
            total += float((copy - ref).square().sum())
        return total / len(self.planes)


def _noise_share(plane: np.ndarray, noise_var: float) -> float:
    """Share of white noise of variance ``noise_var`` in the variance of ``plane``'s first
    differences (a difference of white noise has twice its variance)."""
    a = np.asarray(plane, dtype=np.float64)
    var = 0.5 * (float(np.diff(a, axis=0).var()) + float(np.diff(a, axis=1).var()))
    return min(1.0, 2.0 * noise_var / var) if var > 0 else 1.0


def _params_kernel(params: np.ndarray, scale: tuple[float, float], pixel_box: bool) -> np.ndarray:
    """Kernel of ``(log sigma_a, log sigma_b, angle)``; the widths are clipped to the grid."""
    lo, hi = math.log(SIGMAS[0]) - 1.0, math.log(SIGMAS[-1]) + 0.5
    sa, sb = (math.exp(min(max(float(v), lo), hi)) for v in params[:2])
    return gaussian_kernel(sa, sb, float(params[2]), scale, pixel_box=pixel_box)


def _grid_search(crit: _Criterion, scale: tuple[float, float], pixel_box: bool) -> np.ndarray:
    """Best ``(log sigma_a, log sigma_b, angle)`` of the coarse grid."""
    best, best_p = math.inf, np.zeros(3)
    for i, sa in enumerate(SIGMAS):
        for sb in SIGMAS[: i + 1]:
            for angle in ANGLES if sb < sa else ANGLES[:1]:
                p = np.array([math.log(sa), math.log(sb), angle])
                v = crit(_params_kernel(p, scale, pixel_box))
                if v < best:
                    best, best_p = v, p
    return best_p


def _refine(
    crit: _Criterion, start: np.ndarray, scale: tuple[float, float], pixel_box: bool
) -> tuple[np.ndarray, float]:
    """Nelder-Mead around the grid optimum (the criterion is piecewise smooth)."""
    from scipy.optimize import minimize

    step = math.log(SIGMAS[1] / SIGMAS[0])
    simplex = start + np.vstack([np.zeros(3), np.diag([step / 2, step / 2, math.pi / 8])])
    res = minimize(
        lambda p: crit(_params_kernel(p, scale, pixel_box)),
        start,
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "maxfev": REFINE_ITERS, "xatol": 0.02, "fatol": 0.0},
    )
    return res.x, float(res.fun)


def _fit_isotropic(
    crit: _Criterion, sc: tuple[float, float], pixel_box: bool, facts: dict[str, Any]
) -> KernelEstimate:
    """One width: the coarse grid, then a bounded scalar search around its best point."""
    from scipy.optimize import minimize_scalar

    def score(log_sigma: float) -> float:
        return crit(_params_kernel(np.array([log_sigma, log_sigma, 0.0]), sc, pixel_box))

    logs = [math.log(v) for v in SIGMAS]
    values = [score(v) for v in logs]
    i = int(np.argmin(values))
    step = logs[1] - logs[0]
    res = minimize_scalar(
        score,
        bounds=(logs[i] - step, logs[i] + step),
        method="bounded",
        options={"xatol": 0.01, "maxiter": REFINE_ITERS // 2},
    )
    best, value = (float(res.x), float(res.fun)) if res.fun < values[i] else (logs[i], values[i])
    kernel = _params_kernel(np.array([best, best, 0.0]), sc, pixel_box)
    lo, hi = math.log(SIGMAS[0]) - 1.0, math.log(SIGMAS[-1]) + 0.5
    sigma = math.exp(min(max(best, lo), hi))
    return KernelEstimate(
        kernel=kernel,
        sigma_major=sigma,
        sigma_minor=sigma,
        angle=0.0,
        pixel_box=pixel_box,
        score=value,
        fwhm_lr_px=_lr_fwhm(kernel, sc),
        whitened=crit.whiten,
        family="isotropic",
        **facts,
    )


def choose_family(
    isotropic: KernelEstimate,
    anisotropic: KernelEstimate,
    crop_angles: Sequence[float] | None = None,
) -> tuple[KernelEstimate, dict[str, Any]]:
    """The fit ``family="auto"`` keeps, and the record of the choice.

    A fit whose minor width is below the family's narrowest (``SIGMAS[0]``) is kept for
    nothing: that is the image's structure, not a blur. Otherwise, on clean images whose
    finest scales carry signal (noise below ``WHITEN_MAX_NOISE_SHARE`` of the first
    differences: natural photographs, DIV2KRK's random anisotropic kernels) the anisotropic
    fit is kept: there it is the closer one (DIV2KRK: correlation with the true kernel
    0.94-0.95 against 0.83-0.87 for the isotropic fit on images 24 and 50,
    ``benchmarks/kernel_accuracy.py``). Where noise fills the finest scales (fluorescence
    microscopy, whose in-focus PSF is radially symmetric), oriented structure alone makes
    the anisotropic fit score better (BPAE actin, an isotropic widefield PSF: 0.43 of the
    isotropic fit's criterion), so it is kept only where the image clearly supports it: not
    needle-thin (a minor width of at least ``ANISOTROPIC_MIN_MINOR`` HR px; thinner is the
    orientation of the image's structure leaking into the estimate, not optics), elongated
    by ``ANISOTROPIC_MIN_ELONGATION`` at least, a criterion at most
    ``ANISOTROPIC_MAX_SCORE_RATIO`` of the isotropic one's, *and* the same elongation in each
    quadrant of the image, within ``CROP_MAX_ANGLE`` of the same direction (``crop_angles``;
    a blur is the same everywhere, the orientation of structure is not).

    Parameters
    ----------
    isotropic, anisotropic : KernelEstimate
        The two fits of the same criterion.
    crop_angles : sequence of float, optional
        Major-axis angles (radians) of the anisotropic fits of the image's quadrants, NaN
        for a quadrant whose fit is not elongated; None when they were not measured.

    Returns
    -------
    (KernelEstimate, dict)
        The kept fit (with the record attached) and the record: both criteria and widths,
        the family chosen and why.
    """
    ratio = anisotropic.score / isotropic.score if isotropic.score > 0 else 1.0
    keep = isotropic
    clean = anisotropic.noise_share < WHITEN_MAX_NOISE_SHARE  # NaN (unknown): not clean
    if anisotropic.sigma_minor < SIGMAS[0]:
        reason = (
            f"anisotropic fit needle-thin (minor width {anisotropic.sigma_minor:.2f} HR px, "
            f"below the family's narrowest {SIGMAS[0]:.2f})"
        )
    elif clean:
        keep, reason = anisotropic, "clean image (finest scales carry signal): anisotropic kept"
    elif anisotropic.sigma_minor < ANISOTROPIC_MIN_MINOR:
        reason = (
            f"anisotropic fit degenerate (minor width {anisotropic.sigma_minor:.2f} HR px, "
            f"below {ANISOTROPIC_MIN_MINOR:g})"
        )
    elif anisotropic.sigma_major < ANISOTROPIC_MIN_ELONGATION * anisotropic.sigma_minor:
        reason = (
            f"anisotropic fit hardly elongated ({anisotropic.sigma_major:.2f} x "
            f"{anisotropic.sigma_minor:.2f} HR px, below {ANISOTROPIC_MIN_ELONGATION:g} to 1)"
        )
    elif ratio > ANISOTROPIC_MAX_SCORE_RATIO:
        reason = (
            f"anisotropic fit not clearly better (criterion {ratio:.2f} of the isotropic "
            f"fit's, above {ANISOTROPIC_MAX_SCORE_RATIO:g})"
        )
    elif not _consistent(anisotropic.angle, crop_angles):
        reason = (
            "anisotropy not the same in the image's quadrants (structure orientation, not "
            "blur): isotropic fit kept"
        )
    else:
        keep = anisotropic
        reason = (
            f"anisotropic fit clearly better (criterion {ratio:.2f} of the isotropic fit's) "
            "and the same in every quadrant"
        )
    record = {
        "chosen": keep.family,
        "reason": reason,
        "isotropic_score": isotropic.score,
        "anisotropic_score": anisotropic.score,
        "isotropic_sigma_hr_px": isotropic.sigma_major,
        "anisotropic_sigmas_hr_px": [anisotropic.sigma_major, anisotropic.sigma_minor],
        "anisotropic_angle_rad": anisotropic.angle,
        "quadrant_angles_rad": None if crop_angles is None else [float(a) for a in crop_angles],
    }
    return dataclasses.replace(keep, family_check=record), record


def _consistent(angle: float, crop_angles: Sequence[float] | None) -> bool:
    """Whether every quadrant's fit is elongated along ``angle`` (within ``CROP_MAX_ANGLE``)."""
    if not crop_angles:
        return False
    for a in crop_angles:
        if not math.isfinite(a):
            return False
        d = abs((a - angle + math.pi / 2) % math.pi - math.pi / 2)
        if d > CROP_MAX_ANGLE:
            return False
    return True


def _quadrant_angles(
    crit: _Criterion, aniso: KernelEstimate, sc: tuple[float, float], pixel_box: bool
) -> list[float]:
    """Direction of the anisotropy in each quadrant of the planes: the angle (of the coarse
    grid's four) at which the anisotropic fit's widths score best on the quadrant, NaN where
    none scores better than the isotropic kernel of the same area (the quadrant shows no
    elongation); empty when quadrants are too small to estimate from."""
    need = min_estimate_size(sc)
    h, w = (int(v) for v in crit.planes[0].shape)
    hh, hw = h // 2, w // 2
    if hh < need[0] or hw < need[1]:
        return []
    log_a, log_b = math.log(aniso.sigma_major), math.log(aniso.sigma_minor)
    log_iso = 0.5 * (log_a + log_b)
    iso_kernel = _params_kernel(np.array([log_iso, log_iso, 0.0]), sc, pixel_box)
    kernels = [_params_kernel(np.array([log_a, log_b, a]), sc, pixel_box) for a in ANGLES]
    angles = []
    for y0, x0 in ((0, 0), (0, hw), (hh, 0), (hh, hw)):
        crops = [p[y0 : y0 + hh, x0 : x0 + hw].numpy().astype(np.float64) for p in crit.planes]
        sub = _Criterion(crops, sc, crit.noise_var, crit.whiten)
        scores = [sub(k) for k in kernels]
        best = int(np.argmin(scores))
        elongated = scores[best] < CROP_MAX_SCORE_RATIO * sub(iso_kernel)
        angles.append(ANGLES[best] if elongated else math.nan)
    return angles


def _fit_family(
    crit: _Criterion,
    sc: tuple[float, float],
    pixel_box: bool,
    facts: dict[str, Any],
    family: str,
) -> KernelEstimate:
    """The fit of ``family`` (for ``"auto"``: both, then :func:`choose_family`)."""
    if family == "isotropic":
        return _fit_isotropic(crit, sc, pixel_box, facts)
    if family == "anisotropic":
        return _fit(crit, sc, pixel_box, facts)
    aniso = _fit(crit, sc, pixel_box, facts)
    clean = facts["noise_share"] < WHITEN_MAX_NOISE_SHARE
    if clean and aniso.sigma_minor >= SIGMAS[0]:  # choose_family keeps it: no other fit
        record = {"chosen": "anisotropic", "reason": "clean image (finest scales carry signal)"}
        return dataclasses.replace(aniso, family_check=record)
    iso = _fit_isotropic(crit, sc, pixel_box, facts)
    crop_angles = None
    needs_crops = (
        aniso.sigma_minor >= ANISOTROPIC_MIN_MINOR
        and aniso.sigma_major >= ANISOTROPIC_MIN_ELONGATION * aniso.sigma_minor
        and aniso.score <= ANISOTROPIC_MAX_SCORE_RATIO * iso.score
    )
    if needs_crops:
        crop_angles = _quadrant_angles(crit, aniso, sc, pixel_box)
    return choose_family(iso, aniso, crop_angles)[0]


def estimate_kernel(
    planes: Sequence[np.ndarray],
    scale: Sequence[float],
    *,
    pixel_box: bool = True,
    whiten: bool | None = None,
    noise_std: Sequence[float] | None = None,
    family: str = "auto",
) -> KernelEstimate:
    """Estimate the HR-grid downscaling kernel of an image from its own patch recurrence.

    Parameters
    ----------
    planes : sequence of (Y, X) arrays
        One or more planes of the image (normalised intensity, e.g. [0, 1]); several planes of a
        stack give one estimate (at most ``MAX_PLANES`` are used, spread over the sequence).
        Not modified.
    scale : (float, float)
        The SR factor (s_y, s_x) the kernel is for.
    pixel_box : bool
        Include the LR pixel's box (camera pixel integration) in the kernel family.
    whiten : bool or None
        Compare the patch statistics of the image's first differences instead of its
        intensities: much closer on clean natural photographs (DIV2KRK), much worse on noisy
        widefield microscopy (see :func:`_patch_moments`). None (the default, what
        ``super_resolve(kernel="estimate")`` uses) whitens when the noise makes up less than
        ``WHITEN_MAX_NOISE_SHARE`` of the first differences' variance, and fits the
        intensities when the whitened fit is not ``reliable`` (keeping the one that is).
    noise_std : sequence of float, optional
        The noise standard deviation of each plane (same units), when it is already known
        (:func:`~napari_zssr.core.noise.estimate_noise_std`, which ``super_resolve`` measures
        anyway for the noise on the sons); None: measured here.
    family : str
        ``"isotropic"`` (one width), ``"anisotropic"`` (two widths and an angle) or
        ``"auto"`` (the default): both are fitted and the isotropic one is kept unless the
        image clearly supports the other (:func:`choose_family`; the choice is recorded in
        ``family_check``).

    Returns
    -------
    KernelEstimate

    Raises
    ------
    ValueError
        If a plane is smaller than :func:`min_estimate_size` or the image is flat.
    """
    t0 = time.perf_counter()
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    sc = (float(scale[0]), float(scale[1]))
    picks = np.unique(np.linspace(0, len(planes) - 1, min(len(planes), MAX_PLANES)).round())
    used = _check_planes([planes[int(i)] for i in picks] if len(planes) else [], sc)
    if noise_std is not None and len(noise_std) != len(planes):
        raise ValueError(f"noise_std has {len(noise_std)} values for {len(planes)} planes")
    if noise_std is None:
        from .noise import estimate_noise_std

        noise_var = [estimate_noise_std(p) ** 2 for p in used]
    else:
        noise_var = [float(noise_std[int(i)]) ** 2 for i in picks]
    share = float(np.mean([_noise_share(p, v) for p, v in zip(used, noise_var)]))
    facts = {"resolution_px": _resolution(used), "noise_share": share, "planes": len(used)}
    whitened = share < WHITEN_MAX_NOISE_SHARE if whiten is None else whiten
    est = _fit_family(_Criterion(used, sc, noise_var, whitened), sc, pixel_box, facts, family)
    if whiten is None and whitened and not est.reliable:
        # the whitened statistics said nothing usable (the bundled confocal sample, whose noise
        # makes up 4% of its differences, runs to the narrowest kernel with them): the
        # intensities' fit, more robust where the finest scales are partly noise, is tried
        crit = _Criterion(used, sc, noise_var, False)
        other = _fit_family(crit, sc, pixel_box, facts, family)
        est = other if other.reliable else est
    check = spectral_check(used, est.kernel, sc, noise_var)
    return dataclasses.replace(est, spectral_check=check, seconds=time.perf_counter() - t0)


def _fit(
    crit: _Criterion, sc: tuple[float, float], pixel_box: bool, facts: dict[str, Any]
) -> KernelEstimate:
    """Grid search, then Nelder-Mead, of ``crit`` over the family; the estimate it gives
    (``facts``: what the planes give whatever the fit, their resolution, noise share and
    number, measured once for both fits)."""
    start = _grid_search(crit, sc, pixel_box)
    best, score = _refine(crit, start, sc, pixel_box)
    kernel = _params_kernel(best, sc, pixel_box)
    sa, sb = (math.exp(float(v)) for v in best[:2])
    angle = float(best[2])
    if sb > sa:  # report the major axis first
        sa, sb, angle = sb, sa, angle + math.pi / 2
    return KernelEstimate(
        kernel=kernel,
        sigma_major=sa,
        sigma_minor=sb,
        angle=angle % math.pi,
        pixel_box=pixel_box,
        score=score,
        fwhm_lr_px=_lr_fwhm(kernel, sc),
        whitened=crit.whiten,
        **facts,
    )


def _band_index(shape: tuple[int, int]) -> np.ndarray:
    """Radial band (0 .. SPECTRAL_BANDS - 1, or -1 beyond Nyquist) of each FFT frequency of
    a plane of ``shape``, frequencies in cycles per pixel."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    radius = np.hypot(fy, fx)
    band = np.floor(radius / 0.5 * SPECTRAL_BANDS).astype(int)
    return np.where(band < SPECTRAL_BANDS, band, -1)


def spectral_check(
    planes: Sequence[np.ndarray],
    kernel: np.ndarray,
    scale: Sequence[float],
    noise_var: Sequence[float],
) -> dict[str, Any]:
    """Whether the image could have been made with ``kernel``: no signal where it removes all.

    The image's power spectrum (Hann window, radial bands up to Nyquist) holds signal up to
    the highest band whose power exceeds ``SIGNAL_OVER_NOISE`` times the noise's (white
    noise of the estimated variance, at least (0.001)^2 of the range); the kernel removes
    everything above the lowest band where its power transfer (largest over the band) falls
    below ``KERNEL_CUTOFF_POWER``. A kernel whose cutoff lies below the image's signal is
    too wide for the image: ZSSR trained with it would sharpen beyond the truth (the
    fits 10-12 px wide on a smooth nuclei image, 2.5 dB below bicubic). The measure does not
    depend on the decorrelation resolution (which a smooth image makes coarse, letting such
    a fit through the ``too_wide`` test).

    Parameters
    ----------
    planes : sequence of (Y, X) arrays
        The planes the kernel was fitted to (normalised intensities).
    kernel : ndarray
        The kernel on the HR grid.
    scale : (float, float)
        The SR factor (s_y, s_x).
    noise_var : sequence of float
        Each plane's noise variance, same units as the planes squared.

    Returns
    -------
    dict
        ``signal_cutoff`` and ``kernel_cutoff`` (cycles per image pixel; the median over the
        planes for the first, ``inf`` for the second when the kernel never falls that low
        before Nyquist) and ``passed``.
    """
    sc = (float(scale[0]), float(scale[1]))
    centres = (np.arange(SPECTRAL_BANDS) + 0.5) * 0.5 / SPECTRAL_BANDS
    signal, kernel_cut = [], []
    for plane, var in zip(planes, noise_var, strict=True):
        a = np.asarray(plane, dtype=np.float64)
        win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
        power = np.abs(np.fft.fft2((a - a.mean()) * win)) ** 2 / float(np.sum(win**2))
        band = _band_index(a.shape)
        transfer = power_transfer(kernel, sc, a.shape)
        floor = SIGNAL_OVER_NOISE * max(float(var), 1e-6)
        f_sig, f_k = 0.0, math.inf
        for b in range(1, SPECTRAL_BANDS):
            sel = band == b
            if not sel.any():
                continue
            if float(power[sel].mean()) > floor:
                f_sig = float(centres[b])
            if math.isinf(f_k) and float(transfer[sel].max()) < KERNEL_CUTOFF_POWER:
                f_k = float(centres[b])
        signal.append(f_sig)
        kernel_cut.append(f_k)
    f_sig, f_k = float(np.median(signal)), float(min(kernel_cut))
    return {"signal_cutoff": f_sig, "kernel_cutoff": f_k, "passed": bool(f_sig <= f_k)}


def _lr_fwhm(kernel: np.ndarray, scale: tuple[float, float]) -> float:
    """FWHM of ``kernel``'s major axis on the LR grid (Gaussian-equivalent, from its moments)."""
    k = kernel / kernel.sum()
    cy, cx = centre_of_mass(k)
    ys, xs = np.indices(k.shape, dtype=np.float64)
    dy, dx = (ys - cy) / scale[0], (xs - cx) / scale[1]  # LR pixels
    cov = np.array(
        [[(k * dy * dy).sum(), (k * dy * dx).sum()], [(k * dy * dx).sum(), (k * dx * dx).sum()]]
    )
    return 2.0 * math.sqrt(2.0 * math.log(2.0)) * math.sqrt(float(np.linalg.eigvalsh(cov)[-1]))


def _resolution(planes: list[np.ndarray]) -> float:
    """Median decorrelation resolution of ``planes``, in pixels (NaN if none can be measured)."""
    from .resolution import estimate_resolution

    values = []
    for plane in planes:
        try:
            values.append(float(estimate_resolution(plane).resolution_px))
        except ValueError:  # too small or flat for the analysis: no check from this plane
            continue
    return float(np.median(values)) if values else math.nan
