"""The noise read from the spectrum where it holds noise alone: beyond the cutoff of a given
kernel (core.noise.beyond_cutoff_noise_std), or, with no kernel, from a flat band of the
highest frequencies (core.noise.flat_spectrum_noise_std); and their use by the runs
(arrays.degradation.NoiseProfiles)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

from napari_zssr import super_resolve
from napari_zssr.arrays.degradation import NoiseProfiles
from napari_zssr.arrays.intensity import intensity_info
from napari_zssr.arrays.planes import make_layout
from napari_zssr.core.config import PRESETS
from napari_zssr.core.inference import degrade
from napari_zssr.core.kernels import prepare_kernel
from napari_zssr.core.noise import (
    CLEAN_BELOW_WITH_KERNEL,
    CLEAN_BELOW_WITHOUT_KERNEL,
    auto_noise_std,
    beyond_cutoff_noise_std,
    estimate_noise_std,
    flat_spectrum_noise_std,
)
from napari_zssr.core.resize import imresize


def _gaussian(sigma: float, half: int) -> np.ndarray:
    r = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-0.5 * (r / sigma) ** 2)
    k = np.outer(g, g)
    return k / k.sum()


#: A PSF wide enough (2.5 HR px) that at x2 it leaves about half of the input's
#: frequencies without signal, as a widefield PSF sampled near Nyquist does.
WIDE = _gaussian(2.5, 12)


def _object(kind: str, side: int, seed: int) -> np.ndarray:
    """Sparse bright structure on a dark background, on the output grid (``side`` px)."""
    rng = np.random.default_rng(seed)
    obj = np.full((side, side), 0.02)
    if kind == "spots":
        n = side * side // 150
        obj[rng.integers(0, side, n), rng.integers(0, side, n)] = rng.uniform(0.5, 1.0, n)
    else:  # filaments: thin lines
        yy, xx = np.mgrid[:side, :side].astype(np.float64)
        for _ in range(10):
            a, c = rng.uniform(0, np.pi), rng.uniform(0, side)
            d = np.abs((xx - side / 2) * np.cos(a) + (yy - side / 2) * np.sin(a) - (c - side / 2))
            obj += 0.8 * (d < 0.7)
    return obj


def _acquire(obj: np.ndarray, kernel: np.ndarray, photons: float, seed: int):
    """The input (normalised to [0, 1] of its range) through ``kernel`` at x2 with Poisson
    noise and 2 e- read noise, and the true root-mean-square noise in those units."""
    clean = degrade(torch.tensor(obj[None]), (2.0, 2.0), prepare_kernel(kernel, (2.0, 2.0)))
    clean = np.clip(clean[0].double().numpy(), 0.0, None) * photons
    rng = np.random.default_rng(seed)
    counts = rng.poisson(clean) + rng.normal(0.0, 2.0, clean.shape)
    lo, hi = counts.min(), counts.max()
    true = np.sqrt(np.mean(clean) + 4.0) / (hi - lo)
    return (counts - lo) / (hi - lo), float(true), counts


@pytest.mark.parametrize("kind", ["spots", "filaments"])
@pytest.mark.parametrize("photons", [100.0, 400.0])
def test_the_noise_beyond_the_cutoff_is_read_at_its_level(kind: str, photons: float):
    plane, true, _ = _acquire(_object(kind, 256, seed=1), WIDE, photons, seed=2)
    read = beyond_cutoff_noise_std(plane, WIDE, (2.0, 2.0))
    assert read == pytest.approx(true, rel=0.08)


def test_a_narrow_kernel_leaves_no_band_to_read():
    # a kernel 0.6 HR px wide passes signal up to the input's Nyquist limit
    plane, _, _ = _acquire(_object("spots", 128, seed=1), _gaussian(0.6, 3), 400.0, seed=2)
    assert beyond_cutoff_noise_std(plane, _gaussian(0.6, 3), (2.0, 2.0)) is None


def test_a_clean_image_reads_only_its_quantisation():
    clean = degrade(torch.tensor(_object("filaments", 256, 1)[None]), (2.0, 2.0),
                    prepare_kernel(WIDE, (2.0, 2.0)))[0].double().numpy()  # fmt: skip
    plane = np.round(clean / clean.max() * 4095.0) / 4095.0  # 12-bit
    # quantisation and the signal's last traces are not white noise: nothing, or a level
    # under the clean floor, is read
    read = beyond_cutoff_noise_std(plane, WIDE, (2.0, 2.0))
    assert read is None or read < CLEAN_BELOW_WITH_KERNEL


def test_a_large_plane_is_read_from_its_middle():
    plane, true, _ = _acquire(_object("spots", 1400, seed=3), WIDE, 400.0, seed=4)
    assert plane.shape == (700, 700)
    assert beyond_cutoff_noise_std(plane, WIDE, (2.0, 2.0)) == pytest.approx(true, rel=0.08)


def _profiles(counts: np.ndarray, kernel) -> NoiseProfiles:
    arr = counts.astype(np.float32)
    layout = make_layout(arr.shape, None, False)
    return NoiseProfiles(arr, layout, intensity_info(arr, layout), kernel, (2.0, 2.0))


def test_a_given_kernel_sets_the_level_and_the_bands_keep_the_shape():
    _, true, counts = _acquire(_object("spots", 256, seed=1), WIDE, 400.0, seed=2)
    idx = (0,) * (counts.ndim - 2)
    bands = _profiles(counts, None).plane(idx)[0][0]
    scaled = _profiles(counts, WIDE).plane(idx)[0][0]
    assert scaled.rms == pytest.approx(true, rel=0.08)
    # the shape across intensities is the bands': every band's level moved by one factor
    ratio = scaled.stds / bands.stds
    assert np.allclose(ratio, ratio[0], rtol=1e-6)
    np.testing.assert_array_equal(scaled.means, bands.means)
    # an estimate is no given kernel: the bands are used as they are
    assert _profiles(counts, "estimate").plane(idx)[0][0].rms == bands.rms


def _short_run_info(img: np.ndarray, **kwargs) -> dict:
    """The run information of a 4-iteration `fast` run at x2 (warnings silenced): what the
    run read and decided before training is all these tests look at."""
    cfg = PRESETS["fast"].replace(max_iters=4, min_iters=1, self_ensemble=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return super_resolve(img, 2, config=cfg, return_info=True, **kwargs)[1]


def test_a_run_with_a_psf_records_where_its_noise_level_came_from():
    _, true, counts = _acquire(_object("filaments", 192, seed=5), WIDE, 300.0, seed=6)
    img = np.round(counts - counts.min()).astype(np.uint16)
    info, plain = _short_run_info(img, kernel=WIDE), _short_run_info(img)
    assert info["noise_estimate_from"] == "beyond the kernel's cutoff"
    assert info["noise_estimate"] == pytest.approx(true, rel=0.1)
    assert info["noise_std"] == info["noise_estimate"]
    # without a kernel, the image's flat high frequencies (it is band-limited) give the level
    assert plain["noise_estimate_from"] == "flat high frequencies"
    assert plain["noise_estimate"] == pytest.approx(true, rel=0.1)
    # the bands' own reading beside it (the run's own normalisation differs from this one
    # in the last digits)
    bands = estimate_noise_std(_normalised(img))
    assert plain["noise_estimate_bands"] == pytest.approx(bands, rel=1e-3)


def _normalised(img: np.ndarray) -> np.ndarray:
    lo, hi = float(img.min()), float(img.max())
    return (img.astype(np.float64) - lo) / (hi - lo)


def test_white_noise_on_a_flat_field_reads_its_level():
    rng = np.random.default_rng(0)
    plane = 0.5 + rng.normal(0.0, 0.02, (128, 128))
    assert beyond_cutoff_noise_std(plane, WIDE, (2.0, 2.0)) == pytest.approx(0.02, rel=0.05)


def test_a_ramp_or_smooth_shading_does_not_leak_into_the_reading():
    # the cosine transform has no seam at the borders: a strong ramp adds nothing up there
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:128, :128] / 128.0
    plane = 0.2 + 0.6 * xx + 0.1 * np.sin(3 * yy) + rng.normal(0.0, 0.01, (128, 128))
    assert beyond_cutoff_noise_std(plane, WIDE, (2.0, 2.0)) == pytest.approx(0.01, rel=0.05)


def test_noise_correlated_between_neighbours_is_not_read_low():
    """Correlated noise (EMCCD, binning) has little power at high frequencies: the band beyond
    the cutoff would read a fraction of its per-pixel level, so nothing is read from it."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(2)
    white = rng.normal(0.0, 1.0, (129, 129))
    filt = np.array([[1.0, 0.35], [1.0, 0.0]])  # neighbours correlate 0.47 (Y) and 0.17 (X)
    noise = fftconvolve(white, filt, mode="valid")[:128, :128] / np.sqrt(np.sum(filt**2))
    plane = 0.5 + 0.02 * noise
    assert beyond_cutoff_noise_std(plane, WIDE, (2.0, 2.0)) is None


# -- no kernel: the flat high frequencies ---------------------------------------------------


@pytest.mark.parametrize("kind", ["spots", "filaments"])
def test_a_band_limited_image_reads_its_noise_from_the_flat_high_frequencies(kind: str):
    plane, true, _ = _acquire(_object(kind, 256, seed=1), WIDE, 100.0, seed=2)
    assert flat_spectrum_noise_std(plane) == pytest.approx(true, rel=0.08)


def test_sparse_structure_the_bands_read_low_is_read_at_its_level():
    # sparse bright filaments with photon noise: the intensity bands read the quiet dark
    # pixels; the spectrum does not look at the structure
    plane, true, _ = _acquire(_object("filaments", 256, seed=3), WIDE, 400.0, seed=4)
    assert estimate_noise_std(plane) < 0.85 * true
    assert flat_spectrum_noise_std(plane) == pytest.approx(true, rel=0.08)


def _clean_downscaled(kind: str, side: int, seed: int) -> np.ndarray:
    """A clean 12-bit input made as the benchmarks make clean inputs: an object blurred by a
    1 px Gaussian, downscaled x2 with MATLAB's antialiased bicubic."""
    from scipy import ndimage

    obj = ndimage.gaussian_filter(_object(kind, 2 * side, seed), 1.0)
    small = np.clip(imresize(torch.from_numpy(obj), out_shape=(side, side)).numpy(), 0.0, None)
    return np.round(small / small.max() * 4095.0) / 4095.0


@pytest.mark.parametrize("kind", ["spots", "filaments"])
@pytest.mark.parametrize("side", [64, 128])
def test_a_clean_image_gives_no_level_or_one_under_the_clean_floor(kind: str, side: int):
    read = flat_spectrum_noise_std(_clean_downscaled(kind, side, seed=5))
    assert read is None or read < 0.5 * CLEAN_BELOW_WITHOUT_KERNEL


def test_a_natural_image_whose_spectrum_keeps_falling_gives_no_level():
    from skimage import data

    cam = data.camera().astype(np.float64) / 255.0
    small = imresize(torch.from_numpy(cam), out_shape=(256, 256)).numpy()
    assert flat_spectrum_noise_std(np.clip(small, 0.0, 1.0)) is None


def test_noise_correlated_between_neighbours_gives_no_level():
    rng = np.random.default_rng(2)
    white = rng.normal(0.0, 1.0, (257, 257))
    filt = np.array([[1.0, 0.35], [1.0, 0.0]])  # neighbours correlate 0.47 (Y) and 0.17 (X)
    noise = fftconvolve(white, filt, mode="valid")[:256, :256] / np.sqrt(np.sum(filt**2))
    assert flat_spectrum_noise_std(0.5 + 0.02 * noise) is None


def test_white_noise_reads_its_level_or_nothing_and_a_tiny_plane_reads_nothing():
    # the whiteness test refuses about 1 band in 100 of white noise, and then nothing is read
    # (the run keeps the intensity bands' level, which holds for white noise)
    reads = [
        flat_spectrum_noise_std(0.5 + np.random.default_rng(s).normal(0.0, 0.02, (128, 128)))
        for s in range(10)
    ]
    assert sum(r is not None for r in reads) >= 8
    assert all(r == pytest.approx(0.02, rel=0.05) for r in reads if r is not None)
    tiny = 0.5 + np.random.default_rng(0).normal(0.0, 0.02, (40, 40))
    assert flat_spectrum_noise_std(tiny) is None


def test_without_a_kernel_the_flat_band_sets_the_level_and_an_estimate_keeps_the_bands():
    _, true, counts = _acquire(_object("filaments", 256, seed=3), WIDE, 400.0, seed=4)
    idx = (0,) * (counts.ndim - 2)
    blind = _profiles(counts, None)
    scaled = blind.plane(idx)[0][0]
    assert scaled.rms == pytest.approx(true, rel=0.08)
    assert blind.spectral_source == "flat high frequencies"
    (bands_level, read) = blind.spectral_levels[idx][0]
    assert read == pytest.approx(scaled.rms, rel=1e-3) and bands_level < 0.85 * true
    # kernel="estimate" is fitted with the bands' level: it keeps it
    estimate = _profiles(counts, "estimate")
    assert estimate.plane(idx)[0][0].rms == pytest.approx(bands_level, rel=1e-12)
    assert not estimate.spectral_levels


def test_a_run_without_a_kernel_says_where_its_noise_came_from():
    _, true, counts = _acquire(_object("spots", 192, seed=5), WIDE, 300.0, seed=6)
    img = np.round(counts - counts.min()).astype(np.uint16)
    info = _short_run_info(img)
    assert info["noise_estimate_from"] == "flat high frequencies"
    assert info["noise_std"] == info["noise_estimate"] == pytest.approx(true, rel=0.1)
    from napari_zssr.pipeline.run import describe_noise

    assert "flat high frequencies" in describe_noise(info)


def test_the_lower_clean_floor_holds_for_a_level_read_from_the_spectrum():
    # a band of flat power is not texture: the floor a kernel run uses applies
    assert auto_noise_std(0.006, with_kernel=False) == 0.0
    assert auto_noise_std(0.006, with_kernel=False, from_spectrum=True) == 0.006
    assert auto_noise_std(0.002, with_kernel=False, from_spectrum=True) == 0.0


def test_low_white_noise_read_from_the_flat_band_is_not_counted_as_clean():
    """White noise under the no-kernel floor (0.01), read from a flat band: the run puts it on
    the sons instead of treating the image as clean (which sharpens the noise)."""
    clean = degrade(torch.tensor(_object("filaments", 256, 1)[None]), (2.0, 2.0),
                    prepare_kernel(WIDE, (2.0, 2.0)))[0].double().numpy()  # fmt: skip
    clean = (clean - clean.min()) / (clean.max() - clean.min())
    noisy = clean + np.random.default_rng(3).normal(0.0, 0.006, clean.shape)
    img = np.round(np.clip(noisy, 0.0, 1.0) * 4095.0).astype(np.uint16)
    info = _short_run_info(img)
    assert info["noise_estimate_from"] == "flat high frequencies"
    assert CLEAN_BELOW_WITH_KERNEL < info["noise_estimate"] < CLEAN_BELOW_WITHOUT_KERNEL
    assert info["noise_std"] == info["noise_estimate"]


def test_an_estimate_not_used_leaves_a_run_that_reads_its_noise_without_a_kernel(monkeypatch):
    """kernel="estimate" whose estimate is refused is a run without a kernel: its noise level
    comes from the flat band, as the defaults' does, from the bands already measured."""
    import napari_zssr.arrays.degradation as deg
    import napari_zssr.core.noise as core_noise

    _, true, counts = _acquire(_object("filaments", 256, seed=3), WIDE, 400.0, seed=4)
    idx = (0,) * (counts.ndim - 2)
    estimate = _profiles(counts, "estimate")
    bands = estimate.plane(idx)[0][0]
    calls = []
    original = core_noise.noise_profile

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(core_noise, "noise_profile", counted)
    blind = estimate.without_kernel()
    assert blind.plane(idx)[0][0].rms == pytest.approx(true, rel=0.08)
    assert not calls  # the bands were not measured again
    assert bands.rms < 0.85 * true

    # the run's set-up: the estimate refused, the noise read as without a kernel
    monkeypatch.setattr(deg, "resolve_kernel", lambda k, p, s: (None, None, "not used"))
    arr = counts.astype(np.float32)
    layout = make_layout(arr.shape, None, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg, kernel, _, info, profiles = deg.set_up_degradation(
            arr,
            layout,
            intensity_info(arr, layout),
            (2.0, 2.0),
            kernel="estimate",
            noise="auto",
            noise_model="gaussian",
            preset="fast",
            config=None,
            cfg=PRESETS["fast"],
            saved=_NoSaved(),
        )
    assert kernel is None and profiles.blind
    assert info["noise_estimate_from"] == "flat high frequencies"
    assert cfg.noise_std == pytest.approx(true, rel=0.08)


class _NoSaved:
    """No saved network: the configuration is the run's own."""

    def config(self, cfg):
        return cfg
