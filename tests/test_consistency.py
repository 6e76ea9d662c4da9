"""The noise-aware consistency step (core.consistency) and the sons' kernel core."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_zssr import super_resolve
from napari_zssr.core.config import PRESETS, ZSSRConfig
from napari_zssr.core.consistency import consistency_step, input_noise_model
from napari_zssr.core.inference import degrade
from napari_zssr.core.kernels import prepare_kernel, son_kernel
from napari_zssr.core.resize import imresize


def _gaussian(sigma: float, half: int) -> np.ndarray:
    r = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-0.5 * (r / sigma) ** 2)
    k = np.outer(g, g)
    return k / k.sum()


def _rings(half: int) -> np.ndarray:
    """A kernel with a sharp core and wide, weak tails (like a widefield PSF's rings)."""
    k = 0.85 * _gaussian(1.5, half) + 0.15 * _gaussian(7.0, half)
    return k / k.sum()


def _filaments(n: int, seed: int) -> np.ndarray:
    """Thin bright lines on a grey background (the noise estimate reads the noise of sparse
    lines on black about 40% low, which the step would then fit: not what these tests are
    about)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    img = np.zeros((n, n))
    for _ in range(12):
        a, c = rng.uniform(0, np.pi), rng.uniform(0, n)
        d = np.abs((xx - n / 2) * np.cos(a) + (yy - n / 2) * np.sin(a) - (c - n / 2))
        img += np.exp(-0.5 * (d / 0.8) ** 2)
    return 0.3 + 0.6 * img / img.max()


def _noisy_case(photons: float = 300.0, seed: int = 0):
    gt = _filaments(256, seed)
    dk = prepare_kernel(_gaussian(2.5, 10), (2.0, 2.0))
    clean = degrade(torch.tensor(gt[None], dtype=torch.float32), (2.0, 2.0), dk)
    rng = np.random.default_rng(seed + 1)
    lr = rng.poisson(clean.numpy() * photons) / photons
    return gt, dk, torch.tensor(lr, dtype=torch.float32)


def _blurred_start(lr: torch.Tensor, shape) -> torch.Tensor:
    """An output short of the input's detail: bicubic, then blurred again."""
    from scipy.ndimage import gaussian_filter

    up = imresize(lr, (2.0, 2.0), shape).clamp(0, 1)[0].numpy()
    return torch.tensor(gaussian_filter(up, 2.5)[None], dtype=torch.float32)


def _psnr(gt: np.ndarray, x: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((gt[4:-4, 4:-4] - x[4:-4, 4:-4]) ** 2)))


def test_stops_at_the_noise_and_restores_detail():
    gt, dk, lr = _noisy_case()
    start = _blurred_start(lr, gt.shape)
    out, rec = consistency_step(start, lr, (2.0, 2.0), dk, max_iters=200)
    n = rec["iterations"][0]
    assert 0 < n < 200  # the risk estimate stopped it, not the cap
    assert rec["discrepancy_before"][0] > 1.0 >= rec["discrepancy_after"][0]
    assert _psnr(gt, out[0].numpy()) > _psnr(gt, start[0].numpy()) + 0.5
    # running on far past the stop fits the noise: worse than where it stopped
    # (the noise model is forced to a tiny level so the risk estimate never stops it)
    over, rec_over = consistency_step(start, lr, (2.0, 2.0), dk, max_iters=200, noise=[(0, 1e-7)])
    assert rec_over["iterations"][0] == 200
    assert _psnr(gt, over[0].numpy()) < _psnr(gt, out[0].numpy())


@pytest.mark.parametrize("photons", [100.0, 300.0, 1000.0])
def test_a_noise_level_read_a_little_off_moves_the_result_little(photons):
    """The count is chosen by a risk estimate, not by a threshold on the residual: a noise
    level read 20% low or 25% high (the estimate's error on held-out images) moves the
    result by a fraction of a dB (at most 0.39 dB here). With the discrepancy principle the
    same reading errors moved it by 0.71, 2.01 and 0.47 dB at 300, 100 and 1000 photons (at
    100 photons: 15 iterations with the level read low, none otherwise)."""
    gt, dk, lr = _noisy_case(photons)
    start = _blurred_start(lr, gt.shape)
    ((gain, offset),) = input_noise_model(lr)
    psnrs = []
    for f in (0.8, 1.0, 1.25):
        out, rec = consistency_step(
            start, lr, (2.0, 2.0), dk, max_iters=200, noise=[(gain * f, offset * f)]
        )
        assert rec["iterations"][0] < 200
        psnrs.append(_psnr(gt, out[0].numpy()))
    assert max(psnrs) - min(psnrs) < 0.5, psnrs
    assert min(psnrs) >= _psnr(gt, start[0].numpy())


def test_an_output_within_the_noise_is_untouched():
    gt, dk, lr = _noisy_case()
    # bicubic keeps the input's noise: it agrees with the input better than the noise
    start = imresize(lr, (2.0, 2.0), gt.shape).clamp(0, 1)
    out, rec = consistency_step(start, lr, (2.0, 2.0), dk, max_iters=20)
    assert rec["iterations"] == [0]
    assert rec["discrepancy_before"][0] <= 1.0
    assert torch.equal(out, start)


def test_no_noise_read_means_no_step_and_zero_iterations_means_off():
    gt, dk, lr = _noisy_case()
    start = imresize(lr, (2.0, 2.0), gt.shape).clamp(0, 1)
    out, rec = consistency_step(start, lr, (2.0, 2.0), dk, max_iters=20, noise=[(0.0, 0.0)])
    assert rec["iterations"] == [0] and torch.equal(out, start)
    out, rec = consistency_step(start, lr, (2.0, 2.0), dk, max_iters=0)
    assert out is start and rec["iterations"] == [0]
    assert rec["discrepancy_before"] == rec["discrepancy_after"]  # measured all the same


def test_the_input_noise_model_reads_photon_noise():
    _, _, lr = _noisy_case(photons=300.0)
    ((gain, offset),) = input_noise_model(lr)
    # Poisson at 300 photons per unit: variance = intensity / 300
    assert gain == pytest.approx(1 / 300, rel=0.35)
    assert offset < 2e-4


def test_channels_are_stepped_separately():
    gt, dk, lr = _noisy_case()
    start = _blurred_start(lr, gt.shape)
    both = torch.cat([start, imresize(lr, (2.0, 2.0), gt.shape).clamp(0, 1)])
    out, rec = consistency_step(both, torch.cat([lr, lr]), (2.0, 2.0), dk, max_iters=50)
    assert rec["iterations"][0] > 0 and rec["iterations"][1] == 0
    assert torch.equal(out[1], both[1])


def test_son_kernel_keeps_the_core_of_a_kernel_with_wide_tails():
    k = _rings(30)
    dk = prepare_kernel(k, (2.0, 2.0))
    core = son_kernel(dk)
    assert core.shape[0] < dk.shape[0] and core.shape[1] < dk.shape[1]
    fwhm = int(np.count_nonzero(dk.weights[dk.shape[0] // 2] >= dk.weights.max() / 2))
    assert max(core.shape) <= 2 * (math.ceil(3 * fwhm) + 1) + 2
    assert core.weights.sum() == pytest.approx(1.0)
    assert core.scale == dk.scale
    # a kernel within its own 3-FWHM core is returned as it is (training unchanged)
    small = prepare_kernel(_gaussian(1.5, 5), (2.0, 2.0))
    assert son_kernel(small) is small


def test_config_refuses_negative_consistency_iterations():
    with pytest.raises(ValueError, match="consistency_iters"):
        ZSSRConfig(consistency_iters=-1)


def _quick(preset: str) -> ZSSRConfig:
    return PRESETS[preset].replace(max_iters=30, min_iters=10, self_ensemble=False)


def test_runs_with_noise_on_the_sons_record_the_step_and_clean_runs_do_not():
    _, _, lr = _noisy_case(photons=100.0)
    img = (lr[0].numpy() * 1000).astype(np.uint16)
    kernel = _rings(12)
    _, info = super_resolve(img, 2, config=_quick("fast"), kernel=kernel, return_info=True)
    assert info["noise_std"] > 0
    rec = info["consistency_step"]
    assert rec["planes"] == 1 and rec["discrepancy_before"] is not None
    assert rec["discrepancy_after"] <= max(1.0, rec["discrepancy_before"])
    # no noise on the sons: back-projection runs instead, and there is no record
    _, info0 = super_resolve(
        img, 2, config=_quick("fast"), kernel=kernel, noise_std=0, return_info=True
    )
    assert "consistency_step" not in info0
    # switched off: measured, not iterated
    _, info_off = super_resolve(
        img, 2, config=_quick("fast").replace(consistency_iters=0), kernel=kernel,
        return_info=True,
    )  # fmt: skip
    assert info_off["consistency_step"]["iterations"] == 0.0


@pytest.mark.parametrize("scale", [(2.0, 2.0), (3.0, 2.0), (2.5, 2.5)])
@pytest.mark.parametrize("kernel", ["rings", "odd", "small"])
def test_downscale_through_the_fft_equals_the_direct_one(scale, kernel):
    from napari_zssr.core.kernels import downscale

    k = {
        "rings": _rings(20),
        "odd": np.outer(np.hanning(7), np.hanning(9))[:, :8],
        "small": np.ones((3, 3)),
    }[kernel]
    dk = prepare_kernel(k, scale)
    x = torch.rand(2, 1, 90, 77, generator=torch.Generator().manual_seed(0))
    direct, fft = downscale(x, dk), downscale(x, dk, fft=True)
    assert direct.shape == fft.shape
    torch.testing.assert_close(fft, direct, atol=1e-5, rtol=0)


def test_the_step_works_after_the_same_operators_ran_under_inference_mode():
    """The kernel and resize tables are cached: made first under inference mode (training's
    evaluation, back-projection) they must still serve the step's autograd adjoint."""
    from napari_zssr.core.kernels import downscale

    gt, _, lr = _noisy_case()
    dk = prepare_kernel(_rings(9), (2.0, 2.0))  # a new kernel: nothing cached for it yet
    start = _blurred_start(lr, gt.shape)
    with torch.inference_mode():
        downscale(start, dk, lr.shape[-2:], fft=True)
        downscale(start, dk, lr.shape[-2:])
        imresize(start, (0.5, 0.5), lr.shape[-2:])
    _, rec = consistency_step(start, lr, (2.0, 2.0), dk, max_iters=3)
    assert rec["iterations"][0] > 0
    _, rec = consistency_step(start, lr, (2.0, 2.0), None, max_iters=3, noise=[(0, 1e-7)])
    assert rec["iterations"] == [3]


def test_likely_harm_reads_the_planes_the_step_could_not_bring_within_the_noise():
    from napari_zssr.pipeline import likely_harm

    assert likely_harm({}) == []
    fine = {"consistency_step": {"planes": 3, "planes_not_within_noise": 0}}
    assert likely_harm(fine) == []
    bad = {
        "consistency_step": {
            "planes": 3,
            "planes_not_within_noise": 2,
            "worst_discrepancy_after": 2.5,
        }
    }
    (note,) = likely_harm(bad)
    assert note.startswith("likely harm on 2 of 3 planes")
    assert "2.5 times" in note and "noise" in note and "PSF" in note
    # a residual far below the noise is no sign (bicubic reproduces its input as closely)
    assert likely_harm({"consistency_step": {"planes": 1, "discrepancy_after": 0.1}}) == []


def test_the_summary_counts_planes_at_the_cap_above_the_noise():
    from napari_zssr.arrays.run_info import consistency_summary

    records = [
        {"max_iters": 5, "iterations": [5], "discrepancy_before": [3.0],
         "discrepancy_after": [1.8], "seconds": 0.5},
        {"max_iters": 5, "iterations": [2], "discrepancy_before": [1.5],
         "discrepancy_after": [0.9], "seconds": 0.25},
        {"max_iters": 5, "iterations": [5], "discrepancy_before": [1.2],
         "discrepancy_after": [1.0], "seconds": 0.25},
    ]  # fmt: skip
    s = consistency_summary(records)
    assert s["planes"] == 3 and s["planes_not_within_noise"] == 1
    # a step that only measured (no kernel) is no sign of harm, however far it reads
    only = [{**records[0], "max_iters": 0, "iterations": [0]}]
    assert consistency_summary(only)["planes_not_within_noise"] == 0
    assert s["worst_discrepancy_after"] == 1.8 and s["seconds"] == 1.0
    assert s["iterations"] == 5.0 and s["discrepancy_before"] == 1.5


def test_no_consistency_step_with_a_blind_kernel_estimate():
    """The step trusts its kernel; an estimate's width is uncertain, so it is not run."""
    import warnings

    _, _, lr = _noisy_case(photons=300.0)
    img = (lr[0].numpy() * 1000).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = super_resolve(img, 2, config=_quick("fast"), kernel="estimate", return_info=True)
    assert info["noise_std"] > 0
    assert info["kernel"] is not None  # the estimate was used
    assert info["config"]["consistency_iters"] == 0
    assert info["consistency_step"]["iterations"] == 0.0  # measured only


def test_without_a_kernel_the_output_is_measured_not_changed():
    """Richardson-Lucy needs a non-negative model; MATLAB's bicubic has negative lobes (on
    the bundled sample the update diverged). Without a kernel the step only measures."""
    import warnings

    from napari_zssr._sample_data import make_sample_data

    data = make_sample_data()[0][0]
    cfg = PRESETS["fast"].replace(max_iters=30, min_iters=10, self_ensemble=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, info = super_resolve(data, 2, config=cfg, return_info=True)
        off, _ = super_resolve(data, 2, config=cfg.replace(consistency_iters=0), return_info=True)
    rec = info["consistency_step"]
    assert rec["iterations"] == 0.0 and np.isfinite(rec["discrepancy_after"])
    np.testing.assert_array_equal(out, off)


def test_a_chain_that_blows_up_is_not_followed():
    """With MATLAB's bicubic as the model (negative lobes: not what Richardson-Lucy is for)
    the updates on the bundled sample stop lowering the residual, then blow up: the step
    stops before that, and what it returns is finite and no further from the input."""
    from napari_zssr._sample_data import make_sample_data
    from napari_zssr.arrays.intensity import normalise_intensity

    lr = torch.tensor(normalise_intensity(make_sample_data()[0][0])[0][None])
    start = imresize(lr, (2.0, 2.0)).clamp(0, 1)
    out, rec = consistency_step(start, lr, (2.0, 2.0), None, max_iters=200, noise=[(0, 1e-7)])
    assert rec["iterations"][0] < 200
    assert np.isfinite(rec["discrepancy_after"][0])
    assert rec["discrepancy_after"][0] <= rec["discrepancy_before"][0]
    assert torch.isfinite(out).all()
