"""``napari-zssr run --maps``: the quality maps as TIFF files beside the output, and the
resolution line of the summary.

``OUT.tif`` gets ``OUT_spread.tif``, ``OUT_consistency.tif`` and ``OUT_added.tif`` (float32, the
output's axes and pixel size, what the map shows in their metadata). Their names are checked
with the output's, before the input is read; they are written through the same atomic TIFF
writer, and a failure removes those already written, so that a failed run leaves no file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._version import __version__
from ..io import write_tiff
from ..io.outputs import TIFF_SUFFIXES, split_suffix
from ..pipeline import MAP_MEANINGS, RunResult, describe_resolution

__all__ = ["map_paths", "remove_quietly", "resolution_line", "write_maps"]


def map_paths(out: Path) -> dict[str, Path]:
    """``OUT_<map>.tif`` beside ``out`` for every map, keeping the output's TIFF suffix."""
    name, suffix = split_suffix(out.name, TIFF_SUFFIXES) or (out.name, "")
    return {key: out.with_name(f"{name}_{key}{suffix}") for key in MAP_MEANINGS}


def check_map_paths(out: Path, check: Callable[[Path], None], wanted: bool) -> dict[str, Path]:
    """The map files of a run with ``--maps`` (none without), each checked by ``check``."""
    if not wanted:
        return {}
    paths = map_paths(out)
    for path in paths.values():
        check(path)
    return paths


def remove_quietly(paths: list[Path]) -> None:
    """Remove files this run wrote (after a later failure); a missing one is no error."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def write_maps(paths: Mapping[str, Path], result: RunResult, out: Path, command: str) -> list[Path]:
    """Write each map of ``result`` to its path; all or none.

    Parameters
    ----------
    paths : mapping
        Map name to file (:func:`map_paths`).
    result : RunResult
        A run with ``extra["maps"]`` (arrays in the output's layout).
    out : Path
        The output file the maps belong to (recorded in their metadata).
    command : str
        The command line, for the record.

    Returns
    -------
    list of Path
        The files written.
    """
    maps = result.extra["maps"]
    written: list[Path] = []
    try:
        for name, path in paths.items():
            metadata: dict[str, Any] = {
                "software": "napari-zssr",
                "version": __version__,
                "map": name,
                "shows": MAP_MEANINGS[name],
                "unit": "input intensity",
                "output": str(out),
                "command": command,
                "consistency": result.info.get("consistency"),
                "resolution": result.info.get("resolution"),
            }
            write_tiff(
                path,
                maps[name],
                axes=result.axes,
                pixel_size=result.pixel_size,
                metadata=metadata,
            )
            written.append(path)
    except BaseException:
        remove_quietly(written)
        raise
    return written


def resolution_line(result: RunResult, pixel_size: tuple[float | None, ...]) -> str:
    """``resolution 0.31 um -> 0.24 um (bicubic upscale ...)``; in px without a pixel size.

    ``pixel_size`` is the input's ``(z, y, x)`` in micrometres.
    """
    lateral = [v for v in pixel_size[1:] if v is not None]
    pixel = sum(lateral) / len(lateral) if lateral else None
    scale = float((result.info.get("scale") or [1.0, 1.0])[-1])
    return f"resolution {describe_resolution(result.info.get('resolution'), pixel, 'um', scale)}"
