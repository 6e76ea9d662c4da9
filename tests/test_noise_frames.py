"""The noise read from a time-lapse's frames: their drift undone, pairs that are not frames
of one field refused, and ``time_axis`` in super_resolve and the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from scipy import ndimage
from scipy.signal import fftconvolve

from napari_zssr import ZSSRConfig, super_resolve
from napari_zssr.core.noise import (
    _moved,
    difference_noise_std,
    frame_drift,
    frame_noise_std,
)

#: white noise through this filter: neighbours correlate 0.47 along Y and 0.17 along X
CORRELATE = np.array([[1.0, 0.35], [1.0, 0.0]])

TINY = ZSSRConfig(max_iters=4, crop_size=16, width=8, depth=3, self_ensemble=False)


def _correlated(shape: tuple[int, int], sigma: float, seed: int) -> np.ndarray:
    white = np.random.default_rng(seed).normal(0.0, 1.0, (shape[0] + 1, shape[1] + 1))
    out = fftconvolve(white, CORRELATE, mode="valid")[: shape[0], : shape[1]]
    return out * sigma / np.sqrt(np.sum(CORRELATE**2))


def _texture(side: int, seed: int = 0, blur: float = 1.0) -> np.ndarray:
    """Texture in [0, 1], sharp by default: a drift that is not undone shows in its
    differences."""
    rng = np.random.default_rng(seed)
    t = ndimage.gaussian_filter(rng.random((side, side)), blur)
    return (t - t.min()) / np.ptp(t)


def _frames(side: int, sigma: float, drift: tuple[float, float], n: int = 4) -> np.ndarray:
    scene = _texture(side)
    return np.stack(
        [
            _moved(scene, (drift[0] * t, drift[1] * t)) + _correlated((side, side), sigma, t)
            for t in range(n)
        ]
    )


def test_the_drift_between_two_frames_is_found() -> None:
    frames = _frames(96, 0.02, (0.7, -2.3), n=2)
    dy, dx = frame_drift(frames[0], frames[1])
    assert dy == pytest.approx(0.7, abs=0.08)
    assert dx == pytest.approx(-2.3, abs=0.08)
    assert frame_drift(frames[0], frames[0]) == (0.0, 0.0)


def test_a_drift_does_not_raise_the_noise_read_from_the_differences() -> None:
    frames = _frames(96, 0.02, (0.3, 1.1), n=2)
    assert difference_noise_std(frames[0], frames[1]) == pytest.approx(0.02, rel=0.1)
    # without registering, the texture's moved edges read as noise
    assert difference_noise_std(frames[0], frames[1], register=False) > 0.04
    assert frame_noise_std(frames[0], frames[1]) == pytest.approx(0.02, rel=0.1)


def test_planes_that_differ_by_structure_are_not_frames_of_one_field() -> None:
    # structure at least as wide as a sampled PSF (texture of 1 px is noise-like, and its
    # differences cannot be told from correlated noise)
    a = _texture(96, seed=1, blur=2.0) + _correlated((96, 96), 0.01, 1)
    b = _texture(96, seed=2, blur=2.0) + _correlated((96, 96), 0.01, 2)
    assert frame_noise_std(a, b) is None
    assert difference_noise_std(a, b) > 0.05  # what a plain reading would take as noise


def _sparse_stack(side: int = 64, n: int = 4, sigma: float = 0.03) -> np.ndarray:
    """Sparse bright spots on a dark background with correlated noise: a single plane's
    estimate reads a fraction of the noise (a third to a half on small inputs)."""
    rng = np.random.default_rng(7)
    spots = np.zeros((side, side))
    spots[rng.integers(4, side - 4, 40), rng.integers(4, side - 4, 40)] = 1.0
    scene = 0.1 + 0.8 * ndimage.gaussian_filter(spots, 1.2) / 0.11
    return np.stack([scene + _correlated((side, side), sigma, 10 + t) for t in range(n)])


def test_a_time_axis_raises_a_low_single_plane_estimate_to_the_frames_level() -> None:
    stack = _sparse_stack()
    _, plain = super_resolve(stack, 2, config=TINY, noise_std="auto", return_info=True)
    _, timed = super_resolve(stack, 2, config=TINY, noise_std="auto", return_info=True, time_axis=0)
    assert plain["noise_estimate_frames"] is None
    span = float(stack.max() - stack.min())  # the run's normalised units
    (frames,) = timed["noise_estimate_frames"]
    assert frames == pytest.approx(0.03 / span, rel=0.15)
    assert plain["noise_std"] < 0.8 * frames  # the single planes read it low
    assert timed["noise_std"] == pytest.approx(frames, rel=0.02)
    assert timed["noise_estimate_from"] == "frame differences"
    assert timed["noise_std_estimated"]


def test_frames_that_read_less_than_the_planes_leave_the_level_alone() -> None:
    # white noise on a smooth scene: the planes read it well; the frames' level, no higher,
    # changes nothing (a fixed pattern would be in the planes' reading and not in theirs)
    yy, xx = np.mgrid[:64, :64]
    scene = 0.5 + 0.2 * np.sin(yy / 9.0) * np.cos(xx / 7.0)
    rng = np.random.default_rng(3)
    pattern = rng.normal(0.0, 0.02, (64, 64))  # the same in every frame
    stack = np.stack([scene + pattern + rng.normal(0.0, 0.01, (64, 64)) for _ in range(3)])
    _, plain = super_resolve(stack, 2, config=TINY, noise_std="auto", return_info=True)
    _, timed = super_resolve(stack, 2, config=TINY, noise_std="auto", return_info=True, time_axis=0)
    assert timed["noise_estimate_frames"][0] < plain["noise_std"]
    assert timed["noise_std"] == plain["noise_std"]
    assert timed["noise_estimate_from"] != "frame differences"


def test_a_time_axis_over_planes_of_other_fields_is_not_read() -> None:
    stack = np.stack(
        [_texture(64, seed=s, blur=2.0) + _correlated((64, 64), 0.01, s) for s in range(3)]
    )
    _, plain = super_resolve(stack, 2, config=TINY, noise_std="auto", return_info=True)
    _, timed = super_resolve(stack, 2, config=TINY, noise_std="auto", return_info=True, time_axis=0)
    assert timed["noise_estimate_frames"] is None
    assert timed["noise_std"] == plain["noise_std"]


def test_time_axis_must_be_a_stack_axis() -> None:
    stack = np.zeros((3, 2, 16, 16), np.float32)
    with pytest.raises(ValueError, match="time_axis must be a stack axis"):
        super_resolve(stack, 2, config=TINY, channel_axis=1, time_axis=1)
    with pytest.raises(ValueError, match="time_axis must be a stack axis"):
        super_resolve(stack, 2, config=TINY, time_axis=-1)
    with pytest.raises(TypeError, match="time_axis must be an integer"):
        super_resolve(stack, 2, config=TINY, time_axis=True)


def test_the_pipeline_reads_a_t_axis_as_time() -> None:
    from napari_zssr.pipeline import RunRequest, run

    stack = (_sparse_stack(n=3) * 1000).astype(np.uint16)
    tiny = {"max_iters": 4, "crop_size": 16, "width": 8, "depth": 3, "self_ensemble": False}
    common = {"source": stack, "scale": 2, "overrides": tiny, "noise_std": "auto"}
    result = run(RunRequest(axes="TYX", **common))
    assert result.info["noise_estimate_frames"] is not None
    assert result.info["noise_estimate_from"] == "frame differences"
    z = run(RunRequest(axes="ZYX", **common))
    assert z.info["noise_estimate_frames"] is None


def test_an_axis_labelled_time_is_t() -> None:
    from napari_zssr.pipeline import default_axes

    assert default_axes(3, labels=("t", "y", "x")) == "TYX"
    assert default_axes(3, labels=("axis -3", "y", "x")) == "ZYX"
    assert default_axes(4, labels=("z", "Time", "y", "x")) == "ZTYX"
    assert default_axes(4) == "TZYX"
    assert default_axes(4, rgb=True, labels=("time", "y", "x", "c")) == "TYXS"
    # two axes called time: no guess
    assert default_axes(4, labels=("t", "time", "y", "x")) == "TZYX"


def test_the_widget_reads_a_layer_axis_labelled_time_as_t(make_napari_viewer):
    pytest.importorskip("pytestqt")
    from napari_zssr.napari.choices import Planes, StackAxis
    from napari_zssr.napari.jobs import request_for

    viewer = make_napari_viewer()
    movie = viewer.add_image(np.zeros((3, 24, 28), np.uint16), name="movie")
    movie.axis_labels = ("t", "y", "x")
    stack = viewer.add_image(np.zeros((3, 24, 28), np.uint16), name="stack")
    volume = viewer.add_image(np.zeros((2, 3, 24, 28), np.uint16), name="volume")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    widget.inputs.planes.value = Planes.ALL.value
    widget.image.value = stack  # unlabelled: Z, unless the box says otherwise
    assert not widget.inputs.stack_axis.native.isHidden()  # shown (the dock itself is not)
    assert widget.inputs.stack_axis.value == StackAxis.Z
    assert request_for(widget, stack).axes == "ZYX"
    widget.inputs.stack_axis.value = StackAxis.T.value
    assert request_for(widget, stack).axes == "TYX"
    widget.image.value = movie  # the layer's own label sets the box
    assert widget.inputs.stack_axis.value == StackAxis.T
    assert request_for(widget, movie).axes == "TYX"
    widget.inputs.stack_axis.value = StackAxis.Z.value
    assert request_for(widget, movie).axes == "ZYX"
    widget.image.value = volume  # 4-D: the box does not apply (T Z Y X by default)
    assert widget.inputs.stack_axis.native.isHidden()
    assert request_for(widget, volume).axes == "TZYX"


@pytest.mark.parametrize(("axes", "read"), [("TYX", True), ("ZYX", False)])
def test_the_command_line_reads_the_frames_of_a_t_axis(tmp_path, axes, read):
    from napari_zssr.cli import main
    from napari_zssr.io import read_tiff

    src = tmp_path / "movie.tif"
    stack = (_sparse_stack(n=3) * 1000).astype(np.uint16)
    tifffile.imwrite(src, stack)  # no axis metadata: the command line's --axes names them
    before = src.read_bytes()
    out = tmp_path / "out.tif"
    args = ["run", str(src), "-o", str(out), "-s", "2", "--preset", "fast", "--axes", axes]
    assert main([*args, "--max-iters", "4", "--device", "cpu", "--quiet"]) == 0
    _, meta = read_tiff(out)
    frames = meta.metadata["run"]["noise_estimate_frames"]
    assert (frames is not None) is read
    assert src.read_bytes() == before  # the input file is left as it was
