"""The noise estimate on clean small images, on noise correlated between neighbours, and from
the differences of a time-lapse's planes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.signal import fftconvolve

from napari_zssr.core.noise import (
    CLEAN_BELOW_WITHOUT_KERNEL,
    auto_noise_std,
    difference_noise_std,
    estimate_noise_std,
    stack_noise_std,
)

#: white noise through this filter: neighbours correlate 0.47 along Y and 0.17 along X
CORRELATE = np.array([[1.0, 0.35], [1.0, 0.0]])


def _correlated(shape: tuple[int, int], sigma: float, seed: int) -> np.ndarray:
    white = np.random.default_rng(seed).normal(0.0, 1.0, (shape[0] + 1, shape[1] + 1))
    out = fftconvolve(white, CORRELATE, mode="valid")[: shape[0], : shape[1]]
    return out * sigma / np.sqrt(np.sum(CORRELATE**2))


def _render(kind: str, side: int, seed: int = 0) -> np.ndarray:
    """Noise-free structure on a grid twice as fine, blurred (1 px), averaged 2 x 2."""
    rng = np.random.default_rng(seed)
    big = 2 * side
    yy, xx = np.mgrid[:big, :big].astype(np.float64)
    obj = np.zeros((big, big))
    if kind == "nuclei":
        for _ in range(10):
            cy, cx = rng.uniform(0, big, 2)
            ry, rx = rng.uniform(big / 20, big / 8, 2)
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
            obj[inside] = rng.uniform(0.4, 1.0)
    elif kind == "spots":
        n = big * big // 400
        obj[rng.integers(0, big, n), rng.integers(0, big, n)] = rng.uniform(0.3, 1.0, n)
    else:  # membranes: Voronoi cell borders
        seeds = rng.uniform(0, big, (20, 2))
        d = np.sort(np.hypot(yy[..., None] - seeds[:, 0], xx[..., None] - seeds[:, 1]))
        obj = (d[..., 1] - d[..., 0] < 1.5).astype(np.float64)
    img = ndimage.gaussian_filter(obj, 1.0)
    img = img.reshape(side, 2, side, 2).mean(axis=(1, 3))
    # 12-bit quantisation, as a camera stores it
    return np.round(img / img.max() * 4095.0) / 4095.0


@pytest.mark.parametrize("kind", ["nuclei", "spots", "membranes"])
@pytest.mark.parametrize("side", [64, 96, 128])
def test_clean_small_images_read_as_noise_free(kind: str, side: int) -> None:
    # the default run (no kernel) counts them as noise-free: no noise on the sons,
    # back-projection kept
    clean = _render(kind, side)
    estimate = estimate_noise_std(clean)
    assert estimate < CLEAN_BELOW_WITHOUT_KERNEL
    assert auto_noise_std(estimate, with_kernel=False) == 0.0


def _smooth(side: int) -> np.ndarray:
    yy, xx = np.mgrid[:side, :side]
    return 0.5 + 0.2 * np.sin(yy / 9.0) * np.cos(xx / 7.0)


@pytest.mark.parametrize("sigma", [0.02, 0.04])
@pytest.mark.parametrize("side", [96, 192])
def test_correlated_noise_reads_its_per_pixel_level(sigma: float, side: int) -> None:
    # the eigenvalue bulk alone reads about a third of it (0.3 - 0.5 x sigma)
    noisy = _smooth(side) + _correlated((side, side), sigma, seed=side)
    assert estimate_noise_std(noisy) == pytest.approx(sigma, rel=0.25)


@pytest.mark.parametrize("sigma", [0.01, 0.03])
def test_white_noise_is_not_raised(sigma: float) -> None:
    rng = np.random.default_rng(3)
    noisy = _smooth(256) + rng.normal(0.0, sigma, (256, 256))
    assert 0.85 * sigma <= estimate_noise_std(noisy) <= 1.1 * sigma


def test_difference_of_frames_reads_correlated_noise_on_texture() -> None:
    rng = np.random.default_rng(4)
    texture = ndimage.gaussian_filter(rng.random((128, 128)), 0.7)
    texture = (texture - texture.min()) / np.ptp(texture)
    frames = [texture + _correlated((128, 128), 0.03, seed=s) for s in range(4)]
    assert difference_noise_std(frames[0], frames[1]) == pytest.approx(0.03, rel=0.08)
    assert stack_noise_std(frames) == pytest.approx(0.03, rel=0.08)
    # a moving object (a few percent of the pixels) hardly changes it
    frames[1][10:30, 10:30] += 0.5
    assert difference_noise_std(frames[0], frames[1]) == pytest.approx(0.03, rel=0.1)
    assert difference_noise_std(texture, texture) == 0.0


def test_stack_estimate_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2 planes"):
        stack_noise_std([np.zeros((8, 8))])
    with pytest.raises(ValueError, match="differ in shape"):
        difference_noise_std(np.zeros((8, 8)), np.zeros((8, 9)))
