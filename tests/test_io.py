"""TIFF reading and writing: axes, pixel sizes, metadata, flavours and atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_zssr.io import TiffMeta, read_tiff, write_tiff
from napari_zssr.io import atomic as zatomic
from napari_zssr.io import tiff as zio


def _ramp(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) % 251).reshape(shape).astype(dtype)


def test_imagej_round_trip_keeps_axes_pixel_sizes_and_metadata(tmp_path):
    data = _ramp((2, 3, 12, 10), np.uint16)
    before = data.copy()
    path = tmp_path / "hyper.tif"
    fmt = write_tiff(
        path, data, axes="TZYX", pixel_size=(0.5, 0.1, 0.125), metadata={"scale": [2, 2]}
    )
    assert fmt == "imagej"
    np.testing.assert_array_equal(data, before)  # the caller's array is untouched

    with tifffile.TiffFile(path) as tif:  # a real ImageJ hyperstack, readable by Fiji
        assert tif.is_imagej
        assert tif.imagej_metadata["frames"] == 2
        assert tif.imagej_metadata["slices"] == 3
        assert json.loads(tif.imagej_metadata["Info"]) == {"scale": [2, 2]}

    out, meta = read_tiff(path)
    np.testing.assert_array_equal(out, data)
    assert out.dtype == np.uint16
    assert meta.axes == "TZYX"
    assert meta.format == "imagej"
    assert meta.pixel_size == pytest.approx((0.5, 0.1, 0.125))
    assert meta.metadata == {"scale": [2, 2]}


def test_ome_round_trip_for_axes_imagej_cannot_order(tmp_path):
    data = _ramp((2, 3, 8, 9), np.float64)  # C before Z and float64: not ImageJ
    path = tmp_path / "stack.tif"
    fmt = write_tiff(
        path, data, axes="CZYX", pixel_size=(1.5, 0.2, 0.25), metadata={"k": np.float32(3)}
    )
    assert fmt == "ome"
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
        pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
        assert pixels["PhysicalSizeX"] == pytest.approx(0.25)
        assert pixels["PhysicalSizeZ"] == pytest.approx(1.5)

    out, meta = read_tiff(path)
    np.testing.assert_array_equal(out, data)
    assert (meta.axes, meta.format) == ("CZYX", "ome")
    assert meta.pixel_size == pytest.approx((1.5, 0.2, 0.25))
    assert meta.metadata == {"k": 3.0}


@pytest.mark.parametrize(
    ("dtype", "expected"), [(np.uint8, "imagej"), (np.uint16, "ome"), (np.float32, "ome")]
)
def test_rgb_round_trip(tmp_path, dtype, expected):
    data = _ramp((6, 7, 3), dtype)
    path = tmp_path / "rgb.tif"
    assert write_tiff(path, data, axes="YXS", pixel_size=0.3) == expected
    out, meta = read_tiff(path)
    np.testing.assert_array_equal(out, data)
    assert meta.axes == "YXS"
    assert meta.pixel_size == pytest.approx((None, 0.3, 0.3))


def test_unlabelled_axes_fall_back_to_shaped_tiff(tmp_path):
    data = _ramp((2, 2, 5, 6), np.int32)
    path = tmp_path / "odd.tif"
    assert write_tiff(path, data, axes="ABYX", pixel_size=(2.0, 0.4, 0.5), metadata={"a": 1}) == (
        "shaped"
    )
    out, meta = read_tiff(path)
    np.testing.assert_array_equal(out, data)
    assert meta.axes == "ABYX"
    assert meta.pixel_size == pytest.approx((2.0, 0.4, 0.5))
    assert meta.metadata == {"a": 1}


def test_reads_units_written_by_other_software(tmp_path):
    # ImageJ as Fiji writes it: micro sign escaped, resolution in pixels per unit.
    ij = tmp_path / "fiji.tif"
    tifffile.imwrite(
        ij,
        _ramp((3, 8, 8), np.uint8),
        imagej=True,
        resolution=(1 / 0.065, 1 / 0.065),
        metadata={"axes": "ZYX", "unit": "\\u00B5m", "spacing": 0.3, "Info": "not json"},
    )
    _, meta = read_tiff(ij)
    assert meta.pixel_size == pytest.approx((0.3, 0.065, 0.065))
    assert meta.metadata == {}  # free text is not JSON metadata

    # ImageJ calibrated in nanometres.
    nm = tmp_path / "nm.tif"
    tifffile.imwrite(
        nm,
        _ramp((8, 8), np.uint16),
        imagej=True,
        resolution=(1 / 65.0, 1 / 65.0),
        metadata={"unit": "nm"},
    )
    assert read_tiff(nm)[1].pixel_size == pytest.approx((None, 0.065, 0.065))

    # OME in nanometres.
    ome = tmp_path / "nm.ome.tif"
    tifffile.imwrite(
        ome,
        _ramp((2, 8, 8), np.uint16),
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 80.0,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeY": 80.0,
            "PhysicalSizeYUnit": "nm",
            "PhysicalSizeZ": 250.0,
            "PhysicalSizeZUnit": "nm",
        },
    )
    _, meta = read_tiff(ome)
    assert meta.axes == "ZYX"
    assert meta.pixel_size == pytest.approx((0.25, 0.08, 0.08))

    # Plain TIFF with a centimetre resolution, and one with only the meaningless inch default.
    cm = tmp_path / "cm.tif"
    tifffile.imwrite(
        cm, _ramp((8, 8), np.uint16), resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER"
    )
    assert read_tiff(cm)[1].pixel_size == pytest.approx((None, 0.5, 0.5))
    inch = tmp_path / "inch.tif"
    tifffile.imwrite(inch, _ramp((8, 8), np.uint16), resolution=(72, 72), resolutionunit="INCH")
    assert read_tiff(inch)[1].pixel_size == (None, None, None)


def test_plain_tiff_has_no_pixel_size(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, _ramp((3, 8, 9), np.uint16), photometric="minisblack")
    out, meta = read_tiff(path)
    assert out.shape == (3, 8, 9)
    assert meta == TiffMeta(axes=meta.axes, pixel_size=(None, None, None), format=meta.format)
    assert meta.axes[1:] == "YX"


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_tiff(tmp_path / "missing.tif")
    junk = tmp_path / "junk.tif"
    junk.write_text("this is not a TIFF file")
    with pytest.raises(ValueError):
        read_tiff(junk)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"axes": "ZYX"}, "3 letters but the array has 2"),
        ({"axes": "YY"}, "each axis once"),
        ({"axes": 3}, "axes must be a string"),
        ({"pixel_size": -1.0}, "positive"),
        ({"pixel_size": (1.0, 2.0, 3.0, 4.0)}, r"\(z, y, x\)"),
        ({"metadata": {"x": object()}}, "JSON-serialisable"),
    ],
)
def test_write_rejects_bad_arguments_and_writes_nothing(tmp_path, kwargs, match):
    path = tmp_path / "bad.tif"
    with pytest.raises((ValueError, TypeError), match=match):
        write_tiff(path, _ramp((4, 5), np.uint16), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_write_needs_axes_for_nd(tmp_path):
    with pytest.raises(ValueError, match="axes are required"):
        write_tiff(tmp_path / "a.tif", np.zeros((2, 4, 4), np.uint16))


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch, error):
    path = tmp_path / "out.tif"
    write_tiff(path, _ramp((4, 5), np.uint16))
    original = path.read_bytes()
    real_imwrite = tifffile.imwrite

    def half_written(fh, *args, **kwargs):
        real_imwrite(fh, *args, **kwargs)  # bytes reach the temporary file ...
        raise error  # ... then the write is cut short

    monkeypatch.setattr(zio.tifffile, "imwrite", half_written)
    with pytest.raises(type(error)):
        write_tiff(path, _ramp((40, 50), np.uint16))
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]

    fresh = tmp_path / "new.tif"
    with pytest.raises(type(error)):
        write_tiff(fresh, _ramp((40, 50), np.uint16))
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_write_into_missing_folder_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError, match="output folder does not exist"):
        write_tiff(tmp_path / "nope" / "a.tif", _ramp((4, 5), np.uint16))


def test_reads_a_real_imagej_bead_stack(shared_data):
    stack, meta = read_tiff(shared_data / "microscopy" / "bian_Bead_Image1_crop.tif")
    assert stack.shape == (41, 150, 150)
    assert meta.axes == "ZYX"
    assert meta.format == "imagej"
    assert meta.pixel_size == pytest.approx((0.125, 0.0225, 0.0225), rel=1e-3)


def test_metadata_json_is_plain_json(tmp_path):
    # Metadata must survive a JSON round trip exactly (no NaN, numpy types or paths).
    path = tmp_path / "m.tif"
    write_tiff(path, np.zeros((4, 4), np.uint16), metadata={"a": np.int64(2), "p": tmp_path})
    meta = read_tiff(path)[1].metadata
    assert json.loads(json.dumps(meta)) == {"a": 2, "p": str(tmp_path)}


# --- damaged files (issue: tracebacks instead of messages) -------------------------------------


def test_damaged_tiff_gives_one_clear_error(broken_tiff):
    with pytest.raises(ValueError) as info:
        read_tiff(broken_tiff)
    message = str(info.value)
    assert str(broken_tiff) in message  # names the file
    assert "\n" not in message
    assert "Traceback" not in message


def test_absurd_declared_size_is_refused_before_reading(broken_tiffs, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("the pixels were read")

    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", no_reading)
    for name in ("absurd_size", "absurd_size_deflate"):
        with pytest.raises(ValueError, match=r"200000 x 200000 uint16 pixels \(74\.5 GiB\)"):
            read_tiff(broken_tiffs[name])
    # Little memory: a modest declared size is refused the same way, with both sizes named.
    monkeypatch.setattr(zio, "available_memory", lambda: 1000)
    with pytest.raises(ValueError, match=r"64 x 64 uint16 pixels \(8\.0 KiB\).*1000 bytes"):
        read_tiff(broken_tiffs["good"])


def test_available_memory_with_and_without_proc_meminfo(monkeypatch):
    found = zio.available_memory()
    assert found is None or found > 0
    real_open = open

    def no_meminfo(path, *args, **kwargs):
        if str(path) == "/proc/meminfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_meminfo)
    fallback = zio.available_memory()  # os.sysconf where the platform has it, else None
    assert fallback is None or fallback > 0


def test_good_file_of_the_corpus_reads(broken_tiffs):
    out, _ = read_tiff(broken_tiffs["good"])
    assert out.shape == (64, 64) and out.dtype == np.uint16


# --- writes: one atomic helper ----------------------------------------------------------------


def test_atomic_write_never_follows_a_planted_link(tmp_path, monkeypatch):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    folder = tmp_path / "out"
    folder.mkdir()
    # The temporary name is unpredictable; even when it is guessed, the exclusive create
    # refuses the planted link instead of writing through it.
    monkeypatch.setattr(zatomic.secrets, "token_hex", lambda n: "guessed")
    (folder / ".a.tif.guessed.part").symlink_to(outside)
    with pytest.raises(FileExistsError, match=r"cannot write the output .*a\.tif"):
        write_tiff(folder / "a.tif", _ramp((4, 5), np.uint16))
    assert outside.read_text() == "precious"
    assert not (folder / "a.tif").exists()


def test_atomic_write_writes_any_bytes(tmp_path):
    path = tmp_path / "x.bin"
    zio.atomic_write(path, lambda fh: fh.write(b"abc"))
    assert path.read_bytes() == b"abc"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_check_writable_names_the_output(tmp_path, request):
    zio.check_writable(tmp_path / "fine.tif")
    assert list(tmp_path.iterdir()) == []  # the probe is gone
    request.getfixturevalue("unwritable_outputs")
    with pytest.raises(PermissionError, match=r"cannot write the output .*out\.tif") as info:
        zio.check_writable(tmp_path / "out.tif")
    assert ".part" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="output folder does not exist"):
        zio.check_writable(tmp_path / "missing" / "out.tif")


# --- metadata carried over --------------------------------------------------------------------


def test_imagej_fields_round_trip_for_tzcyx(tmp_path):
    data = _ramp((2, 3, 2, 12, 10), np.uint16)
    luts = [np.zeros((3, 256), np.uint8), np.zeros((3, 256), np.uint8)]
    luts[0][0] = np.arange(256)
    luts[1][1] = np.arange(256)
    fields = {
        "finterval": 0.05,
        "tunit": "sec",
        "mode": "composite",
        "Ranges": (0.0, 250.0, 10.0, 200.0),
        "LUTs": luts,
        "Labels": [f"plane {k}" for k in range(12)],
        "Properties": {"objective": "60x"},
    }
    src = tmp_path / "in.tif"
    tifffile.imwrite(
        src,
        data,
        imagej=True,
        resolution=(5.0, 5.0),
        metadata={"axes": "TZCYX", "unit": "um", "spacing": 0.5, **fields},
    )
    _, meta = read_tiff(src)
    assert meta.axes == "TZCYX"
    carried = meta.extra["imagej"]
    assert carried["finterval"] == pytest.approx(0.05)
    assert carried["Labels"] == fields["Labels"]

    out = tmp_path / "out.tif"
    assert write_tiff(out, data, axes="TZCYX", pixel_size=(0.5, 0.1, 0.1), extra=meta.extra) == (
        "imagej"
    )
    _, back = read_tiff(out)
    got = back.extra["imagej"]
    assert got["finterval"] == pytest.approx(0.05)
    assert got["tunit"] == "sec"
    assert got["mode"] == "composite"
    assert tuple(got["Ranges"]) == pytest.approx(fields["Ranges"])
    assert [lut.tolist() for lut in got["LUTs"]] == [lut.tolist() for lut in luts]
    assert got["Labels"] == fields["Labels"]
    assert got["Properties"] == fields["Properties"]
    assert back.pixel_size == pytest.approx((0.5, 0.1, 0.1))


def test_ome_fields_round_trip_and_cross_to_imagej(tmp_path):
    data = _ramp((2, 2, 12, 10), np.float64)  # float64: not ImageJ, written as OME-TIFF
    src = tmp_path / "in.ome.tif"
    tifffile.imwrite(
        src,
        data,
        ome=True,
        metadata={
            "axes": "TCYX",
            "TimeIncrement": 0.25,
            "TimeIncrementUnit": "s",
            "Channel": {"Name": ["DAPI", "GFP"], "EmissionWavelength": [461.0, 510.0]},
        },
    )
    _, meta = read_tiff(src)
    assert meta.format == "ome"
    out = tmp_path / "out.ome.tif"
    assert write_tiff(out, data, axes="TCYX", extra=meta.extra) == "ome"
    _, back = read_tiff(out)
    got = back.extra["ome"]
    assert float(got["TimeIncrement"]) == pytest.approx(0.25)
    assert got["Channel"]["Name"] == ["DAPI", "GFP"]
    assert [float(v) for v in got["Channel"]["EmissionWavelength"]] == [461.0, 510.0]
    # The frame interval also reaches an ImageJ file (uint16 data of the same axes).
    ij = tmp_path / "out_ij.tif"
    write_tiff(ij, data.astype(np.uint16), axes="TCYX", extra=meta.extra)
    assert read_tiff(ij)[1].extra["imagej"]["finterval"] == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("name", "single", "batch"),
    [
        ("a.tif", "a_zssr.tif", "a_zssr.tif"),
        ("a.OME.TIFF", "a_zssr.tif", "a_zssr.tif"),
        ("a.ome.zarr", "a.ome.zarr_zssr.tif", "a_zssr.tif"),
        ("a.png", "a.png_zssr.tif", "a_zssr.tif"),
        ("a.czi", "a_zssr.tif", "a_zssr.tif"),
        ("a.ND2", "a_zssr.tif", "a_zssr.tif"),
        ("a.lif", "a_zssr.tif", "a_zssr.tif"),
    ],
)
def test_output_names(tmp_path, name, single, batch):
    from napari_zssr.io.outputs import output_for

    inp = tmp_path / name
    assert output_for(inp) == tmp_path / single
    assert output_for(inp, keep_other_suffix=False) == tmp_path / batch
    folder = tmp_path / "out"
    zarr_name = batch.replace(".tif", ".ome.zarr")
    assert output_for(inp, "ome-zarr", folder, keep_other_suffix=False) == folder / zarr_name


def test_output_names_of_scenes(tmp_path):
    from napari_zssr.io.outputs import output_for

    inp = tmp_path / "plate.ome.tif"
    assert output_for(inp, scene=0) == tmp_path / "plate_scene0_zssr.tif"
    folder = tmp_path / "out"
    assert output_for(tmp_path / "w.czi", "ome-zarr", folder, keep_other_suffix=False, scene=3) == (
        folder / "w_scene3_zssr.ome.zarr"
    )


def test_an_output_that_is_the_input_is_refused(tmp_path):
    from napari_zssr.io.outputs import refuse_input_as_output

    inp = tmp_path / "a.tif"
    inp.write_bytes(b"data")
    (tmp_path / "link.tif").hardlink_to(inp)
    for out in (inp, tmp_path / "." / "a.tif", tmp_path / "link.tif"):
        with pytest.raises(ValueError, match="output is the input file"):
            refuse_input_as_output(inp, out)
    refuse_input_as_output(inp, tmp_path / "b.tif")  # another file: no error
    assert inp.read_bytes() == b"data"


def test_output_store_records_the_pixel_size_divided_by_the_scale(tmp_path):
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("ome_zarr")
    from napari_zssr.io.inputs import InputMeta, open_input
    from napari_zssr.io.zarr_store import output_store

    path = tmp_path / "o.ome.zarr"
    output_store(
        path, shape=(2, 8, 6), dtype="uint16", axes="ZYX",
        pixel_size=(0.5, 0.2, 0.3), scale=(2.0, 3.0),
    )  # fmt: skip
    group = zarr.open_group(str(path), mode="r")
    scale = group.attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    assert scale[0]["scale"] == pytest.approx([0.5, 0.1, 0.1])
    image, meta = open_input(path)
    assert isinstance(meta, InputMeta) and meta.axes == "ZYX" and image.shape == (2, 8, 6)
    assert meta.pixel_size == pytest.approx((0.5, 0.1, 0.1)) and meta.extra == {}


def test_open_pixels_maps_a_plain_tiff(tmp_path):
    from napari_zssr.io.inputs import open_pixels

    image = np.arange(2 * 5 * 7, dtype=np.uint16).reshape(2, 5, 7)
    write_tiff(tmp_path / "s.tif", image, axes="ZYX")
    pixels = open_pixels(tmp_path / "s.tif", image.shape, "uint16")
    assert isinstance(pixels, np.memmap)
    np.testing.assert_array_equal(pixels, image)
    # another shape than the file's: read whole through open_input
    np.testing.assert_array_equal(open_pixels(tmp_path / "s.tif", (70,), "uint16"), image)
