"""The widget's saved-network panel: save the network of a 2-D run, apply a saved one."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from napari_zssr import _widget
from napari_zssr.io.model_file import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN_TIMEOUT_MS = 90_000


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:36, :36]
    return (0.5 + 0.3 * np.sin(x / 2.5) * np.cos(y / 3.0) + rng.normal(0, 0.01, (36, 36))).astype(
        np.float32
    )


def _widget_for(make_napari_viewer):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    assert isinstance(widget, _widget.ZSSRWidget)
    widget.preset.value = "fast"
    widget.max_iters.value = 8
    widget.crop_size.value = 24
    return viewer, widget


def _shown(w) -> bool:
    """Whether a control is shown (the test viewer itself is not)."""
    return not w.native.isHidden()


def _run(qtbot, widget) -> None:
    widget.run()
    qtbot.waitUntil(lambda: not widget.busy, timeout=RUN_TIMEOUT_MS)


def test_save_the_network_of_a_2d_run_then_apply_it(make_napari_viewer, qtbot, tmp_path):
    viewer, widget = _widget_for(make_napari_viewer)
    panel = widget.model_panel
    assert not panel.save_button.enabled and not _shown(panel.model_file)
    viewer.add_image(_image(0), name="t0")
    _run(qtbot, widget)
    assert widget.last_status == "done" and panel.save_button.enabled
    first = widget.last_results[0]
    path = panel.save_network(tmp_path / "t0")  # the suffix is added
    assert path == tmp_path / "t0.zssr"
    model = load_model(path)
    assert model.scale == (2.0, 2.0) and model.training["iterations"] == 8

    viewer.add_image(_image(1), name="t1")
    widget.image.value = viewer.layers["t1"]
    panel.use_model.value = True
    assert _shown(panel.model_file) and _shown(panel.finetune)
    panel.model_file.value = path
    _run(qtbot, widget)
    assert widget.last_status == "done"
    result = widget.last_results[0]
    assert result is not first and result.data.shape == (72, 72)
    assert "applied" in panel.model_info.value and str(path) in panel.model_info.value


def test_use_saved_network_without_a_file_and_nothing_to_save(make_napari_viewer, qtbot, tmp_path):
    viewer, widget = _widget_for(make_napari_viewer)
    viewer.add_image(_image(0), name="t0")
    widget.model_panel.use_model.value = True
    widget.run()
    assert widget.last_status == "error" and "no network file" in widget.status.value
    assert widget.model_panel.save_network(tmp_path / "x.zssr") is None  # nothing kept yet
    assert not (tmp_path / "x.zssr").exists()
