"""The ``napari-zssr`` command line: super-resolve microscopy files, or try the bundled sample.

``napari-zssr run IN.tif -o OUT.tif --scale 2`` reads a TIFF (axes and pixel sizes from its
ImageJ or OME metadata; a CZI, ND2 or LIF file, or one scene of a file of several with
``--scene``, through bioio with the ``formats`` extra), runs zero-shot super-resolution, and
writes a TIFF whose pixel size is divided by the scale and whose metadata records every
parameter. ``napari-zssr demo`` opens
napari with the sample image and the widget, or, without a display, processes the sample and
writes the result, the input and a side-by-side comparison to a folder.

The command line only translates: arguments into a :class:`~napari_zssr.pipeline.RunRequest`
(whose checks give the error messages, naming the options), the
:class:`~napari_zssr.pipeline.RunResult` into a file. Every error a user can cause (a missing
file, bad numbers, an unreadable TIFF) ends the command with a one-line ``error: ...`` message
and a non-zero exit status.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any

from ..file_batch.errors import TasksFailed, UsageError
from ..io import Terminated, sigterm_raises
from ..pipeline.request import RequestError
from .demo import WIDGET_NAME, demo_command, has_display
from .parser import build_parser
from .run_command import run_command
from .train_command import train_command

__all__ = ["WIDGET_NAME", "UsageError", "build_parser", "main"]

_has_display = has_display  # the name the tests and older scripts use
_HANDLERS = {"run": run_command, "train": train_command, "demo": demo_command}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``napari-zssr`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 1 on a runtime error (bad file, unreadable data, a full disk, an output
        in use, tasks that kept failing), 2 on a usage error (bad options or values),
        130 when interrupted (Ctrl-C), 143 on SIGTERM. ``--help`` and ``--version`` exit
        through ``SystemExit(0)``.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        handler = _HANDLERS.get(getattr(args, "handler", None) or "")
        if handler is None:
            parser.print_help()
            return 2
        # SIGTERM unwinds like Ctrl-C (temporary files are removed); warnings print as one line
        with sigterm_raises(), warnings.catch_warnings():
            warnings.simplefilter("always", UserWarning)
            warnings.showwarning = _show_warning
            return int(handler(args, argv))
    except (UsageError, RequestError) as exc:
        _error(exc)
        return 2
    except (ValueError, TypeError, OSError, ImportError, TasksFailed) as exc:
        _error(exc)
        return 1
    except MemoryError as exc:
        _error(MemoryError(f"out of memory ({exc or 'allocation failed'})"))
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; no output was written", file=sys.stderr)
        return 130
    except Terminated:
        print("error: terminated (SIGTERM); no output was written", file=sys.stderr)
        return 143


def _show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    """Print a Python warning as ``warning: <message>`` on one line to stderr."""
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


def _error(exc: BaseException) -> None:
    """Print ``error: <message>`` on one line to stderr."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in message:
        message = f"{message}: {exc.filename}"
    print(f"error: {message}", file=sys.stderr)
