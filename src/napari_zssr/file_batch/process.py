"""One file of a batch from start to end: read, request, run, write.

:func:`process_file` is what runs here for each file and what a Dask worker runs for each
task; rerunning it gives the same file (a complete output is skipped, an incomplete
OME-Zarr store is continued where it stopped). No torch at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io.inputs import open_input
from .jobs import Job, output_complete
from .options import BatchOptions
from .record import run_record, with_input, write_result_tiff

__all__ = ["SKIPPED", "open_output", "prepare_request", "process_file", "settle_store"]

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
    store, created = None, False
    if job.fmt == "ome-zarr":
        created = not job.output.exists()
        store = open_output(job, request, plan, image, options.overwrite)
    request = request.replace(out=store)
    quiet = options.quiet or device is not None
    update, close = progress.progress_bar(quiet, f"ZSSR {job.input.name}")
    try:
        result = run(request, update)
    except BaseException as exc:
        if store is not None:
            settle_store(job.output, created, exc)
        raise
    finally:
        close()
    if store is None:
        write_result_tiff(
            job.input, job.output, result, meta, request, options.command, job.scene,
            overwrite=options.overwrite,
        )  # fmt: skip
    else:
        from ..io.zarr_store import write_run_record

        record = run_record(job.input, job.output, result, options.command, job.scene)
        write_run_record(store, record)
    return "wrote"


def settle_store(path: Path, created: bool, exc: BaseException) -> None:
    """After a failed run into the OME-Zarr store ``path``: remove it if this run created it
    and finished no plane; else keep it, and tell (in ``exc``'s message, for the package's
    own errors) how many planes it holds and how to resume."""
    import shutil

    from ..arrays.output import planes_finished
    from ..io.errors import ReadFailure, WriteFailure
    from ..io.zarr_store import open_ome_zarr

    try:
        array, _ = open_ome_zarr(path)
        done, total = planes_finished(array), _n_planes(array)
    except (OSError, ValueError):  # gone, or not readable: nothing to keep or remove
        return
    if done == 0:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        return
    if isinstance(exc, (ReadFailure, WriteFailure)):
        exc.set_note(
            f"{done} of {total} planes are finished and kept in {path}; run the same command "
            "again to resume"
        )


def _n_planes(array: Any) -> int:
    from ..arrays.output import RECORD_KEY

    rec = array.attrs.get(RECORD_KEY) or {}
    return int(rec.get("n_planes", 0)) if isinstance(rec, dict) else 0


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
