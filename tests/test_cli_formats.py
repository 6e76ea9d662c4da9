"""``napari-zssr run`` on microscope files (the ``formats`` extra): a CZI written by pylibCZIrw,
OME-TIFFs of several images written by tifffile (their scenes, one run or a batch), and ND2 and
LIF files without the extra."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import texture, without_module

from napari_zssr.cli import main
from napari_zssr.io import read_tiff, write_tiff
from napari_zssr.io.formats import FORMATS_INSTALL

FAST = ["--preset", "fast", "--max-iters", "4", "--one-jump", "--device", "cpu", "-q"]
CHANNELS = ["DAPI", "GFP"]
# the two scenes differ in shape, so that an output shows which one was read
SCENE_SHAPES = ((20, 24), (16, 28))

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture
def sample_czi(tmp_path):
    """sample.czi: two named channels of 20 x 24 pixels of 0.2 um, written by pylibCZIrw."""
    pytest.importorskip("bioio_czi")
    czi = pytest.importorskip("pylibCZIrw.czi")
    data = texture((2, 20, 24))
    path = tmp_path / "sample.czi"
    with czi.create_czi(str(path), exist_ok=True) as writer:
        for c in range(2):
            writer.write(data[c][..., None], plane={"T": 0, "Z": 0, "C": c})
        # CZI's Scaling/Distance values are metres: 2e-7 m = 0.2 um
        writer.write_metadata(
            document_name="sample",
            channel_names=dict(enumerate(CHANNELS)),
            scale_x=2e-7,
            scale_y=2e-7,
        )
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    return err


def _two_scene_ome(path):
    """An OME-TIFF of two images (scenes) of 0.2 um pixels, shaped as ``SCENE_SHAPES``."""
    with tifffile.TiffWriter(path, ome=True) as tif:
        for k, shape in enumerate(SCENE_SHAPES):
            meta = {"axes": "YX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2}
            tif.write(texture(shape, seed=k), photometric="minisblack", metadata=meta)


@pytest.fixture
def plate(tmp_path):
    pytest.importorskip("bioio_ome_tiff")
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "plate.ome.tif"
    _two_scene_ome(path)
    return path


# --------------------------------------------------------------------------- CZI


def test_run_czi_keeps_halved_pixel_size_and_channel_names(sample_czi, tmp_path):
    out = tmp_path / "out.tif"
    assert main(["run", str(sample_czi), "-o", str(out), "-s", "2", *FAST]) == 0
    result, meta = read_tiff(out)
    assert meta.axes == "CYX"
    assert result.shape == (2, 40, 48) and result.dtype == np.uint16
    assert meta.pixel_size[1:] == pytest.approx((0.1, 0.1))  # 0.2 um halved
    names = meta.extra.get("imagej", {}).get("Labels") or meta.extra["ome"]["Channel"]["Name"]
    assert list(names) == CHANNELS
    assert meta.metadata["parameters"]["input"] == str(sample_czi)
    assert "scene" not in meta.metadata["parameters"]  # a file of one scene: none chosen


def test_default_output_name_of_a_czi(sample_czi):
    assert main(["run", str(sample_czi), "-s", "2", *FAST]) == 0
    assert (sample_czi.parent / "sample_zssr.tif").is_file()


# --------------------------------------------------------------------------- without the extra


@pytest.mark.parametrize(
    ("name", "module", "fmt", "package"),
    [
        ("plate.nd2", "bioio_nd2", "ND2", "bioio-nd2"),
        ("tiles.lif", "bioio_lif", "LIF", "bioio-lif"),
    ],
)
def test_nd2_or_lif_without_the_extra_is_a_one_line_error(
    tmp_path, monkeypatch, capsys, name, module, fmt, package
):
    path = tmp_path / name
    path.write_bytes(b"\0" * 64)
    without_module(monkeypatch, module)
    out = tmp_path / "out.tif"
    assert main(["run", str(path), "-o", str(out), "-s", "2", *FAST]) == 1
    err = _one_line_error(capsys)
    assert err == (
        f"error: reading {fmt} files needs the 'formats' extra ({package} is missing): "
        f"{FORMATS_INSTALL}"
    )
    assert FORMATS_INSTALL == 'pip install "napari-zssr[formats]"'
    assert not out.exists()


def test_a_batch_of_nd2_without_bioio_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    for k in range(2):
        (tmp_path / f"well{k}.nd2").write_bytes(b"\0" * 64)
    without_module(monkeypatch, "bioio")
    args = ["run", str(tmp_path / "*.nd2"), "-o", f"{tmp_path / 'out'}/", "-s", "2", *FAST]
    assert main(args) == 1
    err = _one_line_error(capsys)
    assert "(bioio is missing)" in err and 'pip install "napari-zssr[formats]"' in err


# --------------------------------------------------------------------------- scenes


def test_several_scenes_need_a_choice_in_a_single_run(plate, tmp_path, capsys):
    out = tmp_path / "out.tif"
    assert main(["run", str(plate), "-o", str(out), "-s", "2", *FAST]) == 1
    err = _one_line_error(capsys)
    assert "2 scenes" in err and "--scene" in err and "0: Image:0, 1: Image:1" in err
    assert not out.exists()
    assert main(["run", str(plate), "-o", str(out), "-s", "2", "--scene", "1", *FAST]) == 0
    result, meta = read_tiff(out)
    assert result.shape == (32, 56)  # scene 1, 16 x 28, doubled
    assert meta.pixel_size[1:] == pytest.approx((0.1, 0.1))
    assert meta.metadata["parameters"]["scene"] == "1"


def test_a_bad_scene_lists_the_scenes(plate, tmp_path, capsys):
    for scene in ("2", "Image:7", "first"):
        args = ["run", str(plate), "-o", str(tmp_path / "o.tif"), "-s", "2", "--scene", scene]
        assert main([*args, *FAST]) == 1
        err = _one_line_error(capsys)
        assert f"no scene {scene!r}" in err and "0: Image:0, 1: Image:1" in err


def test_a_scene_of_a_tiff_of_one_image(tmp_path, capsys):
    path = tmp_path / "plane.tif"
    write_tiff(path, texture((20, 24)), axes="YX", pixel_size=0.2)
    args = ["run", str(path), "-o", str(tmp_path / "o.tif"), "-s", "2", "--scene", "1", *FAST]
    assert main(args) == 1
    assert "has no scene '1'" in _one_line_error(capsys)


def test_train_needs_a_scene_of_a_file_of_several(plate, tmp_path, capsys):
    net = tmp_path / "net.zssr"
    assert main(["train", str(plate), "-o", str(net), "-s", "2", *FAST]) == 1
    assert "2 scenes" in _one_line_error(capsys)
    assert not net.exists()


def test_batch_does_each_scene(plate, tmp_path):
    out = tmp_path / "out"
    args = ["run", str(plate.parent / "*.ome.tif"), "-o", f"{out}/", "-s", "2", *FAST]
    assert main(args) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["plate_scene0_zssr.tif", "plate_scene1_zssr.tif"]
    for k, name in enumerate(written):
        result, meta = read_tiff(out / name)
        assert result.shape == tuple(2 * n for n in SCENE_SHAPES[k])
        assert meta.pixel_size[1:] == pytest.approx((0.1, 0.1))
        assert meta.metadata["parameters"]["scene"] == str(k)
    # a rerun finds both complete
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == written


def test_batch_with_a_scene_reads_that_scene_of_every_file(plate, tmp_path):
    out = tmp_path / "out"
    args = ["run", str(plate.parent / "*.ome.tif"), "-o", f"{out}/", "-s", "2", "--scene", "1"]
    assert main([*args, *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["plate_zssr.tif"]
    result, meta = read_tiff(out / "plate_zssr.tif")
    assert result.shape == (32, 56)
    assert meta.metadata["parameters"]["scene"] == "1"


def test_open_pixels_reads_the_chosen_scene(plate):
    from napari_zssr.io.inputs import open_input, open_pixels

    shape = SCENE_SHAPES[1]
    pixels = open_pixels(plate, shape, np.dtype("uint16"), "1")
    np.testing.assert_array_equal(pixels, texture(shape, seed=1))
    image, meta = open_input(plate, "Image:1")
    np.testing.assert_array_equal(image, pixels)
    assert meta.pixel_size[1:] == pytest.approx((0.2, 0.2))
