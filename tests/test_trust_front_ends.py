"""Quality maps and resolution in the front ends' words: the shared formatter and
``napari-zssr run --maps`` (the widget's side is in ``test_widget_maps.py``)."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from napari_zssr.cli import main
from napari_zssr.cli.maps_output import map_paths
from napari_zssr.io import read_tiff, write_tiff
from napari_zssr.pipeline import MAP_MEANINGS, RequestError, RunRequest, describe_resolution

needs_engine = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="the engine needs torch"
)
MAPS = ("spread", "consistency", "added")
RES = {"input": 3.12, "bicubic": 3.0, "output": 2.41, "unit": "px", "method": "decorrelation"}


# --------------------------------------------------------------------------- formatter


def test_resolution_in_pixels_without_a_pixel_size():
    assert describe_resolution(RES) == "3.12 px -> 2.41 px (bicubic upscale 3 px; decorrelation)"
    assert describe_resolution(RES, 0.0, "um").startswith("3.12 px -> ")


def test_resolution_in_the_unit_of_the_pixel_size():
    assert describe_resolution(RES, 100.0, "nm") == (
        "312 nm -> 241 nm (bicubic upscale 300 nm; decorrelation)"
    )
    assert describe_resolution(RES, 0.1, "um").startswith("0.312 um -> 0.241 um ")
    big = {**RES, "input": 30.0, "bicubic": 29.0, "output": 24.1}
    assert describe_resolution(big, 50.0, "nm").startswith("1500 nm -> 1205 nm ")


def test_resolution_of_a_stack_and_of_nothing():
    stack = {**RES, "planes": [(3.0, 2.5, 2.4), (3.2, 2.5, 2.4), (3.1, 2.5, 2.4)]}
    assert describe_resolution(stack).endswith("(bicubic upscale 3 px; decorrelation, "
                                               "median of 3 planes)")  # fmt: skip
    assert describe_resolution(None).startswith("not measured")


def test_no_gain_is_credited_that_the_bicubic_upscale_also_shows():
    # bicubic reads 20% finer than the input: noise read as detail; the output is no finer
    fooled = {**RES, "bicubic": 2.5, "output": 2.41}
    text = describe_resolution(fooled)
    assert text.startswith("gain not measurable: the bicubic upscale reads 2.5 px against")
    assert "3.12 px -> " not in text
    # the bundled sample's readings: the output sits at the x2 grid's sampling limit
    sample = {**RES, "input": 3.28, "bicubic": 1.34, "output": 1.18}
    assert "sampling limit" in describe_resolution(sample, scale=2.0)
    # finer than bicubic by more than the tolerance: compared with bicubic, not the input
    finer = {**RES, "bicubic": 2.5, "output": 1.8}
    text = describe_resolution(finer, scale=2.0)
    assert text.startswith("1.8 px, finer than the bicubic upscale (2.5 px) by x1.39")
    assert "3.12 px -> " not in text
    # no gain over an honest bicubic
    same = {**RES, "output": 3.05}
    assert describe_resolution(same).startswith("gain not measurable: the output (3.05 px)")
    assert set(MAP_MEANINGS) == set(MAPS)


def test_maps_are_refused_with_z_to_isotropic():
    request = RunRequest(z_isotropic=True, z_ratio=2.0, maps=True, labels={"maps": "--maps"})
    with pytest.raises(RequestError, match="--maps applies to the lateral upscaling only"):
        request.validate()


@pytest.mark.parametrize(
    ("name", "spread"),
    [
        ("sr.tif", "sr_spread.tif"),
        ("a.b.TIFF", "a.b_spread.TIFF"),
        ("x.ome.tif", "x_spread.ome.tif"),
    ],
)
def test_map_files_are_named_after_the_output(tmp_path, name, spread):
    paths = map_paths(tmp_path / name)
    assert list(paths) == list(MAPS)
    assert paths["spread"] == tmp_path / spread


# --------------------------------------------------------------------------- command line


@pytest.fixture
def image_40(tmp_path):
    """A 40 x 40 plane (decorrelation needs 32 x 32 or more) with 0.2 um pixels."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:40, :40]
    img = np.sin(yy / 2.3) * np.cos(xx / 3.1) + 0.2 * rng.standard_normal((40, 40))
    path = tmp_path / "plane.tif"
    write_tiff(path, (1000 + 800 * img).astype(np.uint16), axes="YX", pixel_size=0.2)
    return path


ARGS = ["--scale", "2", "--preset", "fast", "--max-iters", "5"]


@needs_engine
def test_run_with_maps_writes_three_tiffs_and_the_resolution(image_40, tmp_path, capsys):
    out = tmp_path / "sr.tif"
    assert main(["run", str(image_40), "-o", str(out), *ARGS, "--maps"]) == 0
    text = capsys.readouterr().out
    result, meta = read_tiff(out)
    for name in MAPS:
        arr, map_meta = read_tiff(tmp_path / f"sr_{name}.tif")
        assert arr.shape == result.shape == (80, 80)
        assert arr.dtype == np.float32
        assert np.all(np.isfinite(arr)) and float(arr.min()) >= 0.0
        assert map_meta.pixel_size == pytest.approx(meta.pixel_size) == (None, 0.1, 0.1)
        assert map_meta.metadata["map"] == name
        assert map_meta.metadata["output"] == str(out)
    assert str(tmp_path / "sr_added.tif") in text
    line = next(x for x in text.splitlines() if x.startswith("resolution "))
    assert "bicubic upscale" in line and "decorrelation" in line
    # in um (0.2 um pixels): the input's resolution a few of them, the output's at least the
    # x2 grid's sampling limit; a gain is printed, or why it is not measurable
    lengths = [float(v) for v in re.findall(r"([0-9.]+) um", line)]
    assert lengths and all(0.05 <= v <= 4.0 for v in lengths), line
    assert " um -> " in line or "not measurable" in line or "finer than the bicubic" in line
    # the output file's record has the numbers behind the line
    assert meta.metadata["run"]["resolution"]["unit"] == "px"


@needs_engine
def test_maps_in_pixels_without_a_pixel_size(tmp_path, capsys):
    src = tmp_path / "nopix.tif"
    rng = np.random.default_rng(2)
    write_tiff(src, rng.integers(0, 255, (36, 36)).astype(np.uint8), axes="YX")
    assert main(["run", str(src), *ARGS, "--maps"]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("resolution "))
    assert re.search(r"[0-9.]+ px", line) and " um" not in line  # no pixel size: input pixels
    assert read_tiff(tmp_path / "nopix_zssr_spread.tif")[1].pixel_size == (None, None, None)


@needs_engine
def test_no_map_files_without_maps(image_40, tmp_path, capsys):
    out = tmp_path / "sr.tif"
    assert main(["run", str(image_40), "-o", str(out), *ARGS]) == 0
    assert "resolution" not in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plane.tif", "sr.tif"]


def _fail_if_trained(monkeypatch):
    import napari_zssr.arrays.upscale

    def trained(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(napari_zssr.arrays.upscale, "super_resolve", trained, raising=False)


@needs_engine
def test_an_existing_map_file_is_refused_before_training(image_40, tmp_path, monkeypatch, capsys):
    _fail_if_trained(monkeypatch)
    kept = tmp_path / "sr_consistency.tif"
    kept.write_bytes(b"keep me")
    assert main(["run", str(image_40), "-o", str(tmp_path / "sr.tif"), *ARGS, "--maps"]) == 1
    err = capsys.readouterr().err
    assert "sr_consistency.tif" in err and "--overwrite" in err
    assert kept.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plane.tif", "sr_consistency.tif"]


@needs_engine
def test_a_map_file_that_is_the_input_is_refused(tmp_path, image_40, monkeypatch, capsys):
    _fail_if_trained(monkeypatch)
    src = image_40.rename(tmp_path / "sr_added.tif")
    out = tmp_path / "sr.tif"
    assert main(["run", str(src), "-o", str(out), *ARGS, "--maps", "--overwrite"]) == 1
    assert "output is the input file" in capsys.readouterr().err
    assert not out.exists()


@needs_engine
def test_a_failed_map_write_leaves_no_file(image_40, tmp_path, monkeypatch, capsys):
    from napari_zssr.cli import maps_output

    real = maps_output.write_tiff

    def write_then_fail(path, *args, **kwargs):
        if "consistency" in str(path):
            raise OSError("disk full")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(maps_output, "write_tiff", write_then_fail)
    assert main(["run", str(image_40), "-o", str(tmp_path / "sr.tif"), *ARGS, "--maps"]) == 1
    assert "disk full" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plane.tif"]


def test_maps_with_z_isotropic_is_a_usage_error(image_40, tmp_path, capsys):
    args = ["run", str(image_40), "-o", str(tmp_path / "o.tif"), "--z-isotropic", "--maps"]
    assert main(args) == 2
    assert "--maps" in capsys.readouterr().err
