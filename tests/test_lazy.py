"""Lazy inputs (dask, zarr, memmap) and plane-by-plane outputs (zarr arrays, OME-Zarr)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_zssr import Cancelled, super_resolve
from napari_zssr.core import engine
from napari_zssr.core.config import resolve_config

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = resolve_config("fast", None).replace(max_iters=6, min_iters=6, self_ensemble=False)
KW = {"config": CFG, "device": "cpu", "noise_std": "auto"}


@pytest.fixture(scope="module")
def stack() -> np.ndarray:
    rng = np.random.default_rng(3)
    base = rng.random((4, 20, 22)) * 900 + 50
    return base.astype(np.uint16)


@pytest.fixture(scope="module")
def reference(stack: np.ndarray) -> np.ndarray:
    return super_resolve(stack, 2, **KW)


def _zarr_copy(tmp_path, data: np.ndarray, name: str = "in.zarr"):
    z = zarr.open_array(
        str(tmp_path / name),
        mode="w",
        shape=data.shape,
        dtype=data.dtype,
        chunks=(1, *data.shape[1:]),
    )
    z[:] = data
    return z


class _NoWhole:
    """An array-like that refuses to be read whole (as a too-large store would)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim

    def __getitem__(self, key):
        out = self.data[key]
        if out.size == self.data.size and self.data.shape[0] > 1:
            raise AssertionError("the whole array was read at once")
        return out

    def __array__(self, *args, **kwargs):
        raise AssertionError("converted to one NumPy array")


def test_dask_input_same_as_numpy(stack, reference):
    out = super_resolve(da.from_array(stack, chunks=(1, 20, 22)), 2, **KW)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, reference)


def test_zarr_input_same_as_numpy(stack, reference, tmp_path):
    np.testing.assert_array_equal(super_resolve(_zarr_copy(tmp_path, stack), 2, **KW), reference)


def test_memmap_input_same_as_numpy(stack, reference, tmp_path):
    mm = np.lib.format.open_memmap(
        tmp_path / "in.npy", mode="w+", dtype=stack.dtype, shape=stack.shape
    )
    mm[:] = stack
    mm.flush()
    ro = np.load(tmp_path / "in.npy", mmap_mode="r")
    np.testing.assert_array_equal(super_resolve(ro, 2, **KW), reference)


def test_lazy_input_never_read_whole(stack, reference):
    np.testing.assert_array_equal(super_resolve(_NoWhole(stack), 2, **KW), reference)


def test_lazy_per_plane_with_channels_same_as_numpy():
    rng = np.random.default_rng(5)
    img = rng.random((2, 2, 16, 16)).astype(np.float32)  # Z, C, Y, X
    kw = dict(KW, stack_mode="per_plane", channel_axis=1)
    ref = super_resolve(img, 2, **kw)
    np.testing.assert_array_equal(super_resolve(da.from_array(img, chunks=1), 2, **kw), ref)


def test_lazy_float_input_with_nan_is_refused(stack):
    bad = stack.astype(np.float32)
    bad[2, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        super_resolve(da.from_array(bad, chunks=(1, 20, 22)), 2, **KW)


def test_out_zarr_array_written_and_complete(stack, reference, tmp_path):
    out = zarr.open_array(
        str(tmp_path / "out.zarr"), mode="w", shape=reference.shape, dtype=reference.dtype
    )
    got = super_resolve(_zarr_copy(tmp_path, stack), 2, out=out, **KW)
    assert got is out
    np.testing.assert_array_equal(out[:], reference)
    rec = out.attrs["napari_zssr"]
    assert rec["complete"] is True and rec["planes_done"] == [0, 1, 2, 3]


def test_out_path_is_ome_zarr_with_pixel_size_divided(stack, reference, tmp_path):
    from napari_zssr.io.zarr_store import open_ome_zarr

    super_resolve(stack, 2, out=tmp_path / "res.ome.zarr", **KW)
    arr, meta = open_ome_zarr(tmp_path / "res.ome.zarr")
    np.testing.assert_array_equal(arr[:], reference)
    group = zarr.open_group(str(tmp_path / "res.ome.zarr"), mode="r")
    ms = group.attrs["ome"]["multiscales"][0]
    scale = ms["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == [1.0, 0.5, 0.5]
    assert meta.axes == "ZYX"


def _stop_after(k: int):
    """A callback that stops the run once plane ``k`` (of the shared-mode count) starts."""

    def callback(p):
        return p.plane < k

    return callback


def test_interrupted_run_resumes_to_identical_output(stack, reference, tmp_path):
    src = _zarr_copy(tmp_path, stack)
    path = tmp_path / "out.ome.zarr"
    with pytest.raises(Cancelled):
        super_resolve(src, 2, out=path, callback=_stop_after(3), **KW)  # planes 0 and 1 done
    arr = zarr.open_group(str(path), mode="r")["0"]
    rec = arr.attrs["napari_zssr"]
    assert rec["complete"] is False and rec["planes_done"] == [0, 1]
    seen: set[int] = set()

    def watch(p):
        if p.stage == "infer":
            seen.add(p.plane)

    super_resolve(src, 2, out=path, callback=watch, **KW)
    assert seen == {3, 4}  # only the planes left (1 + stack index) were inferred again
    arr = zarr.open_group(str(path), mode="r")["0"]
    assert arr.attrs["napari_zssr"]["complete"] is True
    np.testing.assert_array_equal(arr[:], reference)


def test_other_parameters_do_not_resume(stack, tmp_path):
    path = tmp_path / "out.ome.zarr"
    super_resolve(stack, 2, out=path, **KW)
    seen: set[int] = set()
    super_resolve(stack, 2, out=path, seed=1, callback=lambda p: seen.add(p.plane), **KW)
    assert {1, 2, 3, 4} <= seen  # a different seed: every plane is done again


def test_read_only_out_fails_before_training(stack, reference, tmp_path, monkeypatch):
    z = zarr.open_array(str(tmp_path / "o.zarr"), mode="w", shape=reference.shape, dtype="uint16")
    ro = zarr.open_array(str(tmp_path / "o.zarr"), mode="r")
    del z
    monkeypatch.setattr(engine, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(PermissionError, match="cannot write the output store"):
        super_resolve(stack, 2, out=ro, **KW)


def test_out_in_missing_folder_fails_before_training(stack, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(FileNotFoundError, match="output folder does not exist"):
        super_resolve(stack, 2, out=tmp_path / "nowhere" / "o.zarr", **KW)


def test_out_of_wrong_shape_or_with_maps_is_refused(stack, reference):
    with pytest.raises(ValueError, match="out must have the output's shape"):
        super_resolve(stack, 2, out=np.empty((4, 40, 40), np.uint16), **KW)
    with pytest.raises(ValueError, match="maps"):
        super_resolve(stack, 2, out=np.empty_like(reference), maps=True, return_info=True, **KW)


def test_pipeline_keeps_a_lazy_source_lazy(stack, reference):
    """The widget and the command line go through the pipeline: a dask layer (or an
    OME-Zarr input) reaches the engine unread, and gives the NumPy result."""
    from napari_zssr.pipeline import RunRequest, read_source, run

    src = da.from_array(stack, chunks=(1, 20, 22))
    request = RunRequest(
        source=src,
        axes="ZYX",
        scale=2,
        preset="fast",
        overrides={"max_iters": 6},
        noise_std="auto",
        device="cpu",
    )
    assert read_source(request) is src
    assert read_source(request.replace(region=(slice(0, 2),))).__class__ is src.__class__
    req = request.replace(overrides={"max_iters": 6, "min_iters": 6, "self_ensemble": False})
    np.testing.assert_array_equal(run(req).output, reference)


def test_pipeline_refuses_out_with_z_isotropic(stack):
    from napari_zssr.pipeline import RequestError, RunRequest, run

    request = RunRequest(
        source=stack,
        axes="ZYX",
        pixel_size=(1.0, 0.5, 0.5),
        z_isotropic=True,
        out=np.empty((8, 20, 22), np.uint16),
    )
    with pytest.raises(RequestError, match="cannot write to out"):
        run(request)


def test_missing_extra_is_a_clear_error(stack, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "zarr", None)  # as if the bigdata extra were absent
    with pytest.raises(ImportError, match=r"pip install 'napari-zssr\[bigdata\]'"):
        super_resolve(stack, 2, out=tmp_path / "o.ome.zarr", **KW)


def test_saved_network_on_a_lazy_input_into_a_store(stack, tmp_path):
    _, info = super_resolve(stack[:1], 2, return_info=True, keep_model=True, **KW)
    model = info["model"]
    assert model is not None
    ref = super_resolve(stack, 2, model=model, finetune=2, **KW)
    lazy = da.from_array(stack, chunks=(1, 20, 22))
    got = super_resolve(lazy, 2, model=model, finetune=2, out=tmp_path / "o.ome.zarr", **KW)
    np.testing.assert_array_equal(got[:], ref)
    assert got.attrs["napari_zssr"]["complete"] is True
