"""The noise estimate behind ``noise_std="auto"``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_zssr import super_resolve
from napari_zssr.core.config import ZSSRConfig, default_noise_std, resolve_config
from napari_zssr.core.noise import (
    auto_noise_std,
    estimate_noise_std,
    immerkaer_noise_std,
    noise_profile,
    noise_warning,
)

TINY = ZSSRConfig(max_iters=4, crop_size=16, width=8, self_ensemble=False, eval_every=2)


def _smooth(shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return 0.5 + 0.2 * np.sin(yy / 9.0) * np.cos(xx / 7.0) + 0.001 * xx


@pytest.mark.parametrize("sigma", [0.005, 0.02, 0.08])
def test_estimate_recovers_gaussian_noise(sigma: float) -> None:
    rng = np.random.default_rng(1)
    img = _smooth((256, 256)) + rng.normal(0.0, sigma, (256, 256))
    assert estimate_noise_std(img) == pytest.approx(sigma, rel=0.1)


@pytest.mark.parametrize("estimator", [estimate_noise_std, immerkaer_noise_std])
def test_estimate_ignores_planes_and_ramps(estimator) -> None:
    yy, xx = np.mgrid[:64, :64]
    assert estimator(np.full((64, 64), 3.0)) == 0.0
    assert estimator(0.01 * yy + 0.02 * xx) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("estimator", [estimate_noise_std, immerkaer_noise_std])
def test_estimate_refuses_bad_shapes(estimator) -> None:
    with pytest.raises(ValueError, match="2-D"):
        estimator(np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="3 x 3"):
        estimator(np.zeros((2, 40)))
    with pytest.raises(ValueError, match="finite"):
        estimator(np.full((16, 16), np.nan))


def _render(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A noise-free fluorescence-like render: random points and filaments blurred by a PSF."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    obj = np.zeros(shape)
    obj[rng.integers(0, shape[0], 300), rng.integers(0, shape[1], 300)] = 1.0
    for _ in range(12):  # straight filaments
        y0, x0 = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        t = np.linspace(0, 1, 400)
        angle = rng.uniform(0, np.pi)
        ys = np.clip(y0 + 80 * t * np.sin(angle), 0, shape[0] - 1).astype(int)
        xs = np.clip(x0 + 80 * t * np.cos(angle), 0, shape[1] - 1).astype(int)
        obj[ys, xs] = 0.6
    img = ndimage.gaussian_filter(obj, 2.0)
    return img / img.max()


def test_estimate_is_near_zero_on_clean_structure() -> None:
    # Immerkaer's estimator reads this render's structure as noise; the patch estimator
    # must not (tolerance: 0.002 of the range, a fifth of the lowest noise that matters).
    clean = _render((256, 256))
    assert estimate_noise_std(clean) < 0.002
    assert immerkaer_noise_std(clean) > estimate_noise_std(clean)


def test_estimate_of_signal_dependent_noise_is_its_rms() -> None:
    # Poisson noise: strong where the signal is bright, weak in the background. The estimate
    # is the root-mean-square over the image, not the background's level.
    rng = np.random.default_rng(2)
    clean = 0.05 + 0.95 * _render((256, 256), seed=3)
    peak = 200.0
    noisy = rng.poisson(clean * peak) / peak
    rms = float(np.sqrt(np.mean(clean / peak)))
    assert estimate_noise_std(noisy) == pytest.approx(rms, rel=0.15)
    profile = noise_profile(noisy)
    assert profile.stds[-1] > 1.5 * profile.stds[0]  # rises with intensity
    assert profile.weights.sum() == pytest.approx(1.0)


def test_estimate_on_a_large_plane_uses_a_seeded_subset() -> None:
    rng = np.random.default_rng(4)
    img = 0.5 + rng.normal(0.0, 0.03, (600, 600))
    first = estimate_noise_std(img)
    assert first == estimate_noise_std(img)  # same seed, same subset
    assert first == pytest.approx(0.03, rel=0.06)


def test_defaults_per_preset() -> None:
    assert default_noise_std("fast") == "auto"
    assert default_noise_std("balanced") == "auto"
    assert default_noise_std("real") == "auto"
    assert default_noise_std("paper") == 0.0
    assert default_noise_std("paper-gradual") == 0.0
    assert default_noise_std("paper", TINY) == 0.0
    assert default_noise_std(None, TINY) == "auto"
    assert default_noise_std("paper", TINY.replace(noise_std=0.02)) == 0.02


def test_auto_counts_a_low_estimate_as_noise_free() -> None:
    assert auto_noise_std(0.009, with_kernel=False) == 0.0
    assert auto_noise_std(0.012, with_kernel=False) == 0.012
    assert auto_noise_std(0.002, with_kernel=True) == 0.0
    assert auto_noise_std(0.005, with_kernel=True) == 0.005


def test_warning_thresholds() -> None:
    assert noise_warning(0.0, 0.05, with_kernel=False) is not None
    assert noise_warning(0.0, 0.015, with_kernel=True) is not None
    assert noise_warning(0.0, 0.012, with_kernel=True) is not None
    assert noise_warning(0.0, 0.012, with_kernel=False) is None  # below the no-kernel level
    assert noise_warning(0.03, 0.05, with_kernel=False) is None  # close enough
    message = noise_warning(0.001, 0.05, with_kernel=True)
    assert message is not None and "0.0500" in message and "bicubic" in message


def _noisy(sigma: float = 0.03, shape: tuple[int, int] = (48, 48)) -> np.ndarray:
    rng = np.random.default_rng(0)
    clean = _smooth(shape)
    return np.clip(clean + rng.normal(0.0, sigma, clean.shape), 0, 1).astype(np.float32)


def test_auto_noise_in_super_resolve() -> None:
    img = _noisy()
    original = img.copy()
    out, info = super_resolve(img, 2, noise_std="auto", config=TINY, device="cpu", return_info=True)
    np.testing.assert_array_equal(img, original)
    assert out.shape == (96, 96)
    assert info["noise_std_estimated"] is True
    # the normalisation maps the data range to [0, 1]: compare in those units
    span = float(img.max() - img.min())
    assert 0.02 / span < info["noise_std"] < 0.04 / span
    with pytest.warns(UserWarning, match="estimated noise"):
        _, fixed = super_resolve(
            img, 2, noise_std=0.01, config=TINY, device="cpu", return_info=True
        )
    assert fixed["noise_std"] == 0.01 and fixed["noise_std_estimated"] is False


def test_default_adds_the_estimate() -> None:
    img = _noisy()
    _, info = super_resolve(img, 2, preset="fast", config=TINY, device="cpu", return_info=True)
    assert info["noise_std_source"] == "auto"
    assert info["noise_std"] == info["noise_estimate"] == info["config"]["noise_std"]
    assert info["back_projection_iters"] == 0  # noise on the sons: no back-projection
    span = float(img.max() - img.min())
    assert info["noise_std"] == pytest.approx(0.03 / span, rel=0.15)
    assert info["warnings"] == []


def test_default_adds_no_noise_to_a_clean_image() -> None:
    img = _render((128, 128)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no noise warning on a clean image
        _, info = super_resolve(img, 2, config=TINY, device="cpu", return_info=True)
    assert info["noise_std_source"] == "auto"
    assert info["noise_estimate"] < 0.002  # the tolerance of the clean-structure test above
    assert info["noise_std"] == 0.0  # below the noise-free level: none, back-projection kept
    assert info["back_projection_iters"] == TINY.back_projection_iters > 0


def test_explicit_zero_is_honoured_and_warns_on_a_noisy_image() -> None:
    img = _noisy(0.05)
    with pytest.warns(UserWarning, match="worse than bicubic") as record:
        _, info = super_resolve(img, 2, noise_std=0, config=TINY, device="cpu", return_info=True)
    assert len(record) == 1
    assert info["noise_std"] == 0.0 and info["noise_std_source"] == "set"
    assert info["config"]["noise_std"] == 0.0
    assert info["back_projection_iters"] == TINY.back_projection_iters
    assert info["noise_estimate"] > 0.03
    assert info["warnings"] == [str(record[0].message)]


def test_explicit_zero_on_a_clean_image_does_not_warn() -> None:
    img = _render((128, 128)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, info = super_resolve(img, 2, noise_std=0, config=TINY, device="cpu", return_info=True)
    assert info["noise_std"] == 0.0 and info["warnings"] == []


def test_paper_presets_keep_noise_free_sons() -> None:
    img = _noisy(0.01, (32, 32))
    for preset in ("paper", "paper-gradual"):
        cfg = resolve_config(preset, max_iters=2, crop_size=16, width=8, self_ensemble=False)
        # the published setting is kept, and the noisy image (0.01 on a span of ~0.45) warns
        with pytest.warns(UserWarning, match="estimated noise"):
            _, info = super_resolve(
                img, 2, preset=preset, config=cfg, device="cpu", return_info=True
            )
        assert info["noise_std"] == 0.0 and info["noise_std_source"] == "preset"


@pytest.mark.parametrize("bad", ["loud", "", "0.1"])
def test_noise_strings_other_than_auto_are_refused(bad: str) -> None:
    with pytest.raises(TypeError, match="auto"):
        super_resolve(np.zeros((16, 16), np.float32), 2, noise_std=bad, config=TINY)
