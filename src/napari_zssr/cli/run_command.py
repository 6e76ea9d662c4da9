"""``napari-zssr run``: the arguments become a :class:`~napari_zssr.pipeline.RunRequest`, the
pipeline runs it, and the result becomes a TIFF (pixel size divided by the scale, the run's
record in its metadata)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core.progress import Progress
from ..io import check_writable, read_tiff, write_tiff
from ..pipeline import (
    EstimateSpec,
    OpticsSpec,
    PSFFileSpec,
    RunRequest,
    RunResult,
    describe_noise,
    psf_voxel,
)
from .maps_output import check_map_paths, remove_quietly, resolution_line, write_maps
from .parser import UsageError
from .train_command import describe_network

__all__ = ["CLI_LABELS", "progress_bar", "request_from_args", "run_command"]

CLI_LABELS = {
    "scale": "--scale",
    "z_isotropic": "--z-isotropic",
    "z_ratio": "--z-ratio",
    "axial_fwhm_um": "--axial-fwhm",
    "pixel_size": "--pixel-size",
    "psf": "--psf FILE",
    "psf_file": "--psf",
    "psf_pixel_size": "--psf-pixel-size",
    "psf_is_kernel": "--psf-is-kernel",
    "na": "--na",
    "wavelength": "--emission",
    "immersion_index": "--immersion-index",
    "modality": "--modality",
    "noise_std": "--noise-std",
    "noise_model": "--noise-model",
    "preset": "--preset",
    "max_iters": "--max-iters",
    "stack_mode": "--stack-mode",
    "seed": "--seed",
    "device": "--device",
    "axes": "--axes",
    "model": "--model",
    "finetune": "--finetune",
    "maps": "--maps",
}
"""How the command line names each request parameter in error messages."""

_FORMAT_NAMES = {"imagej": "ImageJ hyperstack", "ome": "OME-TIFF", "shaped": "TIFF"}


def progress_bar(quiet: bool, desc: str) -> tuple[Callable[[Progress], None], Callable[[], None]]:
    """A tqdm bar (on stderr) driven by :class:`~napari_zssr.Progress` reports, and its closer."""
    from tqdm import tqdm

    bars: list[Any] = []

    def bar_() -> Any:
        # Opened at the first report, so that errors found before the work starts are not
        # printed behind a progress bar.
        if not bars:
            bars.append(
                tqdm(
                    total=100,
                    desc=desc,
                    disable=quiet,
                    unit="%",
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]",
                    file=sys.stderr,
                )
            )
        return bars[0]

    def update(p: Progress) -> None:
        bar = bar_()
        bar.n = round(100.0 * min(max(p.fraction, 0.0), 1.0), 1)
        where = f"plane {p.plane + 1}/{p.n_planes} " if p.n_planes > 1 else ""
        bar.set_description_str(f"{desc} {where}{p.stage}", refresh=False)
        post = {}
        if p.stage == "train":
            post["it"] = f"{p.iteration}/{p.max_iterations}"
        if p.loss is not None:
            post["loss"] = f"{p.loss:.4g}"
        bar.set_postfix(post, refresh=False)
        bar.refresh()

    def close() -> None:
        if not bars:
            return
        bar = bars[0]
        if bar.n < 100:
            bar.n = 100
            bar.refresh()
        bar.close()

    return update, close


def default_output(path: Path) -> Path:
    """``INPUT_zssr.tif`` beside the input."""
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(f"{name}_zssr.tif")


def check_paths(inp: Path, out: Path, overwrite: bool) -> None:
    """Refuse a missing input, a non-TIFF output name, overwriting the input or a file."""
    if not inp.is_file():
        raise FileNotFoundError(f"input file not found: {inp}")
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise ValueError(f"output must be a .tif or .tiff file, got {out}")
    if out.resolve() == inp.resolve() or (out.exists() and os.path.samefile(out, inp)):
        raise ValueError(f"output is the input file ({inp}); choose another output name")
    if out.is_dir():
        raise ValueError(f"output is a folder: {out}")
    if out.exists() and not overwrite:
        raise ValueError(f"output exists: {out} (use --overwrite to replace it)")
    if not out.resolve().parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {out.parent}")


def _scale(args: argparse.Namespace) -> tuple[float, float] | None:
    """(sy, sx) from --scale/--scale-y/--scale-x (1 on an axis not given), or None."""
    sy = sx = None
    if args.scale is not None:
        sy, sx = (args.scale[0], args.scale[0]) if len(args.scale) == 1 else args.scale
    sy = args.scale_y if args.scale_y is not None else sy
    sx = args.scale_x if args.scale_x is not None else sx
    if sy is None and sx is None:
        return None
    return (1.0 if sy is None else sy), (1.0 if sx is None else sx)


def _psf_spec(args: argparse.Namespace) -> PSFFileSpec | OpticsSpec | EstimateSpec | None:
    """The PSF options as a specification; flags without the option they qualify are refused."""
    estimate = args.psf is not None and args.psf.strip().lower() == "estimate"
    if (args.psf is None or estimate) and (args.psf_pixel_size is not None or args.psf_is_kernel):
        raise UsageError("--psf-pixel-size and --psf-is-kernel need --psf FILE")
    if (args.na is None) != (args.emission is None):
        raise UsageError("a model PSF needs both --na and --emission")
    if args.na is not None and args.psf is not None:
        raise UsageError("give either --psf FILE (or estimate) or --na/--emission, not both")
    if estimate:
        return EstimateSpec()
    if args.psf is not None:
        return PSFFileSpec(args.psf, args.psf_pixel_size, bool(args.psf_is_kernel))
    if args.na is not None:
        return OpticsSpec(args.na, args.emission, args.immersion_index, args.modality)
    return None


def request_from_args(args: argparse.Namespace) -> RunRequest:
    """The request the ``run`` arguments describe, without its source (read afterwards)."""
    overrides: dict[str, Any] = {}
    if args.max_iters is not None:
        overrides["max_iters"] = args.max_iters
    if args.one_jump:
        overrides["gradual_scales"] = ()
    return RunRequest(
        axes=args.axes,
        pixel_size=_pixel_size((None, None, None), args.pixel_size),
        scale=_scale(args),
        z_isotropic=bool(args.z_isotropic),
        axial_fwhm_um=args.axial_fwhm,
        psf=_psf_spec(args),
        preset=args.preset,
        overrides=overrides,
        noise_std=args.noise_std,
        noise_model=args.noise_model,
        device=args.device,
        seed=args.seed,
        stack_mode=args.stack_mode,
        model=getattr(args, "model", None),  # run only: 'train' makes a network
        finetune=getattr(args, "finetune", 0),
        maps=bool(getattr(args, "maps", False)),  # run only
        labels=CLI_LABELS,
    )


def _pixel_size(
    from_file: tuple[float | None, float | None, float | None], given: Sequence[float] | None
) -> tuple[float | None, float | None, float | None]:
    """Command-line pixel size ('XY', 'Y,X' or 'Z,Y,X') over the file's (z, y, x)."""
    if given is None:
        return from_file
    z, y, x = psf_voxel(given)  # same reading of 1, 2 or 3 values
    return (z if z is not None else from_file[0]), y, x


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


def command_line(argv: Sequence[str] | None) -> str:
    """The command as typed, for the record."""
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["napari-zssr", *args])


def run_command(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """The ``run`` subcommand: check, read, run, write."""
    from .batch_run import batch_command, is_batch

    if is_batch(args):  # several inputs, globs, OME-Zarr or a Dask cluster
        return batch_command(args, argv)
    inp = Path(args.input[0])
    out = Path(args.output) if args.output else default_output(inp)
    request = request_from_args(args)
    request.validate()  # the options, before reading a possibly large file
    for warning in request.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    check_paths(inp, out, args.overwrite)
    check_writable(out)  # before reading and training: a read-only folder fails at once
    maps = check_map_paths(out, lambda path: check_paths(inp, path, args.overwrite), args.maps)
    request, meta, result = read_and_run(args, request, inp)
    fmt = write_result_tiff(inp, out, result, meta, request, argv)
    try:
        written = write_maps(maps, result, out, command_line(argv)) if maps else []
    except BaseException:  # all files or none
        remove_quietly([out])
        raise
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


def run_record(inp: Path, out: Path, result: RunResult, argv: Sequence[str] | None) -> dict:
    """The run's record for the output's metadata: command, files, parameters, engine."""
    metadata = dict(result.record)
    metadata["command"] = command_line(argv)
    metadata["parameters"] = {"input": str(inp), "output": str(out), **metadata["parameters"]}
    return metadata


def write_result_tiff(
    inp: Path,
    out: Path,
    result: RunResult,
    meta: Any,
    request: RunRequest,
    argv: Sequence[str] | None,
) -> str:
    """Write the result as a TIFF (atomically) with the run's record; returns its format."""
    same_planes = result.axes == meta.axes and not request.z_isotropic
    return write_tiff(
        out,
        result.output,
        axes=result.axes,
        pixel_size=result.pixel_size,
        metadata=run_record(inp, out, result, argv),
        extra=carried_fields(meta.extra, same_planes),
    )


def with_input(request: RunRequest, args: argparse.Namespace, image: Any, meta: Any) -> RunRequest:
    """``request`` on ``image``: the axes and pixel size of the file's ``meta`` unless the
    command line gives them."""
    return request.replace(
        source=image,
        axes=args.axes or meta.axes,
        pixel_size=_pixel_size(meta.pixel_size, args.pixel_size),
    )


def read_and_run(
    args: argparse.Namespace, request: RunRequest, inp: Path
) -> tuple[RunRequest, Any, RunResult]:
    """Read ``inp`` into the request (axes and pixel size from the file unless given), check
    it again, and run it with a progress bar; the request, the file's metadata, the result."""
    from ..pipeline import run

    image, meta = read_tiff(inp)
    request = with_input(request, args, image, meta)
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
    return (
        f"wrote {out} ({shape} {result.axes}, {result.output.dtype}, "
        f"{_FORMAT_NAMES.get(fmt, fmt)}) in {seconds:.1f} s on {device}"
    )
