"""The start of a new network (``init``) reaches the run from the command line and the widget
alike, through the request's configuration overrides, and is recorded."""

from __future__ import annotations

import numpy as np
import pytest

from napari_zssr.cli import main
from napari_zssr.io import read_tiff, write_tiff


@pytest.fixture
def image(tmp_path):
    yy, xx = np.mgrid[:24, :28]
    data = (1000 + 800 * np.sin(yy / 2.1) * np.cos(xx / 3.3)).astype(np.uint16)
    path = tmp_path / "plane.tif"
    write_tiff(path, data, axes="YX", pixel_size=0.2)
    return path


@pytest.mark.parametrize("start", ["bundled", "scratch"])
def test_the_command_line_starts_from_the_chosen_weights(image, tmp_path, capsys, start):
    out = tmp_path / f"{start}.tif"
    args = ["run", str(image), "-o", str(out), "-s", "2", "--preset", "fast"]
    assert main([*args, "--max-iters", "4", "--device", "cpu", "--init", start]) == 0
    assert f"networks started from {start}" in capsys.readouterr().out
    _, meta = read_tiff(out)
    assert meta.metadata["run"]["config"]["init"] == start
    assert meta.metadata["parameters"]["overrides"]["init"] == start


def test_the_command_line_refuses_an_unknown_start(image, tmp_path, capsys):
    status = main(["run", str(image), "-o", str(tmp_path / "o.tif"), "-s", "2", "--init", "warm"])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: argument --init: invalid choice: 'warm'") and "\n" not in err
    assert not (tmp_path / "o.tif").exists()


def test_the_widget_sends_its_start_with_the_request(make_napari_viewer):
    pytest.importorskip("pytestqt")
    from napari_zssr.napari.jobs import request_for

    viewer = make_napari_viewer()
    layer = viewer.add_image(np.zeros((24, 28), np.uint16), name="img")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    assert widget.training.init.value == "scratch"  # every preset's default
    assert request_for(widget, layer).overrides["init"] == "scratch"
    widget.training.init.value = "bundled"
    assert request_for(widget, layer).overrides["init"] == "bundled"
    assert request_for(widget, layer, preview=True).overrides["init"] == "bundled"
    assert request_for(widget, layer).validate().config.init == "bundled"
