"""The live preview in a real viewer (needs a display: Xvfb in CI).

Small images and a few dozen iterations, with snapshots as often as the clock allows, so that
one preview shows several updates in a second or two on a CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from napari_zssr import _widget

RUN_TIMEOUT_MS = 90_000
ITERS = 60

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _texture(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.random(shape), 1.5)
    return ((img - img.min()) / (img.max() - img.min())).astype(np.float32)


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _open(viewer, iters: int = ITERS) -> _widget.ZSSRWidget:
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    widget.preset.value = "fast"
    widget.max_iters.value = iters
    widget.crop_size.value = 24
    widget.seed.value = 0
    widget.preview_ctl.interval_s = 0.0  # as often as the clock's cost share allows
    widget.preview_ctl.first_iteration = 1
    return widget


def _zoom_on(viewer, center: tuple[float, float], side: float = 24.0) -> None:
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.zoom = float(viewer.canvas.size[0]) / side
    camera.center = center


def _wait_done(qtbot, widget) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=RUN_TIMEOUT_MS)


def _previews(viewer) -> list:
    return [x for x in viewer.layers if x.name.endswith("ZSSR preview")]


def _corners(layer) -> np.ndarray:
    ny, nx = layer.data.shape[-2:]
    return np.array(
        [layer.data_to_world([y, x]) for y in (-0.5, ny - 0.5) for x in (-0.5, nx - 0.5)]
    )


def _source_corners(src, box) -> np.ndarray:
    y0, y1, x0, x1 = box
    return np.array(
        [src.data_to_world([y, x]) for y in (y0 - 0.5, y1 - 0.5) for x in (x0 - 0.5, x1 - 0.5)]
    )


def test_live_preview_updates_sits_over_its_region_and_ends_with_the_result(viewer, qtbot):
    src = viewer.add_image(_texture((64, 64), seed=4), name="img", translate=(3.0, -2.0))
    widget = _open(viewer)
    _zoom_on(viewer, (30.0, 20.0))
    assert widget.preview_ctl.live_box.value  # live images by default
    widget.preview_ctl.live_box.value = False  # the preview of old: one image at the end
    widget.preview()
    _wait_done(qtbot, widget)
    assert widget.preview_ctl.updates and len(widget.preview_ctl.updates) == 1
    plain = np.array(_previews(viewer)[0].data)

    widget.preview_ctl.live_box.value = True
    kinds: list[bool] = []  # trained: the snapshot of the trained network, at inference
    show = widget.preview_ctl.on_snapshot

    def on_snapshot(job, msg):
        kinds.append(msg.snapshot.trained)
        show(job, msg)
        if msg.snapshot.trained:
            assert widget.preview_ctl.layer.metadata["zssr"]["trained"] is True

    widget.preview_ctl.on_snapshot = on_snapshot
    widget.preview()
    seen: list[np.ndarray] = []

    def snapshot_shown() -> bool:
        layer = widget.preview_ctl.layer
        if layer is not None and layer.metadata["zssr"].get("live") and widget.busy:
            if not seen or not np.array_equal(seen[-1], layer.data):
                seen.append(np.array(layer.data))
                box = layer.metadata["zssr"]["region"]
                np.testing.assert_allclose(_corners(layer), _source_corners(src, box), atol=1e-9)
        return not widget.busy

    qtbot.waitUntil(snapshot_shown, timeout=RUN_TIMEOUT_MS)
    assert widget.last_status == "done"
    assert len(seen) >= 3, f"{len(seen)} distinct snapshots seen"
    assert len(widget.preview_ctl.updates) >= 4  # snapshots, then the final result
    assert kinds[-1] and not any(kinds[:-1])  # the trained network last, before the result
    assert np.all(np.diff(widget.preview_ctl.updates) >= 0)
    (final,) = _previews(viewer)
    meta = final.metadata["zssr"]
    assert "live" not in meta and meta["preview"] is True  # the final result's record
    # snapshots draw no random number: the final result is the one without them
    np.testing.assert_array_equal(final.data, plain)
    assert not np.array_equal(seen[0], final.data)
    np.testing.assert_allclose(_corners(final), _source_corners(src, meta["region"]), atol=1e-9)


def test_repeated_previews_leave_one_preview_layer_and_a_bicubic_comparison(viewer, qtbot):
    src = viewer.add_image(_texture((48, 48), seed=5), name="img")
    widget = _open(viewer)
    _zoom_on(viewer, (20.0, 20.0))
    widget.preview()
    qtbot.waitUntil(lambda: len(widget.preview_ctl.updates) >= 1, timeout=RUN_TIMEOUT_MS)
    assert widget.preview_button.enabled  # Preview restarts a preview in progress
    widget.preview()
    _wait_done(qtbot, widget)
    widget.preview()
    _wait_done(qtbot, widget)
    assert widget.last_status == "done"
    assert len(_previews(viewer)) == 1
    assert len(viewer.layers) == 2

    widget.preview_ctl.compare.value = True
    names = [x.name for x in viewer.layers]
    assert names == ["img", "img ZSSR preview", "img ZSSR preview bicubic"]
    bicubic, preview = viewer.layers[2], viewer.layers[1]
    assert bicubic.data.shape == preview.data.shape
    assert not np.array_equal(bicubic.data, preview.data)
    np.testing.assert_allclose(_corners(bicubic), _corners(preview), atol=1e-9)
    box = preview.metadata["zssr"]["region"]
    np.testing.assert_allclose(_corners(bicubic), _source_corners(src, box), atol=1e-9)
    widget.preview_ctl.compare.value = False
    assert [x.name for x in viewer.layers] == ["img", "img ZSSR preview"]


def test_run_stops_the_preview_then_replaces_it(viewer, qtbot):
    viewer.add_image(_texture((48, 48), seed=6), name="img")
    widget = _open(viewer, iters=400)
    _zoom_on(viewer, (20.0, 20.0))
    widget.preview()
    qtbot.waitUntil(lambda: len(widget.preview_ctl.updates) >= 1, timeout=RUN_TIMEOUT_MS)
    assert widget.busy and widget.run_button.enabled
    widget.max_iters.value = 10  # the run itself is short
    widget.run()  # stops the preview, then starts
    qtbot.waitUntil(lambda: widget.busy and not widget.preview_ctl.running, timeout=30_000)
    assert len(_previews(viewer)) == 1  # the preview stays until the result arrives
    _wait_done(qtbot, widget)
    assert widget.last_status == "done"
    assert [x.name for x in viewer.layers] == ["img", "img ZSSR x2"]
    assert widget.preview_ctl.layer is None


def test_follow_settings_restarts_the_preview_on_a_new_scale_and_region(viewer, qtbot):
    src = viewer.add_image(_texture((64, 64), seed=7), name="img")
    widget = _open(viewer, iters=20)
    _zoom_on(viewer, (20.0, 20.0))
    widget.preview()
    _wait_done(qtbot, widget)
    first = _previews(viewer)[0]
    assert first.metadata["zssr"]["scale"] == [2.0, 2.0]
    widget.preview_ctl.follow.value = True
    widget.scale.value = 3.0
    qtbot.waitUntil(lambda: widget.busy, timeout=10_000)  # after the pause
    _wait_done(qtbot, widget)
    (second,) = _previews(viewer)
    assert second is first  # filled in place: no layer removal (napari's gc pause)
    assert second.metadata["zssr"]["scale"] == [3.0, 3.0]
    region = second.metadata["zssr"]["region"]
    np.testing.assert_allclose(_corners(second), _source_corners(src, region), atol=1e-9)

    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.center = (44.0, 44.0)  # the view moves: the preview follows
    qtbot.waitUntil(lambda: widget.busy, timeout=10_000)
    _wait_done(qtbot, widget)
    (third,) = _previews(viewer)
    assert third.metadata["zssr"]["region"][0] > region[0]

    widget.preview_ctl.follow.value = False
    widget.scale.value = 2.0
    qtbot.wait(2 * _widget_delay())
    assert not widget.busy


def _widget_delay() -> int:
    from napari_zssr.napari.preview import FOLLOW_DELAY_MS

    return FOLLOW_DELAY_MS


def test_the_dock_warms_up_the_engine_in_the_background_once_shown(viewer, qtbot, monkeypatch):
    calls = []
    monkeypatch.setattr("napari_zssr.napari.widget.warm_up", lambda: calls.append(1))
    _open(viewer)
    assert calls == []  # not while the dock is being built
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=5000)


def test_warm_up_imports_what_the_first_run_needs_once():
    import subprocess
    import sys

    # a fresh interpreter: in this one the tests before have imported everything already
    code = (
        "import sys\n"
        "from napari_zssr.napari import worker\n"
        "assert 'scipy.stats' not in sys.modules\n"
        "assert 'napari_zssr.arrays.upscale' not in sys.modules\n"
        "worker.warm_up()\n"
        "assert worker._warmed.is_set()\n"
        "names = ('torch', 'napari_zssr.arrays.upscale', 'napari_zssr.core.engine',\n"
        "         'scipy.stats')\n"
        "for name in names:\n"
        "    assert name in sys.modules, name\n"
        "del sys.modules['napari_zssr.arrays.upscale']\n"
        "worker.warm_up()  # once per process: the second call does nothing\n"
        "assert 'napari_zssr.arrays.upscale' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_preview_of_another_layer_replaces_the_preview_layer(viewer, qtbot):
    viewer.add_image(_texture((48, 48), seed=8), name="a")
    b = viewer.add_image(_texture((48, 48), seed=9), name="b")  # same dtype and shape as a
    widget = _open(viewer, iters=10)
    _zoom_on(viewer, (20.0, 20.0))
    widget.image.value = viewer.layers["a"]
    widget.preview()
    _wait_done(qtbot, widget)
    (first,) = _previews(viewer)
    widget.image.value = b
    widget.preview()
    _wait_done(qtbot, widget)
    assert widget.last_status == "done"
    (second,) = _previews(viewer)  # still one preview layer: b's, a new one
    assert second is not first and second.name == "b ZSSR preview"
    box = second.metadata["zssr"]["region"]
    np.testing.assert_allclose(_corners(second), _source_corners(b, box), atol=1e-9)
