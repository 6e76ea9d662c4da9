"""Downscaling kernels: validation, centring, dihedral symmetry and the downscale itself."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_zssr.core.kernels import (
    DIHEDRAL,
    allowed_transforms,
    centre_kernel,
    downscale,
    prepare_kernel,
    validate_kernel,
)
from napari_zssr.core.resize import imresize

IDENTITY = (False, False, False)
ROT180 = (False, True, True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gaussian(
    size: int | tuple[int, int], sigma: float | tuple[float, float], angle: float = 0.0
) -> np.ndarray:
    """Sampled (anisotropic, rotated) Gaussian centred in its array, sum 1."""
    h, w = (size, size) if isinstance(size, int) else size
    sy, sx = (sigma, sigma) if np.isscalar(sigma) else sigma
    y, x = np.indices((h, w), dtype=np.float64)
    y -= (h - 1) / 2
    x -= (w - 1) / 2
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * y - s * x, s * y + c * x
    g = np.exp(-0.5 * ((u / sy) ** 2 + (v / sx) ** 2))
    return g / g.sum()


def blob(n: int, cy: float, cx: float, sigma: float = 3.0) -> np.ndarray:
    y, x = np.indices((n, n), dtype=np.float64)
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))


def centroid(a: np.ndarray) -> np.ndarray:
    y, x = np.indices(a.shape, dtype=np.float64)
    return np.array([(a * y).sum() / a.sum(), (a * x).sum() / a.sum()])


def com(k: np.ndarray) -> np.ndarray:
    return centroid(k)


# --- validation ------------------------------------------------------------------------------


def test_validate_normalises_and_copies() -> None:
    k = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.int32)
    before = k.copy()
    out = validate_kernel(k)
    assert out.dtype == np.float64
    assert out.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(k, before)
    out[0, 0] = 99.0
    np.testing.assert_array_equal(k, before)


@pytest.mark.parametrize(
    ("kernel", "exc", "match"),
    [
        (np.array([[1.0, np.nan], [1.0, 1.0]]), ValueError, "NaN or Inf"),
        (np.array([[1.0, np.inf], [1.0, 1.0]]), ValueError, "NaN or Inf"),
        (np.zeros((3, 3)), ValueError, "positive sum"),
        (-gaussian(5, 1.0), ValueError, "positive sum"),
        (
            np.array([[-1.0, -1.0, -1.0], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]]),
            ValueError,
            "negative mass",
        ),
        (np.ones(5), ValueError, "2-D"),
        (np.ones((3, 3, 3)), ValueError, "2-D"),
        (np.ones((0, 3)), ValueError, "empty"),
        (np.ones((259, 3)), ValueError, "too large"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "numeric"),
        (np.array([[1, None], [2, 3]], dtype=object), TypeError, "numeric"),
        (np.ones((2, 2), dtype=complex), TypeError, "numeric"),
    ],
)
def test_validate_rejects(kernel: np.ndarray, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        validate_kernel(kernel)


def test_validate_rejects_kernel_larger_than_image() -> None:
    with pytest.raises(ValueError, match="larger than the image"):
        validate_kernel(np.ones((9, 3)), (8, 8))
    with pytest.raises(ValueError, match="larger than the image"):
        validate_kernel(np.ones((3, 17)), (20, 16))
    assert validate_kernel(np.ones((8, 8)), (8, 8)).shape == (8, 8)


def test_small_negative_mass_is_clipped_with_a_warning() -> None:
    k = gaussian(7, 1.2)
    k[0, 0] = -0.002
    with pytest.warns(UserWarning, match="negative"):
        out = validate_kernel(k)
    assert out.min() >= 0.0
    assert out.sum() == pytest.approx(1.0)


# --- centring --------------------------------------------------------------------------------


@pytest.mark.parametrize("s", [2, 3, 4])
@pytest.mark.parametrize(
    "kernel",
    [gaussian(5, 1.0), gaussian(7, 1.4), gaussian(6, 1.2), gaussian((4, 9), (0.8, 1.6))],
    ids=["g5", "g7", "g6-even", "g4x9"],
)
def test_prepared_kernel_has_the_phase_of_the_factor(s: int, kernel: np.ndarray) -> None:
    dk = prepare_kernel(kernel, (s, s))
    assert dk.weights.sum() == pytest.approx(1.0)
    assert dk.weights.min() >= 0.0
    c = com(dk.weights)
    np.testing.assert_allclose(c, dk.com, atol=1e-9)
    want = ((s - 1) / 2) % 1.0  # 0.5 for even factors, 0 for odd ones
    frac = np.mod(c, 1.0)
    dist = np.minimum(np.abs(frac - want), 1 - np.abs(frac - want))
    assert np.all(dist < 0.02)
    # Centring moves the kernel by less than a pixel: its shape is kept.
    spread = lambda k: (k * ((np.indices(k.shape) - com(k)[:, None, None]) ** 2)).sum((1, 2))  # noqa: E731
    np.testing.assert_allclose(spread(dk.weights), spread(validate_kernel(kernel)), rtol=0.1)


def test_kernel_already_at_the_right_phase_is_untouched() -> None:
    box = np.full((4, 4), 1 / 16)  # pixel integration at s = 4: centre 1.5, already half-pixel
    np.testing.assert_array_equal(centre_kernel(box, (4.0, 4.0)), box)
    g = gaussian(7, 1.0)
    np.testing.assert_array_equal(centre_kernel(g, (3.0, 3.0)), g)
    # Non-integer factors are sampled by interpolation: no shift.
    np.testing.assert_array_equal(centre_kernel(g, (2.5, 2.5)), g)


@pytest.mark.parametrize("s", [2, 3, 4, 2.5])
@pytest.mark.parametrize(
    "kernel",
    [gaussian(5, 1.0), gaussian(9, 1.8), gaussian(6, 1.2), np.ones((4, 4)), np.ones((2, 2))],
    ids=["g5", "g9", "g6-even", "box4", "box2"],
)
def test_lr_upscaled_by_bicubic_lines_up_with_hr(s: float, kernel: np.ndarray) -> None:
    """An off-grid blob keeps its centroid through kernel downscale + bicubic upscale."""
    n = 120
    hr = blob(n, 47.37, 61.71)
    dk = prepare_kernel(kernel, (s, s))
    lr = downscale(torch.from_numpy(hr)[None], dk)
    assert tuple(lr.shape[-2:]) == (math.ceil(n / s),) * 2
    up = imresize(lr, s, (n, n))[0].numpy()
    assert np.all(np.abs(centroid(up) - centroid(hr)) < 0.02)


def test_position_of_the_kernel_in_its_array_does_not_matter() -> None:
    """The core centres every kernel: padding it off-centre does not move the image."""
    img = torch.rand(1, 36, 36, dtype=torch.float64)
    g = gaussian(5, 1.0)
    off = np.zeros((9, 9))
    off[0:5, 3:8] = g
    for s in ((3.0, 3.0), (2.0, 2.0), (2.5, 2.5)):
        a = downscale(img, prepare_kernel(g, s))
        b = downscale(img, prepare_kernel(off, s))
        # At s = 2 both are shifted by half a pixel (spline interpolation of the kernel,
        # whose border handling depends on the array): equal to interpolation accuracy.
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-3 if s[0] == 2 else 1e-9)


# --- downscale -------------------------------------------------------------------------------


def _reference_downscale(
    img: np.ndarray, k: np.ndarray, s: tuple[float, float], c: tuple[float, float]
) -> np.ndarray:
    """Correlate with symmetric borders, sample at ((i + 0.5) s - 0.5 - com), linear interp."""
    pad = max(k.shape) + 8
    padded = np.pad(img, pad, mode="symmetric")
    full = ndimage.correlate(
        padded, k, mode="constant", origin=(-(k.shape[0] // 2), -(k.shape[1] // 2))
    )
    # full[p] = sum_a k[a] padded[p + a]
    ny, nx = (math.ceil(round(n / f, 9)) for n, f in zip(img.shape, s))
    py = (np.arange(ny) + 0.5) * s[0] - 0.5 - c[0] + pad
    px = (np.arange(nx) + 0.5) * s[1] - 0.5 - c[1] + pad
    rows = np.array(
        [np.interp(py, np.arange(full.shape[0]), full[:, j]) for j in range(full.shape[1])]
    ).T
    return np.array([np.interp(px, np.arange(full.shape[1]), r) for r in rows])


@pytest.mark.parametrize(
    ("kernel", "s"),
    [
        (gaussian(5, 1.0), (2.0, 2.0)),
        (gaussian(13, 2.2), (3.0, 3.0)),
        (np.ones((4, 4)), (4.0, 4.0)),
        (np.ones((2, 2)), (2.0, 2.0)),
        (gaussian((5, 9), (1.0, 2.0)), (2.0, 3.0)),
        (gaussian(7, 1.3), (2.5, 2.5)),
        (gaussian(7, 1.3), (1.5, 3.0)),
        (np.ones((1, 5)), (1.0, 4.0)),
    ],
)
@pytest.mark.parametrize("shape", [(37, 41), (40, 40)])
def test_downscale_matches_direct_correlation(
    kernel: np.ndarray, s: tuple, shape: tuple[int, int]
) -> None:
    img = np.random.default_rng(4).random(shape)
    dk = prepare_kernel(kernel, s)
    out = downscale(torch.from_numpy(img)[None, None], dk)[0, 0].numpy()
    ref = _reference_downscale(img, dk.weights, s, dk.com)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-9)


def test_downscale_uses_the_right_kernel_when_kernels_come_and_go() -> None:
    """Kernels prepared one after another (old ones freed) must each be applied correctly."""
    img = torch.from_numpy(np.random.default_rng(5).random((48, 48)))
    for size in (5, 9, 13, 2, 6, 3, 11, 4):
        k = np.ones((size, size)) if size < 5 else gaussian(size, size / 5)
        dk = prepare_kernel(k, (2.0, 2.0))
        out = downscale(img, dk).numpy()
        ref = _reference_downscale(img.numpy(), dk.weights, (2.0, 2.0), dk.com)
        np.testing.assert_allclose(out, ref, atol=1e-9)
        del dk


def test_delta_kernel_at_odd_factor_subsamples_pixel_centres() -> None:
    img = torch.rand(2, 30, 33, dtype=torch.float64)
    dk = prepare_kernel(np.ones((1, 1)), (3, 3))
    out = downscale(img, dk)
    # LR pixel i is centred on HR pixel 3 i + 1.
    assert torch.equal(out, img[:, 1::3, 1::3])


@pytest.mark.parametrize(
    ("shape", "s"),
    [
        ((40, 40), (1.5, 1.5)),
        ((41, 37), (2.5, 2.5)),
        ((40, 39), (2.0, 3.0)),
        ((33, 35), (1.0, 3.0)),
        ((50, 50), (3.7, 1.3)),
        ((16, 16), (16.0, 16.0)),
    ],
)
def test_downscale_shape_and_constant(shape: tuple[int, int], s: tuple) -> None:
    k = gaussian(5, 1.0)
    dk = prepare_kernel(k, s)
    x = torch.full((3, *shape), 0.6, dtype=torch.float32)
    out = downscale(x, dk)
    expected = tuple(math.ceil(n / f) for n, f in zip(shape, s))
    assert tuple(out.shape) == (3, *expected)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), 0.6, atol=1e-6)
    # An explicit output shape is honoured.
    for size in ((expected[0] + 1, expected[1]), (expected[0], max(1, expected[1] - 1))):
        out2 = downscale(x, dk, size)
        assert tuple(out2.shape) == (3, *size)
        np.testing.assert_allclose(out2.numpy(), 0.6, atol=1e-6)


# --- dihedral symmetry -----------------------------------------------------------------------


def test_bicubic_allows_all_eight() -> None:
    assert set(allowed_transforms(None, (2.0, 2.0))) == set(DIHEDRAL)
    assert len(DIHEDRAL) == 8


def test_isotropic_gaussian_allows_all_eight() -> None:
    assert set(allowed_transforms(gaussian(9, 1.5), (2.0, 2.0))) == set(DIHEDRAL)


def test_axis_aligned_anisotropic_gaussian_allows_the_four_flips() -> None:
    tfs = allowed_transforms(gaussian(11, (1.0, 2.2)), (2.0, 2.0))
    assert set(tfs) == {(False, fy, fx) for fy in (False, True) for fx in (False, True)}


def test_rotated_anisotropic_gaussian_allows_fewer() -> None:
    tfs = allowed_transforms(gaussian(15, (1.0, 2.5), angle=math.radians(30)), (2.0, 2.0))
    assert IDENTITY in tfs
    assert ROT180 in tfs  # every Gaussian is point-symmetric
    assert set(tfs) == {IDENTITY, ROT180}


def test_off_centre_kernel_is_judged_about_its_centre_of_mass() -> None:
    k = np.zeros((9, 9))
    k[1:6, 2:7] = gaussian(5, 1.0)  # symmetric, but not in the middle of its array
    assert set(allowed_transforms(k, (3.0, 3.0))) == set(DIHEDRAL)


def test_unequal_factors_allow_no_transpose() -> None:
    for kernel in (None, gaussian(9, 1.5)):
        tfs = allowed_transforms(kernel, (2.0, 3.0))
        assert len(tfs) == 4
        assert not any(t for t, _, _ in tfs)
    assert not any(t for t, _, _ in allowed_transforms(None, (2.0, 3.0), rotations=True))


def test_rotation_and_flip_switches() -> None:
    assert len(allowed_transforms(None, (2.0, 2.0), rotations=False)) == 4
    assert allowed_transforms(None, (2.0, 2.0), flips=False) == (IDENTITY,)
    # rotations=True forces the transposes, but flips are still checked against the kernel.
    tfs = allowed_transforms(gaussian(11, (1.0, 2.2)), (2.0, 2.0), rotations=True)
    assert len(tfs) == 8
    skew = gaussian(15, (1.0, 2.5), angle=math.radians(30))
    assert len(allowed_transforms(skew, (2.0, 2.0), rotations=False)) == 2


def test_transforms_commute_with_the_degradation() -> None:
    """Degrading a flipped image equals flipping the degraded image, for allowed transforms."""
    img = torch.rand(1, 36, 36, dtype=torch.float64)
    k = gaussian(9, (1.0, 2.0))
    dk = prepare_kernel(k, (3.0, 3.0))
    allowed = allowed_transforms(dk.weights, (3.0, 3.0))

    def apply(x: torch.Tensor, tf: tuple[bool, bool, bool]) -> torch.Tensor:
        t, fy, fx = tf
        if t:
            x = x.transpose(-2, -1)
        dims = [d for d, f in ((-2, fy), (-1, fx)) if f]
        return torch.flip(x, dims) if dims else x

    for tf in DIHEDRAL:
        diff = (downscale(apply(img, tf), dk) - apply(downscale(img, dk), tf)).abs().max()
        if tf in allowed:
            assert float(diff) < 1e-9
        else:
            assert float(diff) > 1e-3


def test_summary_mentions_shape_and_width() -> None:
    dk = prepare_kernel(gaussian(9, 1.5), (3.0, 3.0))
    text = dk.summary()
    assert "9x9" in text
    fwhm = float(text.split("FWHM ~ ")[1].split(" x ")[0])
    assert fwhm == pytest.approx(2.3548 * 1.5, rel=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_kernel(gaussian(9, 1.5), (2.0, 2.0))
