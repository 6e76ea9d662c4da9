"""The errors of faults met in the middle of a run: a plane that cannot be read, an output
that cannot be written, an output another run is writing.

Each is an :class:`OSError` (the command line ends with exit status 1 and one line) whose
message names the file, the plane where one is known, and the cause in words; the original
error is chained (``__cause__``). No file is opened here.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

__all__ = [
    "OutputInUse",
    "ReadFailure",
    "RunFault",
    "WriteFailure",
    "WritePermissionFailure",
    "cause_in_words",
    "describe_plane",
    "disk_looks_full",
    "human_bytes",
    "space_note",
    "write_failure",
]

#: errno values and how a message says them.
_WORDS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "input/output error",
    errno.ENOENT: "file or folder removed",
}


class RunFault(OSError):
    """A fault during a run: ``path`` (the file), ``plane`` (a stack index or None),
    ``cause`` (the cause in words)."""

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        plane: Any = None,
        cause: str = "",
        errno_: int | None = None,
    ) -> None:
        super().__init__(message)
        self.errno = errno_
        self.path = None if path is None else str(path)
        self.plane = plane
        self.cause = cause

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def set_note(self, text: str) -> None:
        """End the one-line message with ``text`` (e.g. how to resume), in place of an
        earlier note."""
        base = getattr(self, "_base", None)
        if base is None:
            base = self._base = str(self)
        self.args = (f"{base}; {text}",)


class ReadFailure(RunFault):
    """An input that stopped being readable during a run (a damaged chunk, a truncated or
    vanished file)."""


class WriteFailure(RunFault):
    """An output that could not be written (a full disk, a read-only or removed folder, no
    permission)."""


class WritePermissionFailure(WriteFailure, PermissionError):
    """A :class:`WriteFailure` for lack of permission (a read-only folder, file system or
    store); also a :class:`PermissionError`."""


class OutputInUse(RunFault):
    """An output that another run is writing (its claim file exists and its process lives)."""


def cause_in_words(exc: BaseException, folder: str | os.PathLike[str] | None = None) -> str:
    """The cause of ``exc`` in a few words (``"no space left on device"``, ...).

    ``folder``: where the file was being written; a folder that is gone reads as
    ``"folder removed"``.
    """
    if folder is not None and not Path(folder).is_dir():
        return "folder removed"
    code = getattr(exc, "errno", None)
    if code in _WORDS:
        return _WORDS[code]
    text = " ".join(str(getattr(exc, "strerror", None) or exc).split())
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def human_bytes(n: float) -> str:
    """``n`` bytes as ``"1.5 MB"`` (powers of 1000)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def space_note(folder: str | os.PathLike[str], needed: int | None) -> str:
    """``"the output needs about 1.2 MB; 150.7 kB free on /tmp"`` (parts that are unknown
    left out), for a message about a full disk."""
    parts = []
    if needed:
        parts.append(f"the output needs about {human_bytes(needed)}")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if free is not None:
        parts.append(f"{human_bytes(free)} free in {folder}")
    return "; ".join(parts)


def describe_plane(plane: Any) -> str:
    """A stack index as a message says it: ``"plane 3"``, ``"plane (0, 2)"``, ``"the plane"``."""
    if plane is None or plane == ():
        return "the plane"
    if isinstance(plane, tuple) and len(plane) == 1:
        plane = plane[0]
    return f"plane {plane}"


def write_failure(
    path: str | os.PathLike[str],
    exc: BaseException,
    *,
    needed: int | None = None,
    plane: Any = None,
    what: str = "the output",
    full: bool = False,
) -> WriteFailure:
    """The :class:`WriteFailure` of ``exc`` met while writing ``path``: one line with the
    path, the plane (if given) and the cause in words; for a full disk also the bytes the
    output needs (``needed``) and those free. ``full``: the caller found the disk full (a
    writer that says only "N requested and M written" gives no errno). Raise it
    ``from exc``."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    cause = cause_in_words(exc, folder)
    if getattr(exc, "errno", None) == errno.ENOENT:  # written into a folder that is gone
        cause = "folder removed"
    if full and cause != "folder removed":
        cause = _WORDS[errno.ENOSPC]
    where = f" ({describe_plane(plane)})" if plane is not None else ""
    message = f"cannot write {what} {path}{where}: {cause}"
    if cause in (_WORDS[errno.ENOSPC], _WORDS[errno.EDQUOT]):
        note = space_note(folder, needed)
        message += f" ({note})" if note else ""
    code = getattr(exc, "errno", None)
    if cause == "permission denied" or isinstance(exc, PermissionError):
        cls: type[WriteFailure] = WritePermissionFailure
    else:
        cls = WriteFailure
    return cls(message, path=path, plane=plane, cause=cause, errno_=code)


def disk_looks_full(
    folder: str | os.PathLike[str], exc: BaseException, missing: int | None
) -> bool:
    """Whether ``exc`` (met writing in ``folder``) came from a full disk: ENOSPC/EDQUOT, or
    a short write with less free space left than the ``missing`` bytes still to write."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    if getattr(exc, "errno", None) is not None:
        return False
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return False
    return free == 0 or (missing is not None and free < missing)
