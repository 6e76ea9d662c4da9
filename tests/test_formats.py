"""Microscope files through bioio (io/formats.py): files written by real writers (tifffile for
OME-TIFF, pylibCZIrw for CZI), read back with their axes, pixel sizes, channel names and
scenes, and the one-line message when the ``formats`` extra is missing."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import without_module

from napari_zssr.io import read_tiff, write_tiff
from napari_zssr.io.formats import (
    FORMATS_INSTALL,
    MissingFormatReader,
    list_scenes,
    needs_bioio,
    read_image,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

CHANNELS = ["DAPI", "GFP"]


def _needs(module: str) -> None:
    pytest.importorskip("bioio")
    pytest.importorskip(module)


def _stack(shape, seed=0, dtype=np.uint16):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4000, shape).astype(dtype)


@pytest.fixture
def czi_file(tmp_path):
    """A Z stack of two named channels written by pylibCZIrw, 0.1 x 0.1 x 0.5 um voxels."""
    _needs("bioio_czi")
    czi = pytest.importorskip("pylibCZIrw.czi")
    data = _stack((3, 2, 40, 50))  # Z, C, Y, X
    path = tmp_path / "sample.czi"
    with czi.create_czi(str(path), exist_ok=True) as writer:
        for z in range(3):
            for c in range(2):
                writer.write(data[z, c][..., None], plane={"T": 0, "Z": z, "C": c})
        # CZI's Scaling/Distance values are metres (pylibCZIrw writes the numbers it is given
        # into that element, whatever its docstring says): 1e-7 m = 0.1 um
        writer.write_metadata(
            document_name="sample",
            channel_names=dict(enumerate(CHANNELS)),
            scale_x=1e-7,
            scale_y=1e-7,
            scale_z=5e-7,
        )
    return path, data


def _ome(path, images):
    """An OME-TIFF of one or more images: ``(array, axes, metadata)`` each."""
    with tifffile.TiffWriter(path, ome=True) as tif:
        for array, axes, meta in images:
            tif.write(array, photometric="minisblack", metadata={"axes": axes, **meta})


NM_65 = {"PhysicalSizeX": 65, "PhysicalSizeXUnit": "nm", "PhysicalSizeY": 65}
NM_65["PhysicalSizeYUnit"] = "nm"


def test_czi_axes_pixel_size_channel_names_and_pixels(czi_file):
    path, data = czi_file
    array, meta = read_image(path)
    assert meta.axes == "ZCYX"  # T of size 1 left out; ImageJ's order
    assert array.shape == data.shape and array.dtype == np.uint16
    np.testing.assert_array_equal(array, data)  # each plane where the writer put it
    assert meta.pixel_size == pytest.approx((0.5, 0.1, 0.1))
    assert meta.format == "czi"
    assert meta.metadata["scene"] == list_scenes(path)[0]
    assert meta.extra["ome"]["Channel"]["Name"] == CHANNELS
    assert meta.extra["imagej"]["Labels"] == CHANNELS * 3  # one per plane, channel fastest
    assert needs_bioio(path) and needs_bioio("X.CZI")


def test_czi_metadata_written_back_to_tiff(czi_file, tmp_path):
    # what the command line does with the file: write the result with the file's fields
    path, _ = czi_file
    array, meta = read_image(path)
    out = tmp_path / "out.tif"
    half = tuple(v / 2 for v in meta.pixel_size[1:])
    fmt = write_tiff(
        out, array, axes=meta.axes, pixel_size=(meta.pixel_size[0], *half), extra=meta.extra
    )
    assert fmt == "imagej"
    _, back_meta = read_tiff(out)
    assert back_meta.axes == "ZCYX"
    assert back_meta.pixel_size == pytest.approx((0.5, 0.05, 0.05))
    assert back_meta.extra["imagej"]["Labels"] == CHANNELS * 3
    ome_out = tmp_path / "out.ome.tif"
    write_tiff(
        ome_out, array, axes=meta.axes, pixel_size=meta.pixel_size, extra=meta.extra, ome=True
    )
    _, ome_meta = read_tiff(ome_out)
    assert ome_meta.extra["ome"]["Channel"]["Name"] == CHANNELS


def test_single_image_ome_tiff_goes_through_read_tiff(tmp_path):
    path = tmp_path / "cells.ome.tif"
    data = _stack((2, 30, 40))
    _ome(path, [(data, "CYX", {**NM_65, "Channel": {"Name": CHANNELS}})])
    array, meta = read_image(path)
    np.testing.assert_array_equal(array, data)
    assert meta.axes == "CYX"
    assert meta.pixel_size == pytest.approx((None, 0.065, 0.065))
    assert meta.format == "ome"  # read_tiff's flavour: the reader of today, bioio not needed
    assert meta.extra["ome"]["Channel"]["Name"] == CHANNELS
    assert list_scenes(path) == ("Image:0",)


def test_ome_tiff_scenes(tmp_path):
    _needs("bioio_ome_tiff")
    path = tmp_path / "plate.ome.tif"
    first = _stack((2, 30, 40))
    second = _stack((3, 20, 24), seed=1, dtype=np.uint8)
    meta_2 = {"PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 1.0}
    _ome(path, [(first, "CYX", {**NM_65, "Channel": {"Name": CHANNELS}}), (second, "ZYX", meta_2)])
    scenes = list_scenes(path)
    assert len(scenes) == 2
    with pytest.raises(ValueError, match=r"holds 2 scenes \(0: .*, 1: .*\); choose one") as err:
        read_image(path)
    assert "\n" not in str(err.value)
    array, meta = read_image(path, scene=0)
    np.testing.assert_array_equal(array, first)
    assert meta.axes == "CYX"
    assert meta.pixel_size == pytest.approx((None, 0.065, 0.065))  # nm converted
    assert meta.extra["ome"]["Channel"]["Name"] == CHANNELS
    assert meta.format == "ome-tiff" and meta.metadata["scenes"] == 2
    for choice in (1, "1", scenes[1]):
        array, meta = read_image(path, scene=choice)
        np.testing.assert_array_equal(array, second)
        assert meta.axes == "ZYX" and array.dtype == np.uint8
        assert meta.pixel_size == pytest.approx((1.0, 0.2, 0.2))
        assert meta.extra == {}  # unnamed channels: no made-up names
    with pytest.raises(ValueError, match="no scene 2; the file holds 0: "):
        read_image(path, scene=2)


def test_plain_tiff_has_one_scene(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, _stack((20, 20)))
    assert read_image(path, scene=0)[0].shape == (20, 20)
    with pytest.raises(ValueError, match="no scene 3"):
        read_image(path, scene=3)


def test_missing_and_unreadable_files(tmp_path):
    _needs("bioio_czi")
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "nothing.czi")
    bad = tmp_path / "bad.czi"
    bad.write_bytes(b"not a czi file" * 10)
    with pytest.raises(ValueError, match=r"bad\.czi: not a readable CZI file") as err:
        read_image(bad)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "missing", "package"),
    [
        ("plate.nd2", "bioio_nd2", "bioio-nd2"),
        ("tiles.lif", "bioio_lif", "bioio-lif"),
        ("cells.czi", "bioio", "bioio"),
    ],
)
def test_missing_extra_names_it(monkeypatch, tmp_path, name, missing, package):
    without_module(monkeypatch, missing)
    path = tmp_path / name  # need not exist: the extra is checked first
    with pytest.raises(MissingFormatReader) as err:
        read_image(path)
    message = str(err.value)
    assert "\n" not in message
    assert FORMATS_INSTALL in message and 'pip install "napari-zssr[formats]"' in message
    assert f"{package} is missing" in message
    assert isinstance(err.value, ImportError)
