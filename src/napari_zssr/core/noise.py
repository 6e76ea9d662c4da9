"""Estimating the noise level of an image, for ``noise_std="auto"``.

Two estimators:

* :func:`estimate_noise_std` (the one ``"auto"`` uses): the root-mean-square noise of the
  image, from the eigenvalues of the covariance of its weakly textured patches, taken
  separately in bands of intensity so that signal-dependent (Poisson) noise is weighed where
  it occurs, not only in the dark background.
* :func:`immerkaer_noise_std`: Immerkaer's (1996) 3x3 Laplacian-difference estimator. Fast and
  accurate on smooth images, but it reads fine texture as noise: 0.008 to 0.031 on the clean
  Set5 and Set14 inputs, enough to blur them if it were used to add noise to the sons.

Why a patch estimator: noise is white, so in the space of ``p x p`` patches it adds the same
variance sigma^2 in every direction, whereas image structure occupies a few directions only.
The smallest eigenvalues of the patch covariance are then the noise's; their mean equals
sigma^2 as long as it also equals their median (a Marchenko-Pastur bulk has mean and median
close; structure eigenvalues lie above it and pull the mean up). This criterion is Chen, Zhu
and Heng's (ICCV 2015). Patches are first restricted to weakly textured ones by the
gradient-energy test of Liu, Tanaka and Okutomi (IEEE TIP 2013), iterated with the level
found. scikit-image's ``estimate_sigma`` (wavelet median, Donoho) has the texture bias of
Immerkaer's method, and no library offers the patch estimator, hence this module.

Three guards keep it honest on images it was not developed on
(``benchmarks/noise_robustness.py``: clean small images, white and correlated noise):

* a band of patches flat to within quantisation (away from the ends of the range) is a
  noise-free region and bounds the camera model there, so that structure read as noise in
  the bright bands of a clean render does not set the model;
* sparse structure (isolated spots) has a white patch covariance, like noise, but puts its
  energy into a few patches: a band's level is the median patch's where that is far below
  the eigenvalue mean (:func:`_bulk_variance`);
* noise correlated between neighbours (EMCCD, binning, resampling) is read at its per-pixel
  level, not at its weaker high-frequency part (:func:`correlated_variance`).

Where planes of a time-lapse are at hand, their differences give a second, structure-free
estimate (:func:`frame_noise_std`, :func:`stack_noise_std`; a drift of the field between
frames is undone first, :func:`frame_drift`).

Measured (``python benchmarks/noise_estimate.py``, docs/benchmarks.md): about 3% below the
true level on pure Gaussian noise; within 20% of the simulated root-mean-square noise on the
microscopy benchmark's Poisson-Gaussian images (ssTEM high SNR: 27% above, its own grain
blurred by the PSF reads as correlated noise); 0 to 0.0001 on their noise-free renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "NoiseProfile",
    "auto_noise_std",
    "beyond_cutoff_noise_std",
    "difference_noise_std",
    "estimate_noise_std",
    "flat_spectrum_noise_std",
    "frame_drift",
    "frame_noise_std",
    "immerkaer_noise_std",
    "noise_profile",
    "noise_warning",
    "stack_noise_std",
]

# Immerkaer's 3x3 mask: the difference of two Laplacians, blind to planes and ramps, so what
# it responds to in a smooth image is mostly noise.
_MASK = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])

#: Side of the square patches (49 dimensions: enough directions free of structure in
#: microscopy and natural images; 5 x 5 read more texture as noise on Set5/Set14).
PATCH = 7
#: Patches drawn from one plane at most (a random, seeded subset of a larger plane).
MAX_PATCHES = 40_000
#: Fewest patches per intensity band: below ~40 per dimension the smallest eigenvalues of
#: a sample covariance spread too far below the true variance.
PATCHES_PER_BAND = 2_000
#: Most intensity bands.
MAX_BANDS = 8
#: Confidence of the weak-texture test: a patch of pure noise passes it with this probability.
_TEXTURE_CONFIDENCE = 0.999
#: Allowance for the spread of one band's estimate when the noise model is fitted under them.
_BAND_SLACK = 1.25
#: Band levels below this (fraction of the range; 8-bit quantisation is 0.0011) are flat,
#: clipped or saturated regions, not noise.
_FLAT_STD = 0.001
#: A band is noise-dominated when the 20th percentile of its patches' residual energies is at
#: least this fraction of what noise alone gives (relative to their median).
_HOMOGENEOUS = 0.8
#: Lowest mean correlation of a noise-dominated band's residuals at 2 and 3 px
#: (:func:`_short_range`).
_LONG_RANGE = -0.165
#: Correlation factors below this are white noise read with some structure (no correction:
#: white noise of 0.06 on a sharp dead-leaves render read 1.3 to 1.6; the correlation of
#: 0.47 and 0.17 reads 3 to 11);
#: the cap keeps a misread band from multiplying the estimate without bound.
_MIN_CORRELATION_FACTOR = 2.0
#: Bands whose bulk level is below this (fraction of the range, about twice the 8-bit
#: quantisation noise) are not used to measure the factor.
_MIN_CORRECTED_STD = 0.0025
_MAX_CORRELATION_FACTOR = 16.0
#: A band's median patch energy below this fraction of the bulk's mean marks sparse structure.
_SPARSE = 0.5
#: Band means within this of 0 or 1 (fraction of the range) may be clipped regions.
_CLIPPED = 0.01
#: :func:`beyond_cutoff_noise_std` reads the noise only where the kernel leaves at least this
#: share of the image's frequencies without signal: at 5% of a 64 x 64 plane, 205 cosine
#: coefficients, whose mean square spreads by about 10% (2.5% on the standard deviation).
CUTOFF_MIN_SHARE = 0.05
#: ... and from a central crop of at most this side (the kernel's transfer is evaluated on a
#: grid twice as fine; the noise of a larger plane is read from its middle).
_CUTOFF_MAX_SIDE = 512
#: The reading holds for white noise (independent pixels: photon and read noise). Noise
#: correlated between neighbours (EMCCD gain, binning, resampling) has less power at high
#: frequencies than its per-pixel variance, so the band would read it low. The band is split
#: by direction and by radius into four parts; where their mean powers differ by more than
#: this many standard deviations of a part's mean (``sqrt(2 / n)`` relative, ``n`` its
#: coefficients), the noise is not white and nothing is read.
_WHITE_SIGMAS = 6.0
#: :func:`flat_spectrum_noise_std` (no kernel known) starts from the highest-frequency 5% of
#: the cosine coefficients and moves its inner edge inwards by this much radius (1 is the
#: Nyquist limit along one axis) while the band stays white ...
_FLAT_STEP = 0.05
#: ... by a stricter test than ``_WHITE_SIGMAS``, since here the band is not known to hold
#: noise alone: the range of four part means exceeds 4.5 standard deviations for white noise
#: about once in a hundred tests, while the slow decay of a sharp clean image's spectrum
#: towards its corners passes more easily at a lower bound ...
_FLAT_SIGMAS = 4.5
#: ... and reads a level only where the white band holds at least this share of the
#: coefficients. A band-limited microscopy image with noise (widefield or confocal PSF
#: sampled near Nyquist) is white over 50-90% of them; a clean image, whose spectrum falls
#: towards the corners, at most over the first 5-8% (``benchmarks/noise_robustness.py``:
#: the coins, the Hubble field and cells3d plane 44 at 96 to 128 px).
FLAT_MIN_SHARE = 0.15
#: ... from a plane whose first band holds at least this many coefficients per part (about
#: 51 x 51 px): fewer make the test too weak to tell a falling spectrum from a flat one.
_FLAT_MIN_PART = 32
#: :func:`frame_drift` refines the shift on a grid of this step (px) ...
_DRIFT_STEP = 0.05
#: ... over this many steps on either side of the integer peak (1.5 px).
_DRIFT_SPAN = 30
#: Mirrored border (px) around a frame moved by a Fourier phase ramp; frames of at most
#: twice this side are compared without registering.
_DRIFT_PAD = 16
#: :func:`frame_noise_std` refuses a pair whose difference correlates more than this at 2
#: and 3 px (structure, not noise).
_FRAME_STRUCTURE = 0.2


@dataclass(frozen=True)
class NoiseProfile:
    """Noise level per band of intensity, as :func:`noise_profile` measures it.

    Attributes
    ----------
    means : ndarray
        Mean intensity of each band's patches, in the image's units, ascending.
    stds : ndarray
        Noise standard deviation in each band, in the image's units.
    weights : ndarray
        Fraction of the image's patches in each band (sums to 1).
    """

    means: np.ndarray
    stds: np.ndarray
    weights: np.ndarray

    @property
    def raw_rms(self) -> float:
        """Root-mean-square of the bands' own levels, ``sqrt(sum(weights * stds**2))``: an
        upper bound, since texture read as noise only adds to a band's level."""
        return float(math.sqrt(float(np.sum(self.weights * self.stds**2))))

    def poisson_gaussian(self) -> tuple[float, float]:
        """The noisiest camera model ``var = gain * intensity + offset`` under every band.

        Fluorescence noise is Poisson-Gaussian (Foi et al., IEEE TIP 2008): its variance is
        linear in the intensity, with a non-negative slope (photon noise) and offset (read
        noise). Texture can only raise a band's measured level, never lower it, so among the
        lines that stay under every band's variance (with a 25% allowance for the spread of
        the band estimates) the one with the most noise over the image is taken. Bands whose
        level is below 0.001 (flat, clipped or saturated regions, where the model does not
        hold) constrain nothing.

        Returns
        -------
        (float, float)
            ``(gain, offset)`` in the image's units (variance per unit of intensity, and
            variance).
        """
        from scipy.optimize import linprog

        keep = self.stds >= _FLAT_STD
        if not keep.any():
            return 0.0, 0.0
        # a band flat to within quantisation away from the ends of the range is a noise-free
        # region, not a clipped one: it bounds the model at the quantisation level (without
        # this, structure read as noise in the bright bands of a clean render set the model)
        keep |= (self.means > _CLIPPED) & (self.means < 1.0 - _CLIPPED)
        stds = np.maximum(self.stds[keep], _FLAT_STD)
        mean_intensity = float(np.sum(self.weights * self.means))
        # maximise gain * mean + offset subject to gain * m_k + offset <= slack * var_k
        res = linprog(
            c=[-mean_intensity, -1.0],
            A_ub=np.column_stack([self.means[keep], np.ones(int(keep.sum()))]),
            b_ub=_BAND_SLACK * stds**2,
            bounds=[(0.0, None), (0.0, None)],
            method="highs",
        )
        if not res.success:  # pragma: no cover - the origin is always feasible
            return 0.0, 0.0
        return float(res.x[0]), float(res.x[1])

    def poisson_gaussian_fit(self) -> tuple[float, float]:
        """Least-squares camera model ``var = gain * intensity + offset`` through the bands.

        :meth:`poisson_gaussian` is an upper bound by construction (the noisiest line under
        every band, with a 25% allowance): right for a root-mean-square level, about 20% high
        on the gain and the offset of a synthetic Poisson-Gaussian image. Here the line is
        fitted to the bands' variances, each residual divided by the band's level (the spread
        of a variance estimate grows with it), with gain and offset kept non-negative
        (``scipy.optimize.nnls``); bands below 0.001 (flat, clipped) are left out. Used for
        ``noise_model="poisson-gaussian"``: within 7% of the true gain and offset on smooth
        synthetic images (``tests/test_noise_model.py``); texture read as noise raises it.

        Returns
        -------
        (float, float)
            ``(gain, offset)`` in the image's units.
        """
        from scipy.optimize import nnls

        keep = self.stds >= _FLAT_STD
        if not keep.any():
            return 0.0, 0.0
        var = self.stds[keep] ** 2
        w = 1.0 / self.stds[keep]
        design = np.column_stack([self.means[keep], np.ones(int(keep.sum()))])
        (gain, offset), _ = nnls(design * w[:, None], var * w)
        return float(gain), float(offset)

    def scaled_to(self, rms: float) -> NoiseProfile:
        """The same profile with every band's level scaled so that :attr:`rms` is ``rms``
        (the shape across intensities kept): for a level read another way, e.g.
        :func:`beyond_cutoff_noise_std`. A profile that reads no noise is returned as it is."""
        out = self
        for _ in range(3):  # the bands' floors make the scaling not quite linear: refine
            now = out.rms
            if now <= 0.0 or abs(now - rms) <= 1e-3 * rms:
                break
            out = NoiseProfile(means=out.means, stds=out.stds * (rms / now), weights=out.weights)
        return out

    @property
    def rms(self) -> float:
        """Root-mean-square noise over the image: in each band the lower of the band's own
        level and :meth:`poisson_gaussian`'s model (the model may sit up to the 25% allowance
        above a band; pure Gaussian noise would otherwise read about 10% high)."""
        gain, offset = self.poisson_gaussian()
        var = np.minimum(gain * np.maximum(self.means, 0.0) + offset, self.stds**2)
        return float(math.sqrt(float(np.sum(self.weights * var))))


def _check_plane(plane: np.ndarray) -> np.ndarray:
    x = np.asarray(plane, dtype=np.float64)
    if x.ndim != 2 or min(x.shape) < 3:
        raise ValueError(f"noise estimation needs a 2-D image of at least 3 x 3, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("noise estimation needs finite values (the image has NaN or Inf)")
    return x


def immerkaer_noise_std(plane: np.ndarray) -> float:
    """Standard deviation of additive noise by Immerkaer's (1996) method.

    The image is filtered with a 3x3 mask that cancels linear structure; for Gaussian noise
    of standard deviation sigma the mean absolute response is ``6 sigma sqrt(2 / pi)``.
    Texture counts as noise: prefer :func:`estimate_noise_std` on textured images.

    Parameters
    ----------
    plane : ndarray
        ``(Y, X)`` image, at least 3 x 3, in the units the estimate should be in.

    Returns
    -------
    float
        The estimated standard deviation (0 for a constant image).
    """
    x = _check_plane(plane)
    # 'valid' correlation by shifted sums: no SciPy call needed for nine taps
    h, w = x.shape
    resp = np.zeros((h - 2, w - 2))
    for dy in range(3):
        for dx in range(3):
            resp += _MASK[dy, dx] * x[dy : dy + h - 2, dx : dx + w - 2]
    return float(math.sqrt(math.pi / 2.0) * np.mean(np.abs(resp)) / 6.0)


def _patches(x: np.ndarray, p: int, rng: np.random.Generator) -> np.ndarray:
    """``(M, p * p)`` patches at every position, or at ``MAX_PATCHES`` random ones."""
    h, w = x.shape
    n_pos = (h - p + 1) * (w - p + 1)
    if n_pos <= MAX_PATCHES:
        return np.lib.stride_tricks.sliding_window_view(x, (p, p)).reshape(-1, p * p)
    # gather a subset instead of materialising every patch of a large plane
    pick = rng.choice(n_pos, size=MAX_PATCHES, replace=False)
    ys, xs = np.divmod(pick, w - p + 1)
    dy, dx = np.mgrid[:p, :p]
    return x[ys[:, None] + dy.ravel()[None, :], xs[:, None] + dx.ravel()[None, :]]


def _difference_operators(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences along x and y inside a ``p x p`` patch, as matrices on its pixels."""
    n = p * p
    dh, dv = np.zeros((n, n)), np.zeros((n, n))
    for i in range(p):
        for j in range(p):
            k = i * p + j
            if j + 1 < p:
                dh[k, k + 1], dh[k, k] = 1.0, -1.0
            if i + 1 < p:
                dv[k, k + p], dv[k, k] = 1.0, -1.0
    return dh, dv


def _bulk_variance(patches: np.ndarray) -> float:
    """Noise variance from the eigenvalues of the patches' covariance (Chen et al.'s test),
    no more than the patches' typical energy in those directions.

    The bulk's mean eigenvalue is the patches' mean energy along its eigenvectors. Noise puts
    about the same energy into every patch (chi-square), so that mean and the median patch's
    energy (scaled by the chi-square median) agree. Sparse structure that falls into those
    directions anyway (isolated spots, which have a white patch covariance like noise's) puts
    its energy into a few patches only: when the median is below half the mean, it is taken.
    """
    from scipy.stats import chi2

    lam, vec = np.linalg.eigh(np.cov(patches, rowvar=False))
    lam = np.maximum(lam, 0.0)  # ascending
    # drop the largest eigenvalues (structure) until the rest have mean <= median
    m = 1
    for k in range(lam.size, 0, -1):
        bulk = lam[:k]
        if bulk.mean() <= np.median(bulk):
            m = k
            break
    mean_var = float(lam[:m].mean())
    energy = np.sum(((patches - patches.mean(axis=0)) @ vec[:, :m]) ** 2, axis=1)
    typical = float(np.median(energy)) / float(chi2.ppf(0.5, m))
    # Poisson noise varies within a band, which lowers the median by tens of percent: only
    # a median far below the mean marks sparse structure
    return typical if typical < _SPARSE * mean_var else mean_var


def _band_variance(patches: np.ndarray, texture: np.ndarray, trace: float) -> float:
    """Noise variance of one band: bulk variance of the patches that pass a texture test.

    The test (Liu et al.'s) keeps a patch when its gradient energy is below what noise of the
    band's variance would exceed with probability 0.001: one pass, to drop strong structure
    only. Iterating it with the lowered level, as Liu et al. do for Gaussian noise, spirals
    down under Poisson noise (the quieter patches of a band pass, then a lower level passes
    quieter ones still): on the microscopy benchmark's high-SNR images it halved the level.
    """
    from scipy.stats import gamma

    n = patches.shape[1]
    var = _bulk_variance(patches)
    if var <= 0:
        return var
    # gradient energy of a pure-noise patch ~ Gamma(n / 2, 2 var trace / n)
    tau = gamma.ppf(_TEXTURE_CONFIDENCE, n / 2.0, scale=2.0 * var * trace / n)
    weak = patches[texture < tau]
    return _bulk_variance(weak) if len(weak) >= 4 * n else var


def noise_profile(plane: np.ndarray, *, seed: int = 0) -> NoiseProfile:
    """Noise level in bands of intensity, from weakly textured patches.

    Patches (7 x 7) are grouped into up to 8 bands of equal count by their mean intensity;
    each band's noise variance is the bulk of the eigenvalues of its weakly textured
    patches' covariance (see the module docstring). Signal-dependent noise shows as levels
    rising with intensity.

    Parameters
    ----------
    plane : ndarray
        ``(Y, X)`` image, at least 3 x 3, finite.
    seed : int
        Seed of the random subset of patches drawn from a plane of more than 40 000.

    Returns
    -------
    NoiseProfile
        Band means, noise standard deviations (image units) and weights. A plane too small
        for 7 x 7 patches (fewer than 196 of them) gets one band from Immerkaer's estimator.
    """
    x = _check_plane(plane)
    p = PATCH
    n = p * p
    if (x.shape[0] - p + 1) * (x.shape[1] - p + 1) < 4 * n:
        one = np.ones(1)
        return NoiseProfile(one * float(x.mean()), one * immerkaer_noise_std(x), one)
    patches = _patches(x, p, np.random.default_rng(seed))
    dh, dv = _difference_operators(p)
    texture = np.sum((patches @ dh.T) ** 2, axis=1) + np.sum((patches @ dv.T) ** 2, axis=1)
    trace = float(np.trace(dh.T @ dh + dv.T @ dv))
    means = patches.mean(axis=1)
    n_bands = int(np.clip(len(patches) // PATCHES_PER_BAND, 1, MAX_BANDS))
    order = np.argsort(means, kind="stable")
    bands = np.array_split(order, n_bands)
    var = np.array([_band_variance(patches[b], texture[b], trace) for b in bands])
    var = correlated_variance(patches, bands, var)
    weights = np.array([len(b) for b in bands], dtype=np.float64)
    return NoiseProfile(
        means=np.array([float(means[b].mean()) for b in bands]),
        stds=np.sqrt(var),
        weights=weights / weights.sum(),
    )


def _quadratic_residuals(patches: np.ndarray) -> np.ndarray:
    """``(M, p, p)``: each patch less its best quadratic surface (6 terms)."""
    p = round(math.sqrt(patches.shape[1]))
    yy, xx = np.mgrid[:p, :p].astype(np.float64)
    yy, xx = yy.ravel() - (p - 1) / 2, xx.ravel() - (p - 1) / 2
    basis = np.stack([np.ones_like(yy), yy, xx, yy * yy, xx * xx, yy * xx], axis=1)
    q, _ = np.linalg.qr(basis)
    return (patches - (patches @ q) @ q.T).reshape(-1, p, p)


def _short_range(resid: np.ndarray) -> bool:
    """Whether the residuals' correlation at 2 and 3 px is that of noise.

    The noise of a camera, of binning or of resampling correlates next neighbours only;
    less each patch's quadratic surface, its residual correlates at -0.05 (white) to -0.13
    (neighbour correlations 0.47 and 0.17) on average over lags of 2 and 3 px along both
    axes, where the residual of blurred filaments, membranes or spots reads -0.2 to -0.35.
    """
    return _far_correlation(resid) > _LONG_RANGE


def _far_correlation(x: np.ndarray) -> float:
    """Mean correlation of ``x`` with itself at lags of 2 and 3 px along its last two axes
    (each lag's products over the overlap, scaled to the whole): near 0 for noise, white or
    correlated between next neighbours only; far from 0 for structure."""
    power = float(np.sum(x**2))
    h, w = x.shape[-2:]
    corr = []
    for dy, dx in ((2, 0), (0, 2), (3, 0), (0, 3)):
        a = x[..., dy:, dx:]
        b = x[..., : h - dy, : w - dx]
        frac = h * w / (a.shape[-2] * a.shape[-1])
        corr.append(float(np.sum(a * b)) * frac / power)
    return float(np.mean(corr))


def correlated_variance(
    patches: np.ndarray, bands: list[np.ndarray], var: np.ndarray
) -> np.ndarray:
    """The bands' noise variances per pixel, for noise white or correlated between neighbours.

    The eigenvalue bulk (:func:`_bulk_variance`) reads the noise's power in the patch
    directions where it is weakest; for white noise that is its variance, but for noise
    correlated between neighbours (EMCCD gain, binning, resampling, demosaicing) it is the
    power at the highest frequencies only, a fraction of the per-pixel variance (a third with
    correlations of 0.47 and 0.17 along the two axes). Where a band of intensity is dominated
    by noise, a patch's variance around its own quadratic surface is the per-pixel variance
    (short-range correlation hardly lowers it), whatever the noise's spectrum. A band counts
    as noise-dominated when its patches' residual energies are as tightly spread as noise
    makes them (the 20th percentile at least ``_HOMOGENEOUS`` times what chi-square noise
    gives relative to the median; structure, confined to some patches, spreads them), when
    the residuals do not correlate at 2 and 3 px as noise does not (:func:`_short_range`),
    and when its bulk level is at least ``_MIN_CORRECTED_STD`` (below it, 8-bit quantisation
    and faint texture of clean images passed the tests: DIV2KRK's im_53 read 0.0013 ->
    0.0046). Such a band's variance is the larger of the two readings; every other band's is
    multiplied by the median ratio of the two over the noise-dominated bands. A median ratio
    below ``_MIN_CORRELATION_FACTOR`` is white noise read with some residual structure and
    changes nothing; ratios are capped at ``_MAX_CORRELATION_FACTOR``.

    Parameters
    ----------
    patches : ndarray
        ``(M, p * p)`` patches of the plane.
    bands : list of ndarray
        Indices into ``patches`` of each intensity band.
    var : ndarray
        Each band's noise variance by the eigenvalue bulk (image units squared).

    Returns
    -------
    ndarray
        The bands' variances, ``var`` where the noise is white or no band is noise-dominated.
    """
    from scipy.stats import chi2

    dof = patches.shape[1] - 6
    spread = chi2.ppf(0.2, dof) / chi2.ppf(0.5, dof)
    ratios = np.full(len(bands), np.nan)
    for k, (b, v) in enumerate(zip(bands, var, strict=True)):
        if v < _MIN_CORRECTED_STD**2 or len(b) < 4 * patches.shape[1]:
            continue
        resid = _quadratic_residuals(patches[b])
        energy = np.sum(resid**2, axis=(1, 2))
        mid = float(np.median(energy))
        if mid <= 0 or float(np.quantile(energy, 0.2)) < _HOMOGENEOUS * spread * mid:
            continue
        if _short_range(resid):
            ratios[k] = min(mid / chi2.ppf(0.5, dof) / v, _MAX_CORRELATION_FACTOR)
    found = ~np.isnan(ratios)
    if not found.any() or float(np.median(ratios[found])) < _MIN_CORRELATION_FACTOR:
        return var
    out = var * float(np.median(ratios[found]))
    out[found] = var[found] * np.maximum(ratios[found], 1.0)
    return out


def estimate_noise_std(plane: np.ndarray, *, seed: int = 0) -> float:
    """Root-mean-square noise of a 2-D image, robust to texture.

    The noise level of each band of intensity (:func:`noise_profile`) is an upper bound
    (texture adds to it); the noisiest Poisson-Gaussian camera model under those bounds
    (:meth:`NoiseProfile.poisson_gaussian`) gives the noise variance at every intensity, and
    its mean over the image is the estimate. Photon noise, strong in bright structures and
    weak in the background, is thus counted where it is, while texture confined to some
    intensities (a butterfly's wing pattern, fur) is not read as noise.

    Parameters
    ----------
    plane : ndarray
        ``(Y, X)`` image, at least 3 x 3, in the units the estimate should be in.
    seed : int
        Seed of the patch subset of large planes.

    Returns
    -------
    float
        The estimated standard deviation (0 for a constant or noise-free smooth image).
    """
    return noise_profile(plane, seed=seed).rms


def frame_drift(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """The shift ``(dy, dx)`` in pixels that carries ``first`` onto ``second`` (a stage's drift
    between two frames), to about 0.05 px.

    The shift that maximises the frames' cross-correlation: for two frames of one field with
    independent noise that is the maximum-likelihood shift (no whitening of the cross-power
    spectrum, which at small sizes lets the noise's high frequencies pick the peak). Both
    frames are Hann-windowed first, or the seam of the periodic transform, the same in both,
    pins the peak at zero shift. The integer peak is refined by evaluating the inverse
    transform of the cross-power on a grid of 0.05 px around it (a matrix Fourier transform,
    after Guizar-Sicairos et al., Opt. Lett. 2008). scikit-image's
    ``phase_cross_correlation`` does the same with whitening; the package does not depend on
    scikit-image, and the refinement is a few lines.

    Parameters
    ----------
    first, second : ndarray
        ``(Y, X)`` planes of the same shape.

    Returns
    -------
    (float, float)
        The shift in pixels along Y and X; ``second`` is about ``first`` moved by it.
    """
    a, b = _check_plane(first), _check_plane(second)
    if a.shape != b.shape:
        raise ValueError(f"the two planes differ in shape: {a.shape} and {b.shape}")
    h, w = a.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    cross = np.fft.fft2((b - b.mean()) * win) * np.conj(np.fft.fft2((a - a.mean()) * win))
    corr = np.fft.ifft2(cross).real
    py, px = np.unravel_index(int(np.argmax(corr)), corr.shape)
    py = py - h if py > h // 2 else py
    px = px - w if px > w // 2 else px
    offsets = np.arange(-_DRIFT_SPAN, _DRIFT_SPAN + 1) * _DRIFT_STEP
    ys, xs = py + offsets, px + offsets
    along_y = np.exp(2j * np.pi * np.outer(ys, np.fft.fftfreq(h)))
    along_x = np.exp(2j * np.pi * np.outer(np.fft.fftfreq(w), xs))
    fine = (along_y @ cross @ along_x).real
    iy, ix = np.unravel_index(int(np.argmax(fine)), fine.shape)
    return float(ys[iy]), float(xs[ix])


def _moved(x: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``x`` moved by ``shift`` px with a Fourier phase ramp (all-pass: the noise keeps its
    variance and spectrum), mirrored at the borders first so that no seam rings."""
    from scipy.ndimage import fourier_shift

    pad = _DRIFT_PAD
    padded = np.pad(x, pad, mode="reflect")
    out = np.fft.ifft2(fourier_shift(np.fft.fft2(padded), shift)).real
    return out[pad:-pad, pad:-pad]


def difference_noise_std(first: np.ndarray, second: np.ndarray, *, register: bool = True) -> float:
    """Per-pixel noise of two acquisitions of the same field (time points of a time-lapse,
    repeated frames), from their difference: structure cancels, noise does not.

    The difference of two independent noisy frames has twice the per-pixel noise variance,
    whatever its spatial correlation (which a single-image estimate cannot tell from smooth
    structure), and whatever the image's texture. A drift of the whole field between the
    frames is undone first (:func:`frame_drift`; the first frame is moved onto the second
    by an all-pass Fourier shift, and the borders it uncovers are left out). On 24 small
    held-out inputs with correlated noise of 0.01 (``benchmarks/frame_noise.py``), a drift of
    0.5 px per frame read 1.02 to 4.53 times the noise unregistered and 1.00 to 1.12
    registered; 2.3 px, up to 14.7 and 0.99 to 1.26.
    What moved or changed between the frames is confined to some pixels: the level is a
    robust one (median absolute deviation), then the root-mean-square of the pixels within 4
    such deviations.

    Parameters
    ----------
    first, second : ndarray
        ``(Y, X)`` planes of the same shape, in the units the estimate should be in (e.g.
        both normalised by the same intensity range).
    register : bool, optional
        Undo a drift between the frames first (default; frames larger than 512 px are then
        read from their central 512 x 512 px). False takes the plain difference of the whole
        frames.

    Returns
    -------
    float
        The per-pixel noise standard deviation of one frame (0 for identical frames).
    """
    return _difference_level(_frame_difference(first, second, register))


def _frame_difference(first: np.ndarray, second: np.ndarray, register: bool) -> np.ndarray:
    """``second - first``, less its median; with ``register``, ``first`` moved onto
    ``second`` first (:func:`frame_drift`) and the borders the move uncovers left out."""
    a, b = _check_plane(first), _check_plane(second)
    if a.shape != b.shape:
        raise ValueError(f"the two planes differ in shape: {a.shape} and {b.shape}")
    d = b - a
    if register and min(a.shape) > 2 * _DRIFT_PAD:
        a, b = _central_crop(a), _central_crop(b)  # a larger frame: its middle 512 px
        d = b - a
        shift = frame_drift(a, b)
        if shift != (0.0, 0.0):
            m = math.ceil(max(abs(shift[0]), abs(shift[1]))) + 2
            d = (b - _moved(a, shift))[m:-m, m:-m]
    return d - np.median(d)


def _difference_level(d: np.ndarray) -> float:
    """One frame's noise from the difference of two: a robust level (median absolute
    deviation), then the root-mean-square within 4 such deviations, over 2."""
    d = d.ravel()
    robust = 1.4826 * float(np.median(np.abs(d)))
    if robust == 0:
        return 0.0
    inside = d[np.abs(d) <= 4.0 * robust]
    # the root-mean-square within 4 deviations keeps 99.99% of Gaussian noise's variance
    return float(np.sqrt(np.mean(inside**2) / 2.0))


def frame_noise_std(first: np.ndarray, second: np.ndarray) -> float | None:
    """The noise of two frames of one field (:func:`difference_noise_std`, registered), or
    None where their difference holds structure: they are not frames of one field (planes
    at other depths, other positions) or too much moved between them.

    Noise, white or correlated between next neighbours, hardly correlates with itself at 2
    and 3 px; structure does. The test is the difference's mean correlation at lags of 2 and
    3 px along both axes; over ``_FRAME_STRUCTURE`` the pair is refused. Measured
    (``benchmarks/frame_noise.py --other-fields``): no pair of frames of one field refused
    (432 synthetic pairs, static or drifting, and the 4 pairs of the shared membrane
    time-lapse, whose cells move), every pair of two different images refused (22 of 22),
    and 12 of 59 pairs of neighbouring planes of a Z-stack (cells3d; the others differ
    mostly by noise, and read an upper bound of it).

    Parameters
    ----------
    first, second : ndarray
        ``(Y, X)`` planes of the same shape, in a common intensity scale.

    Returns
    -------
    float or None
        The per-pixel noise standard deviation of one frame, or None.
    """
    d = _frame_difference(first, second, True)
    if not np.any(d):
        return 0.0
    if _far_correlation(d) > _FRAME_STRUCTURE:
        return None
    return _difference_level(d)


def stack_noise_std(planes: list[np.ndarray] | np.ndarray, *, max_pairs: int = 16) -> float:
    """Noise of a time-lapse from its consecutive planes' differences
    (:func:`difference_noise_std`), median over up to ``max_pairs`` pairs spread over it.

    A second estimate, free of structure, beside :func:`estimate_noise_std` on single
    planes: where the single-plane estimate reads much less, the noise is correlated between
    neighbours or hidden in texture. Meant for planes in time (or repeated frames): planes
    of a Z-stack differ by structure and give an upper bound only.

    Parameters
    ----------
    planes : sequence of ndarray or ndarray
        At least two ``(Y, X)`` planes in a common intensity scale.
    max_pairs : int
        Most pairs used.

    Returns
    -------
    float
        The per-pixel noise standard deviation, in the planes' units.
    """
    n = len(planes)
    if n < 2:
        raise ValueError(f"a noise estimate from differences needs at least 2 planes, got {n}")
    starts = np.unique(np.linspace(0, n - 2, min(max_pairs, n - 1)).round().astype(int))
    return float(np.median([difference_noise_std(planes[i], planes[i + 1]) for i in starts]))


def beyond_cutoff_noise_std(
    plane: np.ndarray, kernel: np.ndarray, scale: tuple[float, float]
) -> float | None:
    """Noise of an image made through a known kernel, from the frequencies the kernel removed.

    Where the kernel's power transfer is below ``CUTOFF_POWER`` (1e-4 of its value at
    zero frequency), the image holds no signal, only its noise: there the orthonormal
    cosine transform of white noise has the noise's variance at every coefficient, and of
    photon noise the variance averaged over the image. A widefield PSF at NA 1.4 sampled at
    100 nm leaves 37% of an image's frequencies to noise alone, a confocal one 21%.

    Why: the intensity bands of :func:`noise_profile` read the noise of sparse bright
    structure low (0.31 of the true variance on the held-out confocal actin case at 400
    photons, 0.56 on the widefield one); this reading does not look at the structure at all.
    On the 20 held-out simulations of ``benchmarks/deconvolution.py`` (widefield and
    confocal PSFs, 100 and 400 photons) it read 0.975 to 1.044 of the true standard deviation
    (the Hann-windowed Fourier transform: 0.90 to 1.31, from the window's leakage). The cosine
    transform has no seam at the borders, so no edge leaks into the high frequencies.

    Parameters
    ----------
    plane : ndarray
        ``(Y, X)`` image, normalised intensities; a larger one is read from its central crop
        of ``_CUTOFF_MAX_SIDE`` px.
    kernel : ndarray
        The kernel on the output (HR) grid, as given to the run.
    scale : (float, float)
        The factor ``(s_y, s_x)``.

    Returns
    -------
    float or None
        The root-mean-square noise, in the plane's units; None where the kernel leaves less
        than ``CUTOFF_MIN_SHARE`` of the frequencies without signal (a narrow kernel: the
        image holds signal up to its Nyquist limit), or where the noise there is not white
        (``_WHITE_SIGMAS``: noise correlated between neighbours, whose per-pixel level the
        band does not hold; the intensity bands, which correct for it, are used instead).
    """
    from .kernels import CUTOFF_POWER, power_transfer

    x = _central_crop(_check_plane(plane))
    h, w = x.shape
    k = np.asarray(kernel, dtype=np.float64)
    # cosine coefficient (i, j) is the frequency (i / 2h, j / 2w): the FFT grid of 2h x 2w
    transfer = power_transfer(k, (float(scale[0]), float(scale[1])), (2 * h, 2 * w))[:h, :w]
    beyond = transfer < CUTOFF_POWER
    if beyond.mean() < CUTOFF_MIN_SHARE:
        return None
    spectrum = _CosineSpectrum(x)
    level, spread = spectrum.band(beyond)
    if spread is None:
        return float(np.sqrt(max(level, 0.0)))
    if spread > _WHITE_SIGMAS:
        return None  # coloured noise: the band does not hold the per-pixel variance
    return float(np.sqrt(level))


def flat_spectrum_noise_std(plane: np.ndarray) -> float | None:
    """Noise of an image whose highest frequencies hold noise alone, with no kernel known.

    A microscope's optics pass no signal above their cutoff, and an image sampled near
    Nyquist (or finer) keeps a band of its highest frequencies where only the noise is: there
    the power of the orthonormal cosine transform is flat, at the noise's variance (for photon
    noise, its mean over the image). This finds that band from the data: it starts from the
    highest-frequency 5% of the coefficients and widens inwards in steps of ``_FLAT_STEP`` of
    radius while the band stays white (its four parts, by direction and by radius, within
    ``_FLAT_SIGMAS``); a band that stays white over at least ``FLAT_MIN_SHARE`` of the
    coefficients gives the level. A clean image's spectrum keeps falling towards the corners,
    and correlated noise has less power there than its per-pixel variance: neither gives a
    wide white band, and both return None.

    Why: the intensity bands of :func:`noise_profile` read the noise of sparse bright
    structure low (0.31 of the true variance on the held-out confocal actin case at 400
    photons, under the floor at which a run without a kernel counts an image as clean); with a
    kernel given, :func:`beyond_cutoff_noise_std` reads it from the frequencies the kernel
    removed, and this is that reading for runs without one. Measured (``docs/benchmarks.md``,
    "Noise level read from the flat high frequencies"): a level on 17 of the 20 held-out
    simulations of ``benchmarks/deconvolution.py``, at 0.98-1.09 of the true variance (the
    bands: 0.31-1.01); on all 14 noisy inputs of the microscopy benchmark, at 1.01-1.03 of the
    true standard deviation (the bands: 0.79-1.27); on the clean Set5, Set14 and DIV2KRK
    inputs none, or one of 8-bit quantisation (0.0011-0.0013) that changes nothing, since the
    bands read them clean already.

    Parameters
    ----------
    plane : ndarray
        ``(Y, X)`` image, normalised intensities; a larger one is read from its central crop
        of ``_CUTOFF_MAX_SIDE`` px.

    Returns
    -------
    float or None
        The root-mean-square noise, in the plane's units, or None where no band of the
        highest frequencies is white over ``FLAT_MIN_SHARE`` of the coefficients.
    """
    x = _central_crop(_check_plane(plane))
    if x.size * CUTOFF_MIN_SHARE < 4 * _FLAT_MIN_PART:
        return None
    spectrum = _CosineSpectrum(x)
    radius = spectrum.radius
    inner = float(np.quantile(radius, 1.0 - CUTOFF_MIN_SHARE))
    found = None
    while inner > 0.0:
        band = radius >= inner
        level, spread = spectrum.band(band)
        if spread is None or spread > _FLAT_SIGMAS or level <= 0.0:
            break
        found = (level, float(band.mean()))
        inner -= _FLAT_STEP
    if found is None or found[1] < FLAT_MIN_SHARE:
        return None
    return float(np.sqrt(found[0]))


def _central_crop(x: np.ndarray) -> np.ndarray:
    """The central ``_CUTOFF_MAX_SIDE`` x ``_CUTOFF_MAX_SIDE`` px of a plane (all of a smaller
    one), from which both spectral readings take the noise."""
    h, w = (min(n, _CUTOFF_MAX_SIDE) for n in x.shape)
    y0, x0 = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
    return x[y0 : y0 + h, x0 : x0 + w]


class _CosineSpectrum:
    """The orthonormal cosine transform's power of a plane, with each coefficient's frequency
    (``(i / h, j / w)``, 1 at the Nyquist limit along an axis) and radius, and the whiteness
    test both spectral readings use."""

    def __init__(self, x: np.ndarray) -> None:
        from scipy.fft import dctn

        h, w = x.shape
        self.power = dctn(x, type=2, norm="ortho") ** 2
        self.fy, self.fx = np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")
        self.radius = np.hypot(self.fy, self.fx)

    def band(self, mask: np.ndarray) -> tuple[float, float | None]:
        """The mean power of the coefficients in ``mask`` and how far from white it is: the
        range of the mean powers of its four parts (below and above the diagonal, inside and
        outside its median radius) over the level, in standard deviations of a part's mean
        (``sqrt(2 / n)`` relative for ``n`` coefficients of white noise); None where a part
        is empty."""
        level = float(np.mean(self.power[mask]))
        outer = self.radius >= np.median(self.radius[mask])
        upper = self.fy > self.fx
        parts = [
            self.power[mask & upper & outer],
            self.power[mask & upper & ~outer],
            self.power[mask & ~upper & outer],
            self.power[mask & ~upper & ~outer],
        ]
        n = min(p.size for p in parts)
        if n == 0 or level <= 0.0:
            return level, None
        means = [float(p.mean()) for p in parts]
        return level, (max(means) - min(means)) / level / math.sqrt(2.0 / n)


#: Estimated noise (fraction of the intensity range) above which noise-free sons do harm. On
#: the microscopy benchmark (docs/benchmarks.md, `fast`, noise 0 on the sons), a PSF kernel put
#: every image below bicubic: by 0.5 to 7.1 dB at high SNR (estimates 0.012 to 0.029) and by
#: 8.6 to 12.5 dB at low SNR; the bicubic kernel by up to 1.7 dB at high SNR and by 1.1 to 3.8
#: dB at low SNR (0.05 to 0.09). The bicubic-kernel threshold sits above the clean Set5, Set14
#: and DIV2KRK inputs' estimates (at most 0.011, benchmarks/noise_estimate.py).
NOISY_WITH_KERNEL = 0.01
NOISY_WITHOUT_KERNEL = 0.015


#: Estimates below these count as a noise-free image under ``noise_std="auto"`` (no noise on
#: the sons, back-projection kept). Without a kernel: the clean Set5, Set14 and DIV2KRK inputs
#: read 0.001 to 0.011 (fine texture, compression), and adding that much cost Set5 x2 `fast`
#: up to 0.4 dB (bird 41.00 -> 40.64, butterfly 31.32 -> 31.07 dB, 1 thread) through the loss
#: of back-projection (butterfly with the noise and back-projection kept: 31.64 dB); the
#: microscopy benchmark's noisy images read 0.012 and more. With a PSF kernel, which amplifies
#: any noise the sons lack, only the level of 8-bit quantisation and clean renders (DIV2KRK
#: with its true kernels: at most 0.0023) counts as clean, and the same lower floor applies to
#: a level read from the spectrum without a kernel (:func:`flat_spectrum_noise_std`, see
#: :func:`auto_noise_std`).
CLEAN_BELOW_WITHOUT_KERNEL = 0.01
CLEAN_BELOW_WITH_KERNEL = 0.003


def auto_noise_std(estimate: float, *, with_kernel: bool, from_spectrum: bool = False) -> float:
    """The noise ``noise_std="auto"`` adds to the sons for an image's estimated noise.

    Parameters
    ----------
    estimate : float
        The image's estimated noise (:func:`estimate_noise_std`), fraction of the range.
    with_kernel : bool
        Whether the run uses a PSF kernel.
    from_spectrum : bool, optional
        Whether the level was read from a band of the spectrum that holds noise alone
        (:func:`beyond_cutoff_noise_std`, :func:`flat_spectrum_noise_std`). The higher floor
        without a kernel is there for texture that the intensity bands read as noise; a
        band of flat power over 15% of the spectrum is not texture, so the floor with a
        kernel applies. Measured (``docs/benchmarks.md``): white noise of 0.005-0.01 on the
        phase-contrast cell at 128 px read 0.0049-0.0098 from its flat band, under the
        higher floor: counted as clean, the defaults fell 4.0-4.1 dB below bicubic; with the
        noise on the sons they are level with it or, at 0.01, 2.0 dB above. No clean or
        natural input of the benchmarks has such a band above 8-bit quantisation.

    Returns
    -------
    float
        ``estimate``, or 0 when it is below the level that counts as noise-free
        (``CLEAN_BELOW_WITH_KERNEL`` or ``CLEAN_BELOW_WITHOUT_KERNEL``).
    """
    lower = with_kernel or from_spectrum
    floor = CLEAN_BELOW_WITH_KERNEL if lower else CLEAN_BELOW_WITHOUT_KERNEL
    return float(estimate) if estimate >= floor else 0.0


def noise_warning(noise_std: float, estimate: float, *, with_kernel: bool) -> str | None:
    """A warning when the noise on the sons is far below the image's own noise, else None.

    Parameters
    ----------
    noise_std : float
        The noise the run adds to the LR sons (fraction of the normalised intensity range).
    estimate : float
        The image's estimated noise (:func:`estimate_noise_std`), same units.
    with_kernel : bool
        Whether the run uses a PSF kernel (noise-free sons then amplify the noise most).

    Returns
    -------
    str or None
        The message, naming the likely outcome and what to do.
    """
    threshold = NOISY_WITH_KERNEL if with_kernel else NOISY_WITHOUT_KERNEL
    if estimate < threshold or noise_std >= 0.5 * estimate:
        return None
    harm = (
        "with a PSF kernel the result is likely to be far worse than bicubic interpolation"
        if with_kernel
        else "the result is likely to be worse than bicubic interpolation"
    )
    return (
        f"the image's estimated noise is {estimate:.4f} (fraction of its intensity range) but "
        f"noise_std is {noise_std:.4g}: the network will learn to sharpen the noise and {harm}. "
        f"Leave the noise at 'auto' (the default) or set it near {estimate:.3f}."
    )
