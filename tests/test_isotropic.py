"""Isotropic reconstruction of anisotropic Z stacks (one zero-shot network, XZ + YZ planes)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import ndimage

pytest.importorskip("napari_zssr.core.engine")

from napari_zssr import Cancelled, ZSSRConfig
from napari_zssr.arrays.isotropic import axial_kernel_for, isotropic_placement, isotropic_z

TINY = ZSSRConfig(
    max_iters=20,
    min_iters=0,
    crop_size=32,
    width=8,
    depth=4,
    eval_every=10,
    lr_check_every=10,
    back_projection_iters=1,
    self_ensemble=False,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def blobs(shape=(24, 40, 40), n=30, sigma=2.0, seed=0):
    rng = np.random.default_rng(seed)
    vol = np.zeros(shape)
    idx = tuple(rng.integers(0, s, n) for s in shape)
    vol[idx] = 1.0
    vol = ndimage.gaussian_filter(vol, sigma)
    return vol / vol.max()


def linear_z(lr, ratio, n_out):
    """Linear interpolation along z on the pixel-area grid (plane k centred at (k+0.5)*r-0.5)."""
    z_lr = (np.arange(lr.shape[0]) + 0.5) * ratio - 0.5
    z_hr = np.arange(n_out, dtype=np.float64)
    flat = lr.reshape(lr.shape[0], -1).astype(np.float64)
    out = np.empty((n_out, flat.shape[1]))
    for j in range(flat.shape[1]):
        out[:, j] = np.interp(z_hr, z_lr, flat[:, j])
    return out.reshape((n_out, *lr.shape[1:]))


def psnr(a, b, peak):
    return 10 * np.log10(peak**2 / np.mean((a.astype(np.float64) - b) ** 2))


def test_isotropic_z_shape_dtype_and_quality():
    gt = (blobs() * 60000).astype(np.uint16)
    lr = ((gt[0::2].astype(np.float64) + gt[1::2]) / 2).astype(np.uint16)  # 12 x 40 x 40
    before = lr.copy()
    reports = []
    out, info = isotropic_z(
        lr, 2, config=TINY, device="cpu", return_info=True, callback=reports.append
    )
    np.testing.assert_array_equal(lr, before)
    assert out.shape == (24, 40, 40) and out.dtype == np.uint16
    json.dumps(info)
    assert info["axial_kernel"] == [0.5, 0.5] and info["z_ratio"] == 2.0
    assert info["output_shape"] == [24, 40, 40] and info["device"] == "cpu"
    # progress: every stage reported, fractions never go back, the run ends at 1
    stages = [p.stage for p in reports]
    assert stages[0] == "prepare" and "train" in stages and "infer" in stages
    assert stages[-1] == "done" and reports[-1].fraction == 1.0
    fractions = [p.fraction for p in reports]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(fractions))
    # it must beat linear interpolation along z on the ground truth
    lin = linear_z(lr, 2.0, 24)
    assert psnr(out, gt, 65535) > psnr(lin, gt, 65535) + 1.0


def test_isotropic_z_non_integer_ratio_channels_and_float():
    vol = blobs((10, 32, 32)).astype(np.float32)
    out = isotropic_z(vol, 2.5, axial_fwhm=1.5, config=TINY, device="cpu")
    assert out.shape == (25, 32, 32) and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    two = np.stack([vol, 1.0 - vol], axis=1)  # (Z, C, Y, X)
    out2 = isotropic_z(two, 2, channel_axis=1, config=TINY.replace(max_iters=5), device="cpu")
    assert out2.shape == (20, 2, 32, 32) and out2.dtype == np.float32
    # the second channel is the complement: the joint network keeps them apart
    assert np.corrcoef(out2[:, 0].ravel(), out2[:, 1].ravel())[0, 1] < -0.8


def test_cancellation_in_training_and_in_inference():
    vol = (blobs((8, 24, 24)) * 255).astype(np.uint8)

    def stop_training(p):
        return p.stage != "train" or p.iteration < 10

    with pytest.raises(Cancelled):
        isotropic_z(vol, 2, config=TINY, device="cpu", callback=stop_training)

    def stop_inference(p):
        if p.stage == "infer" and p.iteration > 0:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        isotropic_z(vol, 2, config=TINY.replace(max_iters=2), device="cpu", callback=stop_inference)


def test_axial_kernels():
    np.testing.assert_allclose(axial_kernel_for(2), [[0.5, 0.5]])
    np.testing.assert_allclose(axial_kernel_for(3), [[1 / 3] * 3])
    k = axial_kernel_for(2.5)
    assert k.shape == (1, 3) and k.sum() == pytest.approx(1.0)
    g = axial_kernel_for(3, axial_fwhm=4.0)
    assert g.shape[0] == 1 and g.shape[1] % 2 == 1 and g.sum() == pytest.approx(1.0)
    var = ((np.arange(g.shape[1]) - (g.shape[1] - 1) / 2) ** 2 * g[0]).sum()
    expected = (4.0 / (2 * math.sqrt(2 * math.log(2)))) ** 2 + (9 - 1) / 12 + 1 / 12
    assert var == pytest.approx(expected, rel=0.05)  # Gaussian (pixel-integrated) + box of 3
    given = axial_kernel_for(2, axial_kernel=np.array([1.0, 2.0, 1.0]))
    np.testing.assert_allclose(given, [[0.25, 0.5, 0.25]])


def test_placement_puts_the_result_over_its_source():
    z_scale, z_translate, ratio, n = 0.58, 3.0, 2.23, 30
    s, t = isotropic_placement(z_scale, z_translate, ratio)
    assert s == pytest.approx(z_scale / ratio)
    assert t == pytest.approx(z_translate + 0.5 * (z_scale / ratio - z_scale))
    # the first n * ratio new planes cover exactly the world extent of the n source planes
    src = (z_translate - 0.5 * z_scale, z_translate + (n - 0.5) * z_scale)
    new = (t - 0.5 * s, t + (n * ratio - 0.5) * s)
    assert new == pytest.approx(src)
    with pytest.raises(ValueError):
        isotropic_placement(1.0, 0.0, 0.0)


def test_input_errors():
    vol = blobs((6, 16, 16))
    with pytest.raises(ValueError, match="z_ratio"):
        isotropic_z(vol, 1.0)
    with pytest.raises(ValueError, match="z_ratio"):
        isotropic_z(vol, 20)
    with pytest.raises(TypeError, match="z_ratio"):
        isotropic_z(vol, "2")
    with pytest.raises(ValueError, match=r"\(Z, Y, X\)"):
        isotropic_z(vol[0], 2)
    with pytest.raises(ValueError, match="4-D"):
        isotropic_z(vol, 2, channel_axis=0)
    with pytest.raises(ValueError, match="not both"):
        isotropic_z(vol, 2, axial_kernel=[1, 1], axial_fwhm=2.0)
    with pytest.raises(ValueError, match="non-negative"):
        isotropic_z(vol, 2, axial_kernel=[1, -1, 1])
    bad = vol.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        isotropic_z(bad, 2)
    with pytest.raises(TypeError):
        isotropic_z([[1, 2]], 2)
    with pytest.raises(ValueError, match="at least 2 z planes"):
        isotropic_z(vol[:1], 2)
