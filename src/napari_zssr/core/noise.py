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

Measured (``python benchmarks/noise_estimate.py``, docs/benchmarks.md): about 3% below the
true level on pure Gaussian noise; within 20% of the simulated root-mean-square noise on the
microscopy benchmark's Poisson-Gaussian images; 0 to 0.0001 on their noise-free renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "NoiseProfile",
    "auto_noise_std",
    "estimate_noise_std",
    "immerkaer_noise_std",
    "noise_profile",
    "noise_warning",
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
        mean_intensity = float(np.sum(self.weights * self.means))
        # maximise gain * mean + offset subject to gain * m_k + offset <= slack * var_k
        res = linprog(
            c=[-mean_intensity, -1.0],
            A_ub=np.column_stack([self.means[keep], np.ones(int(keep.sum()))]),
            b_ub=_BAND_SLACK * self.stds[keep] ** 2,
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
    """Noise variance from the eigenvalues of the patches' covariance (Chen et al.'s test)."""
    lam = np.linalg.eigvalsh(np.cov(patches, rowvar=False))
    lam = np.sort(np.maximum(lam, 0.0))
    # drop the largest eigenvalues (structure) until the rest have mean <= median
    for m in range(lam.size, 0, -1):
        bulk = lam[:m]
        if bulk.mean() <= np.median(bulk):
            return float(bulk.mean())
    return float(lam[0])


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
    weights = np.array([len(b) for b in bands], dtype=np.float64)
    return NoiseProfile(
        means=np.array([float(means[b].mean()) for b in bands]),
        stds=np.sqrt(var),
        weights=weights / weights.sum(),
    )


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
#: with its true kernels: at most 0.0023) counts as clean.
CLEAN_BELOW_WITHOUT_KERNEL = 0.01
CLEAN_BELOW_WITH_KERNEL = 0.003


def auto_noise_std(estimate: float, *, with_kernel: bool) -> float:
    """The noise ``noise_std="auto"`` adds to the sons for an image's estimated noise.

    Parameters
    ----------
    estimate : float
        The image's estimated noise (:func:`estimate_noise_std`), fraction of the range.
    with_kernel : bool
        Whether the run uses a PSF kernel.

    Returns
    -------
    float
        ``estimate``, or 0 when it is below the level that counts as noise-free
        (``CLEAN_BELOW_WITH_KERNEL`` or ``CLEAN_BELOW_WITHOUT_KERNEL``).
    """
    floor = CLEAN_BELOW_WITH_KERNEL if with_kernel else CLEAN_BELOW_WITHOUT_KERNEL
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
