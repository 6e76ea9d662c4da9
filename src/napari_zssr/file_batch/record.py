"""One file's request and record: the input's axes and pixel size into the request, the
run's record (command, files, parameters) into the output, a TIFF result written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io import write_tiff
from ..pipeline import RunRequest, RunResult, psf_voxel

__all__ = ["carried_fields", "pixel_size_over", "run_record", "with_input", "write_result_tiff"]


def pixel_size_over(
    from_file: tuple[float | None, float | None, float | None], given: Sequence[float] | None
) -> tuple[float | None, float | None, float | None]:
    """A given pixel size ('XY', 'Y,X' or 'Z,Y,X', micrometres) over the file's (z, y, x)."""
    if given is None:
        return from_file
    z, y, x = psf_voxel(given)  # same reading of 1, 2 or 3 values
    return (z if z is not None else from_file[0]), y, x


def with_input(
    request: RunRequest,
    image: Any,
    meta: Any,
    axes: str | None,
    pixel_size: Sequence[float] | None,
) -> RunRequest:
    """``request`` on ``image``: the axes and pixel size of the file's ``meta`` unless
    ``axes`` and ``pixel_size`` (the user's, micrometres) give them."""
    return request.replace(
        source=image,
        axes=axes or meta.axes,
        pixel_size=pixel_size_over(meta.pixel_size, pixel_size),
    )


def carried_fields(extra: dict[str, Any], same_planes: bool) -> dict[str, Any]:
    """The input file's ImageJ/OME fields for the output (see ``TiffMeta.extra``).

    Per-slice labels only fit when the result has the same planes in the same order (not
    after ``--z-isotropic``, or after the axes were rearranged).
    """
    if same_planes:
        return extra
    return {
        flavour: {k: v for k, v in fields.items() if k != "Labels"}
        for flavour, fields in extra.items()
    }


def run_record(
    inp: Path, out: Path, result: RunResult, command: str, scene: int | str | None = None
) -> dict:
    """The run's record for the output's metadata: command, files (and the ``scene`` of the
    input that was read, where one was chosen), parameters, engine."""
    metadata = dict(result.record)
    metadata["command"] = command
    files: dict[str, Any] = {"input": str(inp), "output": str(out)}
    if scene is not None:
        files["scene"] = str(scene)
    metadata["parameters"] = {**files, **metadata["parameters"]}
    return metadata


def write_result_tiff(
    inp: Path,
    out: Path,
    result: RunResult,
    meta: Any,
    request: RunRequest,
    command: str,
    scene: int | str | None = None,
    overwrite: bool = True,
) -> str:
    """Write the result as a TIFF (atomically) with the run's record (``scene``: the scene of
    the input that was read, if one was chosen); returns its format.

    Without ``overwrite`` a file that appeared at ``out`` during the run is kept
    (FileExistsError)."""
    same_planes = result.axes == meta.axes and not request.z_isotropic
    return write_tiff(
        out,
        result.output,
        axes=result.axes,
        pixel_size=result.pixel_size,
        metadata=run_record(inp, out, result, command, scene),
        extra=carried_fields(meta.extra, same_planes),
        overwrite=overwrite,
    )
