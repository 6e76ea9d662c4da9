"""The headless pipeline: request checks and their messages, PSF specifications, N-D runs.

No Qt and no argparse here: what both front ends rely on is tested once, on plain data.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from napari_zssr.cli.run_command import CLI_LABELS
from napari_zssr.io import write_tiff
from napari_zssr.pipeline import (
    KernelSpec,
    OpticsSpec,
    PSFArraySpec,
    PSFFileSpec,
    RequestError,
    RunRequest,
    arrange,
    default_axes,
    kernel_for,
    run,
)

FAST = {"preset": "fast", "overrides": {"max_iters": 6, "crop_size": 16}, "device": "cpu"}


def _texture(shape, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[-2], : shape[-1]]
    base = np.sin(yy / 2.3) * np.cos(xx / 3.1)
    out = base + 0.2 * rng.standard_normal(shape)
    return ((out - out.min()) / np.ptp(out)).astype(np.float32)


def _gaussian(shape, sigma):
    yy, xx = np.indices(shape) - (np.array(shape)[:, None, None] - 1) / 2
    return np.exp(-(yy**2 + xx**2) / (2 * sigma**2))


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("fields", "param", "needle"),
    [
        ({}, "scale", "give scale"),
        ({"scale": 17}, "scale", "between 1 and 16"),
        ({"scale": 1.0}, "scale", "greater than 1"),
        ({"scale": (2, 2, 2)}, "scale", "(Y, X) pair"),
        ({"scale": 2, "noise_std": 0.7}, "noise_std", "[0, 0.5]"),
        ({"scale": 2, "noise_std": "lots"}, "noise_std", "'auto'"),
        ({"scale": 2, "preset": "turbo"}, "preset", "fast"),
        ({"scale": 2, "stack_mode": "sometimes"}, "stack_mode", "per_plane"),
        ({"scale": 2, "seed": -1}, "seed", "integer"),
        ({"scale": 2, "overrides": {"max_iters": 0}}, "max_iters", "max_iters"),
        ({"scale": 2, "axial_fwhm_um": 0.5}, "axial_fwhm_um", "z_isotropic only"),
        ({"z_isotropic": True, "noise_std": "auto"}, "noise_std", "not available"),
        ({"z_isotropic": True, "z_ratio": 20.0}, "z_ratio", "(1, 16]"),
        ({"z_isotropic": True, "psf": OpticsSpec(1.4, 0.52)}, "psf", "give scale too"),
        ({"scale": 2, "psf": OpticsSpec(1.6, 0.52)}, "na", "(0, 1.515]"),
        ({"scale": 2, "psf": OpticsSpec(1.2, 520.0)}, "wavelength", "um"),
        ({"scale": 2, "psf": OpticsSpec(1.2, 0.52, modality="sted")}, "modality", "confocal"),
        ({"scale": 2, "psf": PSFFileSpec("nowhere.tif")}, "psf_file", "not found"),
        ({"scale": 2, "psf": PSFFileSpec("k.npy", (0.1,), True)}, "psf_pixel_size", "contradict"),
        ({"scale": 2, "psf": PSFArraySpec(np.ones(5))}, "psf", "2D PSF or a 3D bead stack"),
    ],
)
def test_validation_names_the_parameter(fields, param, needle):
    with pytest.raises(RequestError) as err:
        RunRequest(**fields).validate()
    assert err.value.param == param
    assert needle in str(err.value)


def test_messages_use_the_front_ends_names():
    request = RunRequest(scale=2, axial_fwhm_um=0.5, labels=CLI_LABELS)
    with pytest.raises(RequestError, match="--axial-fwhm applies to --z-isotropic only"):
        request.validate()
    widget_names = {"pixel_size": "'Image pixel (µm)'"}
    request = RunRequest(
        source=np.zeros((16, 16)), scale=2, psf=OpticsSpec(1.4, 0.52), labels=widget_names
    )
    with pytest.raises(RequestError, match=r"give 'Image pixel \(µm\)'"):
        request.validate()  # the PSF meets the image on its pixel size: never guessed
    with pytest.raises(RequestError, match=r"give 'Image pixel \(µm\)'"):
        kernel_for(request.replace(source=None), (2.0, 2.0), (16, 16))


def test_source_checks_axes_and_z():
    image = np.zeros((3, 16, 16), np.float32)
    with pytest.raises(RequestError, match="name 2 dimensions"):
        RunRequest(source=image, axes="YX", scale=2).validate()
    with pytest.raises(RequestError, match="Z axis"):
        RunRequest(source=image, axes="TYX", z_isotropic=True, z_ratio=2.0).validate()
    with pytest.raises(RequestError, match="Z and X pixel sizes"):
        RunRequest(source=image, axes="ZYX", z_isotropic=True).validate()
    plan = RunRequest(
        source=image, axes="zyx", pixel_size=(0.5, 0.1, 0.1), scale=2, z_isotropic=True
    ).validate()
    assert plan.axes == "ZYX" and plan.z_ratio == pytest.approx(10.0)
    assert plan.config.max_iters > 0


def test_axes_defaults_and_samples():
    assert default_axes(2) == "YX"
    assert default_axes(4) == "TZYX"
    assert default_axes(4, rgb=True) == "ZYXS"
    planar = np.zeros((3, 16, 20))  # RGB stored plane by plane
    arranged = arrange(planar, "SYX")
    assert arranged.rgb and arranged.axes == "YXS" and arranged.image.shape == (16, 20, 3)
    channels = arrange(np.zeros((16, 20, 2)), "YXS")  # two samples: channels, not RGB
    assert not channels.rgb and channels.axes == "CYX" and channels.channel_axis == 0


def test_importing_the_pipeline_does_not_import_torch():
    code = "import sys, napari_zssr.pipeline; print('TORCH', 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "TORCH False" in done.stdout


# ------------------------------------------------------------------------------ PSF specs


def test_psf_specs_give_the_same_kernel_from_file_and_array(tmp_path):
    psf = _gaussian((25, 25), 3.0)
    path = tmp_path / "psf.tif"
    write_tiff(path, psf.astype(np.float32), axes="YX", pixel_size=0.05)
    base = RunRequest(source=np.zeros((20, 20)), pixel_size=(None, 0.1, 0.1), scale=2)
    from_file, rec_file = kernel_for(base.replace(psf=PSFFileSpec(path)), (2.0, 2.0), (20, 20))
    from_array, rec_array = kernel_for(
        base.replace(psf=PSFArraySpec(psf, (None, 0.05, 0.05), "layer 'psf'")), (2.0, 2.0), (20, 20)
    )
    np.testing.assert_allclose(from_file, from_array, atol=1e-6)
    assert rec_file["source"] == "file psf.tif" and rec_file["psf_pixel_size_um"] == 0.05
    assert rec_array["source"] == "layer 'psf'"
    assert rec_array["image_pixel_size_um"] == [0.1, 0.1]
    assert from_file.sum() == pytest.approx(1.0)


def test_psf_file_without_pixel_size_asks_for_it(tmp_path):
    path = tmp_path / "psf.npy"
    np.save(path, _gaussian((15, 15), 2.0))
    request = RunRequest(
        pixel_size=(None, 0.1, 0.1), scale=2, psf=PSFFileSpec(path), labels=CLI_LABELS
    )
    with pytest.raises(RequestError) as err:
        kernel_for(request, (2.0, 2.0), (20, 20))
    assert "--psf-pixel-size" in str(err.value) and "--psf-is-kernel" in str(err.value)
    kernel, record = kernel_for(
        request.replace(psf=PSFFileSpec(path, (0.05,))), (2.0, 2.0), (20, 20)
    )
    assert kernel.ndim == 2 and record["psf_shape"] == [15, 15]


def test_optics_spec_carries_immersion_and_modality():
    request = RunRequest(pixel_size=(None, 0.1, 0.1), scale=2)
    water = request.replace(psf=OpticsSpec(1.1, 0.52, immersion_index=1.33))
    oil = request.replace(psf=OpticsSpec(1.1, 0.52))
    confocal = request.replace(psf=OpticsSpec(1.1, 0.52, modality="confocal"))
    k_water, rec = kernel_for(water, (2.0, 2.0), (32, 32))
    k_oil, _ = kernel_for(oil, (2.0, 2.0), (32, 32))
    k_conf, rec_conf = kernel_for(confocal, (2.0, 2.0), (32, 32))
    assert rec["immersion_index"] == 1.33 and rec["details"]["ni"] == 1.33
    assert rec_conf["modality"] == "confocal" and rec_conf["details"]["modality"] == "confocal"
    assert not np.allclose(_pad(k_water, k_oil), _pad(k_oil, k_water))
    assert not np.allclose(_pad(k_conf, k_oil), _pad(k_oil, k_conf))


def _pad(a, b):
    shape = np.maximum(a.shape, b.shape)
    pads = [((s - n) // 2, s - n - (s - n) // 2) for s, n in zip(shape, a.shape)]
    return np.pad(a, pads)


def test_bead_stack_spec_records_the_z_step():
    zz, yy, xx = np.mgrid[-4:5, -12:13, -12:13]
    beads = 10 + 1000 * np.exp(-(zz**2) / 4.0 - (yy**2 + xx**2) / 8.0)
    request = RunRequest(
        pixel_size=(None, 0.1, 0.1),
        scale=2,
        psf=PSFArraySpec(beads, (0.2, 0.05, 0.05), "layer 'beads'"),
    )
    kernel, record = kernel_for(request, (2.0, 2.0), (32, 32))
    assert record["psf_z_step_um"] == 0.2 and record["details"]["type"] == "bead_stack"
    assert kernel.sum() == pytest.approx(1.0)


# ------------------------------------------------------------------------------ runs


def test_run_upscale_with_a_kernel_and_region():
    image = _texture((3, 24, 28))
    kernel = _gaussian((5, 5), 1.0)
    request = RunRequest(
        source=image,
        region=(slice(1, 2),),
        axes="ZYX",
        scale=2,
        pixel_size=(1.0, 0.2, 0.2),
        psf=KernelSpec(kernel),
        **FAST,
    )
    result = run(request)
    assert result.output.shape == (1, 48, 56) and result.output.dtype == np.float32
    assert result.pixel_size == (1.0, 0.1, 0.1)
    assert result.record["parameters"]["kernel"].startswith("kernel from kernel")
    assert result.info["config"]["max_iters"] == 6
    assert result.kernel is not None and result.extra == {}
    assert np.array_equal(image, _texture((3, 24, 28)))  # the source is untouched


def test_run_isotropic_loops_over_volumes_with_channels():
    image = _texture((2, 4, 2, 16, 16))  # T, Z, C, Y, X
    reports = []
    request = RunRequest(
        source=image, axes="TZCYX", pixel_size=(0.4, 0.2, 0.2), z_isotropic=True, **FAST
    )
    result = run(request, reports.append)
    assert result.output.shape == (2, 8, 2, 16, 16)
    assert result.axes == "TZCYX"
    assert result.pixel_size == pytest.approx((0.2, 0.2, 0.2))
    assert len(result.record["isotropic"]["runs"]) == 2
    assert result.info["n_volumes"] == 2
    fractions = [p.fraction for p in reports]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any("volume 2/2" in p.message for p in reports)


def test_run_upscale_then_isotropic_uses_the_upscaled_pixel():
    image = _texture((3, 16, 16))
    request = RunRequest(
        source=image,
        axes="ZYX",
        pixel_size=(0.4, 0.2, 0.2),
        scale=2,
        z_isotropic=True,
        axial_fwhm_um=0.2,
        **FAST,
    )
    result = run(request)
    assert result.output.shape == (12, 32, 32)  # z ratio 0.4 / 0.1
    assert result.record["isotropic"]["axial_fwhm_px"] == pytest.approx(2.0)
    assert result.pixel_size == pytest.approx((0.1, 0.1, 0.1))


# ------------------------------------------------------------------------------ worker


def test_the_widget_worker_speaks_in_typed_messages():
    import threading

    from napari_zssr.napari.worker import (
        AllDone,
        DeviceChosen,
        EngineThreads,
        Job,
        JobProgress,
        JobResult,
        JobStarted,
        JobStopped,
        run_jobs,
    )

    request = RunRequest(source=_texture((20, 20)), scale=2, **FAST)
    job = Job(request, None, "src", "src ZSSR x2", "upscale", (0.0, 0.0), (2.0, 2.0))
    threads = EngineThreads()
    messages = list(run_jobs([job], threading.Event(), threads))
    assert isinstance(messages[0], JobStarted) and messages[0].index == 0
    assert isinstance(messages[1], DeviceChosen) and messages[1].device == "cpu"
    assert any(isinstance(m, JobProgress) for m in messages)
    assert isinstance(messages[-2], JobResult)
    assert messages[-2].result.output.shape == (40, 40)
    assert isinstance(messages[-1], AllDone)
    assert threads.wait(5.0)
    stopped = threading.Event()
    stopped.set()
    assert list(run_jobs([job], stopped, threads)) == [JobStopped(0)]


def test_worker_reports_the_mean_loss_of_the_reports_it_thins_out():
    import threading

    from napari_zssr.core.progress import Progress
    from napari_zssr.napari.worker import EngineThreads, _pump

    def engine(callback):
        for k in range(1, 101):  # 100 reports, a pause before the 50th
            if k == 50:
                time.sleep(0.25)
            callback(Progress("train", iteration=k, max_iterations=100, loss=float(k)))
        return "ok"

    sent = []
    work = _pump(engine, threading.Event(), EngineThreads())
    try:
        while True:
            sent.append(next(work))
    except StopIteration as end:
        assert end.value == ("ok", "ok")
    assert 2 <= len(sent) < 100
    # the first report goes at once; the next one carries the mean of those held back
    assert sent[0].loss == 1.0
    assert sent[1].iteration == 50
    assert sent[1].loss == pytest.approx(sum(range(2, 51)) / 49)


def test_run_returns_the_quality_maps_as_an_extra_output():
    image = _texture((24, 28))
    result = run(RunRequest(source=image, scale=2, maps=True, **FAST))
    maps = result.extra["maps"]
    assert set(maps) >= {"spread", "consistency", "added"}
    assert all(np.shape(m) == result.output.shape for m in maps.values())
    assert "maps" not in result.info and "maps" not in result.record["run"]
    assert run(RunRequest(source=image, scale=2, **FAST)).extra == {}


def test_describe_noise_names_the_value_and_its_source() -> None:
    from napari_zssr.pipeline import describe_noise

    auto = {"noise_std": 0.0183, "noise_std_source": "auto", "noise_estimate": 0.0183}
    assert describe_noise(auto) == "0.0183 (estimated from the image)"
    spectrum = {**auto, "noise_estimate_from": "beyond the kernel's cutoff"}
    assert describe_noise(spectrum) == "0.0183 (estimated from the image, beyond the PSF's cutoff)"
    clean = {"noise_std": 0.0, "noise_std_source": "auto", "noise_estimate": 0.0036}
    assert describe_noise(clean) == (
        "none (the image's estimated noise, 0.0036, counts as noise-free)"
    )
    zero = {"noise_std": 0.0, "noise_std_source": "set", "noise_estimate": 0.05}
    assert describe_noise(zero) == "0 (set; the image's estimated noise is 0.0500)"
    paper = {"noise_std": 0.0, "noise_std_source": "preset", "noise_estimate": 0.02}
    assert "the preset's" in describe_noise(paper)
