"""``napari-zssr run`` on many files: globs, OME-Zarr in and out, resuming, a Dask cluster.

The arguments become a :class:`~napari_zssr.file_batch.options.BatchOptions` and
:func:`~napari_zssr.file_batch.batch.run_batch` does the rest (one job per input, complete
outputs skipped; see :mod:`napari_zssr.file_batch`). No torch at import.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from ..file_batch.batch import run_batch
from ..file_batch.jobs import has_glob
from ..file_batch.options import BatchOptions, check_batch_options
from ..io.outputs import is_zarr_name
from .request_args import command_line, request_from_args

__all__ = ["batch_command", "batch_options", "is_batch"]


def is_batch(args: argparse.Namespace) -> bool:
    """Whether the arguments need more than the one-TIFF-in, one-TIFF-out command."""
    inputs = list(args.input)
    out = args.output or ""
    return (
        len(inputs) > 1
        or any(has_glob(p) or is_zarr_name(p) for p in inputs)
        or is_zarr_name(out)
        or out.endswith(("/", os.sep))
        or (bool(out) and Path(out).is_dir())
        or args.format == "ome-zarr"
        or args.workers is not None
        or args.scheduler is not None
        or args.batch_planes is not None
        or args.planes_per_task is not None
    )


def batch_options(args: argparse.Namespace, argv: Sequence[str] | None) -> BatchOptions:
    """The batch the ``run`` arguments describe (``argv``: the arguments as typed, for the
    record; None: ``sys.argv``).

    Raises
    ------
    UsageError
        Options a batch cannot take, or PSF options that do not fit together.
    """
    maps = bool(getattr(args, "maps", False))
    check_batch_options(args.workers, args.scheduler, maps, args.retries)
    return BatchOptions(
        inputs=tuple(args.input),
        request=request_from_args(args),
        command=command_line(argv),
        output=args.output,
        overwrite=bool(args.overwrite),
        fmt=args.format,
        axes=args.axes,
        pixel_size=args.pixel_size,
        scene=args.scene,
        workers=args.workers,
        scheduler=args.scheduler,
        planes_per_task=args.planes_per_task,
        batch_planes=args.batch_planes,
        retries=args.retries,
        quiet=bool(args.quiet),
    )


def batch_command(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """Run every input, here or on a Dask cluster; complete outputs are skipped."""
    jobs, statuses = run_batch(batch_options(args, argv))
    if not args.quiet:
        for job, status in zip(jobs, statuses):
            print(f"{status}: {job.output}")
    return 0
