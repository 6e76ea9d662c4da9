"""The Poisson-Gaussian noise model on the LR sons: its fit to an image, the noise it draws,
and ``noise_model`` through ``super_resolve``, the pipeline, the command line and the widget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_zssr import super_resolve
from napari_zssr.core.config import ZSSRConfig
from napari_zssr.core.engine import son_noise
from napari_zssr.core.noise import noise_profile
from napari_zssr.pipeline import RequestError, RunRequest, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ZSSRConfig(
    max_iters=4, crop_size=16, width=8, self_ensemble=False, back_projection_iters=1, eval_every=2
)


def poisson_gaussian_image(gain: float, offset: float, size: int = 256, seed: int = 0):
    """Smooth structure in [0.05, 0.95] with noise of variance ``gain * I + offset``."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    clean = ndimage.gaussian_filter(rng.random((size, size)), 8)
    clean = 0.05 + 0.9 * (clean - clean.min()) / np.ptp(clean)
    noisy = gain * rng.poisson(clean / gain) + rng.normal(0.0, np.sqrt(offset), clean.shape)
    return clean, noisy


@pytest.mark.parametrize(("gain", "offset"), [(0.002, 1e-4), (0.0005, 2.5e-4), (0.001, 1e-4)])
def test_gain_and_offset_of_a_poisson_gaussian_image_within_20_percent(gain, offset):
    _, noisy = poisson_gaussian_image(gain, offset)
    a, b = noise_profile(noisy).poisson_gaussian_fit()
    assert a == pytest.approx(gain, rel=0.2)
    assert b == pytest.approx(offset, rel=0.2)


def test_fit_of_pure_photon_noise_has_no_offset_and_of_a_flat_image_nothing():
    _, noisy = poisson_gaussian_image(0.01, 0.0)
    a, b = noise_profile(noisy).poisson_gaussian_fit()
    assert a == pytest.approx(0.01, rel=0.2) and b < 0.05 * a * 0.5  # 5% of the mean variance
    assert noise_profile(np.full((64, 64), 0.3)).poisson_gaussian_fit() == (0.0, 0.0)


def test_son_noise_variance_follows_the_intensity():
    cfg = ZSSRConfig(noise_std=0.03, noise_model="poisson-gaussian", noise_gain=0.002,
                     noise_offset=1e-4)  # fmt: skip
    son = torch.cat([torch.full((1, 1, 200, 200), 0.1), torch.full((1, 1, 200, 200), 0.8)])
    noisy = son_noise(son, cfg, torch.Generator().manual_seed(0))
    var = (noisy - son).var(dim=(1, 2, 3)).numpy()
    np.testing.assert_allclose(var, [0.002 * 0.1 + 1e-4, 0.002 * 0.8 + 1e-4], rtol=0.05)
    gaussian = son_noise(son, cfg.replace(noise_model="gaussian"), torch.Generator().manual_seed(0))
    np.testing.assert_allclose((gaussian - son).std(dim=(1, 2, 3)).numpy(), 0.03, rtol=0.05)
    off = son_noise(son, cfg.replace(noise_std=0.0), torch.Generator().manual_seed(0))
    assert torch.equal(off, son)
    unfitted = cfg.replace(noise_gain=0.0, noise_offset=0.0)  # never silently noise-free
    flat = son_noise(son, unfitted, torch.Generator().manual_seed(0))
    np.testing.assert_allclose((flat - son).std(dim=(1, 2, 3)).numpy(), 0.03, rtol=0.05)


def test_super_resolve_records_the_fitted_model():
    _, noisy = poisson_gaussian_image(0.002, 1e-4, size=128)
    img = (np.clip(noisy, 0, 1) * 65535).astype(np.uint16)
    out, info = super_resolve(
        img, 2, config=TINY, noise_std="auto", noise_model="poisson-gaussian", return_info=True
    )
    assert out.shape == (256, 256)
    assert info["noise_model"] == "poisson-gaussian" == info["config"]["noise_model"]
    # normalised units (the image's robust range, close to [0, 1]), a smaller image (fewer
    # intensity bands) and the model scaled to the estimated level: looser than the fit alone
    assert info["noise_gain"] == pytest.approx(0.002, rel=0.35)
    assert 0 < info["noise_offset"] < 3e-4
    assert info["noise_std"] > 0 and info["back_projection_iters"] == 0
    plain = super_resolve(img, 2, config=TINY, noise_std="auto", return_info=True)[1]
    assert plain["noise_model"] == "gaussian" and plain["noise_gain"] == 0.0
    assert plain["noise_std"] == info["noise_std"]  # the same level, another shape


def test_a_set_level_scales_the_model_and_a_clean_image_is_unchanged():
    clean, noisy = poisson_gaussian_image(0.002, 1e-4, size=96)
    _, info = super_resolve(
        noisy, 2, config=TINY, noise_std=0.02, noise_model="poisson-gaussian", return_info=True
    )
    level = info["noise_gain"] * float(np.mean(noisy - noisy.min()) / np.ptp(noisy))
    assert level + info["noise_offset"] == pytest.approx(0.02**2, rel=0.1)
    # a noise-free image gets no noise under either model: bit-identical results
    pg = super_resolve(clean, 2, config=TINY, noise_model="poisson-gaussian", return_info=True)
    plain = super_resolve(clean, 2, config=TINY, return_info=True)
    assert pg[1]["noise_std"] == 0 and pg[1]["noise_gain"] == 0
    np.testing.assert_array_equal(pg[0], plain[0])


def test_unknown_noise_model_is_refused_by_name():
    with pytest.raises(ValueError, match="noise_model must be one of gaussian, poisson-gaussian"):
        super_resolve(np.zeros((24, 24)), 2, config=TINY, noise_model="poisson")
    request = RunRequest(source=np.zeros((24, 24)), scale=2, noise_model="poisson",
                         labels={"noise_model": "--noise-model"})  # fmt: skip
    with pytest.raises(RequestError, match="--noise-model must be one of"):
        request.validate()


def test_pipeline_records_the_model(tmp_path):
    from napari_zssr.cli import main
    from napari_zssr.io import read_tiff, write_tiff

    _, noisy = poisson_gaussian_image(0.002, 1e-4, size=96)
    img = (np.clip(noisy, 0, 1) * 4000).astype(np.uint16)
    result = run(RunRequest(source=img, scale=2, noise_model="poisson-gaussian",
                            overrides={"max_iters": 4, "crop_size": 16}))  # fmt: skip
    assert result.record["parameters"]["noise_model"] == "poisson-gaussian"
    assert result.record["run"]["noise_gain"] > 0
    src, out = tmp_path / "in.tif", tmp_path / "out.tif"
    write_tiff(src, img, axes="YX")
    args = ["run", str(src), "-o", str(out), "-s", "2", "--noise-model", "poisson-gaussian"]
    assert main([*args, "--preset", "fast", "--max-iters", "4", "--quiet"]) == 0
    meta = read_tiff(out)[1].metadata
    assert meta["parameters"]["noise_model"] == "poisson-gaussian"
    assert meta["run"]["noise_gain"] > 0 and meta["run"]["noise_offset"] >= 0
    assert main(["run", str(src), "-s", "2", "--noise-model", "poisson"]) == 2


def test_widget_noise_model_combo(make_napari_viewer, qtbot):
    pytest.importorskip("pytestqt")
    _, noisy = poisson_gaussian_image(0.002, 1e-4, size=128)  # 64 px: one band, a flat model
    viewer = make_napari_viewer()
    viewer.add_image(noisy.astype(np.float32), name="noisy")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    widget.preset.value = "fast"
    widget.max_iters.value = 4
    widget.crop_size.value = 32
    assert list(widget.noise_model.choices) == ["gaussian", "poisson-gaussian"]
    widget.noise_model.value = "poisson-gaussian"
    widget.run()
    qtbot.waitUntil(lambda: not widget.busy, timeout=90_000)
    assert widget.last_status == "done"
    meta = viewer.layers[-1].metadata["zssr"]
    assert meta["noise_model"] == "poisson-gaussian" and meta["noise_gain"] > 0
    assert "Poisson-Gaussian" in widget.status.value
