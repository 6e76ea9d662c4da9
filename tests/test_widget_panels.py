"""The widget's newer options in a real viewer (needs a display: Xvfb in CI): the command line's
PSF options, pyramid levels, whole-stack Z to isotropic and the activity dock."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from napari.utils import progress

from napari_zssr import _widget

RUN_TIMEOUT_MS = 90_000

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _texture(shape, seed=0):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.random(shape), [0] * (len(shape) - 2) + [1.5, 1.5])
    img -= img.min()
    return img / img.max()


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _open_widget(viewer):
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    widget.preset.value = "fast"
    widget.max_iters.value = 8
    widget.crop_size.value = 32
    return widget


def _run(qtbot, widget):
    widget.run()
    qtbot.waitUntil(lambda: not widget.busy, timeout=RUN_TIMEOUT_MS)


def _shown(w) -> bool:
    return not w.native.isHidden()


def test_optics_offers_immersion_index_and_modality(viewer):
    viewer.add_image(np.zeros((40, 40), np.float32), name="img", scale=(0.1, 0.1))
    widget = _open_widget(viewer)
    assert not _shown(widget.immersion) and not _shown(widget.modality)
    widget.psf_source.value = _widget.PSF_OPTICS
    assert _shown(widget.immersion) and _shown(widget.modality)
    assert list(widget.modality.choices) == ["widefield", "confocal"]
    widget.na.value = 1.1
    widget.immersion.value = 1.33
    widget.modality.value = "confocal"
    kernel, record = widget.kernel_for(viewer.layers["img"], (2.0, 2.0))
    assert record["immersion_index"] == pytest.approx(1.33)
    assert record["modality"] == "confocal"
    assert record["details"]["ni"] == pytest.approx(1.33)
    widget.modality.value = "widefield"
    wide, _ = widget.kernel_for(viewer.layers["img"], (2.0, 2.0))
    assert wide.shape != kernel.shape or not np.allclose(wide, kernel)


def test_psf_file_can_be_the_kernel(viewer, tmp_path):
    viewer.add_image(np.zeros((40, 40), np.float32), name="img")  # no pixel size needed
    widget = _open_widget(viewer)
    path = tmp_path / "k.npy"
    np.save(path, np.outer(np.hanning(7)[1:-1], np.hanning(7)[1:-1]))
    widget.psf_source.value = _widget.PSF_FILE
    widget.psf_file.value = path
    assert _shown(widget.psf_is_kernel)
    widget.psf_is_kernel.value = True
    assert not _shown(widget.psf_pixel)
    kernel, record = widget.kernel_for(viewer.layers["img"], (2.0, 2.0))
    assert kernel.shape == (5, 5) and "used as given" in record["description"]


def test_multiscale_processes_the_level_chosen(viewer, qtbot):
    base = (_texture((48, 40), seed=12) * 1000).astype(np.uint16)
    src = viewer.add_image([base, base[::2, ::2]], multiscale=True, name="pyr", scale=(0.2, 0.2))
    widget = _open_widget(viewer)
    assert _shown(widget.level) and widget.level.value == 0  # the finest by default
    assert len(widget.level.choices) == 2
    widget.level.value = 1
    _run(qtbot, widget)
    assert widget.last_status == "done"
    res = viewer.layers[-1]
    assert res.data.shape == (48, 40)  # level 1 (24 x 20) upscaled x2
    assert res.metadata["zssr"]["pyramid_level"] == 1
    assert "level 1" in widget.status.value
    # napari draws pixel j of level 1 at level-0 coordinate 2 j: the result covers that grid
    lo = res.data_to_world([-0.5, -0.5])
    hi = res.data_to_world([47.5, 39.5])
    np.testing.assert_allclose(lo, src.data_to_world([-1.0, -1.0]), atol=1e-9)
    np.testing.assert_allclose(hi, src.data_to_world([47.0, 39.0]), atol=1e-9)


def test_isotropic_whole_stack_of_a_time_series(viewer, qtbot):
    series = (_texture((2, 4, 20, 20), seed=3) * 200).astype(np.uint8)
    viewer.add_image(series, name="tzyx", scale=(1.0, 1.0, 0.5, 0.5))
    widget = _open_widget(viewer)
    widget.mode.value = _widget.MODE_ISO
    assert widget.z_ratio.value == pytest.approx(2.0)
    assert _shown(widget.planes)
    widget.planes.value = _widget.PLANES_ALL
    _run(qtbot, widget)
    assert widget.last_status == "done"
    res = viewer.layers[-1]
    assert res.data.shape == (2, 8, 20, 20)
    assert res.metadata["zssr"]["mode"] == "isotropic_z"
    assert res.metadata["zssr"]["n_volumes"] == 2
    np.testing.assert_allclose(res.scale, [1.0, 0.5, 0.5, 0.5])


def test_progress_is_mirrored_in_the_activity_dock(viewer, qtbot):
    viewer.add_image(_texture((48, 48), seed=6).astype(np.float32), name="long")
    widget = _open_widget(viewer)
    widget.max_iters.value = 100_000
    widget.run()
    qtbot.waitUntil(lambda: "train" in widget.status.value, timeout=RUN_TIMEOUT_MS)
    bars = [p for p in progress._all_instances if str(p.desc).startswith("ZSSR")]
    assert len(bars) == 1 and bars[0].total == 1000
    qtbot.waitUntil(lambda: bars[0].n > 0, timeout=RUN_TIMEOUT_MS)
    widget.stop()
    qtbot.waitUntil(lambda: not widget.busy, timeout=10_000)
    assert not [p for p in progress._all_instances if str(p.desc).startswith("ZSSR")]


def test_file_save_selected_layers_uses_the_writer(viewer, tmp_path):
    from napari_zssr.io import read_tiff

    layer = viewer.add_image(np.zeros((20, 20), np.float32), name="r", scale=(0.25, 0.25),
                             metadata={"zssr": {"scale": [2.0, 2.0]}})  # fmt: skip
    viewer.layers.selection = {layer}
    path = tmp_path / "saved.ome.tif"
    assert viewer.layers.save(str(path), selected=True, plugin="napari-zssr") == [str(path)]
    _, meta = read_tiff(path)
    assert meta.format == "ome" and meta.pixel_size == pytest.approx((None, 0.25, 0.25))
    assert meta.metadata["zssr"] == {"scale": [2.0, 2.0]}
