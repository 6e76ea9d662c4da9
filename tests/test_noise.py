"""The noise estimate behind ``noise_std="auto"``."""

from __future__ import annotations

import numpy as np
import pytest

from napari_zssr import super_resolve
from napari_zssr.core.config import ZSSRConfig
from napari_zssr.core.noise import estimate_noise_std

TINY = ZSSRConfig(max_iters=4, crop_size=16, width=8, self_ensemble=False, eval_every=2)


def _smooth(shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return 0.5 + 0.2 * np.sin(yy / 9.0) * np.cos(xx / 7.0) + 0.001 * xx


@pytest.mark.parametrize("sigma", [0.005, 0.02, 0.08])
def test_estimate_recovers_gaussian_noise(sigma: float) -> None:
    rng = np.random.default_rng(1)
    img = _smooth((256, 256)) + rng.normal(0.0, sigma, (256, 256))
    assert estimate_noise_std(img) == pytest.approx(sigma, rel=0.1)


def test_estimate_ignores_planes_and_ramps() -> None:
    yy, xx = np.mgrid[:64, :64]
    assert estimate_noise_std(np.full((64, 64), 3.0)) == 0.0
    assert estimate_noise_std(0.01 * yy + 0.02 * xx) == pytest.approx(0.0, abs=1e-12)


def test_estimate_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match="2-D"):
        estimate_noise_std(np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="3 x 3"):
        estimate_noise_std(np.zeros((2, 40)))


def test_auto_noise_in_super_resolve() -> None:
    rng = np.random.default_rng(0)
    clean = _smooth((48, 48))
    img = np.clip(clean + rng.normal(0.0, 0.03, clean.shape), 0, 1).astype(np.float32)
    original = img.copy()
    out, info = super_resolve(img, 2, noise_std="auto", config=TINY, device="cpu", return_info=True)
    np.testing.assert_array_equal(img, original)
    assert out.shape == (96, 96)
    assert info["noise_std_estimated"] is True
    # the robust normalisation maps the data range to [0, 1]: compare in those units
    span = float(np.percentile(img, 99.9) - np.percentile(img, 0.1))
    assert 0.01 / span < info["noise_std"] < 0.06 / span
    _, fixed = super_resolve(img, 2, noise_std=0.01, config=TINY, device="cpu", return_info=True)
    assert fixed["noise_std"] == 0.01 and fixed["noise_std_estimated"] is False


@pytest.mark.parametrize("bad", ["loud", "", "0.1"])
def test_noise_strings_other_than_auto_are_refused(bad: str) -> None:
    with pytest.raises(TypeError, match="auto"):
        super_resolve(np.zeros((16, 16), np.float32), 2, noise_std=bad, config=TINY)
