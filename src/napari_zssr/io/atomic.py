"""Files that appear whole or not at all: atomic writes, SIGTERM clean-up, a writable check.

Every file the package writes (TIFF results, PNG figures) goes through :func:`atomic_write`:
a hidden temporary sibling, created exclusively, renamed into place once complete and removed
on any error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["Terminated", "atomic_write", "check_writable", "sigterm_raises"]


class Terminated(BaseException):
    """The process received SIGTERM; raised in the main thread so that clean-up runs.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated("terminated by a signal (SIGTERM)")


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` instead of ending the process
    at once (which would skip every ``finally``), when the default handler is in place and
    this is the main thread; otherwise nothing changes."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield  # someone (the command line, the application) already handles it
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _temporary_name(path: Path) -> Path:
    """A hidden, unpredictable sibling of ``path`` for the data being written."""
    folder = path.parent if str(path.parent) else Path(".")
    return folder / f".{path.name}.{secrets.token_hex(8)}.part"


def check_writable(path: str | os.PathLike[str]) -> None:
    """Check, before any long computation, that ``path`` can be created.

    A probe file with an unpredictable name is created exclusively beside ``path`` and
    removed at once.

    Raises
    ------
    FileNotFoundError
        If the folder of ``path`` does not exist.
    PermissionError, OSError
        If no file can be created there; the message names ``path``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    probe = _temporary_name(path)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise type(exc)(
            exc.errno, f"cannot write the output {path}: {exc.strerror or exc}"
        ) from None
    os.close(fd)
    os.unlink(probe)


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[IO[bytes]], Any],
    *,
    size: int | None = None,
    replace: bool = True,
) -> None:
    """Create ``path`` atomically: ``write(fh)`` fills a temporary sibling file that is
    renamed over ``path`` only once complete.

    The temporary file has an unpredictable name and is created exclusively (``O_EXCL``:
    a file or symbolic link planted there is never followed). On any error, Ctrl-C or
    SIGTERM it is removed and nothing is left behind.

    Parameters
    ----------
    path : str or path-like
        The destination; an existing file is replaced.
    write : callable
        Called once with the open binary file.
    size : int, optional
        About how many bytes ``write`` writes: a full disk's message gives it.
    replace : bool
        Whether an existing ``path`` is replaced; if False, a file that appeared at ``path``
        while this one was written is left as it is and an error raised.

    Raises
    ------
    FileNotFoundError
        If the destination folder does not exist.
    FileExistsError
        With ``replace=False``, when ``path`` exists by the time the file is complete.
    OSError
        If the file cannot be created or written; the message names ``path``.
    napari_zssr.io.errors.WriteFailure
        An OSError met while writing (a full disk, a folder made read-only or removed): one
        line with the path, the cause in words and, for a full disk, the space needed.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    tmp = _temporary_name(path)
    with sigterm_raises():
        try:
            fh = open(tmp, "xb")  # exclusive create, default permissions
        except OSError as exc:
            raise type(exc)(
                exc.errno, f"cannot write the output {path}: {exc.strerror or exc}"
            ) from None
        try:
            with fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            _move_into_place(tmp, path, replace)
        except BaseException as exc:
            full = _disk_full(folder, tmp, exc, size)  # while the partial file is there
            tmp.unlink(missing_ok=True)
            failure = _failure(path, exc, size, full)  # the free space without it
            if failure is not None:
                raise failure from exc
            raise


def _move_into_place(tmp: Path, path: Path, replace: bool) -> None:
    """Rename ``tmp`` to ``path``; without ``replace``, never over a file that exists (a
    hard link fails if ``path`` exists, atomically; where links are not allowed, a check
    just before the rename)."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(
            f"output exists: {path} (another run wrote it meanwhile; use --overwrite to replace it)"
        ) from None
    except OSError:  # a file system without hard links
        if path.exists():
            raise FileExistsError(
                f"output exists: {path} (use --overwrite to replace it)"
            ) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def _disk_full(folder: Path, tmp: Path, exc: BaseException, size: int | None) -> bool:
    """Whether ``exc``, met while writing ``tmp``, came from a full disk."""
    from .errors import disk_looks_full

    if not isinstance(exc, OSError) or not folder.is_dir():
        return False
    try:
        written = tmp.stat().st_size
    except OSError:
        written = 0
    missing = None if size is None else max(size - written, 1)
    return disk_looks_full(folder, exc, missing)


def _failure(path: Path, exc: BaseException, size: int | None, full: bool) -> Any:
    """The WriteFailure that ``exc`` (met while writing ``path``) becomes, or None."""
    from .errors import WriteFailure, write_failure

    if not isinstance(exc, OSError) or isinstance(exc, (WriteFailure, FileExistsError)):
        return None
    return write_failure(path, exc, needed=size, full=full)
