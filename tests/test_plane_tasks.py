"""The planes of a stack as Dask tasks: same output as one process, resumable, no races."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from napari_zssr.cli import main
from napari_zssr.io import write_tiff

zarr = pytest.importorskip("zarr")
pytest.importorskip("distributed")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["-s", "2", "--preset", "fast", "--max-iters", "4", "--one-jump", "--device", "cpu", "-q"]
SPLIT = ["--stack-mode", "per_plane", "--format", "ome-zarr"]


@pytest.fixture
def stack_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    image = (rng.random((5, 16, 18)) * 1000 + 20).astype(np.uint16)
    path = tmp_path / "stack.tif"
    write_tiff(path, image, axes="ZYX", pixel_size=(1.0, 0.2, 0.2))
    return path


def _args(inp: Path, out: Path, *extra: str) -> argparse.Namespace:
    from napari_zssr.cli.parser import build_parser

    return build_parser().parse_args(["run", str(inp), "-o", str(out), *FAST, *SPLIT, *extra])


def _job(options):
    from napari_zssr.file_batch.jobs import expand_inputs, plan_jobs

    return plan_jobs(expand_inputs(options.inputs), options)[0]


def _reference(inp: Path, tmp_path: Path) -> np.ndarray:
    from napari_zssr.cli.batch_run import batch_options
    from napari_zssr.file_batch.process import process_file

    options = batch_options(_args(inp, tmp_path / "ref.ome.zarr"), [])
    assert process_file(_job(options), options) == "wrote"
    return zarr.open_group(str(tmp_path / "ref.ome.zarr"), mode="r")["0"][:]


def _run(args: argparse.Namespace, **kw) -> list[str]:
    from napari_zssr.cli.batch_run import batch_options
    from napari_zssr.file_batch.cluster import run_jobs

    args.workers = 2
    options = batch_options(args, [])
    return run_jobs([_job(options)], options, processes=False, **kw)


def test_plane_tasks_equal_one_process(stack_file, tmp_path):
    ref = _reference(stack_file, tmp_path)
    out = tmp_path / "dask.ome.zarr"
    assert _run(_args(stack_file, out, "--planes-per-task", "2")) == ["wrote (3 tasks)"]
    group = zarr.open_group(str(out), mode="r")
    np.testing.assert_array_equal(group["0"][:], ref)
    rec = group["0"].attrs["napari_zssr"]
    assert rec["complete"] is True and rec["planes_done"] == [0, 1, 2, 3, 4]
    assert group["0"].attrs["napari_zssr_run"]["plane_tasks"] == 3
    assert "napari_zssr_planes" not in group  # the marks go once the store is complete
    # a rerun finds the store complete (the store, a folder now, is still the output)
    assert _run(_args(stack_file, out, "--planes-per-task", "2")) == ["skipped (complete)"]


def _fail_on_last_plane(stack, planes, options, threads):
    """A task that dies (every attempt) when it holds the last plane."""
    from napari_zssr.file_batch.plane_tasks import plane_task

    if stack.n_planes - 1 in planes:
        raise RuntimeError("worker lost")
    return plane_task(stack, planes, options, threads)


def test_a_killed_split_run_resumes_to_the_same_output(stack_file, tmp_path):
    from napari_zssr.file_batch.plane_tasks import MARKS

    ref = _reference(stack_file, tmp_path)
    out = tmp_path / "dask.ome.zarr"
    args = _args(stack_file, out, "--planes-per-task", "2", "--retries", "0")
    with pytest.raises(RuntimeError, match="worker lost"):
        _run(args, plane_task=_fail_on_last_plane)
    group = zarr.open_group(str(out), mode="r+")
    assert group["0"].attrs.get("napari_zssr", {}).get("complete") is not True
    marks = group[MARKS][:]
    assert (marks[:4] != 0).all() and marks[4] == 0  # planes 0-3 finished, 4 not
    sentinel = np.full(group["0"].shape[1:], 7, dtype=group["0"].dtype)
    group["0"][1] = sentinel  # a finished plane: a resumed run must not touch it
    assert _run(_args(stack_file, out, "--planes-per-task", "2")) == ["wrote (3 tasks)"]
    result = zarr.open_group(str(out), mode="r")["0"][:]
    np.testing.assert_array_equal(result[1], sentinel)
    keep = [0, 2, 3, 4]
    np.testing.assert_array_equal(result[keep], ref[keep])


def test_shards_write_their_planes_without_touching_attributes(tmp_path):
    from napari_zssr import super_resolve
    from napari_zssr.arrays.output import PlaneShard

    rng = np.random.default_rng(0)
    image = (rng.random((4, 12, 12)) * 500).astype(np.uint16)
    kw = {"preset": "fast", "device": "cpu", "stack_mode": "per_plane"}
    ref = super_resolve(image, 2, **kw)
    group = zarr.open_group(str(tmp_path / "o.zarr"), mode="w")
    arr = group.create_array("0", shape=ref.shape, dtype=ref.dtype, chunks=(1, 24, 24))
    marks = group.create_array("m", shape=(4,), chunks=(1,), dtype="uint64", fill_value=0)
    super_resolve(image, 2, out=PlaneShard(arr, marks, [0, 3]), **kw)
    assert np.flatnonzero(marks[:]).tolist() == [0, 3]
    assert not arr[1].any() and not arr[2].any()  # not its planes: left alone
    super_resolve(image, 2, out=PlaneShard(arr, marks, [1, 2]), **kw)
    np.testing.assert_array_equal(arr[:], ref)
    assert "napari_zssr" not in dict(arr.attrs)  # the writers never touch the attributes
    assert len(set(marks[:].tolist())) == 1 and marks[0] != 0  # one run, every plane


@pytest.mark.slow  # two worker processes start and import torch
def test_plane_tasks_in_two_processes_from_the_command_line(stack_file, tmp_path, capsys):
    ref = _reference(stack_file, tmp_path)
    out = tmp_path / "two.ome.zarr"
    argv = ["run", str(stack_file), "-o", str(out), *FAST[:-1], *SPLIT, "--workers", "2"]
    assert main(argv) == 0
    # 5 planes, about 3 tasks for each of 2 workers: a plane a task
    assert "wrote (5 tasks)" in capsys.readouterr().out
    np.testing.assert_array_equal(zarr.open_group(str(out), mode="r")["0"][:], ref)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "2", "--stack-mode", "shared"], "needs --stack-mode per_plane"),
        (["--workers", "2", "--stack-mode", "per_plane", "--format", "tiff"], "OME-Zarr output"),
        (["--stack-mode", "per_plane", "--format", "ome-zarr"], "needs a Dask cluster"),
    ],
)
def test_planes_per_task_is_refused_where_a_stack_cannot_split(
    stack_file, tmp_path, capsys, extra, message
):
    out = tmp_path / "o"
    args = ["run", str(stack_file), "-o", f"{out}/", *FAST, "--planes-per-task", "2", *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
