"""N-D layout (stack, channel and spatial axes) and intensity handling (``napari_zssr.arrays``)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_zssr.arrays.intensity import (
    IntensityInfo,
    intensity_info,
    normalise_intensity,
    normalise_plane,
    restore_intensity,
    restore_plane,
)
from napari_zssr.arrays.planes import make_layout

# --- layout ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "kw", "channel_axis", "stack_axes", "channels", "n_planes"),
    [
        ((16, 20), {}, None, (), 1, 1),
        ((5, 16, 20), {}, None, (0,), 1, 5),
        ((2, 5, 16, 20), {}, None, (0, 1), 1, 10),
        ((3, 16, 20), {"channel_axis": 0}, 0, (), 3, 1),
        ((5, 3, 16, 20), {"channel_axis": 1}, 1, (0,), 3, 5),
        ((5, 3, 16, 20), {"channel_axis": -3}, 1, (0,), 3, 5),
        ((3, 5, 16, 20), {"channel_axis": -4}, 0, (1,), 3, 5),
        ((16, 20, 3), {"rgb": True}, 2, (), 3, 1),
        ((4, 16, 20, 4), {"rgb": True}, 3, (0,), 4, 4),
    ],
)
def test_layout(
    shape: tuple,
    kw: dict,
    channel_axis: int | None,
    stack_axes: tuple,
    channels: int,
    n_planes: int,
) -> None:
    lay = make_layout(shape, **kw)
    assert lay.channel_axis == channel_axis
    assert lay.stack_axes == stack_axes
    assert lay.channels == channels
    assert lay.n_planes == n_planes
    assert lay.plane_shape == (16, 20)
    assert lay.rgb == bool(kw.get("rgb", False))
    out = list(shape)
    out[lay.y_axis], out[lay.x_axis] = 32, 50
    assert lay.output_shape((32, 50)) == tuple(out)


@pytest.mark.parametrize(
    ("shape", "kw"),
    [
        ((16, 20), {}),
        ((3, 16, 20), {}),
        ((3, 16, 20), {"channel_axis": 0}),
        ((2, 3, 16, 20), {"channel_axis": 1}),
        ((3, 2, 16, 20), {"channel_axis": 0}),
        ((2, 16, 20, 3), {"rgb": True}),
    ],
)
def test_canonical_is_a_view_in_stack_channel_y_x_order(shape: tuple, kw: dict) -> None:
    arr = np.arange(np.prod(shape)).reshape(shape)
    lay = make_layout(shape, **kw)
    canon = lay.canonical(arr)
    assert np.shares_memory(canon, arr)
    assert canon.shape == (*lay.stack_shape, lay.channels, 16, 20)
    planes = list(lay.planes(arr))
    assert len(planes) == lay.n_planes
    assert [idx for idx, _ in planes] == list(np.ndindex(*lay.stack_shape))
    for idx, plane in planes:
        assert plane.shape == (lay.channels, 16, 20)
        # Every pixel of the plane is the user's pixel at the same stack/channel/Y/X index.
        for c in range(lay.channels):
            full = [0] * len(shape)
            for ax, i in zip(lay.stack_axes, idx):
                full[ax] = i
            if lay.channel_axis is not None:
                full[lay.channel_axis] = c
            full[lay.y_axis], full[lay.x_axis] = 5, 7
            assert plane[c, 5, 7] == arr[tuple(full)]
    # Writing through the canonical view of an output array lands in the user's order.
    out = np.zeros(shape, dtype=arr.dtype)
    for idx, plane in lay.planes(arr):
        lay.canonical(out)[idx] = plane
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize(
    ("shape", "kw", "exc", "match"),
    [
        ((16,), {}, ValueError, "at least 2 dimensions"),
        ((7, 16), {}, ValueError, "at least 8 x 8"),
        ((4, 16, 3), {}, ValueError, "at least 8 x 8"),
        ((3, 16, 16), {"channel_axis": 3}, ValueError, "out of range"),
        ((3, 16, 16), {"channel_axis": -4}, ValueError, "out of range"),
        ((3, 16, 16), {"channel_axis": 1}, ValueError, "spatial axis"),
        ((3, 16, 16), {"channel_axis": 2}, ValueError, "spatial axis"),
        ((3, 16, 16), {"channel_axis": -2}, ValueError, "spatial axis"),
        ((16, 16), {"channel_axis": 0}, ValueError, "spatial axis"),
        ((3, 16, 16), {"channel_axis": 0.0}, TypeError, "integer"),
        ((3, 16, 16), {"channel_axis": True}, TypeError, "integer"),
        ((3, 16, 16), {"channel_axis": "0"}, TypeError, "integer"),
        ((16, 16, 5), {"rgb": True}, ValueError, "3 or 4"),
        ((16, 3), {"rgb": True}, ValueError, "rgb=True needs"),
        ((16, 16, 3), {"rgb": True, "channel_axis": 0}, ValueError, "either rgb"),
        ((16, 4, 3), {"rgb": True}, ValueError, "at least 8 x 8"),
    ],
)
def test_layout_errors(shape: tuple, kw: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        make_layout(shape, **kw)


def test_numpy_integer_channel_axis() -> None:
    assert make_layout((3, 16, 16), channel_axis=np.int64(0)).channels == 3


# --- intensities -----------------------------------------------------------------------------


def _info(arr: np.ndarray, **kw: object) -> IntensityInfo:
    return intensity_info(arr, make_layout(arr.shape, **kw))  # type: ignore[arg-type]


def test_uint8_uses_the_full_range() -> None:
    arr = np.full((16, 16), 100, dtype=np.uint8)
    arr[0, 0] = 120
    info = _info(arr)
    assert info.lo.tolist() == [0.0] and info.hi.tolist() == [255.0]
    assert info.vmax == 1.0
    norm = normalise_plane(arr[None], info)
    assert norm.dtype == np.float32
    np.testing.assert_allclose(norm[0, 1, 1], 100 / 255, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(dtype: type) -> None:
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "f":
        arr = rng.normal(3.0, 50.0, size=(2, 16, 16)).astype(dtype)
    else:
        lo = -2000 if np.dtype(dtype).kind == "i" else 300
        arr = rng.integers(lo, lo + 5000, size=(2, 16, 16)).astype(dtype)
    info = _info(arr)
    assert info.lo[0] == arr.min()
    assert info.lo[0] + (info.hi[0] - info.lo[0]) * info.vmax == pytest.approx(float(arr.max()))
    canon = make_layout(arr.shape).canonical(arr)
    for k in range(2):
        norm = normalise_plane(canon[k], info)
        assert norm.min() >= 0.0 and norm.max() <= info.vmax * (1 + 1e-6)
        back = restore_plane(norm, info)
        assert back.dtype == arr.dtype
        if np.dtype(dtype).kind == "f":
            np.testing.assert_allclose(back, canon[k], rtol=1e-5, atol=1e-4)
        else:
            np.testing.assert_array_equal(back, canon[k])


def test_channels_are_normalised_separately() -> None:
    arr = np.zeros((2, 16, 16), np.float32)
    arr[0] = np.linspace(0, 1, 256).reshape(16, 16)
    arr[1] = np.linspace(1000, 5000, 256).reshape(16, 16)
    info = _info(arr, channel_axis=0)
    np.testing.assert_allclose(info.lo, [0, 1000])
    np.testing.assert_allclose(info.hi, [1, 5000])
    norm = normalise_plane(arr, info)
    np.testing.assert_allclose(norm.min(axis=(1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(norm.max(axis=(1, 2)), 1, atol=1e-6)


def test_outliers_do_not_squash_the_range() -> None:
    rng = np.random.default_rng(1)
    arr = rng.integers(100, 1100, size=(128, 128)).astype(np.uint16)
    arr[3, 3] = 60000  # one hot pixel
    info = _info(arr)
    assert info.hi[0] < 2000  # the robust top, not the hot pixel
    assert info.vmax > 10
    norm = normalise_plane(arr[None], info)
    assert float(np.median(norm)) > 0.3  # the bulk of the data keeps its contrast
    back = restore_plane(norm, info)
    np.testing.assert_array_equal(back[0], arr)


def test_restore_clips_to_each_channels_range_and_rounds() -> None:
    arr = np.zeros((2, 16, 16), np.int16)
    arr[0] = np.arange(256).reshape(16, 16) - 100
    arr[1] = 7
    info = _info(arr, channel_axis=0)
    plane = np.array([[[-0.5, 0.0, 0.4999, 1.0, 1.7]], [[-1.0, 0.0, 0.3, 1.0, 9.0]]], np.float32)
    out = restore_plane(plane, info)
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out[0, 0], [-100, -100, 27, 155, 155])
    np.testing.assert_array_equal(out[1, 0], [7, 7, 7, 7, 7])  # a constant channel stays constant


def test_restore_saturates_the_integer_range() -> None:
    arr = np.zeros((16, 16), np.uint16)
    arr[:, 8:] = 65535
    info = _info(arr)
    out = restore_plane(np.array([[[1.0000001, -0.0000001, 0.5]]], np.float32), info)
    np.testing.assert_array_equal(out[0, 0], [65535, 0, 32768])


def test_constant_image() -> None:
    arr = np.full((12, 12), 42.5, np.float64)
    info = _info(arr)
    assert info.hi[0] > info.lo[0]  # no division by zero
    norm = normalise_plane(arr[None], info)
    assert np.all(norm == 0.0)
    np.testing.assert_array_equal(restore_plane(norm + 0.3, info)[0], arr)


def test_whole_array_helpers() -> None:
    arr = np.random.default_rng(2).integers(0, 4096, size=(3, 10, 12)).astype(np.uint16)
    norm, info = normalise_intensity(arr)
    assert norm.shape == arr.shape and norm.dtype == np.float32
    assert norm.min() == 0.0 and norm.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(restore_intensity(norm, info), arr)
    assert info.to_dict() == {"dtype": "uint16", "lo": [float(arr.min())], "hi": [float(arr.max())]}


@pytest.mark.parametrize("channel_axis", [None, 1])
def test_large_stacks_are_sampled(channel_axis: int | None) -> None:
    """Above two million pixels per channel the range comes from a sample; still sensible."""
    rng = np.random.default_rng(4)
    arr = rng.integers(500, 3000, size=(6, 2, 600, 600), dtype=np.uint16)
    arr[1, 1, 10, 10] = 50000  # a hot pixel the sample may miss: vmax still covers it
    info = _info(arr, channel_axis=channel_axis)
    assert np.all(info.lo == 500)
    assert np.all(info.hi > 2900) and np.all(info.hi < 3100)
    top = info.lo + info.vmax * (info.hi - info.lo)
    assert np.max(top) == pytest.approx(50000)


def test_input_not_modified() -> None:
    arr = np.random.default_rng(3).random((2, 3, 16, 16)).astype(np.float32)
    copy = arr.copy()
    lay = make_layout(arr.shape, channel_axis=1)
    info = intensity_info(arr, lay)
    for _, plane in lay.planes(arr):
        normalise_plane(plane, info)
    np.testing.assert_array_equal(arr, copy)


@pytest.mark.parametrize(
    ("dtype", "match"),
    [
        (np.bool_, "boolean"),
        (np.complex64, "unsupported image dtype"),
        (np.dtype("U3"), "unsupported image dtype"),
        (np.dtype("datetime64[s]"), "unsupported"),
    ],
)
def test_dtype_errors(dtype: np.dtype, match: str) -> None:
    arr = np.zeros((16, 16), dtype=dtype)
    with pytest.raises(TypeError, match=match):
        _info(arr)


@pytest.mark.parametrize(
    "arr",
    [
        np.uint64(2**64 - 1) - np.arange(256, dtype=np.uint64).reshape(16, 16),
        (2**62 + np.arange(256, dtype=np.int64)).reshape(16, 16),
        (-(2**63) + np.arange(256, dtype=np.int64)).reshape(16, 16),
        1e10 + np.arange(256, dtype=np.float64).reshape(16, 16) / 7,
    ],
)
def test_offset_is_removed_before_the_float32_cast(arr: np.ndarray) -> None:
    info = _info(arr)
    norm = normalise_plane(arr[None], info)
    assert norm.dtype == np.float32
    assert np.unique(norm).size == 256  # every level kept apart
    assert norm.min() == 0.0 and norm.max() == pytest.approx(1.0)
    back = restore_plane(norm, info)[0]
    if arr.dtype.kind in "ui":
        np.testing.assert_array_equal(back, arr)  # exact, at the ends of 64-bit types
    else:
        np.testing.assert_allclose(back, arr, rtol=0, atol=1e-4)
