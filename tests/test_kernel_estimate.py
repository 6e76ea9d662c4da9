"""Blind kernel estimation: known kernels recovered from synthetic images, bad input, the API."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_zssr import super_resolve
from napari_zssr.arrays.planes import Layout
from napari_zssr.core.config import ZSSRConfig
from napari_zssr.core.kernel_estimate import (
    WHITEN_MAX_NOISE_SHARE,
    estimate_kernel,
    gaussian_kernel,
    min_estimate_size,
)
from napari_zssr.core.kernels import downscale, prepare_kernel


def dead_leaves(size: int, seed: int) -> np.ndarray:
    """Occluding discs with power-law radii: a scale-invariant scene, in [0, 1]."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 0.5)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(600):
        r = min(size / 4, 2.0 / math.sqrt(rng.uniform(1 / 400.0, 1.0)) ** 1.0)
        cy, cx = rng.uniform(0, size, 2)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0.1, 0.9)
    return img


def degrade(hr: np.ndarray, kernel: np.ndarray, scale: int = 2) -> np.ndarray:
    dk = prepare_kernel(kernel, (scale, scale))
    return downscale(torch.from_numpy(hr), dk).numpy()


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised correlation of two kernels, each centred on its centre of mass."""
    from scipy import ndimage

    n = max(a.shape + b.shape) + 4

    def embed(k: np.ndarray) -> np.ndarray:
        c = np.zeros((n, n))
        c[: k.shape[0], : k.shape[1]] = k / k.sum()
        com = ndimage.center_of_mass(c)
        return ndimage.shift(c, (n / 2 - com[0], n / 2 - com[1]), order=1)

    ea, eb = embed(a), embed(b)
    return float((ea * eb).sum() / math.sqrt((ea * ea).sum() * (eb * eb).sum()))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return dead_leaves(384, seed=3)


def test_gaussian_kernel_is_normalised_centred_and_rotates() -> None:
    k = gaussian_kernel(3.0, 1.0, 0.0, (2, 2), pixel_box=False)
    assert k.sum() == pytest.approx(1.0) and k.shape[0] % 2 == 0  # x2: centre between taps
    ys, xs = np.indices(k.shape)
    assert (k * xs).sum() == pytest.approx((k.shape[1] - 1) / 2)
    var_x = (k * (xs - (k.shape[1] - 1) / 2) ** 2).sum()
    var_y = (k * (ys - (k.shape[0] - 1) / 2) ** 2).sum()
    assert var_x == pytest.approx(9.0 + 1 / 12, rel=0.02)  # tap integration adds 1/12
    assert var_y == pytest.approx(1.0 + 1 / 12, rel=0.02)
    turned = gaussian_kernel(3.0, 1.0, math.pi / 2, (2, 2), pixel_box=False)
    np.testing.assert_allclose(turned, k.T, atol=1e-12)
    boxed = gaussian_kernel(1.0, 1.0, 0.0, (2, 2), pixel_box=True)
    vb = (boxed * (xs[: boxed.shape[0], : boxed.shape[1]] - (boxed.shape[1] - 1) / 2) ** 2).sum()
    assert vb == pytest.approx(1.0 + 1 / 12 + 4 / 12, rel=0.03)  # the LR pixel's box: s^2/12


@pytest.mark.parametrize("whiten", [False, True])
def test_isotropic_gaussian_recovered(scene: np.ndarray, whiten: bool) -> None:
    true = gaussian_kernel(1.6, 1.6, 0.0, (2, 2), pixel_box=False)
    lr = degrade(scene, true)
    before = lr.copy()
    est = estimate_kernel([lr], (2, 2), whiten=whiten)
    np.testing.assert_array_equal(lr, before)  # input never modified
    assert ncc(est.kernel, true) >= 0.9
    assert est.sigma_major / est.sigma_minor < 1.3  # no invented anisotropy


@pytest.mark.parametrize("whiten", [False, True])
def test_rotated_anisotropic_gaussian_recovered(scene: np.ndarray, whiten: bool) -> None:
    true = gaussian_kernel(2.5, 0.8, math.pi / 3, (2, 2), pixel_box=False)
    lr = degrade(scene, true)
    est = estimate_kernel([lr], (2, 2), whiten=whiten)
    assert ncc(est.kernel, true) >= 0.9
    assert est.sigma_major / est.sigma_minor > 1.5
    diff = abs((est.angle - math.pi / 3 + math.pi / 2) % math.pi - math.pi / 2)
    assert diff < math.radians(25)


def test_stack_gives_one_estimate_from_several_planes(scene: np.ndarray) -> None:
    true = gaussian_kernel(2.0, 2.0, 0.0, (2, 2), pixel_box=False)
    planes = [degrade(scene[o : o + 320, o : o + 320], true) for o in (0, 32, 64)]
    est = estimate_kernel(planes, (2, 2))
    assert est.planes == 3
    assert ncc(est.kernel, true) >= 0.9


def test_too_small_image_names_the_minimum_size() -> None:
    need = min_estimate_size((2, 2))
    small = np.random.default_rng(0).random((need[0] - 1, 64))
    with pytest.raises(ValueError, match=rf"at least {need[0]} x {need[1]} pixels"):
        estimate_kernel([small], (2, 2))


def test_flat_image_is_refused() -> None:
    with pytest.raises(ValueError, match="too flat"):
        estimate_kernel([np.full((96, 96), 0.4)], (2, 2))


TINY = ZSSRConfig(
    max_iters=4, crop_size=16, width=8, self_ensemble=False, back_projection_iters=1, eval_every=2
)


def test_api_estimate_records_the_kernel(scene: np.ndarray) -> None:
    lr = (degrade(scene, gaussian_kernel(1.5, 1.5, 0.0, (2, 2)))[:96, :96] * 255).astype(np.uint8)
    before = lr.copy()
    out, info = super_resolve(lr, 2, kernel="estimate", config=TINY, return_info=True)
    np.testing.assert_array_equal(lr, before)
    assert out.shape == (192, 192) and out.dtype == np.uint8
    rec = info["kernel_estimate"]
    k = np.array(rec["kernel"])
    assert k.ndim == 2 and k.sum() == pytest.approx(1.0)
    assert rec["sigma_major_hr_px"] >= rec["sigma_minor_hr_px"] > 0
    assert rec["reliable"] is True and info["warnings"] == []
    assert "FWHM" in info["kernel_summary"]  # in words, as for a given kernel
    assert info["kernel"].dtype == np.float64  # the estimate itself, on the output grid
    np.testing.assert_allclose(info["kernel"], k)
    again = super_resolve(lr, 2, kernel=k, config=TINY, noise_std=info["noise_std"])
    np.testing.assert_array_equal(out, again)  # used exactly like a given kernel


def test_each_plane_is_measured_for_noise_once(scene: np.ndarray, monkeypatch) -> None:
    """kernel="estimate" with the estimated Poisson-Gaussian noise: the kernel estimate, the
    noise on the sons and the noise model share one noise profile per plane-channel, and the
    estimate is the one the kernel estimator would measure itself."""
    import napari_zssr.core.noise as noise

    lr = (degrade(scene, gaussian_kernel(1.5, 1.5, 0.0, (2, 2)))[:96, :96] * 255).astype(np.uint8)
    rng = np.random.default_rng(1)
    noisy = np.clip(lr + rng.normal(0, 6, lr.shape), 0, 255).astype(np.uint8)
    profile, seen = noise.noise_profile, []

    def counted(plane, **kw):
        seen.append(plane.shape)
        return profile(plane, **kw)

    monkeypatch.setattr(noise, "noise_profile", counted)
    read, plane = [], Layout.plane
    monkeypatch.setattr(
        Layout, "plane", lambda self, a, idx: read.append(idx) or plane(self, a, idx)
    )
    _, info = super_resolve(
        noisy, 2, kernel="estimate", noise_std="auto", noise_model="poisson-gaussian",
        config=TINY, return_info=True,
    )  # fmt: skip
    assert seen == [(96, 96)]
    assert read == [(), ()]  # the plane is read once to measure it, once to train on it
    assert info["noise_std"] > 0 and info["noise_gain"] > 0
    monkeypatch.setattr(noise, "noise_profile", profile)
    alone = estimate_kernel([noisy.astype(np.float32) / np.float32(255)], (2, 2))  # uint8: 0-255
    assert info["kernel_estimate"]["sigma_major_hr_px"] == alone.sigma_major
    stack = np.stack([noisy, noisy[::-1]])
    seen.clear()
    monkeypatch.setattr(noise, "noise_profile", counted)
    super_resolve(stack, 2, kernel="estimate", noise_std="auto", config=TINY)
    assert seen == [(96, 96), (96, 96)]
    with pytest.raises(ValueError, match="noise_std has 1 values for 2 planes"):
        estimate_kernel([noisy / 255.0, noisy / 255.0], (2, 2), noise_std=[0.01])


def test_api_estimate_errors() -> None:
    with pytest.raises(ValueError, match="'estimate'"):
        super_resolve(np.zeros((64, 64)), 2, kernel="guess", config=TINY)


@pytest.mark.parametrize(
    ("image", "why"),
    [
        (np.random.default_rng(0).random((20, 20)), "too small"),
        (np.full((96, 96), 0.4), "too flat"),
    ],
)
def test_a_tiny_or_flat_image_falls_back_to_bicubic_with_a_warning(image, why) -> None:
    with pytest.warns(UserWarning, match=rf"kernel='estimate' not used: .*{why}") as caught:
        out, info = super_resolve(image, 2, kernel="estimate", config=TINY, return_info=True)
    message = next(str(w.message) for w in caught if why in str(w.message))
    assert "bicubic kernel is used instead" in message and "\n" not in message
    assert info["kernel"] is None and info["kernel_estimate"] is None  # training saw no kernel
    assert message in info["warnings"]
    assert out.shape == (image.shape[0] * 2, image.shape[1] * 2)


def test_api_without_estimate_records_none() -> None:
    _, info = super_resolve(
        np.random.default_rng(0).random((24, 24)), 2, config=TINY, return_info=True
    )
    assert info["kernel_estimate"] is None


def test_image_without_cross_scale_recurrence_falls_back_with_a_warning() -> None:
    """White noise: nothing recurs across scales (the noise estimate takes all of it), so the
    fit says nothing; it is not trusted, whichever way it runs."""
    noise = np.random.default_rng(1).random((96, 96))
    est = estimate_kernel([noise], (2, 2))
    assert not est.reliable and est.to_dict()["reliable"] is False
    img = (noise * 255).astype(np.uint8)
    with pytest.warns(UserWarning, match="kernel='estimate'.*bicubic kernel") as caught:
        out, info = super_resolve(img, 2, kernel="estimate", config=TINY, return_info=True)
    assert info["kernel"] is None and "bicubic" in info["kernel_summary"].lower()
    assert info["kernel_estimate"]["reliable"] is False
    assert str(caught[0].message) in info["warnings"]
    plain = super_resolve(img, 2, config=TINY, noise_std=info["noise_std"])
    np.testing.assert_array_equal(out, plain)


def test_a_kernel_wider_than_the_image_resolution_is_not_trusted(
    scene: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fit whose blur would have erased details the image has falls back to bicubic."""
    import dataclasses

    from napari_zssr.core import kernel_estimate as ke

    lr = (degrade(scene, gaussian_kernel(1.5, 1.5, 0.0, (2, 2)))[:96, :96] * 255).astype(np.uint8)
    honest = estimate_kernel([lr / 255.0], (2, 2))
    assert honest.reliable and not honest.too_wide
    assert 0 < honest.fwhm_lr_px <= ke.MAX_BLUR_TO_RESOLUTION * honest.resolution_px
    k_wide = gaussian_kernel(5.0, 5.0, 0.0, (2, 2))
    wide = dataclasses.replace(
        honest,
        kernel=k_wide,
        sigma_major=5.0,
        sigma_minor=5.0,
        fwhm_lr_px=ke._lr_fwhm(k_wide, (2.0, 2.0)),
    )
    assert wide.fwhm_lr_px > 2 * honest.fwhm_lr_px
    assert wide.too_wide and not wide.reliable and wide.to_dict()["reliable"] is False
    monkeypatch.setattr(ke, "estimate_kernel", lambda *a, **k: wide)
    with pytest.warns(UserWarning, match="wider than the image's own resolution"):
        out, info = super_resolve(lr, 2, kernel="estimate", config=TINY, return_info=True)
    assert info["kernel"] is None and info["kernel_estimate"]["image_resolution_px"] > 0
    plain = super_resolve(lr, 2, config=TINY, noise_std=info["noise_std"])
    np.testing.assert_array_equal(out, plain)


def test_lr_fwhm_of_a_gaussian() -> None:
    from napari_zssr.core.kernel_estimate import _lr_fwhm

    k = gaussian_kernel(2.0, 1.0, 0.3, (2, 2), pixel_box=False)
    assert _lr_fwhm(k, (2.0, 2.0)) == pytest.approx(2.3548 * 2.0 / 2, rel=0.03)


@pytest.mark.parametrize(("sigma", "whiten"), [(1.0, False), (2.5, False), (2.5, True)])
def test_a_noisy_image_gives_its_kernel_not_the_narrowest(
    scene: np.ndarray, sigma: float, whiten: bool
) -> None:
    """White noise (0.06 of the range, a low-SNR fluorescence image) is left out of the fit,
    in the image's statistics and in those of its downscaled copy (where the kernel has
    correlated it)."""
    k = gaussian_kernel(sigma, sigma, 0.0, (2, 2))
    lr = degrade(scene, k)
    noisy = lr + np.random.default_rng(1).normal(0.0, 0.06, lr.shape)
    est = estimate_kernel([noisy], (2, 2), whiten=whiten)
    assert est.reliable
    assert ncc(est.kernel, k) >= 0.95
    assert est.sigma_major == pytest.approx(sigma, rel=0.3)


def test_whitening_is_chosen_from_the_noise(scene: np.ndarray) -> None:
    """Clean: the first differences are compared (whitened); noisy: the intensities."""
    k = gaussian_kernel(1.6, 1.6, 0.0, (2, 2))
    lr = degrade(scene, k)
    clean = estimate_kernel([lr], (2, 2))
    assert clean.whitened and clean.noise_share < WHITEN_MAX_NOISE_SHARE
    assert clean.to_dict()["whitened"] is True and "differences" in clean.to_dict()["method"]
    noisy = lr + np.random.default_rng(2).normal(0.0, 0.06, lr.shape)
    est = estimate_kernel([noisy], (2, 2))
    assert not est.whitened and est.noise_share > WHITEN_MAX_NOISE_SHARE
    forced = estimate_kernel([noisy], (2, 2), whiten=True)
    assert forced.whitened and forced.noise_share == pytest.approx(est.noise_share)
    assert ncc(clean.kernel, k) >= 0.9 and ncc(est.kernel, k) >= 0.9


def test_an_unusable_whitened_fit_falls_back_to_the_intensities() -> None:
    """The bundled confocal sample: noise is 4% of its differences' variance, so the whitened
    statistics are tried first; they run to the narrowest kernel, and the intensities' fit,
    which is usable, is kept."""
    import tifffile

    from napari_zssr._sample_data import SAMPLE_PATH
    from napari_zssr.arrays.intensity import normalise_intensity

    plane = normalise_intensity(tifffile.imread(SAMPLE_PATH))[0]
    # the anisotropic family, whose intensities' fit of this image is usable (0.77 x 0.09 HR
    # px); family="auto" takes that needle-thin fit for structure, not optics, and falls back
    # (tests/test_psf_estimate_family.py)
    whitened = estimate_kernel([plane], (2, 2), whiten=True, family="anisotropic")
    assert whitened.noise_share < WHITEN_MAX_NOISE_SHARE and not whitened.reliable
    est = estimate_kernel([plane], (2, 2), family="anisotropic")
    assert est.reliable and not est.whitened
    assert est.sigma_major == pytest.approx(
        estimate_kernel([plane], (2, 2), whiten=False, family="anisotropic").sigma_major
    )
