"""The widget on dask-backed layers, and results written to OME-Zarr and shown lazily."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")
da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")

from napari_zssr import _widget  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN_TIMEOUT_MS = 90_000


def _open_widget(viewer) -> _widget.ZSSRWidget:
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    widget.preset.value = "fast"
    widget.max_iters.value = 6
    widget.crop_size.value = 32
    widget.seed.value = 0
    return widget


def _run(qtbot, widget) -> None:
    widget.run()
    qtbot.waitUntil(lambda: not widget.busy, timeout=RUN_TIMEOUT_MS)


def test_dask_layer_to_ome_zarr_shown_lazily(make_napari_viewer, qtbot, tmp_path):
    rng = np.random.default_rng(1)
    stack = (rng.random((3, 24, 24)) * 800 + 100).astype(np.uint16)
    viewer = make_napari_viewer()
    src = viewer.add_image(
        da.from_array(stack, chunks=(1, 24, 24)), name="lazy", scale=(2.0, 0.5, 0.5)
    )
    widget = _open_widget(viewer)
    widget.planes.value = _widget.PLANES_ALL
    _run(qtbot, widget)
    assert widget.last_status == "done"
    in_memory = viewer.layers[-1]
    assert isinstance(in_memory.data, np.ndarray)

    widget.output_panel.to_zarr.value = True
    widget.output_panel.zarr_folder.value = str(tmp_path)
    widget.replace.value = False
    _run(qtbot, widget)
    assert widget.last_status == "done"
    lazy = viewer.layers[-1]
    assert isinstance(lazy.data, da.Array)
    np.testing.assert_array_equal(np.asarray(lazy.data), np.asarray(in_memory.data))
    np.testing.assert_allclose(lazy.scale, in_memory.scale)
    np.testing.assert_allclose(lazy.translate, in_memory.translate)
    np.testing.assert_allclose(lazy.scale, [2.0, 0.25, 0.25])
    stores = list(tmp_path.glob("*.ome.zarr"))
    assert len(stores) == 1 and str(stores[0]) in widget.status.value
    arr = zarr.open_group(str(stores[0]), mode="r")["0"]
    assert arr.attrs["napari_zssr"]["complete"] is True
    assert src.data.shape == (3, 24, 24)
