"""The ``napari-zssr`` command line: help, refusals with one-line errors, and real runs."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from conftest import texture

from napari_zssr import cli
from napari_zssr.cli import main
from napari_zssr.io import read_tiff, write_tiff

HAS_ENGINE = importlib.util.find_spec("napari_zssr.arrays.upscale") is not None
HAS_PSF = importlib.util.find_spec("napari_zssr.psf") is not None
HAS_ISOTROPIC = importlib.util.find_spec("napari_zssr.arrays.isotropic") is not None
needs_engine = pytest.mark.skipif(
    not HAS_ENGINE, reason="engine (napari_zssr.arrays.upscale) not present"
)
FAST = ["--preset", "fast", "--max-iters", "20", "--quiet"]


@pytest.fixture
def image_2d(tmp_path):
    path = tmp_path / "plane.tif"
    write_tiff(path, texture((20, 24)), axes="YX", pixel_size=0.2)
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err, err
    assert "Traceback" not in err
    return err


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- help


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "run" in out and "demo" in out


def test_run_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--scale", "--scale-y", "--scale-x", "--psf", "--psf-pixel-size", "--psf-is-kernel",
        "--pixel-size", "--noise-std", "--preset", "--device", "--axes", "--seed",
        "--stack-mode", "--max-iters", "--z-isotropic", "--axial-fwhm", "--quiet",
        "--overwrite", "--na", "--emission", "--immersion-index", "--modality", "--one-jump",
    ):  # fmt: skip
        assert option in out, option


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from napari_zssr.cli import main\n"
        "try:\n"
        "    main(['run', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "TORCH False" in done.stdout


def test_no_subcommand_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


# --------------------------------------------------------------------------- refusals


def test_missing_input_file(tmp_path, capsys):
    code = main(["run", str(tmp_path / "missing.tif"), "-o", str(tmp_path / "o.tif"), "-s", "2"])
    assert code != 0
    assert "not found" in _one_line_error(capsys)
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("scale", ["abc", "0.5", "20", "2,3,4", "-2", "1"])
def test_bad_scale(image_2d, tmp_path, capsys, scale):
    out = tmp_path / "o.tif"
    assert main(["run", str(image_2d), "-o", str(out), f"--scale={scale}"]) != 0
    assert "scale" in _one_line_error(capsys)
    assert not out.exists()


def test_missing_scale(image_2d, tmp_path, capsys):
    assert main(["run", str(image_2d), "-o", str(tmp_path / "o.tif")]) != 0
    assert "--scale" in _one_line_error(capsys)


def test_refuses_to_overwrite_the_input(image_2d, capsys):
    digest = _sha(image_2d)
    assert main(["run", str(image_2d), "-o", str(image_2d), "-s", "2", "--overwrite"]) != 0
    assert "input" in _one_line_error(capsys)
    assert _sha(image_2d) == digest


def test_refuses_an_existing_output_without_overwrite(image_2d, tmp_path, capsys):
    out = tmp_path / "exists.tif"
    out.write_bytes(b"keep me")
    assert main(["run", str(image_2d), "-o", str(out), "-s", "2"]) != 0
    assert "--overwrite" in _one_line_error(capsys)
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--preset", "turbo"], "invalid choice"),
        (["--stack-mode", "sometimes"], "invalid choice"),
        (["--max-iters", "0"], "--max-iters"),
        (["--noise-std", "-0.1"], "--noise-std"),
        (["--noise-std", "0.7"], "--noise-std"),
        (["--noise-std", "lots"], "--noise-std"),
        (["--pixel-size", "0"], "pixel size"),
        (["--axes", "ZYX"], "axes"),
        (["--z-isotropic"], "Z axis"),
        (["--psf-is-kernel"], "--psf"),
        (["--axial-fwhm", "0.6"], "--z-isotropic"),
        (["--na", "1.4"], "--emission"),
        (["--psf", "k.npy", "--psf-is-kernel", "--psf-pixel-size", "0.1"], "contradict"),
        (["--psf", "k.npy", "--na", "1.4", "--emission", "0.52"], "not both"),
        (["--psf", "missing.npy", "--psf-is-kernel"], "not found"),
    ],
)
def test_bad_options(image_2d, tmp_path, capsys, extra, needle):
    out = tmp_path / "o.tif"
    assert main(["run", str(image_2d), "-o", str(out), "-s", "2", *extra]) != 0
    assert needle in _one_line_error(capsys)
    assert not out.exists()


def test_output_must_be_tiff(image_2d, tmp_path, capsys):
    assert main(["run", str(image_2d), "-o", str(tmp_path / "o.png"), "-s", "2"]) != 0
    assert ".tif" in _one_line_error(capsys)


def test_unreadable_input(tmp_path, capsys):
    bad = tmp_path / "bad.tif"
    bad.write_text("not a tiff")
    assert main(["run", str(bad), "-o", str(tmp_path / "o.tif"), "-s", "2"]) != 0
    _one_line_error(capsys)


def test_z_isotropic_needs_pixel_sizes(tmp_path, capsys):
    path = tmp_path / "zyx.tif"
    tifffile.imwrite(path, texture((3, 16, 16)), imagej=True, metadata={"axes": "ZYX"})
    assert main(["run", str(path), "-o", str(tmp_path / "o.tif"), "--z-isotropic"]) != 0
    assert "pixel size" in _one_line_error(capsys)


@pytest.mark.skipif(not HAS_PSF, reason="PSF module not present")
def test_psf_without_pixel_size_is_refused(tmp_path, capsys):
    img = tmp_path / "img.tif"
    tifffile.imwrite(img, texture((20, 24)))  # no pixel size recorded
    psf = tmp_path / "psf.npy"
    np.save(psf, np.outer(np.hanning(7), np.hanning(7)))
    code = main(["run", str(img), "-o", str(tmp_path / "o.tif"), "-s", "2", "--psf", str(psf)])
    assert code != 0
    err = _one_line_error(capsys)
    assert "--psf-pixel-size" in err and "--psf-is-kernel" in err


# --------------------------------------------------------------------------- real runs


@needs_engine
def test_interrupted_run_writes_nothing(image_2d, tmp_path, monkeypatch, capsys):
    import napari_zssr.arrays.upscale

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(napari_zssr.arrays.upscale, "super_resolve", interrupted)
    out = tmp_path / "never.tif"
    assert main(["run", str(image_2d), "-o", str(out), "-s", "2", "-q"]) == 130
    assert "interrupted" in _one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plane.tif"]


@needs_engine
@pytest.mark.parametrize(
    ("extra", "iterations", "gradual"), [([], 40, [2.0, 4.0]), (["--one-jump"], 20, [])]
)
def test_run_x4_goes_through_x2_unless_one_jump(image_2d, tmp_path, extra, iterations, gradual):
    out = tmp_path / "sr.tif"
    assert main(["run", str(image_2d), "-o", str(out), "--scale", "4", *FAST, *extra]) == 0
    result, meta = read_tiff(out)
    assert result.shape == (80, 96)
    assert meta.metadata["parameters"]["one_jump"] is bool(extra)
    assert meta.metadata["run"]["iterations"] == iterations  # 20 per step
    assert meta.metadata["run"]["config"]["gradual_scales"] == gradual


@needs_engine
def test_run_2d_writes_scaled_tiff_with_metadata(image_2d, tmp_path, capsys):
    digest = _sha(image_2d)
    out = tmp_path / "sr.tif"
    assert main(["run", str(image_2d), "-o", str(out), "--scale", "2", "--seed", "3", *FAST]) == 0
    assert capsys.readouterr().out == ""  # --quiet
    assert _sha(image_2d) == digest  # input untouched

    result, meta = read_tiff(out)
    assert result.shape == (40, 48)
    assert result.dtype == np.uint16
    assert meta.format == "imagej"
    assert meta.pixel_size == pytest.approx((None, 0.1, 0.1))
    params = meta.metadata["parameters"]
    assert params["scale"] == [2.0, 2.0]
    assert params["preset"] == "fast"
    assert params["max_iters"] == 20
    assert params["seed"] == 3
    run = meta.metadata["run"]
    assert run["iterations"] == 20
    assert run["device"] == "cpu"
    assert run["config"]["max_iters"] == 20
    assert meta.metadata["command"].startswith("napari-zssr run ")
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@needs_engine
def test_run_tzyx_stack_with_anisotropic_scale(tmp_path):
    src = tmp_path / "tzyx.tif"
    write_tiff(src, texture((2, 2, 16, 20)), axes="TZYX", pixel_size=(0.8, 0.3, 0.3))
    out = tmp_path / "tzyx_sr.tif"
    args = ["run", str(src), "-o", str(out), "--scale-y", "2", "--scale-x", "1.5"]
    assert main([*args, "--stack-mode", "shared", *FAST]) == 0
    result, meta = read_tiff(out)
    assert result.shape == (2, 2, 32, 30)
    assert result.dtype == np.uint16
    assert meta.axes == "TZYX"
    assert meta.pixel_size == pytest.approx((0.8, 0.15, 0.2))
    assert meta.metadata["parameters"]["stack_mode"] == "shared"
    assert meta.metadata["run"]["n_planes"] == 4


@needs_engine
def test_run_czyx_with_axes_and_pixel_size_given(tmp_path):
    src = tmp_path / "plain.tif"
    tifffile.imwrite(src, texture((2, 2, 16, 16)), photometric="minisblack")
    out = tmp_path / "czyx_sr.tif"
    args = ["run", str(src), "-o", str(out), "-s", "2", "--axes", "CZYX"]
    assert main([*args, "--pixel-size", "1.0,0.25,0.25", *FAST]) == 0
    result, meta = read_tiff(out)
    assert result.shape == (2, 2, 32, 32)
    assert meta.axes == "CZYX"
    assert meta.format == "ome"  # ImageJ cannot hold C before Z
    assert meta.pixel_size == pytest.approx((1.0, 0.125, 0.125))
    assert meta.metadata["parameters"]["channel_axis"] == 0


@needs_engine
def test_overwrite_replaces_an_existing_output(image_2d, tmp_path, capsys):
    out = tmp_path / "again.tif"
    out.write_bytes(b"old")
    assert main(["run", str(image_2d), "-o", str(out), "-s", "2", "--overwrite", *FAST[:-1]]) == 0
    assert "wrote" in capsys.readouterr().out
    assert read_tiff(out)[0].shape == (40, 48)


@needs_engine
@pytest.mark.skipif(not HAS_PSF, reason="PSF module not present")
def test_run_with_a_kernel_file(image_2d, tmp_path):
    kernel = np.outer(np.hanning(9)[1:-1], np.hanning(9)[1:-1])
    path = tmp_path / "kernel.npy"
    np.save(path, kernel)
    out = tmp_path / "k.tif"
    args = ["run", str(image_2d), "-o", str(out), "-s", "2", "--psf", str(path), "--psf-is-kernel"]
    assert main([*args, *FAST]) == 0
    result, meta = read_tiff(out)
    assert result.shape == (40, 48)
    assert meta.metadata["parameters"]["psf_is_kernel"] is True
    assert "kernel.npy" in meta.metadata["parameters"]["kernel"]


@needs_engine
@pytest.mark.skipif(not HAS_PSF, reason="PSF module not present")
def test_run_with_a_psf_and_pixel_sizes(image_2d, tmp_path):
    yy, xx = np.mgrid[-12:13, -12:13]
    psf = np.exp(-(yy**2 + xx**2) / (2 * 3.0**2))  # sigma 3 px of 0.05 um = 0.15 um
    path = tmp_path / "psf.npy"
    np.save(path, psf)
    out = tmp_path / "p.tif"
    args = ["run", str(image_2d), "-o", str(out), "-s", "2", "--psf", str(path)]
    assert main([*args, "--psf-pixel-size", "0.05", *FAST]) == 0
    result, meta = read_tiff(out)
    assert result.shape == (40, 48)
    assert meta.metadata["parameters"]["psf_pixel_size"] == [0.05]
    assert meta.metadata["parameters"]["kernel"]


@needs_engine
@pytest.mark.skipif(not HAS_PSF, reason="PSF module not present")
def test_run_with_a_model_psf(image_2d, tmp_path):
    out = tmp_path / "optics.tif"
    args = ["run", str(image_2d), "-o", str(out), "-s", "2", "--na", "1.4", "--emission", "0.52"]
    assert main([*args, *FAST]) == 0
    result, meta = read_tiff(out)
    assert result.shape == (40, 48)
    params = meta.metadata["parameters"]
    assert params["na"] == 1.4
    assert params["emission_um"] == 0.52
    assert params["modality"] == "widefield"
    assert params["kernel_source"]


@needs_engine
@pytest.mark.skipif(not HAS_ISOTROPIC, reason="isotropic module not present")
def test_run_z_isotropic(tmp_path):
    src = tmp_path / "zyx.tif"
    write_tiff(src, texture((4, 16, 16)), axes="ZYX", pixel_size=(0.4, 0.2, 0.2))
    out = tmp_path / "iso.tif"
    assert main(["run", str(src), "-o", str(out), "--z-isotropic", *FAST]) == 0
    result, meta = read_tiff(out)
    assert result.shape[1:] == (16, 16)
    assert result.shape[0] >= 7  # 4 planes at 0.4 um, resampled to 0.2 um
    assert meta.pixel_size[0] == pytest.approx(0.2, rel=0.15)
    assert meta.metadata["parameters"]["z_isotropic"] is True
    assert meta.metadata["isotropic"]["z_ratio"] == pytest.approx(2.0)


@needs_engine
def test_demo_headless_writes_result_input_and_figure(tmp_path, capsys):
    folder = tmp_path / "demo"
    assert main(["demo", "--headless", "--output", str(folder), "--max-iters", "5", "-q"]) == 0
    out = capsys.readouterr().out
    result, meta = read_tiff(folder / "sample_zssr_x2.tif")
    source, _ = read_tiff(folder / "sample_input.tif")
    assert result.shape == tuple(2 * n for n in source.shape)
    assert result.dtype == source.dtype
    assert meta.metadata["parameters"]["preset"] == "fast"
    assert str(folder / "sample_zssr_x2.tif") in out
    assert "took" in out
    if importlib.util.find_spec("matplotlib") is not None:
        png = folder / "side_by_side.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(png) in out


@pytest.mark.skipif(
    importlib.util.find_spec("napari") is None or not cli._has_display(),
    reason="needs napari and a display (run under xvfb-run)",
)
def test_demo_with_a_display_opens_napari_with_sample_and_widget(monkeypatch):
    import napari

    seen = {}

    def fake_run() -> None:  # instead of entering the event loop: inspect and close
        viewer = napari.current_viewer()
        seen["layers"] = [layer.name for layer in viewer.layers]
        seen["docks"] = list(viewer.window.dock_widgets)
        viewer.close()

    monkeypatch.setattr(napari, "run", fake_run)
    assert main(["demo"]) == 0
    assert seen["layers"] == ["membranes"]
    assert any(cli.WIDGET_NAME in name for name in seen["docks"])


def test_run_help_shows_no_empty_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "(default: None)" not in out and "(default: False)" not in out
    assert "(default: 1.515)" in out  # a default the help text does not state itself


# --------------------------------------------------------------------------- reliability


def _fake_engine(monkeypatch, calls: list | None = None) -> None:
    """Replace training by nearest-neighbour x2 (these tests are about files and messages)."""
    import napari_zssr.arrays.upscale

    def nearest(image, scale, **kwargs):
        if calls is not None:
            calls.append(scale)
        s = round(scale[0] if isinstance(scale, tuple) else scale)
        out = np.repeat(np.repeat(image, s, axis=-2), s, axis=-1)
        return (out, {"device": "cpu"}) if kwargs.get("return_info") else out

    monkeypatch.setattr(napari_zssr.arrays.upscale, "super_resolve", nearest)


def test_damaged_input_tiff_gives_one_line_and_status_1(broken_tiff, tmp_path, capsys):
    out = tmp_path / "out.tif"
    assert main(["run", str(broken_tiff), "-o", str(out), "--scale", "2", "-q"]) == 1
    err = _one_line_error(capsys)
    assert broken_tiff.name in err
    assert not out.exists()


@needs_engine
def test_damaged_psf_tiff_gives_one_line_and_status_1(broken_tiff, image_2d, tmp_path, capsys):
    out = tmp_path / "out.tif"
    args = ["run", str(image_2d), "-o", str(out), "-s", "2", "--psf", str(broken_tiff)]
    assert main([*args, "--psf-pixel-size", "0.05", "-q"]) == 1
    assert broken_tiff.name in _one_line_error(capsys)


def test_damaged_files_from_a_real_process(broken_tiffs, tmp_path):
    """The installed entry point: no traceback, one line, status 1 (three of the corpus)."""
    for name in ("ifd_offset_past_end", "deflate_truncated", "absurd_size"):
        args = ["run", str(broken_tiffs[name]), "--scale", "2", "-o", str(tmp_path / "o.tif")]
        proc = subprocess.run(
            [sys.executable, "-m", "napari_zssr.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "74.5 GiB" in lines[0]  # the absurd size is said


def test_text_file_named_npy_as_psf(image_2d, tmp_path, capsys):
    fake = tmp_path / "kernel.npy"
    fake.write_text("0.1 0.2 0.1\n")
    out = tmp_path / "out.tif"
    args = ["run", str(image_2d), "-o", str(out), "-s", "2", "--psf", str(fake)]
    assert main([*args, "--psf-is-kernel", "-q"]) == 1
    err = _one_line_error(capsys)
    assert "kernel.npy" in err and "allow_pickle" not in err


def test_demo_png_does_not_follow_a_planted_link(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    _fake_engine(monkeypatch)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / ".side_by_side.png.part").symlink_to(outside)  # the old, predictable name
    assert main(["demo", "--headless", "--output", str(folder), "-q"]) == 0
    assert outside.read_text() == "precious"
    png = folder / "side_by_side.png"
    assert not png.is_symlink() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".part")]
    assert leftovers == [".side_by_side.png.part"]  # only the planted link, untouched


def test_sigterm_during_the_write_leaves_nothing(image_2d, tmp_path):
    """SIGTERM while the output is written: status 143, one line, no hidden .part file."""
    import signal

    out = tmp_path / "out.tif"
    script = f"""
import sys, time
import numpy as np
import napari_zssr.arrays.upscale, napari_zssr.io as zio
napari_zssr.arrays.upscale.super_resolve = lambda image, scale, **kw: (
    np.repeat(np.repeat(image, 2, axis=-2), 2, axis=-1), {{"device": "cpu"}})
def slow_imwrite(fh, *args, **kwargs):
    fh.write(b"x" * 100000)
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
zio.tifffile.imwrite = slow_imwrite
from napari_zssr.cli import main
sys.exit(main(["run", {str(image_2d)!r}, "-o", {str(out)!r}, "-s", "2", "-q"]))
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert [p for p in tmp_path.iterdir() if p.name.endswith(".part")]  # mid-write
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["error: terminated (SIGTERM); no output was written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plane.tif"]


@pytest.mark.usefixtures("unwritable_outputs")
def test_unwritable_output_is_found_before_training(image_2d, tmp_path, monkeypatch, capsys):
    calls: list = []
    _fake_engine(monkeypatch, calls)
    out = tmp_path / "out.tif"
    assert main(["run", str(image_2d), "-o", str(out), "-s", "2", "-q"]) == 1
    err = _one_line_error(capsys)
    assert f"cannot write the output {out}" in err and ".part" not in err
    assert calls == []  # no training happened


@needs_engine
def test_run_keeps_imagej_fields_of_a_tzcyx_hyperstack(tmp_path):
    data = texture((2, 2, 2, 16, 16))
    src = tmp_path / "hyper.tif"
    tifffile.imwrite(
        src,
        data,
        imagej=True,
        resolution=(5.0, 5.0),
        metadata={
            "axes": "TZCYX",
            "unit": "um",
            "spacing": 0.5,
            "finterval": 0.05,
            "mode": "composite",
            "Ranges": (200.0, 3200.0, 200.0, 3200.0),
            "Labels": [f"p{k}" for k in range(8)],
        },
    )
    out = tmp_path / "sr.tif"
    args = ["run", str(src), "-o", str(out), "-s", "2", "--max-iters", "2", "--one-jump"]
    assert main([*args, "--preset", "fast", "-q"]) == 0
    result, meta = read_tiff(out)
    assert result.shape == (2, 2, 2, 32, 32) and meta.axes == "TZCYX"
    assert meta.pixel_size == pytest.approx((0.5, 0.1, 0.1))
    carried = meta.extra["imagej"]
    assert carried["finterval"] == pytest.approx(0.05)
    assert carried["mode"] == "composite"
    assert tuple(carried["Ranges"]) == pytest.approx((200.0, 3200.0, 200.0, 3200.0))
    assert carried["Labels"] == [f"p{k}" for k in range(8)]


def test_implausible_pixel_size_warns(image_2d, tmp_path, monkeypatch, capsys):
    _fake_engine(monkeypatch)
    out = tmp_path / "out.tif"
    assert main(["run", str(image_2d), "-o", str(out), "-s", "2", "--pixel-size", "1e9"]) == 0
    err = capsys.readouterr().err
    assert "warning: --pixel-size 1e+09 um is outside the usual microscopy range" in err
    assert main(["run", str(image_2d), "-o", str(out), "-s", "2", "--overwrite", "-q"]) == 0
    assert "warning" not in capsys.readouterr().err  # 0.2 um: nothing to say


def _noisy_tiff(tmp_path):
    rng = np.random.default_rng(5)
    img = texture((40, 40)).astype(float) + rng.normal(0.0, 150.0, (40, 40))
    path = tmp_path / "noisy.tif"
    write_tiff(path, np.clip(img, 0, 65535).astype(np.uint16), axes="YX")
    return path


@needs_engine
def test_run_estimates_the_noise_by_default_and_says_so(tmp_path, capsys):
    src, out = _noisy_tiff(tmp_path), tmp_path / "sr.tif"
    assert (
        main(
            [
                "run",
                str(src),
                "-o",
                str(out),
                "--scale",
                "2",
                "--preset",
                "fast",
                "--max-iters",
                "5",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "(estimated from the image)" in captured.out
    assert "warning" not in captured.err
    meta = read_tiff(out)[1].metadata
    assert meta["parameters"]["noise_std"] == "default"
    assert meta["run"]["noise_std_source"] == "auto"
    assert meta["run"]["noise_std"] == meta["run"]["noise_estimate"] > 0.02


@needs_engine
def test_run_with_noise_zero_on_a_noisy_image_warns_in_one_line(tmp_path, capsys):
    src, out = _noisy_tiff(tmp_path), tmp_path / "sr.tif"
    assert main(["run", str(src), "-o", str(out), "--scale", "2", "--noise-std", "0", *FAST]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("warning: the image's estimated noise is"), err
    assert "\n" not in err and "Traceback" not in err
    run = read_tiff(out)[1].metadata["run"]
    assert run["noise_std"] == 0.0 and run["noise_std_source"] == "set"


@needs_engine
def test_paper_preset_keeps_noise_free_sons(image_2d, tmp_path):
    out = tmp_path / "sr.tif"
    assert (
        main(
            [
                "run",
                str(image_2d),
                "-o",
                str(out),
                "--scale",
                "2",
                "--preset",
                "paper",
                "--max-iters",
                "3",
                "--quiet",
            ]
        )
        == 0
    )
    run = read_tiff(out)[1].metadata["run"]
    assert run["noise_std"] == 0.0 and run["noise_std_source"] == "preset"


def test_run_warns_of_likely_harm_even_when_quiet(image_2d, tmp_path, capsys, monkeypatch):
    """The run information's sign of harm reaches stderr as one warning line per sign."""
    import importlib

    # the module (the package exports a function of the same name)
    run_command = importlib.import_module("napari_zssr.cli.run_command")
    seen = []

    def harm(info):
        seen.append(info)
        return ["likely harm on 1 of 1 planes: a test sign"]

    monkeypatch.setattr(run_command, "likely_harm", harm)
    out = tmp_path / "sr.tif"
    assert main(["run", str(image_2d), "-o", str(out), "--scale", "2", *FAST]) == 0
    err = capsys.readouterr().err
    assert "warning: likely harm on 1 of 1 planes: a test sign" in err
    assert seen and "noise_std" in seen[0]  # it is given the run's information
    assert out.exists()  # a warning, not a refusal: the output is written
