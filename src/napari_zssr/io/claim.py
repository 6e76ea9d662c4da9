"""An output claimed by one run at a time.

Before any training a run creates ``.<name>.zssr-claim`` beside its output, exclusively
(``O_CREAT | O_EXCL``: of two runs only one succeeds), holding its process id, host and start
time; the claim is removed when the run ends, on an error, Ctrl-C or SIGTERM too. A second run
with the same output finds the claim and stops with :class:`~napari_zssr.io.errors.OutputInUse`
(with ``--overwrite`` too: an output being written is never replaced under its writer). A claim
left by a run that was killed outright (its process no longer lives on this host) is taken
over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import OutputInUse

__all__ = ["claim_file", "claim_outputs"]


def claim_file(output: str | os.PathLike[str]) -> Path:
    """The claim file of ``output``: ``.<name>.zssr-claim`` in the same folder."""
    out = Path(output)
    name = out.name or out.resolve().name
    return out.parent / f".{name}.zssr-claim"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return True
    return True


def _holder(claim: Path) -> dict:
    try:
        return dict(json.loads(claim.read_text()))
    except (OSError, ValueError, TypeError):
        return {}


def _stale(holder: dict) -> bool:
    """Whether the claim's run is gone: its process is not alive on this host."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    return pid != os.getpid() and not _alive(pid)


def _take(output: Path, claim: Path) -> None:
    """Create ``claim`` exclusively (once more after removing a stale one)."""
    record = json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    ).encode()
    for attempt in (0, 1):
        try:
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _holder(claim)
            if attempt == 0 and _stale(holder):
                claim.unlink(missing_ok=True)
                continue
            raise _in_use(output, claim, holder) from None
        except FileNotFoundError:
            return  # no folder: the output checks that follow say so
        except OSError:
            return  # a folder where nothing can be created: the writable check says so
        try:
            os.write(fd, record)
        finally:
            os.close(fd)
        return


def _in_use(output: Path, claim: Path, holder: dict) -> OutputInUse:
    who = ""
    if holder.get("pid"):
        since = time.strftime("%H:%M:%S", time.localtime(float(holder.get("started", 0))))
        who = f" by process {holder['pid']} on {holder.get('host', '?')} since {since}"
    return OutputInUse(
        f"output in use: {output} is being written{who}; wait for that run to end, choose "
        f"another output, or remove {claim} if no run is writing it",
        path=output,
        cause="in use",
    )


@contextlib.contextmanager
def claim_outputs(outputs: Sequence[str | os.PathLike[str]]) -> Iterator[None]:
    """Claim every output for the block; the claims are removed when it ends (whatever way).

    Raises
    ------
    napari_zssr.io.errors.OutputInUse
        When another living run claims one of them; the claims taken so far are released.
    """
    taken: list[Path] = []
    try:
        for output in outputs:
            claim = claim_file(output)
            _take(Path(output), claim)
            if _holder(claim).get("pid") == os.getpid():
                taken.append(claim)
        yield
    finally:
        for claim in taken:
            if _holder(claim).get("pid") == os.getpid():
                claim.unlink(missing_ok=True)
