"""The PSF estimate's kernel family (isotropic unless the image clearly supports more) and its
reliability check against the image's own spectrum."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from conftest import dead_leaves
from scipy import ndimage

from napari_zssr import super_resolve
from napari_zssr.core import kernel_estimate as ke
from napari_zssr.core.config import ZSSRConfig
from napari_zssr.core.kernel_estimate import (
    choose_family,
    estimate_kernel,
    gaussian_kernel,
    spectral_check,
)
from napari_zssr.core.kernels import downscale, prepare_kernel

TINY = ZSSRConfig(max_iters=4, crop_size=16, width=8, self_ensemble=False, eval_every=2)
TRUE_SIGMA = 2.0  # HR px: a widefield PSF's Gaussian core at x2 of a 100 nm camera pixel


def _scene(kind: str, size: int = 384, seed: int = 0) -> np.ndarray:
    """Fluorescence-like object on the HR grid: background 0.05, structure up to 0.95."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    obj = np.zeros((size, size))
    if kind == "nuclei":  # textured filled ellipses
        texture = 1 + 0.3 * ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 2)
        for _ in range(14):
            cy, cx = rng.uniform(0, size, 2)
            ry, rx = rng.uniform(15, 40, 2)
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
            obj[inside] = np.maximum(obj[inside], rng.uniform(0.4, 1.0) * texture[inside])
    elif kind == "filaments":  # curved lines
        t = np.linspace(0, 1, 3000)[:, None]
        for _ in range(40):
            p0, p1, p2 = rng.uniform(0, size, (3, 2))
            pts = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * p1 + t**2 * p2
            ys, xs = np.clip(pts.astype(int), 0, size - 1).T
            obj[ys, xs] = rng.uniform(0.5, 1.0)
    elif kind == "spots":
        n = size * size // 150
        obj[rng.integers(0, size, n), rng.integers(0, size, n)] = rng.uniform(0.3, 1.0, n)
    else:  # membranes: Voronoi cell borders
        seeds = rng.uniform(0, size, (40, 2))
        d = np.sort(np.hypot(yy[..., None] - seeds[:, 0], xx[..., None] - seeds[:, 1]))
        obj = (d[..., 1] - d[..., 0] < 1.5).astype(np.float64)
    return 0.05 + 0.9 * obj / obj.max()


def _acquire(kind: str, noise: float, sigma: float = TRUE_SIGMA) -> np.ndarray:
    """x2 acquisition with an isotropic Gaussian PSF (and the camera pixel's box), noise
    growing with the square root of the intensity (``noise`` at intensity 0.5)."""
    k = gaussian_kernel(sigma, sigma, 0.0, (2, 2))
    lr = downscale(torch.from_numpy(_scene(kind)), prepare_kernel(k, (2, 2))).numpy()
    rng = np.random.default_rng(1)
    return lr + rng.normal(0.0, noise, lr.shape) * np.sqrt(np.clip(lr, 0, None) / 0.5)


CASES = [(k, n) for k in ("nuclei", "filaments", "spots", "membranes") for n in (0.01, 0.04)]


@pytest.mark.parametrize(("kind", "noise"), CASES)
def test_isotropic_width_is_recovered_within_30_percent(kind: str, noise: float) -> None:
    # what the criterion achieves today on these renders (8-28% narrow): a regression guard;
    # the 15% target is the next test
    est = estimate_kernel([_acquire(kind, noise)], (2, 2), family="isotropic")
    assert est.reliable and est.family == "isotropic"
    assert est.sigma_major == pytest.approx(TRUE_SIGMA, rel=0.30)


@pytest.mark.xfail(
    reason="target not met: the cross-scale criterion reads these renders (sharper than a "
    "scale-invariant scene) 8-28% narrow; a dead-leaves scene comes out within 2%",
    strict=False,
)
@pytest.mark.parametrize(("kind", "noise"), CASES)
def test_isotropic_width_is_recovered_within_15_percent(kind: str, noise: float) -> None:
    est = estimate_kernel([_acquire(kind, noise)], (2, 2), family="isotropic")
    assert est.sigma_major == pytest.approx(TRUE_SIGMA, rel=0.15)


@pytest.mark.parametrize("kind", ["nuclei", "filaments", "spots", "membranes"])
def test_oriented_structure_does_not_make_a_noisy_image_anisotropic(kind: str) -> None:
    est = estimate_kernel([_acquire(kind, 0.04)], (2, 2))
    assert not est.whitened and est.family == "isotropic" and est.reliable
    check = est.to_dict()["family_check"]
    assert check["chosen"] == "isotropic" and check["reason"]
    assert est.to_dict()["family"] == "isotropic"


def test_a_clear_anisotropy_is_kept_on_a_noisy_image() -> None:
    k = gaussian_kernel(2.5, 1.0, 0.0, (2, 2))
    lr = downscale(torch.from_numpy(dead_leaves(384, 3)), prepare_kernel(k, (2, 2))).numpy()
    noisy = lr + np.random.default_rng(1).normal(0.0, 0.03, lr.shape)
    est = estimate_kernel([noisy], (2, 2))
    assert not est.whitened and est.family == "anisotropic"
    assert est.sigma_major == pytest.approx(2.5, rel=0.15)
    assert est.family_check["quadrant_angles_rad"] == [0.0] * 4


def _fake(family: str, a: float, b: float, score: float, noise_share: float = 0.5):
    return ke.KernelEstimate(
        kernel=gaussian_kernel(a, b, 0.0, (2, 2)),
        sigma_major=a,
        sigma_minor=b,
        angle=0.0,
        pixel_box=True,
        score=score,
        planes=1,
        noise_share=noise_share,
        family=family,
    )


def test_a_needle_thin_fit_is_structure_not_optics() -> None:
    iso = _fake("isotropic", 1.5, 1.5, 1.0)
    kept, record = choose_family(iso, _fake("anisotropic", 2.0, 0.4, 0.3), [0.0] * 4)
    assert kept.family == "isotropic" and "degenerate" in record["reason"]
    kept, record = choose_family(iso, _fake("anisotropic", 3.0, 1.5, 0.3), [0.0, 0.0, 0.0, 1.5])
    assert kept.family == "isotropic" and "quadrants" in record["reason"]
    kept, _ = choose_family(iso, _fake("anisotropic", 3.0, 1.5, 0.3), [0.0] * 4)
    assert kept.family == "anisotropic" and kept.family_check["chosen"] == "anisotropic"
    # clean images (noise a small share of the finest scales) keep the anisotropic fit, as
    # before, unless it is thinner than the family's narrowest
    kept, _ = choose_family(iso, _fake("anisotropic", 2.0, 0.4, 0.9, noise_share=0.01))
    assert kept.family == "anisotropic"
    kept, record = choose_family(iso, _fake("anisotropic", 2.0, 0.1, 0.9, noise_share=0.01))
    assert kept.family == "isotropic" and "needle-thin" in record["reason"]


def test_a_kernel_too_wide_for_the_image_is_contradicted_by_its_spectrum() -> None:
    lr = _acquire("filaments", 0.005)
    noise_var = [0.005**2]
    true = spectral_check(
        [lr], gaussian_kernel(TRUE_SIGMA, TRUE_SIGMA, 0, (2, 2)), (2, 2), noise_var
    )
    wide = spectral_check([lr], gaussian_kernel(6.0, 6.0, 0, (2, 2)), (2, 2), noise_var)
    assert true["passed"] and not wide["passed"]
    assert wide["kernel_cutoff"] < wide["signal_cutoff"]


def test_an_estimate_failing_the_check_never_reaches_the_training(monkeypatch) -> None:
    lr = _acquire("nuclei", 0.01)[:96, :96]
    honest = estimate_kernel([lr], (2, 2), family="isotropic")
    failed = dataclasses.replace(
        honest,
        kernel=gaussian_kernel(6.0, 6.0, 0.0, (2, 2)),
        spectral_check={"signal_cutoff": 0.4, "kernel_cutoff": 0.2, "passed": False},
    )
    assert not failed.reliable and failed.contradicted and not failed.too_wide
    monkeypatch.setattr(ke, "estimate_kernel", lambda *a, **k: failed)
    with pytest.warns(UserWarning, match="would remove every frequency above"):
        out, info = super_resolve(lr, 2, kernel="estimate", config=TINY, return_info=True)
    assert info["kernel"] is None
    assert info["kernel_estimate"]["spectral_check"]["passed"] is False
    assert info["kernel_estimate"]["reliable"] is False
    assert "would remove every frequency" in info["kernel_estimate"]["fallback"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plain = super_resolve(lr, 2, config=TINY, noise_std=info["noise_std"])
    np.testing.assert_array_equal(out, plain)


def test_the_bundled_sample_falls_back_with_a_warning() -> None:
    """The confocal sample's anisotropic fit is needle-thin (0.77 x 0.09 HR px): structure,
    not optics; its isotropic fit runs to the narrowest kernel, so no kernel is used (the
    anisotropic family alone used the needle)."""
    import tifffile

    from napari_zssr._sample_data import SAMPLE_PATH
    from napari_zssr.arrays.intensity import normalise_intensity

    plane = normalise_intensity(tifffile.imread(SAMPLE_PATH))[0]
    est = estimate_kernel([plane], (2, 2))
    assert not est.reliable and "bicubic kernel" in est.fallback_message()
    intensities = estimate_kernel([plane], (2, 2), whiten=False)
    assert not intensities.reliable and intensities.family == "isotropic"
    assert "needle-thin" in intensities.family_check["reason"]
