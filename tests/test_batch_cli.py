"""``napari-zssr run`` on many files: globs, OME-Zarr, resuming, a Dask cluster."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pytest

from napari_zssr.cli import main
from napari_zssr.io import read_tiff, write_tiff

zarr = pytest.importorskip("zarr")
pytest.importorskip("distributed")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["-s", "2", "--preset", "fast", "--max-iters", "4", "--one-jump", "--device", "cpu", "-q"]


def _stack(seed: int, planes: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((planes, 16, 18)) * 1000 + 20).astype(np.uint16)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for k in range(3):
        write_tiff(data / f"img{k}.tif", _stack(k), axes="ZYX", pixel_size=(1.0, 0.2, 0.2))
    return data


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


def test_glob_to_folder_then_rerun_skips(folder, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["run", str(folder / "*.tif"), "-o", f"{out}/", *FAST]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["img0_zssr.tif", "img1_zssr.tif", "img2_zssr.tif"]
    image, meta = read_tiff(out / "img1_zssr.tif")
    assert image.shape == (3, 32, 36) and meta.pixel_size[1] == pytest.approx(0.1)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["run", str(folder / "*.tif"), "-o", str(out), *FAST[:-1]]) == 0
    assert capsys.readouterr().out.count("skipped (complete)") == 3
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


def test_glob_matching_nothing_is_an_error(tmp_path, capsys):
    assert main(["run", str(tmp_path / "*.tif"), "-o", str(tmp_path / "o/"), *FAST]) == 1
    assert "no file matches" in _error(capsys)


def test_ome_zarr_in_and_out(folder, tmp_path):
    src = tmp_path / "in.zarr"
    assert main(["run", str(folder / "img0.tif"), "-o", str(src), *FAST]) == 0
    group = zarr.open_group(str(src), mode="r")
    ms = group.attrs["ome"]["multiscales"][0]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 0.1, 0.1]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert group["0"].attrs["napari_zssr"]["complete"] is True
    assert "command" in group["0"].attrs["napari_zssr_run"]
    # an OME-Zarr input, read lazily, into a TIFF with the pixel size halved again
    assert main(["run", str(src), "-o", str(tmp_path / "again.tif"), *FAST]) == 0
    image, meta = read_tiff(tmp_path / "again.tif")
    assert image.shape == (3, 64, 72) and meta.pixel_size[2] == pytest.approx(0.05)


def _interrupt_after(monkeypatch, planes: int) -> None:
    """Make the progress bar raise Ctrl-C once ``planes`` planes of the second file are
    done, as a killed run would stop."""
    import importlib

    progress = importlib.import_module("napari_zssr.file_batch.progress")
    real = progress.progress_bar
    calls = {"files": 0}

    def bar(quiet, desc):
        calls["files"] += 1
        update, close = real(quiet, desc)
        if calls["files"] != 2:
            return update, close

        def stop(p):
            if p.plane > planes:  # plane 0 is the shared training
                raise KeyboardInterrupt
            update(p)

        return stop, close

    monkeypatch.setattr(progress, "progress_bar", bar)


@pytest.mark.parametrize("fmt", ["ome-zarr", "tiff"])
def test_killed_batch_resumes_to_identical_outputs(folder, tmp_path, monkeypatch, fmt):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    args = ["run", str(folder / "*.tif"), "--format", fmt, *FAST]
    assert main([*args, "-o", f"{whole}/"]) == 0
    with monkeypatch.context() as m:
        _interrupt_after(m, planes=1)
        assert main([*args, "-o", f"{resumed}/"]) == 130
    suffix = ".ome.zarr" if fmt == "ome-zarr" else ".tif"
    second = resumed / f"img1_zssr{suffix}"
    if fmt == "tiff":
        assert not second.exists()  # an interrupted TIFF is never left behind
    else:
        rec = zarr.open_group(str(second), mode="r")["0"].attrs["napari_zssr"]
        assert rec["complete"] is False and rec["planes_done"] == [0]
    assert main([*args, "-o", f"{resumed}/"]) == 0
    for k in range(3):
        a, b = whole / f"img{k}_zssr{suffix}", resumed / f"img{k}_zssr{suffix}"
        np.testing.assert_array_equal(_pixels(a), _pixels(b))


def _pixels(path: Path) -> np.ndarray:
    if path.suffix == ".tif":
        return read_tiff(path)[0]
    return zarr.open_group(str(path), mode="r")["0"][:]


def test_unwritable_output_store_fails_before_training(folder, tmp_path, monkeypatch, capsys):
    from napari_zssr.core import engine

    monkeypatch.setattr(engine, "fit", lambda *a, **k: pytest.fail("training started"))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = blocker / "out.zarr"
    assert main(["run", str(folder / "img0.tif"), "-o", str(out), *FAST]) == 1
    assert "output folder does not exist" in _error(capsys)


def test_unreachable_scheduler_is_a_clear_error_within_seconds():
    from napari_zssr.file_batch.cluster import connect

    t0 = time.monotonic()
    with pytest.raises(
        ConnectionError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0"
    ):
        connect(scheduler="tcp://127.0.0.1:9", timeout=2)
    assert time.monotonic() - t0 < 20  # the default wait of dask would be 30 s


def test_unreachable_scheduler_on_the_command_line(folder, tmp_path, capsys, monkeypatch):
    from napari_zssr.file_batch import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2)
    args = ["run", str(folder / "*.tif"), "-o", str(tmp_path / "o/"), "--scheduler"]
    assert main([*args, "tcp://127.0.0.1:9", *FAST]) == 1
    assert "cannot reach the Dask scheduler" in _error(capsys)


_ATTEMPTS: dict[str, int] = {}


def _flaky_task(job, options, threads):
    """Fails the first attempt of every file (as a task on a lost worker), then runs it."""
    from napari_zssr.file_batch.cluster import file_task

    key = str(job.output)
    _ATTEMPTS[key] = _ATTEMPTS.get(key, 0) + 1
    if _ATTEMPTS[key] == 1:
        raise RuntimeError("worker lost")
    return file_task(job, options, threads)


def test_lost_tasks_are_retried_and_nothing_is_lost(folder, tmp_path):
    from napari_zssr.cli.batch_run import batch_options
    from napari_zssr.cli.parser import build_parser
    from napari_zssr.file_batch.cluster import run_jobs
    from napari_zssr.file_batch.jobs import expand_inputs, plan_jobs
    from napari_zssr.file_batch.process import process_file

    def parse(out: Path) -> argparse.Namespace:
        return build_parser().parse_args(
            ["run", str(folder / "*.tif"), "-o", f"{out}/", "--format", "ome-zarr", *FAST]
        )

    ref_args = batch_options(parse(tmp_path / "ref"), [])
    for job in plan_jobs(expand_inputs(ref_args.inputs), ref_args):
        process_file(job, ref_args)
    args = parse(tmp_path / "dask")
    args.workers = 2
    options = batch_options(args, [])
    jobs = plan_jobs(expand_inputs(options.inputs), options)
    statuses = run_jobs(jobs, options, processes=False, task=_flaky_task)
    assert statuses == ["wrote"] * 3
    assert all(_ATTEMPTS[str(j.output)] == 2 for j in jobs)
    for job in jobs:
        ref = tmp_path / "ref" / job.output.name
        np.testing.assert_array_equal(_pixels(job.output), _pixels(ref))


def _die_once(job, options, threads):
    """Ends its worker process on the first attempt at the second file (a lost worker)."""
    import os

    from napari_zssr.file_batch.cluster import file_task

    marker = job.output.parent / ".died"
    if job.input.name == "img1.tif" and not marker.exists():
        marker.touch()
        os._exit(1)
    return file_task(job, options, threads)


@pytest.mark.slow  # two worker processes start and import torch
def test_a_killed_worker_process_loses_nothing(folder, tmp_path):
    from napari_zssr.cli.batch_run import batch_options
    from napari_zssr.cli.parser import build_parser
    from napari_zssr.file_batch.cluster import run_jobs
    from napari_zssr.file_batch.jobs import expand_inputs, plan_jobs
    from napari_zssr.file_batch.process import process_file

    argv = ["run", str(folder / "*.tif"), "-o", f"{tmp_path / 'out'}/", *FAST, "--workers", "2"]
    args = batch_options(build_parser().parse_args(argv), [])
    jobs = plan_jobs(expand_inputs(args.inputs), args)
    assert run_jobs(jobs, args, processes=True, task=_die_once) == ["wrote"] * 3
    assert (tmp_path / "out" / ".died").exists()  # the worker really died
    ref = tmp_path / "ref.tif"
    process_file(type(jobs[1])(jobs[1].input, ref, "tiff"), args)
    np.testing.assert_array_equal(_pixels(jobs[1].output), _pixels(ref))


def test_maps_need_a_single_tiff_output(folder, tmp_path, capsys):
    args = ["run", str(folder / "*.tif"), "-o", f"{tmp_path / 'o'}/", "--maps", *FAST]
    assert main(args) == 2
    assert "--maps works with one input and a TIFF output" in _error(capsys)
