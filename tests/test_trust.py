"""Resolution without ground truth and the quality maps of a run."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch

import napari_zssr
from napari_zssr import ZSSRConfig, estimate_resolution, super_resolve
from napari_zssr.core.inference import back_project, degrade, median, super_resolve_tensor
from napari_zssr.core.maps import plane_maps
from napari_zssr.core.network import ZSSRNet
from napari_zssr.core.resize import imresize
from napari_zssr.core.resolution import ResolutionEstimate, StackResolution
from napari_zssr.core.sampling import apply_dihedral, undo_dihedral

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ZSSRConfig(
    max_iters=10,
    crop_size=16,
    width=8,
    self_ensemble=True,
    back_projection_iters=1,
    eval_every=5,
    report_every=5,
)
RAND64 = np.random.default_rng(0).random((64, 64))
ALL_TRANSFORMS = tuple(itertools.product((False, True), repeat=3))


def band_limited(
    shape: tuple[int, int], cutoff: float, seed: int = 0, noise: float = 0.0
) -> np.ndarray:
    """White noise low-pass filtered by a sharp disc of ``cutoff`` cycles/px, std 1."""
    rng = np.random.default_rng(seed)
    spec = np.fft.fft2(rng.standard_normal(shape))
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    spec[np.hypot(fy, fx) > cutoff] = 0
    img = np.fft.ifft2(spec).real
    img /= img.std()
    return img + noise * rng.standard_normal(shape)


# --- estimate_resolution -----------------------------------------------------------------------


@pytest.mark.parametrize("cutoff", [0.05, 0.08, 0.12, 0.2, 0.3, 0.4, 0.45])
@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_band_limited_cutoff_within_ten_percent(cutoff: float, noise: float) -> None:
    res = estimate_resolution(band_limited((256, 256), cutoff, noise=noise))
    assert isinstance(res, ResolutionEstimate)
    assert res.resolution_px == pytest.approx(1.0 / cutoff, rel=0.10)
    assert not res.at_nyquist
    assert res.resolution_um is None
    assert len(res.radii) == len(res.curve) == 50


@pytest.mark.parametrize("cutoff", [0.08, 0.12, 0.2])
def test_strong_noise_rising_towards_nyquist_does_not_hide_the_peak(cutoff: float) -> None:
    # noise as strong as the signal: d(r) rises again towards Nyquist after the cutoff
    img = band_limited((256, 256), cutoff, seed=1, noise=1.0)
    res = estimate_resolution(img)
    assert not res.at_nyquist
    assert res.resolution_px == pytest.approx(1.0 / cutoff, rel=0.10)


def test_non_square_image_and_pixel_size() -> None:
    img = band_limited((160, 288), 0.15, seed=3)
    res = estimate_resolution(img, pixel_size=0.1)
    assert res.resolution_px == pytest.approx(1 / 0.15, rel=0.10)
    assert res.resolution_um == pytest.approx(0.1 * res.resolution_px)
    # the same image in coarser physical pixels along y only: the coarser axis sets the unit
    res_aniso = estimate_resolution(img, pixel_size=(0.2, 0.1))
    assert res_aniso.resolution_um is not None and res_aniso.resolution_um >= 0.2 * 2


def test_finer_structure_gives_finer_resolution() -> None:
    coarse = estimate_resolution(band_limited((128, 128), 0.1, seed=1))
    fine = estimate_resolution(band_limited((128, 128), 0.3, seed=1))
    assert fine.resolution_px < 0.5 * coarse.resolution_px


def test_white_noise_is_at_nyquist() -> None:
    res = estimate_resolution(np.random.default_rng(0).random((128, 128)))
    assert res.at_nyquist
    assert res.resolution_px == 2.0


def test_stack_is_estimated_per_plane() -> None:
    planes = [band_limited((96, 96), c, seed=i) for i, c in enumerate((0.1, 0.2, 0.3, 0.4))]
    stack = np.stack(planes).reshape(2, 2, 96, 96).astype(np.float32)
    before = stack.copy()
    res = estimate_resolution(stack, pixel_size=0.05)
    assert isinstance(res, StackResolution)
    assert res.resolution_px.shape == (2, 2)
    np.testing.assert_allclose(res.resolution_px.ravel(), [10, 5, 3.33, 2.5], rtol=0.12)
    assert res.resolution_um is not None
    np.testing.assert_allclose(res.resolution_um, 0.05 * res.resolution_px)
    np.testing.assert_array_equal(stack, before)
    assert len(res.to_dict()["planes"]) == 4


def test_integer_input() -> None:
    img = band_limited((128, 128), 0.2, seed=2)
    u16 = np.round((img - img.min()) / np.ptp(img) * 60000).astype(np.uint16)
    assert estimate_resolution(u16).resolution_px == pytest.approx(5.0, rel=0.10)


@pytest.mark.parametrize(
    ("image", "kw", "exc", "match"),
    [
        (np.zeros((16, 200)), {}, ValueError, "at least 32 x 32"),
        (np.ones((1, 500)), {}, ValueError, "at least 32 x 32"),
        (np.ones(500), {}, ValueError, "at least 2 dimensions"),
        (np.full((64, 64), 7.0), {}, ValueError, "constant"),
        (np.stack([RAND64, np.ones((64, 64))]), {}, ValueError, r"plane \(1,\)"),
        (np.where(np.eye(64) > 0, np.nan, 1.0), {}, ValueError, "NaN"),
        (np.full((64, 64), np.inf), {}, ValueError, "NaN or Inf"),
        (np.zeros((64, 64), bool), {}, TypeError, "dtype bool"),
        (np.zeros((64, 64), complex), {}, TypeError, "real numeric"),
        (RAND64, {"pixel_size": -1.0}, ValueError, "pixel_size"),
        (RAND64, {"pixel_size": (1.0, 2.0, 3.0)}, ValueError, "pixel_size"),
        (RAND64, {"pixel_size": "0.1"}, TypeError, "pixel_size"),
    ],
)
def test_estimate_resolution_errors(image: np.ndarray, kw: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        estimate_resolution(image, **kw)


def test_estimate_resolution_does_not_import_torch() -> None:
    code = (
        "import sys, numpy as np, napari_zssr\n"
        "napari_zssr.estimate_resolution(np.random.default_rng(0).random((64, 64)))\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print('ok')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
    assert "estimate_resolution" in napari_zssr.__all__


# --- ensemble spread and raw output inside the inference ----------------------------------------


def test_collect_gives_spread_and_raw_without_changing_the_result() -> None:
    net = ZSSRNet(1, 8, 3, generator=torch.Generator().manual_seed(0))
    lr = torch.rand(1, 20, 24, generator=torch.Generator().manual_seed(1))
    kw = {"transforms": ALL_TRANSFORMS, "back_projection_iters": 2, "tile": 64, "overlap": 8}
    plain = super_resolve_tensor(net, lr, (2.0, 2.0), None, **kw)
    coll: dict[str, torch.Tensor] = {}
    with_maps = super_resolve_tensor(net, lr, (2.0, 2.0), None, collect=coll, **kw)
    torch.testing.assert_close(with_maps, plain, rtol=0, atol=0)
    assert set(coll) == {"raw", "spread"}
    assert coll["spread"].shape == coll["raw"].shape == plain.shape
    # an untrained network is far from equivariant: the members disagree
    assert float(coll["spread"].mean()) > 0
    # the raw output is before back-projection: it does not reproduce the input...
    raw_err = (degrade(coll["raw"], (2, 2), None, lr.shape[-2:]) - lr).abs().mean()
    out_err = (degrade(plain, (2, 2), None, lr.shape[-2:]) - lr).abs().mean()
    assert float(raw_err) > 2 * float(out_err)
    # ... and the spread is the MAD of the back-projected members around their median
    members = []
    with torch.inference_mode():
        for tf in ALL_TRANSFORMS:
            xt = apply_dihedral(lr, tf)
            up = imresize(xt, 2.0)
            y = undo_dihedral(net(up[None])[0], tf)
            members.append(back_project(y, lr, (2.0, 2.0), None, 2))
    stack = torch.stack(members)
    mid = 0.5 * (stack.sort(dim=0).values[3] + stack.sort(dim=0).values[4])
    expected = median((stack - mid).abs())
    torch.testing.assert_close(coll["spread"], expected, rtol=1e-5, atol=1e-6)
    # a single member has no spread
    single: dict[str, torch.Tensor] = {}
    kw1 = dict(kw, transforms=ALL_TRANSFORMS[:1])
    super_resolve_tensor(net, lr, (2.0, 2.0), None, collect=single, **kw1)
    assert float(single["spread"].abs().max()) == 0.0


def test_median_helper_matches_torch_for_odd_counts() -> None:
    x = torch.rand(7, 3, 4)
    torch.testing.assert_close(median(x), x.median(dim=0).values)


# --- plane_maps on constructed data ------------------------------------------------------------


def test_consistency_map_marks_an_invented_structure() -> None:
    hr = torch.from_numpy(
        np.clip(band_limited((64, 64), 0.1, seed=4) * 0.1 + 0.5, 0, 1).astype(np.float32)
    )[None]
    lr = imresize(hr, 0.5)
    faithful = hr.clone()
    invented = hr.clone()
    invented[:, 40:48, 10:18] += 0.4  # a bright square the input does not contain
    coll = {"raw": invented, "spread": torch.zeros_like(hr)}
    pm = plane_maps(lr, faithful, coll, (2.0, 2.0), None)
    cons = pm.maps["consistency"][0]
    assert cons.shape == (64, 64) and cons.dtype == np.float32
    inside = cons[40:48, 10:18].mean()
    outside = np.delete(cons, np.s_[32:56], axis=0).mean()
    assert inside > 10 * outside
    # consistent data: tiny error, high correlation, the added detail is where hr differs
    pm_ok = plane_maps(lr, faithful, {"raw": hr, "spread": coll["spread"]}, (2.0, 2.0), None)
    assert float(pm_ok.maps["consistency"].max()) < 0.2 * float(cons.max())
    assert pm_ok.rsp[0] > 0.99
    assert pm.rsp[0] < pm_ok.rsp[0]
    assert pm.rse[0] > 3 * pm_ok.rse[0]


def test_added_map_is_zero_for_the_bicubic_upscale() -> None:
    lr = torch.rand(2, 24, 24, generator=torch.Generator().manual_seed(2))
    up = imresize(lr, 2.0)
    sharp = up.clone()
    sharp[:, 10:14, 30:34] += 0.3
    coll = {"raw": up, "spread": torch.zeros_like(up)}
    assert float(np.abs(plane_maps(lr, up, coll, (2, 2), None).maps["added"]).max()) < 1e-5
    added = plane_maps(lr, sharp, coll, (2, 2), None).maps["added"]
    assert added.shape == (2, 48, 48)
    assert added[:, 10:14, 30:34].mean() > 5 * added[:, :, :20].mean()


# --- super_resolve(maps=True) ---------------------------------------------------------------------


def pattern(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.indices(shape[-2:])
    img = np.sin(0.7 * xx + 0.3 * yy) + 0.3 * rng.random(shape)
    return ((img - img.min()) / np.ptp(img) * 4000).astype(np.uint16)


@pytest.mark.parametrize(
    ("shape", "kw"),
    [
        ((40, 36), {}),
        ((2, 40, 36), {"channel_axis": 0}),
        ((3, 40, 36), {"stack_mode": "shared"}),
        ((2, 40, 36), {"stack_mode": "per_plane"}),
        ((2, 40, 36, 3), {"rgb": True}),
    ],
)
def test_maps_shape_and_dtype(shape: tuple, kw: dict) -> None:
    img = pattern(shape)
    before = img.copy()
    out, info = super_resolve(img, 2, config=TINY, device="cpu", return_info=True, maps=True, **kw)
    assert set(info["maps"]) == {"spread", "consistency", "added"}
    for name, arr in info["maps"].items():
        assert arr.shape == out.shape, name
        assert arr.dtype == np.float32, name
        assert np.isfinite(arr).all() and arr.min() >= 0, name
    assert info["maps"]["added"].max() > 0
    cons = info["consistency"]
    assert -1 <= cons["rsp"] <= 1
    assert cons["rse"] >= 0 and cons["residual_after_back_projection"] >= 0
    if "stack_mode" in kw:
        assert len(cons["planes"]) == shape[0]
    np.testing.assert_array_equal(img, before)


def test_maps_in_input_units_and_resolution_reported() -> None:
    img = pattern((64, 64))
    _, info16 = super_resolve(img, 2, config=TINY, device="cpu", return_info=True, maps=True)
    _, info_f = super_resolve(
        img.astype(np.float32) / 4000.0, 2, config=TINY, device="cpu", return_info=True, maps=True
    )
    # the same data in another unit: the maps follow the intensity unit
    span16 = info16["intensity"]["hi"][0] - info16["intensity"]["lo"][0]
    span_f = info_f["intensity"]["hi"][0] - info_f["intensity"]["lo"][0]
    for name in ("spread", "consistency", "added"):
        ratio = info16["maps"][name].mean() / info_f["maps"][name].mean()
        assert ratio == pytest.approx(span16 / span_f, rel=0.02), name
        assert ratio == pytest.approx(4000, rel=0.02), name
    res = info16["resolution"]
    assert res["unit"] == "px" and res["method"] == "decorrelation"
    assert 2.0 <= res["input"] < 20
    # the upscaled images are measured in input pixels: down to 1 (their own Nyquist limit)
    assert 1.0 <= res["output"] < 20
    assert 1.0 <= res["bicubic"] <= res["input"]
    assert info16["maps_seconds"] > 0


def test_no_maps_without_maps_true() -> None:
    img = pattern((40, 36))
    _, info = super_resolve(img, 2, config=TINY, device="cpu", return_info=True)
    assert "maps" not in info and "consistency" not in info and "resolution" not in info


def test_maps_needs_return_info_and_a_bool() -> None:
    with pytest.raises(ValueError, match="return_info"):
        super_resolve(pattern((40, 36)), 2, config=TINY, device="cpu", maps=True)
    with pytest.raises(TypeError, match="maps must be True or False"):
        super_resolve(pattern((40, 36)), 2, config=TINY, device="cpu", return_info=True, maps=1)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.where(np.eye(40) > 0, np.nan, 1.0), "NaN"),
        (np.ones((1, 64)), "at least 8 x 8"),
    ],
)
def test_bad_input_with_maps_fails_before_any_work(image: np.ndarray, match: str) -> None:
    calls: list[object] = []
    before = image.copy()
    with pytest.raises(ValueError, match=match):
        super_resolve(
            image,
            2,
            config=TINY,
            device="cpu",
            return_info=True,
            maps=True,
            callback=calls.append,
        )
    assert calls == []
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize(
    ("scale", "kw", "out_shape"),
    [
        (2, {"kernel": np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(float)}, (80, 72)),
        (3, {"config": TINY.replace(gradual_scales=(1.5,))}, (120, 108)),
        ((2, 1.5), {}, (80, 54)),
        (2, {"noise_std": 0.02}, (80, 72)),
    ],
)
def test_maps_with_kernel_gradual_anisotropic_and_noise(
    scale: object, kw: dict, out_shape: tuple
) -> None:
    kw.setdefault("config", TINY)
    out, info = super_resolve(
        pattern((40, 36)), scale, device="cpu", return_info=True, maps=True, **kw
    )
    assert out.shape == out_shape
    for arr in info["maps"].values():
        assert arr.shape == out_shape and arr.dtype == np.float32 and np.isfinite(arr).all()
    assert info["consistency"]["rse"] > 0
    if "noise_std" in kw:
        # no back-projection with noise on the sons: the output is the network's own answer
        assert info["back_projection_iters"] == 0
