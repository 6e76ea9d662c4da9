"""Faults in the middle of a run: damaged input chunks, a full disk, a read-only or removed
output folder, two runs on one output, a lost or failing Dask worker. Each gives one line
that names the file (and plane), exit status 1, leaves the input unchanged and nothing
partial beside a TIFF output; an OME-Zarr store with finished planes stays resumable."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_zssr.cli import main
from napari_zssr.io import write_tiff

zarr = pytest.importorskip("zarr")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["-s", "2", "--preset", "fast", "--max-iters", "4", "--one-jump", "--device", "cpu", "-q"]


def _stack(seed: int = 0, planes: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((planes, 16, 18)) * 1000 + 20).astype(np.uint16)


@pytest.fixture
def tif(tmp_path: Path) -> Path:
    path = tmp_path / "in.tif"
    write_tiff(path, _stack(), axes="ZYX", pixel_size=(1.0, 0.2, 0.2))
    return path


def _digest(path: Path) -> str:
    """A hash of every file under ``path`` (names and bytes): the input must not change."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        h.update(str(p.relative_to(path.parent)).encode() + p.read_bytes())
    return h.hexdigest()


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 1, err  # one line, no traceback
    return err[-1] if err else ""


def _damaged_zarr(tmp_path: Path, how: str = "overwrite", plane: int = 1) -> Path:
    """A zarr array (3 planes, one chunk each, zstd) whose chunk of ``plane`` is damaged."""
    path = tmp_path / "in.zarr"
    z = zarr.create_array(str(path), shape=(3, 16, 18), chunks=(1, 16, 18), dtype="uint16")
    z[:] = _stack()
    chunk = next(
        p for p in path.rglob("*") if p.is_file() and p.parts[-3:] == (str(plane), "0", "0")
    )
    data = bytearray(chunk.read_bytes())
    if how == "overwrite":
        data[4:12] = b"\xff" * 8
    else:  # truncated
        data = data[: len(data) // 3]
    chunk.write_bytes(bytes(data))
    return path


# 1. read errors during the work ------------------------------------------------------------


@pytest.mark.parametrize("how", ["overwrite", "truncate"])
def test_damaged_chunk_one_line_and_no_empty_store(tmp_path, capsys, how):
    src = _damaged_zarr(tmp_path, how)
    before = _digest(src)
    out = tmp_path / "out.zarr"
    assert main(["run", str(src), "-o", str(out), *FAST]) == 1
    message = _error(capsys)
    assert message.startswith(f"error: cannot read plane 1 of {src}"), message
    assert not out.exists()  # created for the run, no plane written: removed
    assert _digest(src) == before


def test_damaged_chunk_in_the_api_is_a_package_error(tmp_path):
    from napari_zssr import ReadFailure as Exported
    from napari_zssr import super_resolve
    from napari_zssr.io.errors import ReadFailure

    src = zarr.open_array(str(_damaged_zarr(tmp_path)), mode="r")
    with pytest.raises(Exported) as info:
        super_resolve(src, 2, preset="fast", device="cpu")
    assert info.type is ReadFailure and info.value.plane == (1,)
    assert "in.zarr" in info.value.path and info.value.__cause__ is not None
    assert "cannot read plane 1 of" in str(info.value)


def test_damaged_chunk_in_the_widget_is_a_notification():
    from napari_zssr.io.errors import ReadFailure
    from napari_zssr.napari.widget import describe_error

    exc = ReadFailure("cannot read plane 1 of in.zarr/0: RuntimeError: bad chunk", plane=(1,))
    assert describe_error(exc) == "ZSSR: cannot read plane 1 of in.zarr/0: RuntimeError: bad chunk"


def test_damaged_chunk_in_a_widget_run(make_napari_viewer, qtbot, tmp_path):
    """A whole-stack run on a layer with a damaged chunk: one notification, no new layer,
    the source layer and its data as they were."""
    pytest.importorskip("pytestqt")
    from napari.utils.notifications import NotificationSeverity, notification_manager

    from napari_zssr._widget import PLANES_ALL
    from napari_zssr.napari import widget as widget_module

    path = _damaged_zarr(tmp_path, plane=2)  # napari shows plane 1
    before = _digest(path)
    viewer = make_napari_viewer()
    data = zarr.open_array(str(path), mode="r")
    layer = viewer.add_image(data, name="damaged", contrast_limits=(0, 1100))
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    assert isinstance(widget, widget_module.ZSSRWidget)
    widget.preset.value = "fast"
    widget.max_iters.value = 4
    widget.planes.value = PLANES_ALL
    start = len(notification_manager.records)
    widget.run()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    errors = [
        str(n.message)
        for n in notification_manager.records[start:]
        if n.severity == NotificationSeverity.ERROR
    ]
    assert widget.last_status == "error"
    assert errors and errors[-1].startswith(f"ZSSR: cannot read plane 2 of {path}"), errors
    assert [x.name for x in viewer.layers] == ["damaged"] and layer.data is data
    assert _digest(path) == before


# 2. write errors ------------------------------------------------------------------------


def _failing_imwrite(monkeypatch, exc: OSError, *, written: int = 1000, action=None) -> None:
    """tifffile.imwrite writes ``written`` bytes, then (after ``action``) raises ``exc``."""
    import napari_zssr.io.tiff as tiff

    def imwrite(fh, *args, **kwargs):
        fh.write(b"\0" * written)
        if action is not None:
            action()
        raise exc

    monkeypatch.setattr(tiff.tifffile, "imwrite", imwrite)


def _left_beside(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_full_disk_names_the_file_and_the_space(tif, tmp_path, monkeypatch, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = _digest(tif)
    _failing_imwrite(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    assert main(["run", str(tif), "-o", str(out_dir / "r.tif"), *FAST]) == 1
    message = _error(capsys)
    assert message.startswith(f"error: cannot write the output {out_dir / 'r.tif'}: no space left")
    assert "the output needs about 11.0 kB" in message and "free in" in message
    assert _left_beside(out_dir) == []  # nothing partial
    assert _digest(tif) == before


def test_a_short_write_on_a_full_disk_says_so(tif, tmp_path, monkeypatch, capsys):
    """tifffile's own "N requested and M written", with no errno, on a full disk."""
    from collections import namedtuple

    import napari_zssr.io.errors as errors

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(errors.shutil, "disk_usage", lambda _: usage(300_000, 300_000, 0))
    _failing_imwrite(monkeypatch, OSError("262144 requested and 150720 written"))
    assert main(["run", str(tif), "-o", str(tmp_path / "r.tif"), *FAST]) == 1
    assert "r.tif: no space left on device (the output needs about" in _error(capsys)
    assert _left_beside(tmp_path) == ["in.tif"]


def test_full_tmpfs(tif, tmp_path, capsys):
    """A real 300 kB file system (skipped where mounting is not allowed)."""
    small = tmp_path / "small"
    small.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(small)])
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        big = tmp_path / "big.tif"
        write_tiff(big, np.ones((4, 128, 128), np.uint16), axes="ZYX")
        assert main(["run", str(big), "-o", str(small / "out.tif"), *FAST]) == 1
        message = _error(capsys)
        assert f"{small / 'out.tif'}: no space left on device (the output needs about" in message
        assert _left_beside(small) == []
    finally:
        subprocess.run(["umount", str(small)], check=False)


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied")],
)
def test_read_only_or_denied_output_folder(tif, tmp_path, monkeypatch, capsys, code, words):
    _failing_imwrite(monkeypatch, OSError(code, os.strerror(code)))
    assert main(["run", str(tif), "-o", str(tmp_path / "r.tif"), *FAST]) == 1
    assert _error(capsys) == f"error: cannot write the output {tmp_path / 'r.tif'}: {words}"
    assert _left_beside(tmp_path) == ["in.tif"]


def test_output_folder_removed_during_the_run(tif, tmp_path, monkeypatch, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    gone = OSError(errno.ENOENT, "No such file or directory")
    _failing_imwrite(monkeypatch, gone, action=lambda: shutil.rmtree(out_dir))
    assert main(["run", str(tif), "-o", str(out_dir / "r.tif"), *FAST]) == 1
    assert _error(capsys) == f"error: cannot write the output {out_dir / 'r.tif'}: folder removed"
    assert not out_dir.exists() and _left_beside(tmp_path) == ["in.tif"]


def _fail_zarr_writes_after(monkeypatch, planes: int, exc: OSError) -> None:
    import napari_zssr.arrays.output as output

    calls = {"n": 0}
    real = output.write_plane

    def write_plane(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > planes:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(output, "write_plane", write_plane)


def test_full_disk_keeps_a_resumable_store(tif, tmp_path, monkeypatch, capsys):
    ref = tmp_path / "ref.ome.zarr"
    assert main(["run", str(tif), "-o", str(ref), *FAST]) == 0
    out = tmp_path / "out.ome.zarr"
    with monkeypatch.context() as m:
        _fail_zarr_writes_after(m, 1, OSError(errno.ENOSPC, "No space left on device"))
        assert main(["run", str(tif), "-o", str(out), *FAST]) == 1
    message = _error(capsys)
    assert message.startswith(
        f"error: cannot write the output store {out} (plane 1): no space left on device "
        "(the output needs about 6.9 kB;"
    ), message
    assert message.endswith(
        f"1 of 3 planes are finished and kept in {out}; run the same command again to resume"
    )
    assert main(["run", str(tif), "-o", str(out), *FAST]) == 0  # resumed
    got = zarr.open_group(str(out), mode="r")["0"]
    np.testing.assert_array_equal(got[:], zarr.open_group(str(ref), mode="r")["0"][:])
    assert got.attrs["napari_zssr"]["complete"] is True


def test_store_removed_during_the_run(tif, tmp_path, monkeypatch, capsys):
    import napari_zssr.arrays.output as output

    out = tmp_path / "out.ome.zarr"
    real = output.write_plane
    calls = {"n": 0}

    def write_plane(*args, **kwargs):
        real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            shutil.rmtree(out)  # after the first plane's data

    monkeypatch.setattr(output, "write_plane", write_plane)
    assert main(["run", str(tif), "-o", str(out), *FAST]) == 1
    assert _error(capsys) == f"error: cannot write the output store {out}: folder removed"
    assert not out.exists()  # not recreated in bits


@pytest.mark.parametrize("planes_before", [0, 1])
def test_api_store_after_a_write_failure(tmp_path, monkeypatch, planes_before):
    from napari_zssr import WriteFailure, super_resolve

    out = tmp_path / "res.ome.zarr"
    _fail_zarr_writes_after(monkeypatch, planes_before, OSError(errno.EROFS, "Read-only"))
    with pytest.raises(WriteFailure) as info:
        super_resolve(_stack(), 2, preset="fast", device="cpu", out=out, seed=0)
    message = str(info.value)
    assert message.startswith(
        f"cannot write the output store {out} (plane {planes_before}): read-only file system"
    ), message
    assert isinstance(info.value.__cause__, OSError)
    if planes_before == 0:
        assert not out.exists()  # created by this run, nothing in it: removed
    else:
        assert message.endswith(
            f"; 1 of 3 planes are finished and kept in {out}; run again with the same out= "
            "to resume"
        )
        rec = zarr.open_group(str(out), mode="r")["0"].attrs["napari_zssr"]
        assert rec["planes_done"] == [0] and rec["complete"] is False


# 3. one run per output ------------------------------------------------------------------


def test_a_live_claim_refuses_a_second_run_before_training(tif, tmp_path, monkeypatch, capsys):
    import napari_zssr.pipeline as pipeline
    from napari_zssr.io.claim import claim_file, claim_outputs
    from napari_zssr.io.errors import OutputInUse

    out = tmp_path / "r.tif"
    trained = []
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: trained.append(1))
    for extra in ([], ["--overwrite"]):
        with claim_outputs([out]):  # another run (this process) holds it
            assert main(["run", str(tif), "-o", str(out), *FAST, *extra]) == 1
            message = _error(capsys)
            assert message.startswith(f"error: output in use: {out} is being written by process")
            assert str(claim_file(out)) in message
        assert not claim_file(out).exists()  # released
    assert trained == [] and _left_beside(tmp_path) == ["in.tif"]
    with claim_outputs([out]), pytest.raises(OutputInUse), claim_outputs([out]):
        pass


def test_a_stale_claim_is_taken_over(tif, tmp_path):
    import json
    import socket

    from napari_zssr.io.claim import claim_file

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "r.tif"
    claim_file(out).write_text(
        json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": 0})
    )
    assert main(["run", str(tif), "-o", str(out), *FAST]) == 0
    assert out.exists() and not claim_file(out).exists()


def test_an_output_that_appears_during_the_run_is_kept(tif, tmp_path, monkeypatch, capsys):
    import importlib

    run_command = importlib.import_module("napari_zssr.cli.run_command")
    out = tmp_path / "r.tif"
    real = run_command.read_and_run

    def other_run_writes_first(*args, **kwargs):
        result = real(*args, **kwargs)
        out.write_bytes(b"the other run's result")
        return result

    monkeypatch.setattr(run_command, "read_and_run", other_run_writes_first)
    assert main(["run", str(tif), "-o", str(out), *FAST]) == 1
    assert _error(capsys).startswith(f"error: output exists: {out}")
    assert out.read_bytes() == b"the other run's result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "r.tif"]


def test_two_processes_racing_on_one_output(tif, tmp_path):
    out = tmp_path / "r.tif"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "napari_zssr.cli", "run", str(tif), "-o", str(out), *FAST]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read().strip()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert loser.startswith((f"error: output in use: {out}", f"error: output exists: {out}"))
    assert len(loser.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "r.tif"]


# 4. a lost or failing Dask worker -------------------------------------------------------

SPLIT = ["--stack-mode", "per_plane", "--format", "ome-zarr"]


def _plane_options(inp: Path, out: Path, *extra: str):
    from napari_zssr.cli.batch_run import batch_options
    from napari_zssr.cli.parser import build_parser
    from napari_zssr.file_batch.jobs import expand_inputs, plan_jobs

    argv = ["run", str(inp), "-o", str(out), *FAST, *SPLIT, "--planes-per-task", "1", *extra]
    options = batch_options(build_parser().parse_args(argv), [])
    return options, plan_jobs(expand_inputs(options.inputs), options)


def _always_fails_on_plane_1(stack, planes, options, threads):
    from napari_zssr.file_batch.plane_tasks import plane_task

    if 1 in planes:
        raise OSError("cannot reach the input share")
    return plane_task(stack, planes, options, threads)


def test_a_task_that_keeps_failing_is_named_at_the_end(tif, tmp_path):
    pytest.importorskip("distributed")
    from napari_zssr.file_batch.cluster import run_jobs
    from napari_zssr.file_batch.errors import TasksFailed

    out = tmp_path / "out.ome.zarr"
    options, jobs = _plane_options(tif, out, "--workers", "2", "--retries", "1")
    with pytest.raises(TasksFailed) as info:
        run_jobs(jobs, options, processes=False, plane_task=_always_fails_on_plane_1)
    assert str(info.value).startswith(
        "1 task failed after every retry (in.tif plane 1: OSError: cannot reach the input "
        "share); 0 other outputs are complete and finished planes are kept"
    )
    marks = zarr.open_group(str(out), mode="r")["napari_zssr_planes"][:]
    assert marks[0] != 0 and marks[1] == 0 and marks[2] != 0  # the others finished


def _always_fails(stack, planes, options, threads):
    raise OSError("cannot reach the input share")


def test_a_stack_whose_tasks_all_fail_leaves_no_store(tif, tmp_path):
    pytest.importorskip("distributed")
    from napari_zssr.file_batch.cluster import run_jobs
    from napari_zssr.file_batch.errors import TasksFailed

    out = tmp_path / "out.ome.zarr"
    options, jobs = _plane_options(tif, out, "--workers", "2", "--retries", "0")
    with pytest.raises(TasksFailed, match="3 tasks failed after every retry"):
        run_jobs(jobs, options, processes=False, plane_task=_always_fails)
    assert not out.exists()


def _die_once_in_plane_1(stack, planes, options, threads):
    """Ends its worker process the first time it holds plane 1 (a lost worker)."""
    from napari_zssr.file_batch.plane_tasks import plane_task

    marker = Path(stack.job.output).parent / ".died"
    if 1 in planes and not marker.exists():
        marker.touch()
        os._exit(1)
    return plane_task(stack, planes, options, threads)


@pytest.mark.slow  # two worker processes start and import torch
def test_a_worker_killed_during_a_plane_task_loses_nothing(tif, tmp_path):
    pytest.importorskip("distributed")
    from napari_zssr.file_batch.cluster import run_jobs
    from napari_zssr.file_batch.process import process_file

    ref_options, ref_jobs = _plane_options(tif, tmp_path / "ref.ome.zarr")
    assert process_file(ref_jobs[0], ref_options) == "wrote"
    out = tmp_path / "out.ome.zarr"
    options, jobs = _plane_options(tif, out, "--workers", "2")
    statuses = run_jobs(jobs, options, processes=True, plane_task=_die_once_in_plane_1)
    assert statuses == ["wrote (3 tasks)"]
    assert (tmp_path / ".died").exists()  # the worker really died
    got = zarr.open_group(str(out), mode="r")["0"][:]
    ref = zarr.open_group(str(tmp_path / "ref.ome.zarr"), mode="r")["0"][:]
    np.testing.assert_array_equal(got, ref)


def test_tasks_failed_on_the_command_line_is_one_line(capsys):
    from napari_zssr.cli import _error as print_error
    from napari_zssr.file_batch.errors import TasksFailed

    print_error(TasksFailed([("a.tif planes 2-3", OSError("gone\nnow"))], 4))
    assert _error(capsys) == (
        "error: 1 task failed after every retry (a.tif planes 2-3: OSError: gone now); 4 other "
        "outputs are complete and finished planes are kept: run the same command again to redo "
        "only what is missing"
    )


def test_write_failure_is_an_oserror_with_the_cause_chained():
    from napari_zssr.io.errors import WriteFailure, write_failure

    exc = OSError(errno.ENOSPC, "No space left on device")
    failure = write_failure(Path("/nonexistent-dir/out.tif"), exc, needed=2_000_000)
    assert isinstance(failure, WriteFailure) and isinstance(failure, OSError)
    assert str(failure) == "cannot write the output /nonexistent-dir/out.tif: folder removed"
