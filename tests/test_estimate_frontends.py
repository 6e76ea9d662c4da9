"""The estimated kernel through the front ends: the pipeline's ``EstimateSpec``, ``--psf
estimate`` on the command line (and the output file's metadata) and the widget's
"estimate from the image" PSF source (its kernel thumbnail and the result's metadata)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import dead_leaves

from napari_zssr.cli import main
from napari_zssr.core.kernel_estimate import gaussian_kernel
from napari_zssr.io import read_tiff, write_tiff
from napari_zssr.pipeline import EstimateSpec, RunRequest, kernel_for, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"max_iters": 4, "crop_size": 16, "self_ensemble": False, "back_projection_iters": 1}
FAST = ["--preset", "fast", "--max-iters", "4", "--quiet"]


def _blurred_scene(size: int = 192, planes: int = 1, sigma: float = 1.5) -> np.ndarray:
    """Dead leaves (scale-invariant discs) blurred by a Gaussian and subsampled x2, uint16."""
    import torch

    from napari_zssr.core.kernels import downscale, prepare_kernel

    dk = prepare_kernel(gaussian_kernel(sigma, sigma, 0.0, (2, 2)), (2, 2))
    out = []
    for k in range(planes):
        img = dead_leaves(size, 3 + k, discs=300)
        out.append(downscale(torch.from_numpy(img), dk).numpy())
    stack = np.clip(np.stack(out), 0, 1)
    return (100 + 3000 * (stack if planes > 1 else stack[0])).astype(np.uint16)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return _blurred_scene()


# --------------------------------------------------------------------------- pipeline


def test_estimate_spec_needs_no_pixel_size_and_is_made_by_the_run(scene):
    request = RunRequest(source=scene, scale=2, psf=EstimateSpec(), overrides=TINY)
    plan = request.validate()  # no pixel size, no PSF: nothing to ask for
    kernel, record = kernel_for(request, plan.scale, scene.shape)
    assert kernel is None and record["source"] == "estimate"
    assert "when the run starts" in record["description"]
    result = run(request)
    est = result.info["kernel_estimate"]
    assert est["reliable"] is True
    np.testing.assert_array_equal(result.kernel, np.array(est["kernel"]))
    assert result.kernel.sum() == pytest.approx(1.0)
    assert result.psf["source"] == "estimate"
    family = est["family"]
    assert result.psf["description"].startswith(f"estimated from the image: {family} Gaussian")
    assert result.psf["details"]["sigma_major_hr_px"] == pytest.approx(
        est["sigma_major_hr_px"], abs=1e-3
    )
    params = result.record["parameters"]
    assert params["psf"] == {"kind": "estimate", "origin": "estimated from the image"}
    assert params["kernel"] == result.psf["description"]
    assert params["kernel_source"]["planes"] == 1


def test_estimate_spec_on_a_stack_gives_one_estimate_from_several_planes():
    stack = _blurred_scene(size=128, planes=3)
    request = RunRequest(source=stack, axes="ZYX", scale=2, psf=EstimateSpec(), overrides=TINY)
    result = run(request)
    assert result.output.shape == (3, 128, 128)
    assert result.info["kernel_estimate"]["planes"] == 3
    assert result.psf["details"]["planes"] == 3


def test_unreliable_estimate_records_the_bicubic_fallback():
    noise = (np.random.default_rng(1).random((96, 96)) * 4000).astype(np.uint16)
    request = RunRequest(source=noise, scale=2, psf=EstimateSpec(), overrides=TINY)
    # white noise: nothing recurs across scales; the fit is not trusted, whichever way it runs
    with pytest.warns(UserWarning, match="kernel='estimate'.*bicubic kernel"):
        result = run(request)
    assert result.kernel is None
    assert result.psf["details"]["reliable"] is False
    assert "not usable" in result.psf["description"] and "bicubic" in result.psf["description"]


# --------------------------------------------------------------------------- command line


def test_cli_psf_estimate_records_the_kernel_in_the_file(scene, tmp_path, capsys):
    src = tmp_path / "blurred.tif"
    write_tiff(src, scene, axes="YX")  # no pixel size: the estimate needs none
    out = tmp_path / "est.tif"
    assert main(["run", str(src), "-o", str(out), "-s", "2", "--psf", "estimate", *FAST]) == 0
    result, meta = read_tiff(out)
    assert result.shape == (192, 192)
    params = meta.metadata["parameters"]
    assert params["psf"]["kind"] == "estimate"
    assert params["kernel"].startswith("estimated from the image")
    assert params["kernel_source"]["reliable"] is True
    kernel = np.array(meta.metadata["run"]["kernel_estimate"]["kernel"])
    assert kernel.ndim == 2 and kernel.sum() == pytest.approx(1.0)


def test_cli_psf_estimate_refuses_file_options(scene, tmp_path, capsys):
    src = tmp_path / "blurred.tif"
    write_tiff(src, scene, axes="YX")
    args = ["run", str(src), "-s", "2", "--psf", "estimate", "--psf-pixel-size", "0.05"]
    assert main(args) == 2
    assert "--psf-pixel-size" in capsys.readouterr().err
    assert (
        main(["run", str(src), "-s", "2", "--psf", "estimate", "--na", "1.4", "--emission", "0.5"])
        == 2
    )
    assert "not both" in capsys.readouterr().err


def test_cli_psf_estimate_on_a_too_small_image_falls_back_naming_the_minimum(tmp_path, capsys):
    src = tmp_path / "small.tif"
    write_tiff(src, _blurred_scene(size=64), axes="YX")  # 32 x 32 px
    out = tmp_path / "small_zssr.tif"
    assert main(["run", str(src), "-o", str(out), "-s", "2", "--psf", "estimate", *FAST]) == 0
    err = capsys.readouterr().err
    assert "too small" in err and "48 x 48" in err and "bicubic kernel is used instead" in err
    assert out.exists()


# --------------------------------------------------------------------------- widget


def test_widget_estimate_source_shows_the_estimated_kernel(make_napari_viewer, qtbot, scene):
    pytest.importorskip("pytestqt")
    from napari_zssr import _widget

    viewer = make_napari_viewer()
    src = viewer.add_image(scene, name="blurred")  # no physical scale: none needed
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    widget.preset.value = "fast"
    widget.max_iters.value = 4
    widget.crop_size.value = 32
    widget.image.value = src
    assert _widget.PSF_ESTIMATE in widget.psf_source.choices
    widget.psf_source.value = _widget.PSF_ESTIMATE
    assert widget.image_pixel.native.isHidden()  # no pixel size to ask for
    qtbot.waitUntil(lambda: "when the run starts" in widget.kernel_text, timeout=30_000)
    assert widget.kernel_thumb.isHidden()
    widget.run()
    qtbot.waitUntil(lambda: not widget.busy, timeout=90_000)
    assert widget.last_status == "done"
    meta = viewer.layers[-1].metadata["zssr"]
    assert meta["psf"]["source"] == "estimate"
    assert meta["psf"]["description"] == widget.kernel_text
    assert widget.kernel_text.startswith("estimated from the image: ")
    assert "Gaussian" in widget.kernel_text
    assert not widget.kernel_thumb.isHidden()  # the estimated kernel's thumbnail
    qtbot.wait(500)  # the new layer refreshes the form: the estimate stays on show
    assert widget.kernel_text == meta["psf"]["description"]
    assert not widget.kernel_thumb.isHidden()
    widget.scale.value = 3.0  # another factor: the estimate is to be made again
    qtbot.waitUntil(lambda: "when the run starts" in widget.kernel_text, timeout=30_000)
    assert np.array(meta["kernel_estimate"]["kernel"]).sum() == pytest.approx(1.0)
