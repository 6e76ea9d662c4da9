"""Running the files of a batch on a Dask cluster (``dask.distributed``).

``--workers N`` starts a :class:`distributed.LocalCluster`; ``--scheduler ADDRESS`` connects
to a running one (for instance a ``dask_jobqueue.SLURMCluster``). Each file is one task
(``client.map`` with ``retries``), except the stacks whose planes are tasks of their own
(:mod:`napari_zssr.file_batch.plane_tasks`): it reads its input, trains, and writes its own
output, so a task that is rerun after its worker was lost gives the same file (a TIFF is replaced
whole, an OME-Zarr store continues from its finished planes). On a machine with GPUs each
worker takes the GPU of its rank.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..io.extras import require
from .errors import TasksFailed
from .options import BatchOptions
from .plane_tasks import finish_stack, outcomes, submit_stacks
from .process import process_file
from .worker import set_threads, worker_device

__all__ = ["CONNECT_TIMEOUT_S", "connect", "file_task", "run_jobs"]

#: Seconds to wait for a scheduler before giving up with an error.
CONNECT_TIMEOUT_S = 10


def _distributed() -> Any:
    return require("distributed", "--workers and --scheduler (a Dask cluster)")


def connect(
    workers: int | None = None,
    scheduler: str | None = None,
    *,
    processes: bool = True,
    timeout: float | None = None,
) -> tuple[Any, Any]:
    """A client of a new local cluster of ``workers`` (one thread each), or of ``scheduler``.

    Returns ``(client, cluster)``; ``cluster`` is None for an existing scheduler.
    ``timeout`` defaults to :data:`CONNECT_TIMEOUT_S` seconds.

    Raises
    ------
    ConnectionError
        When the scheduler cannot be reached within ``timeout`` seconds.
    """
    distributed = _distributed()
    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); is it running, "
                "and is the address (tcp://host:port) right?"
            ) from None
        return client, None
    cluster = distributed.LocalCluster(
        n_workers=int(workers or 1),
        threads_per_worker=1,
        processes=processes,
        dashboard_address=None,
    )
    return distributed.Client(cluster), cluster


def file_task(job: Any, options: BatchOptions, threads: int) -> str:
    """One file on a worker: torch threads for its share of the cores, its own device."""
    set_threads(threads)
    return process_file(job, options, device=worker_device(options.request.device))


def _collect(client: Any, jobs: Sequence[Any], stacks: dict[int, Any], futures: Any) -> list[str]:
    """The statuses of every job, once all tasks ended; the tasks that kept failing raise
    :class:`~napari_zssr.file_batch.errors.TasksFailed` naming their files and planes."""
    files = iter(outcomes(client, futures))
    statuses: list[str] = []
    failures: list[tuple[str, BaseException]] = []
    for i, job in enumerate(jobs):
        if i in stacks:
            status, failed = finish_stack(client, stacks[i], collect=True)
        else:
            ok, value = next(files)
            status, failed = (value, []) if ok else ("failed", [(job.input.name, value)])
        statuses.append(status)
        failures.extend(failed)
    if failures:
        written = sum(1 for s in statuses if s != "failed")
        raise TasksFailed(failures, written)
    return statuses


def run_jobs(
    jobs: Sequence[Any],
    options: BatchOptions,
    *,
    processes: bool = True,
    task: Any = None,
    plane_task: Any = None,
) -> list[str]:
    """Run ``jobs`` as tasks on the cluster the options name; their statuses, in order.

    A stack in per-plane mode with an OME-Zarr output is split into tasks of a few planes
    (:mod:`napari_zssr.file_batch.plane_tasks`); every other file is one task. A task whose
    worker dies is rescheduled by Dask on another worker; a task that fails is rerun up to
    ``options.retries`` times; once every other task has ended, the tasks that kept failing
    are reported by file and planes (outputs and planes already complete stay, and a rerun of
    the command skips them).

    Raises
    ------
    napari_zssr.file_batch.errors.TasksFailed
        When some tasks failed after every retry.
    """
    client, cluster = connect(options.workers, options.scheduler, processes=processes)
    try:
        n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
        threads = max(1, (os.cpu_count() or 1) // n_workers) if cluster is not None else 0
        stacks = submit_stacks(
            client, jobs, options, n_workers=n_workers, threads=threads, task=plane_task
        )
        futures = client.map(
            task or file_task,
            [job for i, job in enumerate(jobs) if i not in stacks],
            options=options,
            threads=threads,
            retries=int(options.retries),
            pure=False,
        )
        return _collect(client, jobs, stacks, futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
