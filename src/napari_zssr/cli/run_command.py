"""``napari-zssr run``: the arguments become a :class:`~napari_zssr.pipeline.RunRequest`, the
input (a TIFF, or one scene of a CZI, ND2, LIF or OME-TIFF file) is read, the pipeline runs
it, and the result becomes a TIFF (pixel size divided by the scale, channel names kept, the
run's record in its metadata). Several inputs, OME-Zarr or a cluster go to :mod:`.batch_run`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..file_batch.progress import progress_bar
from ..file_batch.record import with_input, write_result_tiff
from ..io import check_writable
from ..io.claim import claim_outputs
from ..io.inputs import open_input
from ..io.outputs import check_tiff_output, output_for
from ..pipeline import EstimateSpec, RunRequest, RunResult, describe_noise, likely_harm
from .maps_output import check_map_paths, remove_quietly, resolution_line, write_maps
from .request_args import CLI_LABELS, command_line, request_from_args

__all__ = ["CLI_LABELS", "describe_network", "read_and_run", "run_command"]

_FORMAT_NAMES = {"imagej": "ImageJ hyperstack", "ome": "OME-TIFF", "shaped": "TIFF"}


def run_command(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """The ``run`` subcommand: check, read, run, write."""
    from .batch_run import batch_command, is_batch

    if is_batch(args):  # several inputs, globs, OME-Zarr or a Dask cluster
        return batch_command(args, argv)
    inp = Path(args.input[0])
    out = Path(args.output) if args.output else output_for(inp)
    request = request_from_args(args)
    request.validate()  # the options, before reading a possibly large file
    for warning in request.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    check_tiff_output(inp, out, args.overwrite)
    check_writable(out)  # before reading and training: a read-only folder fails at once
    maps = check_map_paths(
        out, lambda path: check_tiff_output(inp, path, args.overwrite), args.maps
    )
    with claim_outputs([out]):  # a second run with this output stops here, before training
        request, meta, result = read_and_run(args, request, inp)
        fmt = write_result_tiff(
            inp, out, result, meta, request, command_line(argv), args.scene,
            overwrite=bool(args.overwrite),
        )  # fmt: skip
        try:
            written = write_maps(maps, result, out, command_line(argv)) if maps else []
        except BaseException:  # all files or none
            remove_quietly([out])
            raise
    for note in likely_harm(result.info):  # even with --quiet: it is about the output
        print(f"warning: {note}", file=sys.stderr)
    if not args.quiet:
        print(_summary(out, result, fmt))
        if request.scale is not None and "noise_estimate" in result.info:
            print(f"noise on the training inputs: {describe_noise(result.info)}")
        if result.info.get("saved_network"):
            print(describe_network(result.info["saved_network"]))
        if written:
            print(f"quality maps: {', '.join(str(path) for path in written)}")
            print(resolution_line(result, request.pixel_size))
        if isinstance(request.psf, EstimateSpec):
            print(f"kernel: {result.psf['description']}")
    return 0


def describe_network(saved: dict[str, Any]) -> str:
    """The summary line of a run that applied a saved network (``info["saved_network"]``)."""
    tuned = saved.get("finetune") or 0
    how = f"fine-tuned {tuned} iterations per plane" if tuned else "applied as saved"
    return f"network: {saved['source']} ({saved['description']}), {how}"


def read_and_run(
    args: argparse.Namespace, request: RunRequest, inp: Path
) -> tuple[RunRequest, Any, RunResult]:
    """Read ``inp`` (its scene ``args.scene``) into the request (axes and pixel size from the
    file unless given), check it again, and run it with a progress bar; the request, the
    file's metadata, the result."""
    from ..pipeline import run

    image, meta = open_input(inp, args.scene)
    request = with_input(request, image, meta, args.axes, args.pixel_size)
    request.validate()
    update, close = progress_bar(args.quiet, "ZSSR")
    try:
        result = run(request, update)
    finally:
        close()
    return request, meta, result


def _summary(out: Path, result: RunResult, fmt: str) -> str:
    shape = "x".join(map(str, result.output.shape))
    device = result.info.get("device") or "?"
    seconds = result.record.get("seconds", 0.0)
    start = (result.info.get("config") or {}).get("init")
    started = f"; networks started from {start}" if start else ""
    return (
        f"wrote {out} ({shape} {result.axes}, {result.output.dtype}, "
        f"{_FORMAT_NAMES.get(fmt, fmt)}) in {seconds:.1f} s on {device}{started}"
    )
