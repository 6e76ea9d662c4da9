"""What a batch of files needs to know, as plain data (no command-line parser)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    from ..pipeline import RunRequest

__all__ = ["BatchOptions", "check_batch_options"]


@dataclass(frozen=True)
class BatchOptions:
    """The options of a batch run, built by the front end (for instance the command line).

    Attributes
    ----------
    inputs : tuple of str
        Input paths or glob patterns.
    request : RunRequest
        The run every file gets, without its source (each file's is set when it is read).
    command : str
        The command line as typed, kept in every output's record.
    output : str or None
        An output file or store (one input), a folder, or None (beside each input).
    overwrite : bool
        Replace existing outputs instead of skipping complete ones.
    fmt : str or None
        ``"tiff"`` or ``"ome-zarr"``; None: from the output's suffix.
    axes : str or None
        Axis letters given for every input (else each file's own).
    pixel_size : tuple of float or None
        Pixel size in micrometres given for every input (``XY``, ``Y,X`` or ``Z,Y,X``).
    scene : str or None
        The scene read from every input (index from 0 or scene id); None: every scene of a
        file of several scenes is a job of its own.
    workers, scheduler
        A local Dask cluster of ``workers`` processes, or the address of a running one.
    planes_per_task : int or None
        Planes of a split stack per cluster task.
    batch_planes : int or None
        Per-plane networks trained together.
    retries : int
        Times a failed cluster task is rerun.
    quiet : bool
        No progress bar.
    """

    inputs: tuple[str, ...]
    request: RunRequest
    command: str = "napari-zssr"
    output: str | None = None
    overwrite: bool = False
    fmt: str | None = None
    axes: str | None = None
    pixel_size: tuple[float, ...] | None = None
    scene: str | None = None
    workers: int | None = None
    scheduler: str | None = None
    planes_per_task: int | None = None
    batch_planes: int | None = None
    retries: int = 2
    quiet: bool = False

    @property
    def on_cluster(self) -> bool:
        """Whether the files run on a Dask cluster."""
        return self.workers is not None or self.scheduler is not None


def check_batch_options(
    workers: int | None, scheduler: str | None, maps: bool, retries: int
) -> None:
    """Refuse what a batch cannot do, before anything else is checked.

    Raises
    ------
    UsageError
        Both a local cluster and a scheduler, quality maps, or a negative retry count.
    """
    if workers is not None and scheduler is not None:
        raise UsageError("give either --workers or --scheduler, not both")
    if maps:
        raise UsageError("--maps works with one input and a TIFF output")
    if retries < 0:
        raise UsageError(f"--retries must be >= 0, got {retries}")
