"""PSF sources turned into downscaling kernels: geometry, units, files and errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile
from scipy.io import savemat

from napari_zssr.psf import (
    PSFKernel,
    axial_profile,
    kernel_from_bead_stack,
    kernel_from_optics,
    kernel_from_psf,
    kernel_fwhm,
    load_psf_file,
)
from napari_zssr.psf import geometry as psfmod

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def gaussian_plane(shape, centre, sigma_px, amplitude=1.0):
    yy, xx = np.indices(shape, dtype=np.float64)
    r2 = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2
    return amplitude * np.exp(-r2 / (2.0 * sigma_px**2))


def bead_stack(
    rng,
    *,
    shape=(9, 64, 80),
    centre=(5, 20.3, 51.7),
    sigma_xy_px=2.5,
    sigma_z_px=1.5,
    background=100.0,
    noise=2.0,
    second_bead=True,
):
    """A bead stack with background, noise, an off-centre bead and a dimmer second one."""
    zz = np.arange(shape[0], dtype=np.float64)[:, None, None]
    stack = np.full(shape, background)
    beads = [(centre, 1000.0)]
    if second_bead:
        beads.append(((3, 45.0, 15.0), 400.0))
    for (cz, cy, cx), amp in beads:
        axial = np.exp(-((zz - cz) ** 2) / (2.0 * sigma_z_px**2))
        stack = stack + axial * gaussian_plane(shape[1:], (cy, cx), sigma_xy_px, amp)[None]
    stack = stack + rng.normal(0.0, noise, shape)
    return stack


def centroid(k):
    ys, xs = np.indices(k.shape)
    return (ys * k).sum() / k.sum(), (xs * k).sum() / k.sum()


def assert_valid_kernel(res):
    assert isinstance(res, PSFKernel)
    k = res.kernel
    assert k.ndim == 2 and k.dtype == np.float64
    assert np.all(np.isfinite(k)) and np.all(k >= 0)
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    assert not k.flags.writeable
    json.dumps(res.source)  # JSON-able metadata
    assert isinstance(res.description, str) and "HR" in res.description


def pad_to(a, shape):
    pads = [((s - n) // 2, s - n - (s - n) // 2) for s, n in zip(shape, a.shape)]
    return np.pad(a, pads)


# ---------------------------------------------------------------------------------------------
# geometry helpers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "taps"),
    [(1.0, [1.0]), (2.0, [0.5, 0.5]), (3.0, [1 / 3] * 3), (2.5, [0.3, 0.4, 0.3])],
)
def test_pixel_box_has_fractional_edges_and_natural_phase(width, taps):
    box = psfmod.box_1d(width)
    np.testing.assert_allclose(box, taps, atol=1e-12)
    assert box.sum() == pytest.approx(1.0)


def test_kernel_fwhm_of_a_gaussian_and_of_an_even_kernel():
    sigma = 1.7
    g = gaussian_plane((31, 31), (15, 15), sigma)
    fy, fx = kernel_fwhm(g)
    assert fy == pytest.approx(FWHM_PER_SIGMA * sigma, rel=0.01)
    assert fx == pytest.approx(FWHM_PER_SIGMA * sigma, rel=0.01)
    even = gaussian_plane((30, 30), (14.5, 14.5), sigma)
    fy, fx = kernel_fwhm(even)
    assert fy == pytest.approx(FWHM_PER_SIGMA * sigma, rel=0.01)
    assert kernel_fwhm(np.ones((1, 5)))[0] == 0.0


# ---------------------------------------------------------------------------------------------
# bead stacks
# ---------------------------------------------------------------------------------------------


def test_bead_stack_kernel_is_centred_with_the_right_width():
    rng = np.random.default_rng(1)
    stack = bead_stack(rng)
    before = stack.copy()
    sigma_um = 2.5 * 0.04  # the bead was drawn with sigma 2.5 pixels of 0.04 um
    res = kernel_from_bead_stack(
        stack, voxel_size=(0.2, 0.04, 0.04), image_pixel_size=0.1, scale=2, integrate_pixel=False
    )
    np.testing.assert_array_equal(stack, before)  # input untouched
    assert_valid_kernel(res)
    k = res.kernel
    assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
    cy, cx = centroid(k)
    assert cy == pytest.approx((k.shape[0] - 1) / 2, abs=0.05)
    assert cx == pytest.approx((k.shape[1] - 1) / 2, abs=0.05)
    expected = FWHM_PER_SIGMA * sigma_um / 0.05  # HR pixel 0.1 / 2
    fy, fx = kernel_fwhm(k)
    assert fy == pytest.approx(expected, rel=0.05)
    assert fx == pytest.approx(expected, rel=0.05)
    # the brightest bead was used, in its in-focus plane, at its sub-pixel position
    z, y, x = res.source["bead_position_px"]
    assert z == 5
    assert y == pytest.approx(20.3, abs=0.1)
    assert x == pytest.approx(51.7, abs=0.1)
    assert res.source["background"] == pytest.approx(100.0, abs=1.0)
    # the crop is where the energy is: a few FWHM, not the whole field
    assert max(k.shape) <= 2 * math.ceil(3 * expected) + 1


def test_bead_kernel_with_pixel_integration_has_the_even_phase_for_even_scales():
    rng = np.random.default_rng(2)
    stack = bead_stack(rng, second_bead=False)
    bare = kernel_from_bead_stack(
        stack, voxel_size=(0.2, 0.04, 0.04), image_pixel_size=0.1, scale=2, integrate_pixel=False
    )
    res = kernel_from_bead_stack(stack, voxel_size=(0.2, 0.04, 0.04), image_pixel_size=0.1, scale=2)
    k = res.kernel
    assert k.shape[0] % 2 == 0 and k.shape[1] % 2 == 0
    cy, cx = centroid(k)
    assert cy == pytest.approx((k.shape[0] - 1) / 2, abs=0.05)
    assert cx == pytest.approx((k.shape[1] - 1) / 2, abs=0.05)
    # integration over a 2 x 2 HR-pixel camera pixel adds variance 2**2 / 12 - 1/12 per axis
    # relative to single HR pixels: the kernel must be wider than the bare PSF
    var_bare = (
        (np.arange(bare.kernel.shape[1]) - centroid(bare.kernel)[1]) ** 2 * bare.kernel.sum(axis=0)
    ).sum()
    var_int = ((np.arange(k.shape[1]) - cx) ** 2 * k.sum(axis=0)).sum()
    assert var_int - var_bare == pytest.approx(0.25, abs=0.08)
    # three-fold: odd box, odd kernel
    k3 = kernel_from_bead_stack(
        stack, voxel_size=(0.2, 0.04, 0.04), image_pixel_size=0.12, scale=3
    ).kernel
    assert k3.shape[0] % 2 == 1 and k3.shape[1] % 2 == 1


def test_bead_stack_average_of_beads_and_a_single_plane():
    rng = np.random.default_rng(3)
    stack = bead_stack(rng)
    avg = kernel_from_bead_stack(
        stack, voxel_size=(0.2, 0.04, 0.04), image_pixel_size=0.1, scale=2, beads="average"
    )
    assert avg.source["n_beads"] == 2
    one = kernel_from_bead_stack(stack[5], voxel_size=(0.04, 0.04), image_pixel_size=0.1, scale=2)
    assert_valid_kernel(one)
    assert kernel_fwhm(avg.kernel)[1] == pytest.approx(kernel_fwhm(one.kernel)[1], rel=0.05)


# ---------------------------------------------------------------------------------------------
# PSF arrays, units
# ---------------------------------------------------------------------------------------------


def test_same_psf_at_two_pixel_sizes_gives_the_same_hr_kernel():
    sigma_um = 0.11
    kernels = []
    for pixel in (0.02, 0.04, 0.08):  # finer, finer, and coarser than the 0.05 um HR pixel
        n = round(2.0 / pixel) | 1
        c = (n - 1) / 2
        psf = gaussian_plane((n, n), (c, c), sigma_um / pixel)
        res = kernel_from_psf(psf, psf_pixel_size=pixel, image_pixel_size=0.1, scale=2)
        assert_valid_kernel(res)
        kernels.append(res.kernel)
    shape = np.max([k.shape for k in kernels], axis=0)
    padded = [pad_to(k, shape) for k in kernels]
    peak = padded[0].max()
    assert np.abs(padded[0] - padded[1]).max() < 0.03 * peak
    assert np.abs(padded[0] - padded[2]).max() < 0.06 * peak
    # and the width is the physical one, whatever the PSF's sampling
    for k in kernels:
        assert kernel_fwhm(k)[0] * 0.05 == pytest.approx(FWHM_PER_SIGMA * sigma_um, rel=0.12)


def test_psf_already_on_the_hr_grid_is_kept_and_off_centre_psf_is_centred():
    g = gaussian_plane((21, 21), (10, 10), 1.5)
    res = kernel_from_psf(
        g,
        psf_pixel_size=0.05,
        image_pixel_size=0.05,
        scale=1,
        integrate_pixel=False,
        energy=1.0,
        max_fwhm=None,
    )
    np.testing.assert_allclose(res.kernel, g / g.sum(), atol=1e-12)
    shifted = gaussian_plane((25, 25), (8.3, 14.6), 1.5)
    k = kernel_from_psf(
        shifted, psf_pixel_size=0.05, image_pixel_size=0.1, scale=2, integrate_pixel=False
    ).kernel
    cy, cx = centroid(k)
    assert cy == pytest.approx((k.shape[0] - 1) / 2, abs=0.05)
    assert cx == pytest.approx((k.shape[1] - 1) / 2, abs=0.05)


def test_psf_3d_uses_the_in_focus_plane_and_background_option():
    planes = [gaussian_plane((33, 33), (16, 16), s) for s in (4.0, 2.5, 1.5, 2.5, 4.0)]
    vol = np.stack([p / p.sum() for p in planes])
    res = kernel_from_psf(vol, psf_pixel_size=0.05, image_pixel_size=0.1, scale=2)
    assert res.source["plane"] == 2
    assert kernel_fwhm(res.kernel)[0] < 1.5 * FWHM_PER_SIGMA * 1.5
    with_bg = vol * 1000 + 50.0
    auto = kernel_from_psf(
        with_bg, psf_pixel_size=0.05, image_pixel_size=0.1, scale=2, background="auto"
    )
    assert auto.source["background"] == pytest.approx(50.0, abs=0.5)
    np.testing.assert_allclose(auto.kernel, res.kernel, atol=2e-3)


def test_anisotropic_pixels_and_non_integer_scale():
    g = gaussian_plane((41, 41), (20, 20), 3.0)
    res = kernel_from_psf(g, psf_pixel_size=0.025, image_pixel_size=(0.1, 0.2), scale=2)
    assert_valid_kernel(res)
    fy, fx = kernel_fwhm(res.kernel)
    assert fy > 1.5 * fx  # the x HR pixel is twice as large
    k25 = kernel_from_psf(g, psf_pixel_size=0.025, image_pixel_size=0.1, scale=2.5)
    assert_valid_kernel(k25)
    assert k25.source["hr_pixel_size_um"] == [0.04, 0.04]


# ---------------------------------------------------------------------------------------------
# optics
# ---------------------------------------------------------------------------------------------


def test_optics_kernel_width_follows_the_diffraction_limit():
    wl, na = 0.52, 1.4
    scalar = kernel_from_optics(
        image_pixel_size=0.025, scale=1, na=na, wavelength=wl, model="scalar", integrate_pixel=False
    )
    assert_valid_kernel(scalar)
    fwhm_um = kernel_fwhm(scalar.kernel)[1] * 0.025
    assert fwhm_um == pytest.approx(0.51 * wl / na, rel=0.1)
    vect = kernel_from_optics(
        image_pixel_size=0.025, scale=1, na=na, wavelength=wl, integrate_pixel=False
    )
    # the vectorial model is broader at high NA (polarisation), still roughly 0.51 lambda/NA
    assert 0.9 < kernel_fwhm(vect.kernel)[1] * 0.025 / (0.51 * wl / na) < 1.35
    low = kernel_from_optics(
        image_pixel_size=0.025, scale=1, na=0.8, ni=1.0, wavelength=wl, integrate_pixel=False
    )
    assert kernel_fwhm(low.kernel)[1] * 0.025 == pytest.approx(0.51 * wl / 0.8, rel=0.15)
    conf = kernel_from_optics(
        image_pixel_size=0.025,
        scale=1,
        na=na,
        wavelength=wl,
        modality="confocal",
        excitation_wavelength=0.488,
        integrate_pixel=False,
    )
    assert kernel_fwhm(conf.kernel)[1] < kernel_fwhm(vect.kernel)[1]
    assert "confocal" in conf.description and conf.source["pinhole_au"] == 1.0


def test_optics_kernel_on_the_hr_grid_with_pixel_integration():
    res = kernel_from_optics(image_pixel_size=0.1, scale=2, na=1.4, wavelength=0.52)
    assert_valid_kernel(res)
    k = res.kernel
    assert k.shape[0] % 2 == 0  # box of 2 HR pixels: even phase
    cy, cx = centroid(k)
    assert cy == pytest.approx((k.shape[0] - 1) / 2, abs=1e-6)
    assert cx == pytest.approx((k.shape[1] - 1) / 2, abs=1e-6)
    # by default the rings beyond 3 FWHMs are kept (the consistency step's forward model),
    # cropped to the energy, inside the computation window of 8 FWHMs
    fwhm = res.source["psf_fwhm_um"][0] / 0.05
    assert 2 * math.ceil(3 * fwhm) + 2 < max(k.shape) <= 2 * math.ceil(8 * fwhm) + 2
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-12)
    np.testing.assert_allclose(k, k.T, atol=1e-12)
    # a cap keeps the kernel to a few FWHMs
    capped = kernel_from_optics(image_pixel_size=0.1, scale=2, na=1.4, wavelength=0.52, max_fwhm=3)
    assert max(capped.kernel.shape) <= 2 * math.ceil(3 * fwhm) + 2


# ---------------------------------------------------------------------------------------------
# axial profile
# ---------------------------------------------------------------------------------------------


def test_axial_profile_from_a_gaussian():
    k = axial_profile(fwhm=0.6, target_step=0.1)
    assert k.ndim == 1 and k.sum() == pytest.approx(1.0) and len(k) % 2 == 1
    assert psfmod._fwhm_1d(k) == pytest.approx(6.0, rel=0.03)
    ki = axial_profile(fwhm=0.6, target_step=0.1, integrate_step=0.3)
    assert len(ki) % 2 == 1 and psfmod._fwhm_1d(ki) > psfmod._fwhm_1d(k)
    ke = axial_profile(fwhm=0.6, target_step=0.1, integrate_step=0.2)
    assert len(ke) % 2 == 0  # even box, even phase


@pytest.mark.parametrize("mode", ["peak", "sum"])
def test_axial_profile_from_a_bead_stack(mode):
    rng = np.random.default_rng(4)
    sigma_z_px = 3.0
    stack = bead_stack(
        rng,
        shape=(31, 48, 48),
        centre=(14.6, 24.0, 22.0),
        sigma_xy_px=2.0,
        sigma_z_px=sigma_z_px,
        second_bead=False,
        noise=1.0,
    )
    k = axial_profile(stack, psf_voxel_size=(0.1, 0.05, 0.05), target_step=0.05, mode=mode)
    expected = FWHM_PER_SIGMA * sigma_z_px * 0.1 / 0.05
    assert psfmod._fwhm_1d(k) == pytest.approx(expected, rel=0.1)
    com = (np.arange(len(k)) * k).sum()
    assert com == pytest.approx((len(k) - 1) / 2, abs=0.1)


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------


def test_load_npy_and_mat(tmp_path):
    g = gaussian_plane((15, 15), (7, 7), 2.0).astype(np.float32)
    np.save(tmp_path / "p.npy", g)
    arr, px = load_psf_file(tmp_path / "p.npy")
    np.testing.assert_array_equal(arr, g)
    assert px is None
    savemat(tmp_path / "k.mat", {"Kernel": g.astype(np.float64), "other": np.ones((3, 3))})
    arr, px = load_psf_file(str(tmp_path / "k.mat"))
    np.testing.assert_allclose(arr, g)
    assert px is None
    vol = np.stack([g, 2 * g, g])
    savemat(tmp_path / "v.mat", {"name": "x", "stack": vol})
    arr, _ = load_psf_file(tmp_path / "v.mat")
    assert arr.shape == (3, 15, 15)
    savemat(tmp_path / "none.mat", {"label": "text"})
    with pytest.raises(ValueError, match="no 2-D or 3-D numeric array"):
        load_psf_file(tmp_path / "none.mat")


def test_load_tiff_with_and_without_pixel_size(tmp_path):
    vol = (np.random.default_rng(0).random((5, 16, 16)) * 1000).astype(np.uint16)
    tifffile.imwrite(
        tmp_path / "ij.tif",
        vol,
        imagej=True,
        resolution=(1 / 0.065, 1 / 0.065),
        metadata={"unit": "um", "spacing": 0.2, "axes": "ZYX"},
    )
    arr, px = load_psf_file(tmp_path / "ij.tif")
    np.testing.assert_array_equal(arr, vol)
    assert px == pytest.approx((0.2, 0.065, 0.065), rel=1e-5)
    tifffile.imwrite(
        tmp_path / "nm.tif",
        vol[2],
        imagej=True,
        resolution=(1 / 65.0, 1 / 65.0),
        metadata={"unit": "nm"},
    )
    arr, px = load_psf_file(tmp_path / "nm.tif")
    assert arr.shape == (16, 16)
    assert px == pytest.approx((0.065, 0.065), rel=1e-5)
    tifffile.imwrite(tmp_path / "bare.tif", vol[2])
    arr, px = load_psf_file(tmp_path / "bare.tif")
    assert px is None
    # what load_psf_file returns for a stack goes straight into the kernel functions
    bead = np.stack([gaussian_plane((33, 33), (16, 16), s, 1e4 / s**2) for s in (3.0, 2.0, 3.0)])
    tifffile.imwrite(
        tmp_path / "bead.tif",
        bead.astype(np.float32),
        imagej=True,
        resolution=(1 / 0.04, 1 / 0.04),
        metadata={"unit": "um", "axes": "ZYX"},
    )
    arr, px = load_psf_file(tmp_path / "bead.tif")
    assert px[0] is None and px[1:] == pytest.approx((0.04, 0.04))
    from_psf = kernel_from_psf(arr, psf_pixel_size=px, image_pixel_size=0.1, scale=2)
    from_beads = kernel_from_bead_stack(arr, voxel_size=px, image_pixel_size=0.1, scale=2)
    assert from_psf.source["plane"] == 1
    assert kernel_fwhm(from_psf.kernel)[0] == pytest.approx(
        kernel_fwhm(from_beads.kernel)[0], rel=0.05
    )
    with pytest.raises(ValueError, match="z step is unknown"):
        axial_profile(arr, psf_voxel_size=px, target_step=0.04)
    # a loaded PSF with its pixel size goes straight into a kernel
    res = kernel_from_psf(
        gaussian_plane((31, 31), (15, 15), 2.0),
        psf_pixel_size=0.065,
        image_pixel_size=0.13,
        scale=2,
    )
    assert_valid_kernel(res)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_psf_file(tmp_path / "missing.tif")
    (tmp_path / "psf.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match="unknown PSF file type"):
        load_psf_file(tmp_path / "psf.txt")
    np.save(tmp_path / "line.npy", np.ones(7))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        load_psf_file(tmp_path / "line.npy")


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------

G = gaussian_plane((21, 21), (10, 10), 2.0)


def test_missing_and_implausible_pixel_sizes():
    with pytest.raises(ValueError, match=r"psf_pixel_size is required.*um"):
        kernel_from_psf(G, psf_pixel_size=None, image_pixel_size=0.1, scale=2)
    with pytest.raises(ValueError, match="micrometres"):
        kernel_from_psf(G, psf_pixel_size=65, image_pixel_size=0.1, scale=2)  # nm given
    with pytest.raises(ValueError, match="micrometres"):
        kernel_from_psf(G, psf_pixel_size=0.065, image_pixel_size=1e-5, scale=2)
    with pytest.raises(ValueError, match="voxel_size is required"):
        kernel_from_bead_stack(G, voxel_size=None, image_pixel_size=0.1, scale=2)
    with pytest.raises(ValueError, match="image_pixel_size is required"):
        kernel_from_optics(image_pixel_size=None, scale=2, na=1.4, wavelength=0.52)
    with pytest.raises(ValueError, match="wavelength"):
        kernel_from_optics(image_pixel_size=0.1, scale=2, na=1.4, wavelength=520)
    with pytest.raises(ValueError, match="na must be in"):
        kernel_from_optics(image_pixel_size=0.1, scale=2, na=1.6, wavelength=0.52)
    with pytest.raises(ValueError, match="modality"):
        kernel_from_optics(image_pixel_size=0.1, scale=2, na=1.4, wavelength=0.52, modality="sted")
    with pytest.raises(ValueError, match="scale factors"):
        kernel_from_psf(G, psf_pixel_size=0.05, image_pixel_size=0.1, scale=20)
    with pytest.raises(TypeError):
        kernel_from_psf(G, psf_pixel_size="0.05", image_pixel_size=0.1, scale=2)


def test_bad_psf_arrays():
    kw = {"psf_pixel_size": 0.05, "image_pixel_size": 0.1, "scale": 2}
    with pytest.raises(ValueError, match="all zero"):
        kernel_from_psf(np.zeros((9, 9)), **kw)
    bad = G.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        kernel_from_psf(bad, **kw)
    with pytest.raises(ValueError, match="negative"):
        kernel_from_psf(-G, **kw)
    with pytest.raises(ValueError, match="negative"):
        kernel_from_psf(G - 0.3 * G.max(), **kw)
    with pytest.raises(ValueError, match="empty"):
        kernel_from_psf(np.zeros((0, 5)), **kw)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        kernel_from_psf(np.ones(5), **kw)
    with pytest.raises(TypeError, match="numeric"):
        kernel_from_psf(np.array([["a"]]), **kw)
    with pytest.raises(ValueError, match="larger than the image"):
        kernel_from_psf(G, image_shape=(4, 4), **kw)
    kernel_from_psf(G, image_shape=(64, 64), **kw)  # fits
    with pytest.raises(ValueError, match="no bead found"):
        noise = np.random.default_rng(0).normal(100.0, 2.0, (5, 40, 40))
        kernel_from_bead_stack(noise, voxel_size=(0.2, 0.05, 0.05), image_pixel_size=0.1, scale=2)
    with pytest.raises(ValueError, match="exactly one"):
        axial_profile(target_step=0.1)
    with pytest.raises(ValueError, match="psf_voxel_size is required"):
        axial_profile(np.ones((5, 9, 9)), target_step=0.1)


# ---------------------------------------------------------------------------------------------
# real data (skipped when ../shared/data is absent)
# ---------------------------------------------------------------------------------------------


def test_measured_beads_and_computed_psf(shared_data):
    stack, px = load_psf_file(shared_data / "microscopy" / "bian_Bead_Image1_crop.tif")
    assert stack.shape == (41, 150, 150)
    assert px is not None and px[1] == pytest.approx(0.0225, rel=0.01)
    assert px[0] == pytest.approx(0.125)
    res = kernel_from_bead_stack(
        stack, voxel_size=px, image_pixel_size=0.1, scale=2, beads="average"
    )
    assert_valid_kernel(res)
    assert res.source["n_beads"] == 4
    fwhm_um = np.array(res.source["psf_fwhm_um"])
    assert np.all((fwhm_um > 0.12) & (fwhm_um < 0.4))
    psf = np.load(shared_data / "psf" / "psf_widefield_NA1.4_520nm_65nm.npy")
    res = kernel_from_psf(
        psf, psf_pixel_size=0.065, image_pixel_size=0.065, scale=1, integrate_pixel=False
    )
    assert res.source["psf_fwhm_um"][0] == pytest.approx(0.215, abs=0.01)
