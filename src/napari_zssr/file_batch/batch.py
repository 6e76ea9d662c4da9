"""A batch of files from start to end: the options checked, the jobs planned, each run here
or on a Dask cluster (:mod:`~napari_zssr.file_batch.cluster`); complete outputs are skipped."""

from __future__ import annotations

import sys

from ..io.claim import claim_outputs
from .errors import UsageError
from .jobs import Job, expand_inputs, plan_jobs
from .options import BatchOptions
from .plane_tasks import check_plane_options
from .process import process_file

__all__ = ["run_batch"]


def run_batch(options: BatchOptions) -> tuple[list[Job], list[str]]:
    """Run every input of ``options``; the jobs and their statuses (``"wrote"``,
    ``"skipped (complete)"``, ...), in order.

    The request's warnings are printed to stderr as ``warning: ...`` before any file is read.

    Raises
    ------
    UsageError
        Options that do not fit together or do not fit the files.
    RequestError
        Request parameters out of range (from :meth:`~napari_zssr.pipeline.RunRequest.validate`).
    napari_zssr.io.errors.OutputInUse
        When another run is writing one of the outputs (see :mod:`napari_zssr.io.claim`).
    """
    request = options.request
    request.validate()  # the options, before reading any file
    for warning in request.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    jobs = plan_jobs(expand_inputs(options.inputs), options)
    if request.z_isotropic and any(j.fmt == "ome-zarr" for j in jobs):
        raise UsageError("--z-isotropic writes TIFF only (the Z upsampling needs the volume)")
    check_plane_options(jobs, options)
    # one run per output: a second run with the same outputs stops here, before training
    with claim_outputs([job.output for job in jobs]):
        if options.on_cluster:
            from .cluster import run_jobs

            statuses = run_jobs(jobs, options)
        else:
            statuses = [process_file(job, options) for job in jobs]
    return jobs, statuses
