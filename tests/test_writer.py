"""The writer contribution, through napari's own save path (what File > Save Selected Layers
calls): OME-TIFF with the layer's pixel size and its ``zssr`` record."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")

from napari.layers import Image  # noqa: E402

from napari_zssr.io import read_tiff  # noqa: E402


@pytest.fixture(autouse=True)
def plugins():
    """The plugins napari finds at start-up (a viewer does this when it opens)."""
    from npe2 import PluginManager

    PluginManager.instance().discover()


def _save(tmp_path, layer, name="out.ome.tif"):
    path = tmp_path / name
    written = napari.save_layers(str(path), [layer], plugin="napari-zssr")
    assert written == [str(path)]
    return read_tiff(path)


def test_result_layer_saved_with_pixel_size_and_record(tmp_path):
    record = {"source_layer": "cells", "scale": [2.0, 2.0], "world_factors": [2.0, 2.0]}
    layer = Image(
        np.arange(24 * 20, dtype=np.uint16).reshape(24, 20),
        name="cells ZSSR x2",
        scale=(0.05, 0.05),
        metadata={"zssr": record, "other": object()},
    )
    data, meta = _save(tmp_path, layer)
    np.testing.assert_array_equal(data, layer.data)
    assert meta.format == "ome"  # OME even where ImageJ could hold the data
    assert meta.pixel_size == pytest.approx((None, 0.05, 0.05))
    assert meta.metadata["zssr"] == record
    assert meta.metadata["layer"] == "cells ZSSR x2"


def test_stack_rgb_units_and_pixels(tmp_path):
    stack = Image(np.zeros((3, 16, 16), np.float32), scale=(1.0, 200.0, 200.0),
                  units=("nm", "nm", "nm"))  # fmt: skip
    data, meta = _save(tmp_path, stack, "stack.tif")
    assert data.shape == (3, 16, 16) and meta.axes == "ZYX"
    assert meta.pixel_size == pytest.approx((0.001, 0.2, 0.2))
    rgb = Image(np.zeros((16, 16, 3), np.uint8), rgb=True)
    data, meta = _save(tmp_path, rgb, "rgb.tif")
    assert data.shape == (16, 16, 3) and meta.axes == "YXS"
    assert meta.pixel_size == (None, None, None)  # scale 1 in pixels: unknown, not 1 um


def test_multiscale_writes_the_finest_level(tmp_path):
    base = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32)
    pyramid = Image([base, base[::2, ::2]], multiscale=True, scale=(0.1, 0.1))
    data, meta = _save(tmp_path, pyramid)
    np.testing.assert_array_equal(data, base)
    assert meta.pixel_size == pytest.approx((None, 0.1, 0.1))
