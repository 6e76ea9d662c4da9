"""The errors of a batch: a bad combination of options, found before any file is read, and
tasks that kept failing on a cluster, reported once every other task has ended."""

from __future__ import annotations

__all__ = ["TasksFailed", "UsageError"]


class UsageError(Exception):
    """A mistake in the options (not in the data), reported in one line; the command line
    ends with exit status 2 on it."""


class TasksFailed(RuntimeError):
    """Tasks of a batch that failed after every retry, each named by file (and planes),
    reported in one line once the other tasks have ended; the command line ends with exit
    status 1 on it.

    Attributes
    ----------
    failures : list of (str, BaseException)
        Where (``"a.tif"``, ``"a.tif planes 2-3"``) and the last error.
    """

    def __init__(self, failures: list[tuple[str, BaseException]], written: int) -> None:
        self.failures = failures
        parts = [f"{where}: {_one_line(exc)}" for where, exc in failures]
        noun = "task" if len(failures) == 1 else "tasks"
        super().__init__(
            f"{len(failures)} {noun} failed after every retry ({'; '.join(parts)}); "
            f"{written} other outputs are complete and finished planes are kept: run the "
            "same command again to redo only what is missing"
        )


def _one_line(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":  # dask.distributed: the task's worker died every time
        return "its worker process died on every try (out of memory, or killed?)"
    text = " ".join(str(exc).split())
    return f"{name}: {text}" if text else name
