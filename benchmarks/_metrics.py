"""Image-quality metrics with the evaluation conventions of the super-resolution literature.

The convention of the VDSR/ZSSR-era MATLAB evaluation scripts:

* colour images are compared on the luma (Y) channel of YCbCr as MATLAB's ``rgb2ycbcr``
  computes it (ITU-R BT.601, "studio" range 16-235):
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B)`` for R, G, B in [0, 1], i.e. Y in [16, 235];
  for uint8 input MATLAB returns uint8, so Y is rounded to the nearest integer;
* grayscale (2-D) images are compared as they are;
* ``shave`` pixels (the scale factor) are removed from every border before measuring;
* PSNR uses a peak of 255; SSIM uses an 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
  K2 = 0.03, population (not sample) covariances and a data range of 255, which is what
  MATLAB's ``ssim`` and the reference ``ssim_index.m`` compute.

This module depends on NumPy and scikit-image only, so it can be imported from any
benchmark script (``from _metrics import ...`` when run from ``benchmarks/``) or as
``benchmarks._metrics`` from the repository root.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

__all__ = [
    "PEAK",
    "evaluate_pair",
    "psnr",
    "rgb_to_y",
    "shave",
    "shave_for_scale",
    "ssim",
    "to_luma",
]

PEAK = 255.0
"""Peak value of the 8-bit range in which all metrics are computed."""

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)


def rgb_to_y(rgb: np.ndarray, *, round_uint8: bool | None = None) -> np.ndarray:
    """Luma channel of MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, range 16-235).

    Parameters
    ----------
    rgb : ndarray
        ``(H, W, 3)`` (or ``(H, W, 4)``, alpha ignored) uint8 image, or a float image with
        values in [0, 255].
    round_uint8 : bool, optional
        Round Y to integers as MATLAB does for uint8 input. None (default): round when
        ``rgb`` is uint8.

    Returns
    -------
    ndarray
        float64 ``(H, W)`` with values in [16, 235].

    Raises
    ------
    ValueError
        If ``rgb`` does not have 3 or 4 channels on its last axis.
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"rgb_to_y needs an (H, W, 3|4) image, got shape {arr.shape}")
    if round_uint8 is None:
        round_uint8 = arr.dtype == np.uint8
    y = 16.0 + arr[..., :3].astype(np.float64) @ _Y_WEIGHTS / 255.0
    if round_uint8:
        y = np.clip(np.floor(y + 0.5), 0.0, 255.0)
    return y


def to_luma(img: np.ndarray) -> np.ndarray:
    """The channel the metrics are computed on: Y for colour, the image itself for gray.

    Parameters
    ----------
    img : ndarray
        ``(H, W)`` grayscale or ``(H, W, 3|4)`` colour image in the 0-255 range.

    Returns
    -------
    ndarray
        float64 ``(H, W)``.

    Raises
    ------
    ValueError
        For any other shape.
    """
    arr = np.asarray(img)
    if arr.ndim == 2:
        return arr.astype(np.float64)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        return arr[..., 0].astype(np.float64)
    return rgb_to_y(arr)


def shave_for_scale(scale: float) -> int:
    """Border width removed before measuring: the scale factor, rounded up to an integer."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    return math.ceil(round(float(scale), 9))


def shave(img: np.ndarray, border: int) -> np.ndarray:
    """Remove ``border`` pixels from each side of the first two axes.

    Raises
    ------
    ValueError
        If ``border`` is negative or leaves nothing of the image.
    """
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border == 0:
        return img
    h, w = img.shape[:2]
    if h <= 2 * border or w <= 2 * border:
        raise ValueError(f"cannot shave {border} px from each side of a {h}x{w} image")
    return img[border : h - border, border : w - border]


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images to compare differ in shape: {a.shape} vs {b.shape}")
    if a.ndim != 2:
        raise ValueError(f"metrics are computed on 2-D (luma) images, got shape {a.shape}")


def psnr(test: np.ndarray, reference: np.ndarray, *, peak: float = PEAK) -> float:
    """Peak signal-to-noise ratio in dB of two 2-D images in the 0-``peak`` range.

    Returns ``inf`` for identical images.
    """
    a = np.asarray(test, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    _check_pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def ssim(test: np.ndarray, reference: np.ndarray, *, peak: float = PEAK) -> float:
    """Structural similarity of two 2-D images (Gaussian 11x11 window, sigma 1.5).

    Matches MATLAB's ``ssim`` / the reference ``ssim_index.m`` to about 1e-4.
    """
    a = np.asarray(test, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    _check_pair(a, b)
    return float(
        structural_similarity(
            a,
            b,
            data_range=peak,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            K1=0.01,
            K2=0.03,
        )
    )


def evaluate_pair(sr: np.ndarray, hr: np.ndarray, scale: float) -> tuple[float, float]:
    """PSNR and SSIM of a super-resolved image against its ground truth, field convention.

    Both images are reduced to luma (:func:`to_luma`), ``shave_for_scale(scale)`` pixels
    are removed from every border, then :func:`psnr` and :func:`ssim` are computed.

    Parameters
    ----------
    sr, hr : ndarray
        ``(H, W)`` or ``(H, W, 3)`` images in the 0-255 range (uint8 normally), same shape.
    scale : float
        The super-resolution factor (the shaved border).

    Returns
    -------
    (float, float)
        PSNR in dB and SSIM.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    if np.shape(sr) != np.shape(hr):
        raise ValueError(
            f"output shape {np.shape(sr)} differs from the ground truth's {np.shape(hr)}"
        )
    border = shave_for_scale(scale)
    y_sr = shave(to_luma(sr), border)
    y_hr = shave(to_luma(hr), border)
    return psnr(y_sr, y_hr), ssim(y_sr, y_hr)
