"""The widget's "quality maps" option, end to end in a real viewer (Xvfb in CI).

Tiny runs (the fast preset, a few iterations, images of 32-48 pixels): the point is which
layers appear, where they lie and what the status line says, not the maps' values.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from test_widget import _open_widget, _run, _texture, _world_box

from napari_zssr import _widget

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAPS = ("spread", "consistency", "added")


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _maps_of(viewer, result_name: str) -> list:
    return [x for x in viewer.layers if x.name.startswith(f"{result_name} ")]


def _assert_over(layer, result) -> None:
    """``layer`` lies exactly where ``result`` does."""
    for attr in ("scale", "translate", "rotate", "shear"):
        np.testing.assert_allclose(getattr(layer, attr), getattr(result, attr), atol=1e-12)
    np.testing.assert_allclose(layer.affine.affine_matrix, result.affine.affine_matrix)
    np.testing.assert_allclose(_world_box(layer), _world_box(result), atol=1e-9)


def test_maps_are_layers_over_the_result_and_reruns_replace_them(viewer, qtbot):
    img = (_texture((40, 44), seed=4) * 3000 + 100).astype(np.uint16)
    src = viewer.add_image(img, name="cells", scale=(0.1, 0.1), translate=(2.0, -1.0), rotate=20)
    widget = _open_widget(viewer)
    assert widget.quality_maps.value is False  # off by default
    assert "spread" in widget.quality_maps.tooltip and "little" in widget.quality_maps.tooltip
    widget.quality_maps.value = True
    _run(qtbot, widget)
    assert widget.last_status == "done"
    result = viewer.layers["cells ZSSR x2"]
    names = [x.name for x in viewer.layers]
    assert names == ["cells", "cells ZSSR x2", *(f"cells ZSSR x2 {m}" for m in MAPS)]
    for name, layer in zip(MAPS, _maps_of(viewer, "cells ZSSR x2"), strict=True):
        assert layer.data.shape == result.data.shape == (80, 88)
        assert layer.data.dtype == np.float32
        assert np.all(np.isfinite(layer.data)) and float(layer.data.min()) >= 0.0
        _assert_over(layer, result)
        assert layer.metadata["zssr_map"]["map"] == name
        assert layer.metadata["zssr_map"]["source_layer"] == "cells"
        assert "zssr" not in layer.metadata  # not taken for a result when one is replaced
        assert not layer.visible  # the result stays in view
        assert layer.blending == "additive"  # over the result, black (0) adds nothing
        np.testing.assert_allclose(layer.colormap.map(np.array([0.0]))[0, :3], 0.0, atol=0.02)
        low, high = layer.contrast_limits
        assert low == 0.0 and high > 0.0
    assert float(viewer.layers["cells ZSSR x2 added"].data.max()) > 0.0
    np.testing.assert_allclose(_world_box(result), _world_box(src), atol=1e-9)
    # 0.1 um pixels: the resolution in nm, before and after, in the status line
    assert "resolution " in widget.status.value
    status = widget.status.value
    assert re.search(r"resolution .*[0-9.]+ nm", status) and "decorrelation" in status
    assert result.metadata["zssr"]["resolution"]["unit"] == "px"

    # a rerun that replaces the result replaces its maps too (nothing piles up)
    first = list(viewer.layers)
    viewer.layers.selection.active = src
    widget.replace.value = True
    _run(qtbot, widget)
    assert widget.last_status == "done"
    assert [x.name for x in viewer.layers] == names
    assert not any(x is y for x, y in zip(first[1:], list(viewer.layers)[1:], strict=True))

    # without the option: no maps, and those of the replaced result are gone
    widget.quality_maps.value = False
    _run(qtbot, widget)
    assert widget.last_status == "done"
    assert [x.name for x in viewer.layers] == ["cells", "cells ZSSR x2"]
    assert "resolution" not in widget.status.value
    widget.replace.value = False
    _run(qtbot, widget)
    assert len(viewer.layers) == 3 and not _maps_of(viewer, "cells ZSSR x2 [1]")


def test_maps_follow_a_stack_and_rgb_maps_are_one_plane(viewer, qtbot):
    stack = _texture((2, 32, 36), seed=6).astype(np.float32)
    viewer.add_image(stack, name="stack", scale=(3.0, 1.0, 1.0))
    widget = _open_widget(viewer)
    widget.quality_maps.value = True
    widget.planes.value = _widget.PLANES_ALL
    _run(qtbot, widget)
    assert widget.last_status == "done"
    result = viewer.layers["stack ZSSR x2"]
    maps = _maps_of(viewer, "stack ZSSR x2")
    assert [x.name for x in maps] == [f"stack ZSSR x2 {m}" for m in MAPS]
    for layer in maps:
        assert layer.data.shape == result.data.shape == (2, 64, 72)
        _assert_over(layer, result)
    assert re.search(r"resolution .*[0-9.]+ px", widget.status.value)  # no pixel size: pixels
    assert "median of 2 planes" in widget.status.value

    rgb = (_texture((32, 32, 3), seed=7) * 255).astype(np.uint8)
    viewer.add_image(rgb, name="rgb")
    widget.image.value = viewer.layers["rgb"]
    _run(qtbot, widget)
    assert widget.last_status == "done"
    result = viewer.layers["rgb ZSSR x2"]
    assert result.rgb and result.data.shape == (64, 64, 3)
    for layer in _maps_of(viewer, "rgb ZSSR x2"):
        assert not layer.rgb and layer.data.shape == (64, 64)
        assert layer.metadata["zssr_map"]["channels"] == "mean over R, G and B"
        _assert_over(layer, result)


def test_maps_option_is_hidden_for_z_to_isotropic(viewer):
    viewer.add_image(np.zeros((5, 24, 24), np.uint8), name="aniso", scale=(1.5, 0.5, 0.5))
    widget = _open_widget(viewer)
    assert not widget.quality_maps.native.isHidden()
    widget.mode.value = _widget.MODE_ISO
    assert widget.quality_maps.native.isHidden()


@pytest.mark.parametrize(
    ("layer_kwargs", "pixel_size", "factors", "expected"),
    [
        ({"scale": (100.0, 100.0), "units": ("nm", "nm")}, (None, None, None), (2.0, 2.0),
         "resolution 312 nm -> 241 nm (bicubic upscale 300 nm; decorrelation)"),
        ({"scale": (0.5, 0.5), "units": ("um", "um")}, (None, 0.5, 0.5), (2.0, 2.0),
         "resolution 1.56 um -> 1.21 um (bicubic upscale 1.5 um; decorrelation)"),
        ({"scale": (0.1, 0.1)}, (None, 0.1, 0.1), (2.0, 2.0),
         "resolution 312 nm -> 241 nm (bicubic upscale 300 nm; decorrelation)"),
        ({}, (None, None, None), (2.0, 2.0),
         "resolution 3.12 px -> 2.41 px (bicubic upscale 3 px; decorrelation)"),
        # level 1 of a pyramid (half the pixels): level-0 pixels are half as large
        ({}, (None, None, None), (1.0, 1.0),
         "resolution 6.24 px -> 4.82 px (bicubic upscale 6 px; decorrelation)"),
    ],
)  # fmt: skip
def test_resolution_note_units(layer_kwargs, pixel_size, factors, expected):
    from napari.layers import Image

    from napari_zssr.napari.maps_layers import resolution_note
    from napari_zssr.napari.worker import Job
    from napari_zssr.pipeline import RunRequest, RunResult

    layer = Image(np.zeros((8, 8), np.float32), **layer_kwargs)
    job = Job(
        RunRequest(pixel_size=pixel_size, scale=2.0), layer, "x", "x ZSSR x2", "upscale",
        (0.0, 0.0), factors, record={"scale": [2.0, 2.0]},
    )  # fmt: skip
    info = {"resolution": {"input": 3.12, "bicubic": 3.0, "output": 2.41, "unit": "px"}}
    result = RunResult(np.zeros((16, 16)), "YX", pixel_size, info, {}, extra={"maps": {}})
    assert resolution_note(job, result) == expected
    assert resolution_note(job, RunResult(np.zeros((16, 16)), "YX", pixel_size, info, {})) == ""
