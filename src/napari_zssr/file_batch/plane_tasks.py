"""The planes of a stack as Dask tasks (``--stack-mode per_plane``, OME-Zarr output).

On a cluster (:mod:`napari_zssr.file_batch.cluster`) a stack whose planes train independently
is split into groups of planes, one task each. The client creates the output OME-Zarr store once,
with a ``napari_zssr_planes`` array beside the image: one uint64 element per plane, each in
a chunk (a file) of its own. A task opens the input lazily (zarr, OME-Zarr, an uncompressed
TIFF through a memmap), runs :func:`~napari_zssr.super_resolve` on the whole stack with a
:class:`~napari_zssr.arrays.output.PlaneShard` as ``out``, so that it computes only its planes,
writes them straight into the store and marks each one after its data. No task writes the
store's attributes: when every task has succeeded, the client writes the run record and,
last, the completion flag, then removes the marks. A rerun (same fingerprint) skips marked
planes; a retried task writes the same planes again (each plane has the same seed as in a
single-process run), so results equal a single-process run of the same stack.

Each task repeats what the run decides from the whole stack (the intensity range in one
pass over the planes, a PSF or noise estimate from a few planes): the tasks must agree on
the run's fingerprint, which the client checks. The shared stack mode trains one network
on the whole stack, and a TIFF is written whole: those files stay one task each.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..io.extras import require
from ..io.inputs import open_input, open_pixels
from .errors import UsageError
from .jobs import output_complete
from .options import BatchOptions
from .process import SKIPPED, open_output, prepare_request
from .record import run_record
from .worker import set_threads, worker_device

__all__ = [
    "MARKS",
    "TASKS_PER_WORKER",
    "Stack",
    "StackInput",
    "check_plane_options",
    "finish_stack",
    "outcomes",
    "plane_groups",
    "plane_task",
    "submit_stacks",
]

#: Name of the per-plane completion array inside the output store.
MARKS = "napari_zssr_planes"
#: Tasks per worker when ``--planes-per-task`` is not given: a few, so that workers that
#: finish early take over the rest.
TASKS_PER_WORKER = 3


def check_plane_options(jobs: Sequence[Any], options: BatchOptions) -> None:
    """Refuse ``--planes-per-task`` where a stack cannot be split, with the reason.

    Raises
    ------
    UsageError
        Without a cluster, in the shared stack mode, or with a TIFF output.
    """
    if options.planes_per_task is None:
        return
    if not options.on_cluster:
        raise UsageError("--planes-per-task needs a Dask cluster (--workers or --scheduler)")
    if options.request.stack_mode != "per_plane":
        raise UsageError(
            "--planes-per-task needs --stack-mode per_plane: the shared mode trains one "
            "network on the whole stack, so each file is one task"
        )
    if any(job.fmt != "ome-zarr" for job in jobs):
        raise UsageError(
            "--planes-per-task needs OME-Zarr output (--format ome-zarr): a TIFF is written "
            "whole, so each TIFF output is one task"
        )


def splits(job: Any, options: BatchOptions) -> bool:
    """Whether the job's planes may be tasks of their own."""
    request = options.request
    return job.fmt == "ome-zarr" and request.stack_mode == "per_plane" and not request.z_isotropic


def plane_groups(n_planes: int, per_task: int) -> list[list[int]]:
    """Consecutive groups of ``per_task`` flat plane indices (the last may be shorter)."""
    return [list(range(s, min(s + per_task, n_planes))) for s in range(0, n_planes, per_task)]


@dataclass(frozen=True)
class StackInput:
    """What the plane tasks need to know of a stack's input: its ``axes`` and ``pixel_size``
    (as the file gives them, micrometres), ``shape`` and ``dtype`` (a name, e.g. ``"uint16"``);
    no ``extra`` fields (a store has no place for them)."""

    axes: str | None
    pixel_size: tuple[float | None, float | None, float | None]
    shape: tuple[int, ...]
    dtype: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stack:
    """A stack split into plane tasks: its job, its input and its number of planes."""

    job: Any
    meta: StackInput
    n_planes: int
    groups: tuple[tuple[int, ...], ...] = ()
    created: bool = False


def _n_planes(request: Any, plan: Any) -> int:
    """The planes of the arranged input (as :func:`~napari_zssr.super_resolve` sees it)."""
    from ..arrays.planes import make_layout
    from ..pipeline.layout import arrange
    from ..pipeline.run import read_source

    arranged = arrange(read_source(request), plan.axes or "")
    return make_layout(arranged.image.shape, arranged.channel_axis, bool(arranged.rgb)).n_planes


def prepare_stack(job: Any, options: BatchOptions) -> Stack | str | None:
    """Create the job's output store and plane marks: its :class:`Stack`; a status when
    its output is complete; None when it stays one task (one plane only)."""
    if output_complete(job) and not options.overwrite:
        return SKIPPED
    image, meta = open_input(job.input, job.scene)
    request, plan = prepare_request(options, image, meta)
    n_planes = _n_planes(request, plan)
    if n_planes < 2:
        return None
    created = not job.output.exists()
    store = open_output(job, request, plan, image, options.overwrite)
    _marks(job.output, n_planes)
    del store
    info = StackInput(
        axes=meta.axes,
        pixel_size=meta.pixel_size,
        shape=tuple(int(n) for n in image.shape),
        dtype=str(np.dtype(image.dtype)),
    )
    return Stack(job, info, n_planes, created=created)


def _marks(path: Any, n_planes: int) -> Any:
    """The store's plane marks, created (zeros) unless one of the right size is there."""
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    if MARKS in group and tuple(group[MARKS].shape) == (n_planes,):
        return group[MARKS]
    return group.create_array(
        MARKS, shape=(n_planes,), chunks=(1,), dtype="uint64", fill_value=0, overwrite=True
    )


def plane_task(
    stack: Stack, planes: list[int], options: BatchOptions, threads: int
) -> tuple[str | None, dict[str, Any]]:
    """Compute ``planes`` of ``stack`` on a worker: the run's fingerprint and its record.

    The input is opened without reading it whole (zarr lazily, a plain TIFF mapped).
    """
    import zarr

    from ..arrays.output import PlaneShard
    from ..pipeline import run

    set_threads(threads)
    job = stack.job
    image = open_pixels(job.input, stack.meta.shape, stack.meta.dtype, job.scene)
    group = zarr.open_group(str(job.output), mode="r+")
    shard = PlaneShard(group["0"], group[MARKS], planes)
    request, _ = prepare_request(options, image, stack.meta, worker_device(options.request.device))
    result = run(request.replace(out=shard))
    record = run_record(job.input, job.output, result, options.command, job.scene)
    return shard.fingerprint, record


def submit_stacks(
    client: Any,
    jobs: Sequence[Any],
    options: BatchOptions,
    *,
    n_workers: int,
    threads: int,
    task: Any = None,
) -> dict[int, Any]:
    """Submit the plane tasks of every job that splits: by job index, a status (complete)
    or ``(Stack, futures)``. Jobs left out run as one task each."""
    submitted: dict[int, Any] = {}
    for i, job in enumerate(jobs):
        if not splits(job, options):
            continue
        stack = prepare_stack(job, options)
        if stack is None or isinstance(stack, str):
            if stack is not None:
                submitted[i] = stack
            continue
        per_task = options.planes_per_task or math.ceil(
            stack.n_planes / (TASKS_PER_WORKER * n_workers)
        )
        groups = plane_groups(stack.n_planes, per_task)
        futures = [
            client.submit(
                task or plane_task,
                stack,
                group,
                options=options,
                threads=threads,
                retries=int(options.retries),
                pure=False,
            )
            for group in groups
        ]
        submitted[i] = (dataclasses.replace(stack, groups=tuple(map(tuple, groups))), futures)
    return submitted


def finish_stack(client: Any, item: Any, collect: bool = False) -> Any:
    """Wait for a stack's tasks, then write its run record and, last, the completion flag.

    Returns the status; with ``collect``, ``(status, failures)``: the status is ``"failed"``
    and ``failures`` lists ``("a.tif planes 2-3", error)`` for each task that failed after
    every retry (the store keeps its finished planes; without ``collect`` the first error is
    raised).

    Raises
    ------
    RuntimeError
        When the tasks ran different runs (their fingerprints differ).
    """
    if isinstance(item, str):
        return (item, []) if collect else item
    if collect:
        return _finish_collecting(client, item)
    return _finish(item, client.gather(item[1]))


def _finish_collecting(client: Any, item: Any) -> tuple[str, list[tuple[str, BaseException]]]:
    stack, futures = item
    done = outcomes(client, futures)
    failures = [
        (f"{stack.job.input.name} {_planes_text(plane_group)}", value)
        for plane_group, (ok, value) in zip(getattr(stack, "groups", None) or [], done)
        if not ok
    ]
    if any(not ok for ok, _ in done):
        if not failures:  # groups unknown: name the file
            failures = [(stack.job.input.name, v) for ok, v in done if not ok]
        _remove_if_empty(stack)
        return "failed", failures
    return _finish(item, [value for _, value in done]), []


def _remove_if_empty(stack: Stack) -> None:
    """Remove the store of a failed stack when this run created it and no plane finished."""
    import shutil

    import zarr

    if not stack.created:
        return
    try:
        marks = zarr.open_group(str(stack.job.output), mode="r")[MARKS][:]
    except (OSError, KeyError, ValueError):
        return
    if not np.any(marks):
        shutil.rmtree(stack.job.output, ignore_errors=True)


def _planes_text(planes: Sequence[int]) -> str:
    if len(planes) == 1:
        return f"plane {planes[0]}"
    return f"planes {planes[0]}-{planes[-1]}"


def _finish(item: Any, results: list[Any]) -> str:
    """Write the run record and the completion flag of a stack whose tasks all succeeded."""
    import zarr

    from ..arrays.output import record_complete
    from ..io.zarr_store import write_run_record

    stack, futures = item
    fingerprints = {fp for fp, _ in results}
    if len(fingerprints) != 1 or None in fingerprints:
        raise RuntimeError(
            f"{stack.job.input}: the plane tasks did not run the same run (fingerprints "
            f"{sorted(map(str, fingerprints))}); rerun without a cluster"
        )
    group = zarr.open_group(str(stack.job.output), mode="r+")
    record = dict(results[0][1])
    record["plane_tasks"] = len(futures)
    write_run_record(group["0"], record)
    record_complete(group["0"], fingerprints.pop(), stack.n_planes)  # last: the flag
    del group[MARKS]  # complete: the marks are no longer needed
    return f"wrote ({len(futures)} tasks)"


def outcomes(client: Any, futures: Sequence[Any]) -> list[tuple[bool, Any]]:
    """Wait for every future: ``(True, result)`` or ``(False, error)`` each, in order (a
    failed task does not stop the others)."""
    require("distributed", "--workers and --scheduler (a Dask cluster)").wait(list(futures))
    out: list[tuple[bool, Any]] = []
    for future in futures:
        if future.status == "finished":
            out.append((True, future.result()))
        else:
            out.append((False, future.exception()))
    return out
