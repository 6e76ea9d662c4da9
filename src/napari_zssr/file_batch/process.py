"""One file of a batch from start to end: read, request, run, write.

:func:`process_file` is what runs here for each file and what a Dask worker runs for each
task; rerunning it gives the same file (a complete output is skipped, an incomplete
OME-Zarr store is continued where it stopped). No torch at import.
"""

from __future__ import annotations

from typing import Any

from ..io.inputs import open_input
from .jobs import Job, output_complete
from .options import BatchOptions
from .record import run_record, with_input, write_result_tiff

__all__ = ["SKIPPED", "open_output", "prepare_request", "process_file"]

#: The status of a job whose output is already complete.
SKIPPED = "skipped (complete)"


def process_file(job: Job, options: BatchOptions, device: str | None = None) -> str:
    """Run one job: ``"skipped (complete)"`` or ``"wrote"``. Rerunning it gives the same file.

    ``device`` replaces the request's device (a Dask worker's own GPU); a job on a worker
    shows no progress bar.
    """
    from ..pipeline import run
    from . import progress

    if output_complete(job) and not options.overwrite:
        return SKIPPED
    if job.fmt == "tiff":
        from ..io import check_writable

        check_writable(job.output)  # before reading and training
    image, meta = open_input(job.input, job.scene)
    request, plan = prepare_request(options, image, meta, device)
    store = None
    if job.fmt == "ome-zarr":
        store = open_output(job, request, plan, image, options.overwrite)
    request = request.replace(out=store)
    quiet = options.quiet or device is not None
    update, close = progress.progress_bar(quiet, f"ZSSR {job.input.name}")
    try:
        result = run(request, update)
    finally:
        close()
    if store is None:
        write_result_tiff(job.input, job.output, result, meta, request, options.command, job.scene)
    else:
        from ..io.zarr_store import write_run_record

        record = run_record(job.input, job.output, result, options.command, job.scene)
        write_run_record(store, record)
    return "wrote"


def prepare_request(
    options: BatchOptions, image: Any, meta: Any, device: str | None = None
) -> tuple[Any, Any]:
    """The checked request of one input (``image`` and its ``meta``) and its plan."""
    request = with_input(options.request, image, meta, options.axes, options.pixel_size)
    request = request.replace(
        batch_planes=options.batch_planes, device=device or options.request.device
    )
    return request, request.validate()


def open_output(job: Job, request: Any, plan: Any, image: Any, overwrite: bool) -> Any:
    """Create (or reopen, to resume) the output OME-Zarr store, before any training."""
    from ..core.resize import output_shape
    from ..io.zarr_store import output_store
    from ..pipeline.layout import default_axes

    axes = (request.axes or default_axes(len(image.shape))).upper()
    if "S" in axes:
        raise ValueError(f"{job.input}: RGB images are written as TIFF only (--format tiff)")
    shape = list(image.shape)
    iy, ix = axes.index("Y"), axes.index("X")
    shape[iy], shape[ix] = output_shape((shape[iy], shape[ix]), plan.scale)
    return output_store(
        job.output,
        shape=tuple(shape),
        dtype=image.dtype,
        axes=axes,
        pixel_size=request.pixel_size,
        scale=plan.scale,
        overwrite=bool(overwrite),
    )
