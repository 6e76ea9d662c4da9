"""``napari-zssr run`` on many files: globs, OME-Zarr in and out, resuming, a Dask cluster.

Every input becomes one job ``(input, output)``; :func:`process_file` runs one job from start
to end (read, run, write) and is what a Dask worker runs. A job whose output is complete is
skipped: a TIFF appears only once written whole (:func:`napari_zssr.io.atomic_write`), and an
OME-Zarr store carries a completion flag written after its last plane; an incomplete store is
continued where it stopped (:mod:`napari_zssr.arrays.output`). No torch at import.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .parser import UsageError, _positive_int

__all__ = ["Job", "add_batch_arguments", "batch_command", "expand_inputs", "is_batch", "plan_jobs"]

FORMATS = ("tiff", "ome-zarr")
_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".ome.zarr", ".zarr")


def add_batch_arguments(group: Any) -> None:
    """The options of many inputs, output format and Dask (one argument group)."""
    group.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: from OUTPUT's suffix, .zarr for OME-Zarr, else tiff)",
    )
    group.add_argument(
        "--batch-planes",
        type=_positive_int,
        metavar="K",
        help="with --stack-mode per_plane: networks of K planes trained together "
        "(default: from the free GPU memory, 1 on the CPU)",
    )
    group.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="run the files on a local Dask cluster of N worker processes",
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the files on an existing Dask cluster, e.g. tcp://host:8786",
    )
    group.add_argument(
        "--planes-per-task",
        type=_positive_int,
        metavar="K",
        help="with a Dask cluster, --stack-mode per_plane and OME-Zarr output: K planes of a "
        "stack per task (default: about 3 tasks per worker); shared mode and TIFF output "
        "keep one task per file",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="with a Dask cluster: times a failed file is rerun (a lost worker's files are "
        "rescheduled by Dask)",
    )


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def is_batch(args: argparse.Namespace) -> bool:
    """Whether the arguments need more than the one-TIFF-in, one-TIFF-out command."""
    inputs = list(args.input)
    out = args.output or ""
    return (
        len(inputs) > 1
        or any(_has_glob(p) or _is_zarr_name(p) for p in inputs)
        or _is_zarr_name(out)
        or out.endswith(("/", os.sep))
        or (bool(out) and Path(out).is_dir())
        or args.format == "ome-zarr"
        or args.workers is not None
        or args.scheduler is not None
        or args.batch_planes is not None
        or args.planes_per_task is not None
    )


def _is_zarr_name(text: str) -> bool:
    return text.rstrip("/").lower().endswith(".zarr")


def expand_inputs(patterns: Sequence[str]) -> list[Path]:
    """The input paths, globs expanded (sorted), each once.

    Raises
    ------
    FileNotFoundError
        For a glob that matches nothing or a path that does not exist.
    """
    found: list[Path] = []
    for pattern in patterns:
        if _has_glob(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise FileNotFoundError(f"no file matches {pattern!r}")
            found += [Path(m) for m in matches]
        elif not Path(pattern).exists():
            raise FileNotFoundError(f"input file not found: {pattern}")
        else:
            found.append(Path(pattern))
    return list(dict.fromkeys(found))


def _stem(path: Path) -> str:
    name = path.name.rstrip("/")
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


@dataclass(frozen=True)
class Job:
    """One file of a batch: where it is read from and written to, and the format."""

    input: Path
    output: Path
    fmt: str


def _output_format(args: argparse.Namespace, single_output: str | None) -> str:
    by_name = None
    if single_output is not None:
        low = single_output.rstrip("/").lower()
        by_name = (
            "ome-zarr"
            if low.endswith(".zarr")
            else "tiff"
            if low.endswith((".tif", ".tiff"))
            else None
        )
        if by_name is None:
            raise UsageError(f"OUTPUT must end in .tif, .tiff or .zarr, got {single_output}")
    if args.format is not None and by_name is not None and args.format != by_name:
        raise UsageError(f"--format {args.format} does not match OUTPUT {single_output}")
    return args.format or by_name or "tiff"


def plan_jobs(inputs: list[Path], args: argparse.Namespace) -> list[Job]:
    """The job of each input: ``-o`` names the output of a single input, else a folder
    (created if missing) for ``STEM_zssr.tif`` / ``STEM_zssr.ome.zarr``; without ``-o``,
    beside each input."""
    out = args.output
    folder_out = out is not None and (
        len(inputs) > 1
        or out.endswith(("/", os.sep))
        or (Path(out).is_dir() and not _is_zarr_name(out))  # a store of an earlier run
    )
    if out is not None and not folder_out:
        fmt = _output_format(args, out)
        return [Job(inputs[0], Path(out), fmt)]
    fmt = _output_format(args, None)
    suffix = ".ome.zarr" if fmt == "ome-zarr" else ".tif"
    folder = Path(out) if folder_out else None
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"with several inputs OUTPUT must be a folder, got the file {folder}")
        folder.mkdir(parents=True, exist_ok=True)
    jobs = [Job(p, (folder or p.parent) / f"{_stem(p)}_zssr{suffix}", fmt) for p in inputs]
    outputs = [j.output.resolve() for j in jobs]
    if len(set(outputs)) < len(outputs):
        raise UsageError("two inputs have the same name: their outputs would collide")
    for job in jobs:
        if job.output.resolve() == job.input.resolve():
            raise UsageError(f"output is the input ({job.input}); choose another output")
    return jobs


def batch_command(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """Run every input, here or on a Dask cluster; complete outputs are skipped."""
    from .run_command import request_from_args

    if args.workers is not None and args.scheduler is not None:
        raise UsageError("give either --workers or --scheduler, not both")
    if getattr(args, "maps", False):
        raise UsageError("--maps works with one input and a TIFF output")
    if args.retries < 0:
        raise UsageError(f"--retries must be >= 0, got {args.retries}")
    request = request_from_args(args)
    request.validate()  # the options, before reading any file
    for warning in request.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    jobs = plan_jobs(expand_inputs(args.input), args)
    if args.z_isotropic and any(j.fmt == "ome-zarr" for j in jobs):
        raise UsageError("--z-isotropic writes TIFF only (the Z upsampling needs the volume)")
    argv = list(sys.argv[1:] if argv is None else argv)
    from ..file_batch.plane_tasks import check_plane_options

    check_plane_options(jobs, args)
    if args.workers is not None or args.scheduler is not None:
        from ..file_batch.cluster import run_jobs

        statuses = run_jobs(jobs, args, argv)
    else:
        statuses = [process_file(job, args, argv) for job in jobs]
    if not args.quiet:
        for job, status in zip(jobs, statuses):
            print(f"{status}: {job.output}")
    return 0


def output_complete(job: Job) -> bool:
    """Whether the job's output is there and whole (a TIFF exists only when whole)."""
    if job.fmt == "tiff":
        return job.output.is_file()
    from ..arrays.output import is_complete
    from ..io.zarr_store import open_ome_zarr

    if not job.output.exists():
        return False
    try:
        array, _ = open_ome_zarr(job.output)
    except ValueError:
        return False
    return is_complete(array)


def process_file(
    job: Job, args: argparse.Namespace, argv: Sequence[str], device: str | None = None
) -> str:
    """Run one job: ``"skipped (complete)"`` or ``"wrote"``. Rerunning it gives the same file.

    ``device`` replaces ``--device`` (a Dask worker's own GPU).
    """
    from ..pipeline import run
    from .run_command import progress_bar

    if output_complete(job) and not args.overwrite:
        return "skipped (complete)"
    if job.fmt == "tiff":
        from ..io import check_writable

        check_writable(job.output)  # before reading and training
    image, meta = _read(job.input)
    request, plan = prepare_request(args, image, meta, device)
    store = _open_output(job, request, plan, image, args) if job.fmt == "ome-zarr" else None
    request = request.replace(out=store)
    update, close = progress_bar(args.quiet or device is not None, f"ZSSR {job.input.name}")
    try:
        result = run(request, update)
    finally:
        close()
    _write(job, result, meta, request, argv, store)
    return "wrote"


def prepare_request(
    args: argparse.Namespace, image: Any, meta: Any, device: str | None = None
) -> tuple[Any, Any]:
    """The checked request of one input (``image`` and its ``meta``) and its plan."""
    from .run_command import request_from_args, with_input

    request = with_input(request_from_args(args), args, image, meta).replace(
        batch_planes=args.batch_planes, device=device or args.device
    )
    return request, request.validate()


def _read(path: Path) -> tuple[Any, Any]:
    """The input, lazily for OME-Zarr, and its metadata (``axes``, ``pixel_size``, ``extra``)."""
    from ..io import read_tiff
    from ..io.zarr_store import is_zarr_path, open_ome_zarr

    if is_zarr_path(path):
        array, zmeta = open_ome_zarr(path)
        return array, argparse.Namespace(axes=zmeta.axes, pixel_size=zmeta.pixel_size, extra={})
    return read_tiff(path)


def _open_output(job: Job, request: Any, plan: Any, image: Any, args: argparse.Namespace) -> Any:
    """Create (or reopen, to resume) the output OME-Zarr store, before any training."""
    from ..core.resize import output_shape
    from ..io.zarr_store import create_ome_zarr
    from ..pipeline.layout import default_axes

    axes = (request.axes or default_axes(len(image.shape))).upper()
    if "S" in axes:
        raise ValueError(f"{job.input}: RGB images are written as TIFF only (--format tiff)")
    sy, sx = plan.scale
    shape = list(image.shape)
    iy, ix = axes.index("Y"), axes.index("X")
    shape[iy], shape[ix] = output_shape((shape[iy], shape[ix]), (sy, sx))
    pz, py, px = request.pixel_size
    pixel = (pz, py / sy if py else None, px / sx if px else None)
    return create_ome_zarr(
        job.output,
        shape=tuple(shape),
        dtype=image.dtype,
        axes=axes,
        pixel_size=pixel,
        overwrite=bool(args.overwrite),
    )


def _write(job: Job, result: Any, meta: Any, request: Any, argv: Sequence[str], store: Any) -> None:
    from .run_command import run_record, write_result_tiff

    if store is None:
        write_result_tiff(job.input, job.output, result, meta, request, argv)
        return
    from ..io.zarr_store import write_run_record

    write_run_record(store, run_record(job.input, job.output, result, argv))
