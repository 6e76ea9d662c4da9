"""The napari widget, end to end in a real viewer (needs a display: Xvfb in CI).

Every run uses the fast preset capped at a few iterations on images of 32-48 pixels, so each
takes a second or two on a CPU; the point is the plumbing (threads, placement, metadata,
stop, errors), not the quality of the result.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from napari.utils.notifications import NotificationSeverity, notification_manager

from napari_zssr import PRESETS, _widget

RUN_TIMEOUT_MS = 90_000
ITERS = 10


def _texture(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Smooth random blobs in [0, 1] (something with structure at several scales)."""
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    noise = rng.random(shape)
    sigma = [0] * (len(shape) - 2) + [1.5, 1.5]
    img = ndimage.gaussian_filter(noise, sigma) + 0.3 * ndimage.gaussian_filter(noise, 0.5)
    img -= img.min()
    return img / img.max()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _open_widget(viewer) -> _widget.ZSSRWidget:
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    assert isinstance(widget, _widget.ZSSRWidget)
    widget.preset.value = "fast"
    widget.max_iters.value = ITERS
    widget.crop_size.value = 32
    widget.seed.value = 0
    return widget


def _run(qtbot, widget, preview: bool = False) -> None:
    (widget.preview if preview else widget.run)()
    assert widget.busy or widget.last_status == "error"
    qtbot.waitUntil(lambda: not widget.busy, timeout=RUN_TIMEOUT_MS)


def _wait_for_training(qtbot, widget) -> None:
    qtbot.waitUntil(
        lambda: "train" in widget.status.value or not widget.busy, timeout=RUN_TIMEOUT_MS
    )
    assert widget.busy, "the run ended before it could be stopped"


def _shown(w) -> bool:
    """Whether an option is shown (explicitly hidden or not; the test viewer is not shown)."""
    return not w.native.isHidden()


def _world_box(layer, lead=(), yx_shape=None) -> np.ndarray:
    """World coordinates of the four outer pixel-edge corners of a layer's Y/X plane."""
    ny, nx = yx_shape if yx_shape is not None else layer.data.shape[layer.ndim - 2 : layer.ndim]
    return np.array(
        [layer.data_to_world([*lead, y, x]) for y in (-0.5, ny - 0.5) for x in (-0.5, nx - 0.5)]
    )


def _errors_since(start: int) -> list[str]:
    return [
        str(n.message)
        for n in notification_manager.records[start:]
        if n.severity == NotificationSeverity.ERROR
    ]


def _check_metadata(layer, source_name: str) -> dict:
    meta = layer.metadata["zssr"]
    assert meta["source_layer"] == source_name
    for key in (
        "config",
        "preset",
        "scale",
        "noise_std",
        "seed",
        "psf",
        "device",
        "device_reason",
        "seconds",
        "final_loss",
        "iterations",
        "version",
    ):
        assert key in meta, key
    assert meta["config"]["max_iters"] == ITERS
    assert meta["device"] == "cpu"
    assert meta["seconds"] > 0
    assert np.isfinite(meta["final_loss"])
    return meta


def _run_offscreen_script(code: str) -> None:
    """Run ``code`` in a fresh interpreter (Qt offscreen); it must exit 0 and print OK."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "OK" in res.stdout


def test_import_and_construction_do_not_import_torch():
    code = textwrap.dedent(
        """
        import sys
        from qtpy.QtWidgets import QApplication
        app = QApplication.instance() or QApplication([])
        import numpy as np
        from napari.components import ViewerModel
        import napari_zssr._widget as w
        viewer = ViewerModel()
        viewer.add_image(np.zeros((3, 16, 16), np.uint16), scale=(3, 1, 1))
        widget = w.ZSSRWidget(viewer)
        widget.psf_source.value = w.PSF_OPTICS
        widget.image_pixel.value = 0.1
        widget.planes.value = w.PLANES_ALL
        assert widget.image.value is not None
        assert "torch" not in sys.modules, "torch was imported"
        print("OK")
        """
    )
    _run_offscreen_script(code)


def test_a_script_that_closes_the_viewer_during_the_device_probe_exits_cleanly():
    # The probe runs in the Qt thread pool (it imports torch: seconds). A script that closes
    # the viewer and ends meanwhile has no event loop to wait for it: the interpreter was torn
    # down under the worker and the process aborted (exit status 134).
    code = textwrap.dedent(
        """
        import napari
        viewer = napari.Viewer(show=False)
        _, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
        widget.training.probe_device()
        assert widget.training.device_info.value == "checking..."
        viewer.close()
        print("OK")
        """
    )
    _run_offscreen_script(code)


def test_2d_uint16_then_replace(viewer, qtbot):
    img = (_texture((40, 44)) * 4000 + 100).astype(np.uint16)
    src = viewer.add_image(img, name="cells", colormap="magma", blending="additive")
    src.contrast_limits = (150, 3000)
    widget = _open_widget(viewer)
    assert widget.image.value is src
    _run(qtbot, widget)
    assert widget.last_status == "done"
    assert len(viewer.layers) == 2
    res = viewer.layers[-1]
    assert res.name == "cells ZSSR x2"
    assert res.data.shape == (80, 88)
    assert res.data.dtype == np.uint16
    assert res.colormap.name == "magma"
    assert res.blending == "additive"
    np.testing.assert_allclose(res.contrast_limits, (150, 3000))
    np.testing.assert_allclose(res.scale, [0.5, 0.5])
    np.testing.assert_allclose(res.translate, [-0.25, -0.25])
    np.testing.assert_allclose(_world_box(res), _world_box(src), atol=1e-9)
    meta = _check_metadata(res, "cells")
    assert meta["scale"] == [2.0, 2.0]
    assert meta["psf"]["source"] == "none"
    assert "ZSSR" not in src.name and "zssr" not in src.metadata
    # Same intensity range as the source, not a rescaled one.
    assert abs(float(res.data.mean()) - float(img.mean())) < 0.1 * float(img.mean())
    assert widget.progress.value == 1000
    assert len(widget.loss_plot.values) >= 1

    # Replace the previous result instead of stacking a new layer.
    viewer.layers.selection.active = src
    widget.replace.value = True
    widget.scale.value = 1.5
    _run(qtbot, widget)
    assert widget.last_status == "done"
    assert [x.name for x in viewer.layers] == ["cells", "cells ZSSR x1.5"]
    assert viewer.layers[-1].data.shape == (60, 66)
    np.testing.assert_allclose(_world_box(viewer.layers[-1]), _world_box(src), atol=1e-9)


def test_estimated_noise(viewer, qtbot):
    rng = np.random.default_rng(3)
    img = (_texture((36, 40)) + rng.normal(0.0, 0.05, (36, 40))).astype(np.float32)
    viewer.add_image(img, name="noisy")
    widget = _open_widget(viewer)
    # estimated by default: the estimate replaces the number
    assert _shown(widget.noise_auto) and widget.noise_auto.value and not widget.noise.enabled
    widget.noise_auto.value = False
    assert widget.noise.enabled
    widget.noise_auto.value = True
    assert not widget.noise.enabled
    _run(qtbot, widget)
    assert widget.last_status == "done"
    meta = _check_metadata(viewer.layers[-1], "noisy")
    assert meta["noise_std_estimated"] is True
    assert 0.0 < meta["noise_std"] <= 0.5
    widget.noise_auto.value = False
    assert widget.noise.enabled


def test_rgb_uint8(viewer, qtbot):
    img = (_texture((32, 36, 3), seed=1) * 255).astype(np.uint8)
    src = viewer.add_image(img, name="rgb")
    assert src.rgb
    widget = _open_widget(viewer)
    _run(qtbot, widget)
    assert widget.last_status == "done"
    res = viewer.layers[-1]
    assert res.rgb
    assert res.data.shape == (64, 72, 3)
    assert res.data.dtype == np.uint8
    np.testing.assert_allclose(_world_box(res), _world_box(src), atol=1e-9)
    _check_metadata(res, "rgb")


def test_stack_current_plane_and_whole_stack(viewer, qtbot):
    stack = _texture((3, 32, 32), seed=2).astype(np.float32)
    src = viewer.add_image(stack, name="stack", scale=(2.0, 0.5, 0.5), translate=(1.0, 0, 0))
    widget = _open_widget(viewer)
    assert _shown(widget.planes)
    viewer.dims.set_point(0, src.data_to_world([2, 0, 0])[0])

    widget.planes.value = _widget.PLANES_CURRENT
    _run(qtbot, widget)
    assert widget.last_status == "done"
    plane = viewer.layers[-1]
    assert plane.data.shape == (1, 64, 64)
    assert plane.data.dtype == np.float32
    np.testing.assert_allclose(_world_box(plane, lead=(0,)), _world_box(src, lead=(2,)), atol=1e-9)
    meta = _check_metadata(plane, "stack")
    assert meta["plane_index"] == [2]
    assert meta["planes"] == _widget.PLANES_CURRENT

    widget.planes.value = _widget.PLANES_ALL
    widget.stack_mode.value = _widget.STACK_SHARED
    assert _shown(widget.stack_mode)
    _run(qtbot, widget)
    assert widget.last_status == "done"
    whole = viewer.layers[-1]
    assert whole.data.shape == (3, 64, 64)
    for k in range(3):
        np.testing.assert_allclose(
            _world_box(whole, lead=(k,)), _world_box(src, lead=(k,)), atol=1e-9
        )
    assert whole.metadata["zssr"]["stack_mode"] == "shared"
    np.testing.assert_allclose(whole.scale, [2.0, 0.25, 0.25])


def test_all_selected_channel_split(viewer, qtbot):
    data = np.stack([_texture((32, 32), seed=s) for s in (3, 4)]) * 1000
    layers = viewer.add_image(
        data.astype(np.uint16), channel_axis=0, name=["ch0", "ch1"], colormap=["magenta", "green"]
    )
    widget = _open_widget(viewer)
    viewer.layers.selection.update(layers)
    widget.all_selected.value = True
    _run(qtbot, widget)
    assert widget.last_status == "done"
    results = {x.name: x for x in viewer.layers if "zssr" in x.metadata}
    assert set(results) == {"ch0 ZSSR x2", "ch1 ZSSR x2"}
    assert results["ch0 ZSSR x2"].colormap.name == "magenta"
    assert results["ch1 ZSSR x2"].colormap.name == "green"
    for src in layers:
        res = results[f"{src.name} ZSSR x2"]
        assert res.data.shape == (64, 64)
        assert res.data.dtype == np.uint16
        np.testing.assert_allclose(_world_box(res), _world_box(src), atol=1e-9)


def test_scale_translate_rotate_per_axis(viewer, qtbot):
    img = (_texture((32, 32), seed=5) * 60000).astype(np.uint16)
    src = viewer.add_image(
        img, name="moved", scale=(0.4, 0.7), translate=(3.0, -4.0), rotate=30, shear=[0.2]
    )
    widget = _open_widget(viewer)
    widget.per_axis.value = True
    widget.scale_y.value = 2.0
    widget.scale_x.value = 2.5
    _run(qtbot, widget)
    assert widget.last_status == "done"
    res = viewer.layers[-1]
    assert res.name == "moved ZSSR x2×2.5"
    assert res.data.shape == (64, 80)
    np.testing.assert_allclose(res.scale, [0.2, 0.28])
    np.testing.assert_allclose(res.rotate, src.rotate)
    np.testing.assert_allclose(_world_box(res), _world_box(src), atol=1e-9)
    # A pixel centre of the result lands where the source's bicubic grid puts it.
    np.testing.assert_allclose(
        res.data_to_world([0, 0]), src.data_to_world([-0.25, -0.3]), atol=1e-9
    )
    assert res.metadata["zssr"]["scale"] == [2.0, 2.5]


def test_stop_mid_run_adds_nothing(viewer, qtbot):
    viewer.add_image(_texture((48, 48), seed=6).astype(np.float32), name="long")
    widget = _open_widget(viewer)
    widget.max_iters.value = 100_000
    widget.run()
    _wait_for_training(qtbot, widget)
    t0 = time.monotonic()
    widget.stop()
    assert not widget.stop_button.enabled
    qtbot.waitUntil(lambda: not widget.busy, timeout=10_000)
    assert time.monotonic() - t0 < 2.5
    assert widget.last_status == "stopped"
    assert [x.name for x in viewer.layers] == ["long"]
    assert widget.run_button.enabled and widget.preview_button.enabled
    assert not widget.stop_button.enabled


def test_removing_source_stops_run(viewer, qtbot):
    src = viewer.add_image(_texture((48, 48), seed=7).astype(np.float32), name="gone")
    widget = _open_widget(viewer)
    widget.max_iters.value = 100_000
    widget.run()
    _wait_for_training(qtbot, widget)
    viewer.layers.remove(src)
    qtbot.waitUntil(lambda: not widget.busy, timeout=10_000)
    assert widget.last_status == "stopped"
    assert len(viewer.layers) == 0
    assert "removed" in widget.status.value


def test_errors_are_notified_and_widget_stays_usable(viewer, qtbot):
    tiny = viewer.add_image(np.arange(16, dtype=np.uint16).reshape(4, 4), name="tiny")
    widget = _open_widget(viewer)
    start = len(notification_manager.records)
    _run(qtbot, widget)
    assert widget.last_status == "error"
    errors = _errors_since(start)
    assert errors and "8 x 8" in errors[-1]
    assert [x.name for x in viewer.layers] == ["tiny"]
    assert widget.run_button.enabled

    # A PSF needs a physical pixel size: asked for, never guessed.
    ok = viewer.add_image(_texture((32, 32), seed=8).astype(np.float32), name="ok")
    widget.image.value = ok
    widget.psf_source.value = _widget.PSF_OPTICS
    assert _shown(widget.image_pixel)
    assert "pixel size" in widget.kernel_text
    start = len(notification_manager.records)
    widget.run()
    assert not widget.busy
    assert "pixel size" in _errors_since(start)[-1]

    # Out-of-memory errors come with advice.
    oom = type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate")
    assert "crop size" in _widget.describe_error(oom)
    assert "cpu" in _widget.describe_error(oom)

    # The widget still works.
    widget.psf_source.value = _widget.PSF_NONE
    viewer.layers.remove(tiny)
    _run(qtbot, widget)
    assert widget.last_status == "done"
    assert viewer.layers[-1].name == "ok ZSSR x2"


def test_psf_layer_kernel(viewer, qtbot):
    yy, xx = np.mgrid[-15:16, -15:16] * 0.05
    psf = np.exp(-(yy**2 + xx**2) / (2 * 0.09**2)).astype(np.float32)
    viewer.add_image(psf, name="psf", scale=(0.05, 0.05))
    src = viewer.add_image(
        (_texture((32, 32), seed=9) * 1000).astype(np.uint16), name="img", scale=(0.1, 0.1)
    )
    widget = _open_widget(viewer)
    widget.image.value = src
    widget.psf_source.value = _widget.PSF_LAYER
    widget.psf_layer.value = viewer.layers["psf"]
    assert widget.psf_pixel.value == pytest.approx(0.05)
    assert not _shown(widget.image_pixel)  # the layer's scale gives the pixel size
    assert widget.kernel_text and "not ready" not in widget.kernel_text
    _run(qtbot, widget)
    assert widget.last_status == "done"
    res = viewer.layers[-1]
    meta = res.metadata["zssr"]
    assert meta["psf"]["source"] == "layer 'psf'"
    assert meta["psf"]["description"] == widget.kernel_text
    assert meta["psf"]["image_pixel_size_um"] == [0.1, 0.1]
    assert res.data.shape == (64, 64)
    np.testing.assert_allclose(_world_box(res), _world_box(src), atol=1e-9)


def test_multiscale_uses_level0(viewer, qtbot):
    base = (_texture((48, 40), seed=12) * 1000).astype(np.uint16)
    src = viewer.add_image([base, base[::2, ::2]], multiscale=True, name="pyr", scale=(0.2, 0.2))
    widget = _open_widget(viewer)
    _run(qtbot, widget)
    assert widget.last_status == "done"
    res = viewer.layers[-1]
    assert not res.multiscale
    assert res.data.shape == (96, 80)
    np.testing.assert_allclose(_world_box(res), _world_box(src, yx_shape=(48, 40)), atol=1e-9)


def test_psf_file_and_bead_stack_kernels(viewer, tmp_path, qtbot):
    viewer.add_image(np.zeros((40, 40), np.float32), name="img", scale=(0.1, 0.1))
    widget = _open_widget(viewer)
    yy, xx = np.mgrid[-12:13, -12:13] * 0.04
    psf2d = np.exp(-(yy**2 + xx**2) / (2 * 0.08**2))
    path = tmp_path / "psf.npy"
    np.save(path, psf2d)
    widget.psf_source.value = _widget.PSF_FILE
    assert _shown(widget.psf_file) and not _shown(widget.psf_layer)
    widget.psf_file.value = path
    assert "not ready" in widget.kernel_text  # a .npy has no pixel size: asked for
    widget.psf_pixel.value = 0.04
    assert "not ready" not in widget.kernel_text
    # the kernel preview is computed in a worker thread: wait for it
    qtbot.waitUntil(lambda: not widget.kernel_thumb.isHidden(), timeout=30_000)
    assert not widget.kernel_thumb.isHidden()
    kernel, record = widget.kernel_for(viewer.layers["img"], (2.0, 2.0))
    assert kernel.ndim == 2 and kernel.sum() == pytest.approx(1.0)
    assert record["source"] == "file psf.npy"
    assert record["psf_pixel_size_um"] == pytest.approx(0.04)

    zz, yy, xx = np.mgrid[-6:7, -15:16, -15:16]
    beads = 10 + 1000 * np.exp(-((zz * 0.2) ** 2 / 0.3 + ((yy**2 + xx**2) * 0.0025) / 0.02))
    viewer.add_image(beads.astype(np.float32), name="beads", scale=(0.2, 0.05, 0.05))
    widget.psf_source.value = _widget.PSF_LAYER
    widget.psf_layer.value = viewer.layers["beads"]
    assert widget.psf_pixel.value == pytest.approx(0.05)
    assert widget.psf_z.value == pytest.approx(0.2)
    assert _shown(widget.psf_z)
    kernel, record = widget.kernel_for(viewer.layers["img"], (2.0, 2.0))
    assert record["psf_z_step_um"] == pytest.approx(0.2)
    assert kernel.sum() == pytest.approx(1.0)
    qtbot.waitUntil(lambda: widget.kernel_text == record["description"], timeout=30_000)
    assert widget.kernel_text == record["description"]


def test_presets_fill_advanced_and_device_is_probed_lazily(viewer, qtbot):
    viewer.add_image(np.zeros((16, 16), np.float32))
    widget = _open_widget(viewer)
    widget.preset.value = "paper"
    assert widget.max_iters.value == 3000
    assert widget.ensemble.value is True
    assert widget.bp_iters.value == 10
    assert widget.gradual.value is True
    cfg = widget._config(False, (4.0, 4.0), None)
    assert cfg.gradual_scales == PRESETS["paper"].gradual_scales and cfg.gradual_above == 2.0
    assert widget._config(False, (4.0, 4.0), np.ones((3, 3))).gradual_scales == ()
    widget.gradual.value = False
    assert widget._config(False, (4.0, 4.0), None).gradual_scales == ()
    assert set(widget.preset.choices) == set(PRESETS)
    widget.preset.value = "paper-gradual"  # the reference's steps, not x2 and x4
    assert widget.gradual.value is True and widget.bp_iters.value == 12
    cfg = widget._config(False, (2.0, 2.0), None)
    assert cfg.gradual_scales == PRESETS["paper-gradual"].gradual_scales
    assert cfg.gradual_from_input and cfg.gradual_back_projection_iters[0] == 6
    widget.preset.value = "real"
    assert widget.gradual.value is False  # the reference's real-image setting: one jump
    assert widget.noise.value == pytest.approx(0.0125)
    assert "resolved" in widget.device_info.value
    widget._collapsible.expand(animate=False)
    qtbot.waitUntil(lambda: " - auto: " in widget.device_info.value, timeout=60_000)
    import torch

    if not torch.cuda.is_available():
        assert widget.device_info.value.startswith("cpu")
        widget.device.value = "cuda"
        qtbot.waitUntil(lambda: "unavailable" in widget.device_info.value, timeout=10_000)


@pytest.mark.skipif(not _widget._isotropic_available(), reason="no isotropic module")
def test_z_to_isotropic(viewer, qtbot):
    stack = (_texture((5, 24, 24), seed=10) * 200).astype(np.uint8)
    src = viewer.add_image(stack, name="aniso", scale=(1.5, 0.5, 0.5))
    widget = _open_widget(viewer)
    assert _shown(widget.mode)
    widget.mode.value = _widget.MODE_ISO
    assert widget.z_ratio.value == pytest.approx(3.0)
    assert not _shown(widget.scale)
    _run(qtbot, widget)
    assert widget.last_status == "done"
    res = viewer.layers[-1]
    assert res.name == "aniso ZSSR isotropic z x3"
    assert res.data.shape == (15, 24, 24)
    assert res.data.dtype == np.uint8
    np.testing.assert_allclose(res.scale, [0.5, 0.5, 0.5])
    lo = res.data_to_world([-0.5, -0.5, -0.5])
    hi = res.data_to_world([14.5, 23.5, 23.5])
    np.testing.assert_allclose(lo, src.data_to_world([-0.5, -0.5, -0.5]), atol=1e-9)
    np.testing.assert_allclose(hi, src.data_to_world([4.5, 23.5, 23.5]), atol=1e-9)
    assert res.metadata["zssr"]["mode"] == "isotropic_z"


def test_preview_replaces_itself(viewer, qtbot):
    src = viewer.add_image(_texture((48, 48), seed=11).astype(np.float32), name="big")
    widget = _open_widget(viewer)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    h = float(viewer.canvas.size[0])
    camera.zoom = h / 16.0
    camera.center = (14.0, 14.0)
    _run(qtbot, widget, preview=True)
    assert widget.last_status == "done"
    assert len(viewer.layers) == 2
    first = viewer.layers[-1]
    meta = first.metadata["zssr"]
    assert meta["preview"] is True and meta["preset"] == "fast"
    y0, y1, x0, x1 = meta["region"]
    assert 0 <= y0 < 14 < y1 <= 48 and y1 - y0 <= 20
    assert first.data.shape == (2 * (y1 - y0), 2 * (x1 - x0))
    np.testing.assert_allclose(
        first.data_to_world([-0.5, -0.5]), src.data_to_world([y0 - 0.5, x0 - 0.5]), atol=1e-9
    )

    camera.center = (34.0, 34.0)
    _run(qtbot, widget, preview=True)
    assert widget.last_status == "done"
    assert len(viewer.layers) == 2
    second = viewer.layers[-1]
    assert second is first  # the layer is reused in place (no removal, no gc pause)
    assert second.name == "big ZSSR preview"
    y0b, y1b, x0b, x1b = second.metadata["zssr"]["region"]
    assert y0b > y0
    assert second.data.shape == (2 * (y1b - y0b), 2 * (x1b - x0b))
    np.testing.assert_allclose(
        second.data_to_world([-0.5, -0.5]), src.data_to_world([y0b - 0.5, x0b - 0.5]), atol=1e-9
    )


def test_sample_data_opens(viewer):
    layers = viewer.open_sample("napari-zssr", "membranes")
    assert len(layers) == 1
    layer = layers[0]
    assert layer.data.shape == (256, 256)
    assert layer.data.dtype == np.uint16
    np.testing.assert_allclose(layer.scale, [1.0, 1.0])
    assert "CC BY 4.0" in layer.metadata["attribution"]


# --- reliability ------------------------------------------------------------------------------


def test_damaged_psf_files_give_a_clear_error(viewer, broken_tiffs, qtbot):
    viewer.add_image(np.zeros((40, 40), np.float32), name="img", scale=(0.1, 0.1))
    widget = _open_widget(viewer)
    widget.psf_source.value = _widget.PSF_FILE
    for name in ("ifd_offset_past_end", "deflate_truncated", "deflate_corrupt", "absurd_size"):
        start = len(notification_manager.records)
        widget.psf_file.value = broken_tiffs[name]  # no exception escapes the slot
        # the file is read in a worker thread: wait for its answer
        qtbot.waitUntil(lambda s=start: bool(_errors_since(s)), timeout=30_000)
        errors = _errors_since(start)
        assert errors, name
        assert errors[-1].startswith("ZSSR: cannot use the PSF file:"), errors[-1]
        assert broken_tiffs[name].name in errors[-1]
        assert "not ready" in widget.kernel_text
    assert "74.5 GiB" in errors[-1]  # the absurd size is said


def test_a_slot_error_of_any_type_is_reported(viewer, tmp_path, monkeypatch, qtbot):
    viewer.add_image(np.zeros((40, 40), np.float32), name="img", scale=(0.1, 0.1))
    widget = _open_widget(viewer)
    widget.psf_source.value = _widget.PSF_FILE
    from napari_zssr import io as psf_module  # PSF files are read by io

    def broken_reader(path):
        raise KeyError("a reader bug")

    monkeypatch.setattr(psf_module, "load_psf_file", broken_reader)
    path = tmp_path / "psf.npy"
    np.save(path, np.ones((5, 5)))
    start = len(notification_manager.records)
    widget.psf_file.value = path
    qtbot.waitUntil(lambda: bool(_errors_since(start)), timeout=30_000)  # read in a worker
    assert "a reader bug" in _errors_since(start)[-1]


def test_closing_the_viewer_stops_the_run_at_once(make_napari_viewer, qtbot, monkeypatch):
    viewer = make_napari_viewer()
    viewer.add_image(_texture((48, 48), seed=11).astype(np.float32), name="long")
    widget = _open_widget(viewer)
    widget.max_iters.value = 100_000
    widget.run()
    _wait_for_training(qtbot, widget)
    threads = widget._threads  # the widget's own engine threads (no module-level registry)
    engines = [t for t in threads._threads if t.is_alive()]
    assert engines
    waits: list[float] = []
    real_wait = threads.wait

    def timed_wait(timeout: float) -> None:
        t0 = time.monotonic()
        real_wait(timeout)
        waits.append(time.monotonic() - t0)

    monkeypatch.setattr(threads, "wait", timed_wait)
    viewer.close()
    # The engine stops within a second of the close ...
    qtbot.waitUntil(lambda: not any(t.is_alive() for t in engines), timeout=1000)
    # ... the GUI waited for nothing (a suspended worker runs none of our code; it used to
    # wait out a 10 s timeout) ...
    assert waits and max(waits) < 0.5
    # ... and nothing is left for the exit to wait for (it used to wait 30 s).
    assert not any(t.is_alive() for t in threads._threads)


def test_a_run_that_fails_to_start_is_not_done(viewer, qtbot):
    viewer.add_image(_texture((32, 32), seed=12).astype(np.float32), name="ok")
    widget = _open_widget(viewer)
    _run(qtbot, widget)
    assert widget.last_status == "done"
    widget.psf_source.value = _widget.PSF_OPTICS  # needs a pixel size the layer lacks
    widget.run()
    assert not widget.busy
    assert widget.last_status == "error"
    assert widget.last_results == []


def test_source_edited_or_replaced_during_a_run(viewer, qtbot, monkeypatch):
    data = _texture((32, 32), seed=13).astype(np.float32)
    layer = viewer.add_image(data, name="src")
    widget = _open_widget(viewer)
    go = __import__("threading").Event()
    from napari_zssr import pipeline  # the widget's worker runs pipeline.run

    real_run = pipeline.run

    def edited_then_run(request, callback, **kwargs):
        data[...] = 0.0  # an in-place edit once the run has started ...
        assert go.wait(30)  # ... and the layer's data replaced (main thread) meanwhile
        return real_run(request, callback, **kwargs)

    monkeypatch.setattr(pipeline, "run", edited_then_run)
    start = len(notification_manager.records)
    widget.run()
    qtbot.waitUntil(lambda: not np.any(data), timeout=RUN_TIMEOUT_MS)
    layer.data = np.ones((32, 32), np.float32)
    go.set()
    qtbot.waitUntil(lambda: not widget.busy, timeout=RUN_TIMEOUT_MS)
    assert widget.last_status == "done"
    result = widget.last_results[-1]
    assert float(np.std(result.data)) > 0  # from the snapshot: neither zeros nor ones
    meta = result.metadata["zssr"]
    assert meta["input_snapshot"] is True
    assert meta["source_changed_during_run"] is True
    warnings = [
        str(n.message)
        for n in notification_manager.records[start:]
        if n.severity == NotificationSeverity.WARNING
    ]
    assert any("changed during the run" in w for w in warnings)


def test_float64_layer_with_a_large_offset_keeps_its_detail(viewer, qtbot):
    data = 1e10 + 100 * _texture((32, 32), seed=14)
    viewer.add_image(data, name="offset")
    widget = _open_widget(viewer)
    _run(qtbot, widget)
    assert widget.last_status == "done"
    out = np.asarray(widget.last_results[-1].data)
    assert out.dtype == np.float64
    assert out.min() >= data.min() and out.max() <= data.max()
    assert np.unique(out).size > 500  # not one value (the offset swallowing the detail)


def _noisy_uint16(shape: tuple[int, int] = (40, 44), seed: int = 21) -> np.ndarray:
    """Structure plus strong Gaussian noise (about 5% of the range), as uint16."""
    rng = np.random.default_rng(seed)
    img = _texture(shape, seed=seed) + rng.normal(0.0, 0.05, shape)
    return np.clip(200 + 3000 * img, 0, 65535).astype(np.uint16)


def test_noise_defaults_to_the_estimate_and_agrees_with_api_and_cli(viewer, qtbot, tmp_path):
    from napari_zssr import super_resolve
    from napari_zssr.cli import main
    from napari_zssr.io import read_tiff, write_tiff

    img = _noisy_uint16()
    viewer.add_image(img, name="noisy")
    widget = _open_widget(viewer)
    assert widget.noise_auto.value is True  # the default: estimated
    _run(qtbot, widget)
    assert widget.last_status == "done"
    meta = widget.last_results[-1].metadata["zssr"]
    assert meta["noise_std_source"] == "auto"
    assert meta["noise_std"] == pytest.approx(meta["noise_estimate"]) and meta["noise_std"] > 0.02
    # the field shows the estimate, the status line says where it came from
    assert widget.noise.value == pytest.approx(meta["noise_std"], abs=1e-4)
    assert "estimated" in widget.status.value

    _, info = super_resolve(
        img,
        2,
        preset="fast",
        device="cpu",
        return_info=True,
        config=PRESETS["fast"].replace(max_iters=ITERS, crop_size=32),
    )
    src, out = tmp_path / "noisy.tif", tmp_path / "sr.tif"
    write_tiff(src, img, axes="YX")
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
                str(ITERS),
                "--quiet",
            ]
        )
        == 0
    )
    run = read_tiff(out)[1].metadata["run"]
    for record in (info, run):
        assert record["noise_std_source"] == "auto"
        assert record["noise_std"] == pytest.approx(meta["noise_std"], rel=1e-6)


def test_noise_zero_is_honoured_with_a_warning(viewer, qtbot):
    viewer.add_image(_noisy_uint16(), name="noisy")
    widget = _open_widget(viewer)
    widget.noise_auto.value = False
    widget.noise.value = 0.0
    assert widget.noise.enabled
    start = len(notification_manager.records)
    _run(qtbot, widget)
    assert widget.last_status == "done"
    meta = widget.last_results[-1].metadata["zssr"]
    assert meta["noise_std"] == 0.0 and meta["noise_std_source"] == "set"
    warnings = [
        str(n.message)
        for n in notification_manager.records[start:]
        if n.severity == NotificationSeverity.WARNING
    ]
    assert any("estimated noise" in w for w in warnings), warnings


def test_likely_harm_shows_as_a_warning_and_in_the_status_note(viewer):
    widget = _open_widget(viewer)
    info = {
        "noise_std": 0.02,
        "noise_std_source": "auto",
        "noise_estimate": 0.02,
        "warnings": ["an estimate warning"],
        "consistency_step": {
            "planes": 1,
            "planes_not_within_noise": 1,
            "worst_discrepancy_after": 1.7,
        },
    }
    note, warnings = widget.training.show_noise(info)
    assert note.endswith("likely harm: see the warning")
    assert warnings[0] == "an estimate warning"
    assert warnings[1].startswith("likely harm on 1 of 1 planes")
    info["consistency_step"]["planes_not_within_noise"] = 0
    note, warnings = widget.training.show_noise(info)
    assert "harm" not in note and warnings == ["an estimate warning"]


def test_paper_presets_untick_the_noise_estimate(viewer):
    viewer.add_image(_noisy_uint16(), name="noisy")
    widget = _open_widget(viewer)
    for name in PRESETS:
        widget.preset.value = name
        assert widget.noise_auto.value is (name not in ("paper", "paper-gradual")), name
