"""The jobs of a batch: inputs expanded, one output planned for each, complete ones found.

Every input becomes one :class:`Job` ``(input, output, format, scene)``; a microscope file
of several scenes (CZI, ND2, LIF, an OME-TIFF of several images) becomes one job per scene
unless a scene was chosen for all. A job whose output is
complete is skipped: a TIFF appears only once written whole
(:func:`napari_zssr.io.atomic_write`), and an OME-Zarr store carries a completion flag
written after its last plane (:mod:`napari_zssr.arrays.output`).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..io.outputs import is_zarr_name, output_for, refuse_input_as_output
from .errors import UsageError
from .options import BatchOptions

__all__ = [
    "FORMATS",
    "Job",
    "expand_inputs",
    "has_glob",
    "output_complete",
    "output_format",
    "plan_jobs",
]

#: The output formats of a batch.
FORMATS = ("tiff", "ome-zarr")


def has_glob(text: str) -> bool:
    """Whether ``text`` is a glob pattern (holds ``*``, ``?`` or ``[``)."""
    return any(c in text for c in "*?[")


def expand_inputs(patterns: Sequence[str]) -> list[Path]:
    """The input paths, globs expanded (sorted), each once.

    Raises
    ------
    FileNotFoundError
        For a glob that matches nothing or a path that does not exist.
    """
    found: list[Path] = []
    for pattern in patterns:
        if has_glob(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise FileNotFoundError(f"no file matches {pattern!r}")
            found += [Path(m) for m in matches]
        elif not Path(pattern).exists():
            raise FileNotFoundError(f"input file not found: {pattern}")
        else:
            found.append(Path(pattern))
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Job:
    """One file (or one scene of a file) of a batch: where it is read from and written to,
    the format, and the scene read (index from 0 or id; None: the file's only image)."""

    input: Path
    output: Path
    fmt: str
    scene: str | None = None


def _n_scenes(path: Path) -> int:
    """How many scenes the input holds (1 for a zarr store or a TIFF of one image)."""
    from ..io.formats import list_scenes
    from ..io.zarr_store import is_zarr_path

    return 1 if is_zarr_path(path) else len(list_scenes(path))


def _jobs_of(path: Path, fmt: str, folder: Path | None, scene: str | None) -> list[Job]:
    """The jobs of one input written beside it or in ``folder``: one per scene of a file of
    several scenes when no ``scene`` was chosen, else one."""
    n = 1 if scene is not None else _n_scenes(path)
    if n == 1:
        return [Job(path, output_for(path, fmt, folder, keep_other_suffix=False), fmt, scene)]
    return [
        Job(path, output_for(path, fmt, folder, keep_other_suffix=False, scene=i), fmt, str(i))
        for i in range(n)
    ]


def output_format(fmt: str | None, single_output: str | None) -> str:
    """The output format: ``fmt`` (the user's), which must agree with the name of a single
    output; else the name's; else TIFF.

    Raises
    ------
    UsageError
        An output name that is neither TIFF nor zarr, or one that contradicts ``fmt``.
    """
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
    if fmt is not None and by_name is not None and fmt != by_name:
        raise UsageError(f"--format {fmt} does not match OUTPUT {single_output}")
    return fmt or by_name or "tiff"


def plan_jobs(inputs: list[Path], options: BatchOptions) -> list[Job]:
    """The job of each input: ``options.output`` names the output of a single input, else a
    folder (created if missing) for ``STEM_zssr.tif`` / ``STEM_zssr.ome.zarr``; without it,
    beside each input. Without ``options.scene``, each scene ``i`` of a file of several is a
    job of its own, written to ``STEM_scene{i}_zssr.tif`` (or ``.ome.zarr``).

    Raises
    ------
    UsageError
        A file where a folder is needed, two outputs that collide, or an output that is
        its input.
    ImportError
        A microscope file without the ``formats`` extra (its scenes cannot be listed).
    """
    out = options.output
    folder_out = out is not None and (
        len(inputs) > 1
        or out.endswith(("/", os.sep))
        or (Path(out).is_dir() and not is_zarr_name(out))  # a store of an earlier run
    )
    if out is not None and not folder_out:
        fmt = output_format(options.fmt, out)
        return [Job(inputs[0], Path(out), fmt, options.scene)]
    fmt = output_format(options.fmt, None)
    folder = Path(out) if folder_out else None
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"with several inputs OUTPUT must be a folder, got the file {folder}")
        folder.mkdir(parents=True, exist_ok=True)
    jobs = [job for p in inputs for job in _jobs_of(p, fmt, folder, options.scene)]
    outputs = [j.output.resolve() for j in jobs]
    if len(set(outputs)) < len(outputs):
        raise UsageError("two inputs have the same name: their outputs would collide")
    for job in jobs:
        refuse_input_as_output(
            job.input,
            job.output,
            error=UsageError,
            message="output is the input ({inp}); choose another output",
        )
    return jobs


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
