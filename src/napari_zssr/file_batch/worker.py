"""A Dask worker's set-up for a task: its device and its share of the CPU cores."""

from __future__ import annotations

__all__ = ["set_threads", "worker_device"]


def worker_device(requested: str) -> str:
    """The device of the task's worker: with ``"auto"`` and CUDA, the GPU of the worker's
    rank (its name on a local cluster) modulo the GPUs it sees; else ``requested``."""
    if requested != "auto":
        return requested
    import torch

    if not torch.cuda.is_available():
        return requested
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return requested
    rank = int(name) if isinstance(name, int) or str(name).isdigit() else 0
    return f"cuda:{rank % torch.cuda.device_count()}"


def set_threads(threads: int) -> None:
    """Give torch ``threads`` threads (a local cluster shares the machine's cores out);
    0 keeps torch's default (a cluster of its own machines)."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
