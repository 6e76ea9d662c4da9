"""The ``napari-zssr`` command line: super-resolve TIFF files, or try the bundled sample.

``napari-zssr run IN.tif -o OUT.tif --scale 2`` reads a TIFF (axes and pixel sizes from its
ImageJ or OME metadata), runs zero-shot super-resolution, and writes a TIFF whose pixel size is
divided by the scale and whose metadata records every parameter. ``napari-zssr demo`` opens
napari with the sample image and the widget, or, without a display, processes the sample and
writes the result, the input and a side-by-side comparison to a folder.

Every error a user can cause (a missing file, bad numbers, an unreadable TIFF) ends the command
with a one-line ``error: ...`` message and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import __version__
from .core.config import MAX_NOISE_STD, PRESETS, resolve_config
from .core.progress import Progress
from .io import (
    Terminated,
    atomic_write,
    check_writable,
    read_tiff,
    sigterm_raises,
    write_tiff,
)

__all__ = ["build_parser", "main"]

_MAX_SCALE = 16.0
_STACK_MODES = ("per_plane", "shared")
_DEVICE_HELP = "auto (default), cpu, cuda, cuda:N or mps"
_PLAUSIBLE_UM = (1e-3, 1e3)  # pixel sizes from 1 nm to 1 mm, in micrometres
_FORMAT_NAMES = {"imagej": "ImageJ hyperstack", "ome": "OME-TIFF", "shaped": "TIFF"}
WIDGET_NAME = "ZSSR super-resolution"
"""Display name of the plugin's dock widget in the napari manifest."""


class UsageError(Exception):
    """A command-line mistake, reported in one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """Argument parser that raises :class:`UsageError` instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- argument types


def _parse_numbers(text: str, what: str, counts: tuple[int, ...]) -> tuple[float, ...]:
    """Split ``"2"``, ``"2,3"`` or ``"2x3"`` into positive finite floats."""
    parts = [p for p in text.replace("x", ",").replace("X", ",").split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be numbers, got {text!r}") from None
    if len(values) not in counts:
        allowed = " or ".join(str(c) for c in counts)
        raise argparse.ArgumentTypeError(
            f"{what} takes {allowed} comma-separated value(s), got {text!r}"
        )
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"{what} must be positive, got {text!r}")
    return values


def _scale_type(text: str) -> tuple[float, ...]:
    return _parse_numbers(text, "scale", (1, 2))


def _size_type(text: str) -> tuple[float, ...]:
    return _parse_numbers(text, "pixel size", (1, 2, 3))


def _float_type(text: str) -> float:
    return _parse_numbers(text, "value", (1,))[0]


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (np.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _noise_type(text: str) -> float | str:
    if text.strip().lower() == "auto":
        return "auto"
    value = _nonneg_float(text)
    if value > MAX_NOISE_STD:
        raise argparse.ArgumentTypeError(f"must be in [0, {MAX_NOISE_STD}] or 'auto', got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """Build the ``napari-zssr`` argument parser (subcommands ``run`` and ``demo``).

    Returns
    -------
    argparse.ArgumentParser
        Its ``error`` raises :class:`UsageError` rather than exiting.
    """
    parser = _Parser(
        prog="napari-zssr",
        description="Zero-shot super-resolution (ZSSR) of microscopy images.",
        epilog="Run 'napari-zssr run --help' or 'napari-zssr demo --help' for details.",
    )
    parser.add_argument("--version", action="version", version=f"napari-zssr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{run,demo}")

    run = sub.add_parser(
        "run",
        help="super-resolve a TIFF file",
        description=(
            "Super-resolve INPUT (TIFF, ImageJ hyperstack or OME-TIFF) and write a TIFF whose "
            "Y/X pixel size is divided by the scale. Leading axes (T, Z, ...) are processed "
            "plane by plane, a C axis as channels of one network, RGB jointly."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    run.add_argument("input", metavar="INPUT", help="input TIFF file")
    run.add_argument(
        "-o",
        "--output",
        metavar="OUTPUT",
        help="output TIFF file (default: INPUT_zssr.tif beside the input)",
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    scale = run.add_argument_group("scale")
    scale.add_argument(
        "-s",
        "--scale",
        type=_scale_type,
        metavar="S",
        help=f"upscaling factor in (1, {_MAX_SCALE:g}], or 'SY,SX' for different Y and X factors",
    )
    scale.add_argument("--scale-y", type=_float_type, metavar="SY", help="Y factor (overrides)")
    scale.add_argument("--scale-x", type=_float_type, metavar="SX", help="X factor (overrides)")
    scale.add_argument(
        "--z-isotropic",
        action="store_true",
        help="also upsample Z to the lateral pixel size (needs Z and X pixel sizes)",
    )
    scale.add_argument(
        "--axial-fwhm",
        type=_float_type,
        metavar="UM",
        help="with --z-isotropic: FWHM in micrometres of the axial blur beyond the lateral one "
        "(default: only the integration over one Z step)",
    )

    image = run.add_argument_group("image")
    image.add_argument(
        "--axes",
        metavar="AXES",
        help="axes of INPUT, e.g. TZCYX or YXS (default: from the file's metadata)",
    )
    image.add_argument(
        "--pixel-size",
        type=_size_type,
        metavar="UM",
        help="pixel size in micrometres: 'XY', 'Y,X' or 'Z,Y,X' (default: from the file)",
    )

    psf = run.add_argument_group("point-spread function")
    psf.add_argument(
        "--psf",
        metavar="FILE",
        help="PSF (.tif, .npy: 2D or a 3D bead stack; .mat) used as the downscaling kernel",
    )
    psf.add_argument(
        "--psf-pixel-size",
        type=_size_type,
        metavar="UM",
        help="pixel size of the PSF file in micrometres: 'XY', 'Y,X' or 'Z,Y,X'",
    )
    psf.add_argument(
        "--psf-is-kernel",
        action="store_true",
        help="the PSF file already is the kernel on the output (high-resolution) pixel grid",
    )
    psf.add_argument(
        "--na",
        type=_float_type,
        metavar="NA",
        help="model PSF: numerical aperture (with --emission)",
    )
    psf.add_argument(
        "--emission", type=_float_type, metavar="UM", help="model PSF: emission wavelength in um"
    )
    psf.add_argument(
        "--immersion-index",
        type=_float_type,
        default=1.515,
        metavar="N",
        help="model PSF: refractive index of the immersion medium (oil 1.515, water 1.33)",
    )
    psf.add_argument(
        "--modality",
        choices=("widefield", "confocal"),
        default="widefield",
        help="model PSF: microscope type",
    )

    train = run.add_argument_group("training")
    train.add_argument("--preset", choices=sorted(PRESETS), default="balanced")
    train.add_argument(
        "--noise-std",
        type=_noise_type,
        metavar="X",
        help="Gaussian noise added to the low-resolution training inputs, as a fraction of "
        "the intensity range, or 'auto': the image's own noise level, estimated. Default: auto, "
        "except 0 with the paper presets (their published setting) and with --z-isotropic; "
        "0 turns it off",
    )
    train.add_argument("--max-iters", type=_positive_int, metavar="N", help="cap on iterations")
    train.add_argument(
        "--one-jump",
        action="store_true",
        help="reach a factor above 2 in one step (faster; by default the presets go through "
        "x2 and x4 first, which gave about 1.5 dB more on Set5 x4)",
    )
    train.add_argument(
        "--stack-mode",
        choices=_STACK_MODES,
        default="shared",
        help="shared (default): one network trained on the whole stack, fine-tuned briefly "
        "on each plane; per_plane: a network from scratch for every plane (slower)",
    )
    train.add_argument("--device", default="auto", metavar="DEVICE", help=_DEVICE_HELP)
    train.add_argument("--seed", type=int, default=0, metavar="N", help="random seed")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    run.set_defaults(handler=_run)

    demo = sub.add_parser(
        "demo",
        help="try ZSSR on the bundled sample image",
        description=(
            "With a display and napari installed, open napari with the sample image and the "
            "ZSSR widget. Headless (or with --headless), super-resolve the sample x2 and write "
            "the result, the input and a side-by-side PNG to a folder."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--headless", action="store_true", help="no window: process and save")
    demo.add_argument("--output", default="zssr-demo", metavar="DIR", help="output folder")
    demo.add_argument("--preset", choices=sorted(PRESETS), default="fast")
    demo.add_argument("--max-iters", type=_positive_int, metavar="N", help="cap on iterations")
    demo.add_argument("--device", default="auto", metavar="DEVICE", help=_DEVICE_HELP)
    demo.add_argument("--seed", type=int, default=0, metavar="N", help="random seed")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(handler=_demo)
    return parser


# --------------------------------------------------------------------------- helpers


def _progress_bar(quiet: bool, desc: str) -> tuple[Callable[[Progress], None], Callable[[], None]]:
    """A tqdm bar (on stderr) driven by engine :class:`Progress` reports, and its closer."""
    from tqdm import tqdm

    bar = tqdm(
        total=100,
        desc=desc,
        disable=quiet,
        unit="%",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]",
        file=sys.stderr,
    )

    def update(p: Progress) -> None:
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
        if bar.n < 100:
            bar.n = 100
            bar.refresh()
        bar.close()

    return update, close


def _default_output(path: Path) -> Path:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(f"{name}_zssr.tif")


def _check_paths(inp: Path, out: Path, overwrite: bool) -> None:
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


def _warn_pixel_size(option: str, values: tuple[float, ...] | None) -> None:
    """Warn (one line on stderr) about a pixel size outside 1 nm to 1 mm: likely a unit slip."""
    if values is None:
        return
    odd = [v for v in values if not _PLAUSIBLE_UM[0] <= v <= _PLAUSIBLE_UM[1]]
    if odd:
        print(
            f"warning: {option} {odd[0]:g} um is outside the usual microscopy range "
            f"(0.001 to 1000 um, 1 nm to 1 mm); the option takes micrometres",
            file=sys.stderr,
        )


def _carried_fields(extra: dict[str, Any], same_planes: bool) -> dict[str, Any]:
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


def _resolve_scale(args: argparse.Namespace) -> tuple[float, float] | None:
    """(sy, sx) from --scale/--scale-y/--scale-x, or None when no lateral scale was asked for."""
    sy = sx = None
    if args.scale is not None:
        sy, sx = (args.scale[0], args.scale[0]) if len(args.scale) == 1 else args.scale
    sy = args.scale_y if args.scale_y is not None else sy
    sx = args.scale_x if args.scale_x is not None else sx
    if sy is None and sx is None:
        if not args.z_isotropic:
            raise UsageError("give --scale (e.g. --scale 2) and/or --z-isotropic")
        return None
    sy = 1.0 if sy is None else sy
    sx = 1.0 if sx is None else sx
    for name, s in (("Y", sy), ("X", sx)):
        if not 1.0 <= s <= _MAX_SCALE:
            raise ValueError(f"{name} scale must be between 1 and {_MAX_SCALE:g}, got {s:g}")
    if sy == 1.0 and sx == 1.0:
        raise ValueError("scale must be greater than 1 on at least one axis")
    return float(sy), float(sx)


def _layout(image: np.ndarray, axes: str) -> tuple[np.ndarray, str, int | None, bool]:
    """Check ``axes`` against ``image`` and derive what the engine needs.

    Returns the (possibly reordered) image and axes, the channel axis (None when there is no
    ``C``) and whether the last axis holds RGB(A) samples. A sample axis ``S`` is moved last;
    one that is not RGB (not 3 or 4 long) is treated as channels, in front of Y and X.
    """
    axes = axes.upper()
    if len(axes) != image.ndim:
        raise ValueError(
            f"axes {axes!r} name {len(axes)} dimensions but the image has {image.ndim} "
            f"(shape {image.shape}); pass --axes with one letter per dimension"
        )
    if len(set(axes)) != len(axes) or not {"Y", "X"} <= set(axes):
        raise ValueError(f"axes {axes!r} must name each dimension once and include Y and X")
    rgb = False
    if "S" in axes:
        if axes[-1] != "S":  # planar (separated) samples: make them interleaved
            image = np.moveaxis(image, axes.index("S"), -1)
            axes = axes.replace("S", "") + "S"
        if image.shape[-1] in (3, 4) and "C" not in axes:
            rgb = True
        elif "C" in axes:
            raise ValueError(f"axes {axes!r} have both C and a non-RGB S axis")
        else:
            image = np.moveaxis(image, -1, -3)
            axes = axes[:-3] + "C" + axes[-3:-1]
    plane = axes[:-1] if rgb else axes
    if not plane.endswith("YX"):
        raise ValueError(
            f"Y and X must be the last axes (before an RGB S axis), got {axes!r}; "
            "reorder the file or pass --axes"
        )
    channel_axis = axes.index("C") if "C" in axes else None
    return image, axes, channel_axis, rgb


def _merge_pixel_size(
    from_file: tuple[float | None, float | None, float | None], given: tuple[float, ...] | None
) -> tuple[float | None, float | None, float | None]:
    """Command-line pixel size ('XY', 'Y,X' or 'Z,Y,X') over the file's (z, y, x)."""
    z, y, x = from_file
    if given is None:
        return z, y, x
    if len(given) == 1:
        return z, given[0], given[0]
    if len(given) == 2:
        return z, given[0], given[1]
    return given[0], given[1], given[2]


def _kernel(
    args: argparse.Namespace,
    image_yx: tuple[float | None, float | None],
    scale: tuple[float, float],
    plane_shape: tuple[int, ...],
) -> tuple[np.ndarray, str, dict[str, Any]]:
    """The 2D downscaling kernel on the output grid from ``--psf`` or ``--na``/``--emission``.

    Returns the kernel, a one-line description and the JSON-able parameters of its source.
    """
    from .core import psf as psf_module

    py, px = image_yx
    image_size = px if py == px else (py, px)
    common = {"image_pixel_size": image_size, "scale": scale, "image_shape": plane_shape}
    if args.psf is None:  # optics
        if px is None:
            raise ValueError(
                "--na/--emission need the image pixel size: pass --pixel-size UM or use a "
                "file that records it"
            )
        result = psf_module.kernel_from_optics(
            na=args.na,
            wavelength=args.emission,
            ni=args.immersion_index,
            modality=args.modality,
            **common,
        )
        return np.asarray(result.kernel, np.float64), result.description, dict(result.source)

    path = Path(args.psf)
    if not path.is_file():
        raise FileNotFoundError(f"PSF file not found: {path}")
    array, file_size = psf_module.load_psf_file(path)
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise ValueError(f"the PSF must be 2D or 3D, {path} holds shape {array.shape}")
    if args.psf_is_kernel:
        if array.ndim != 2:
            raise ValueError("--psf-is-kernel needs a 2D kernel, the file holds a 3D stack")
        note = f"kernel from {path.name} (used as given, HR grid)"
        return array.astype(np.float64), note, {"kind": "kernel file", "path": str(path)}
    psf_size = _psf_voxel(args.psf_pixel_size, file_size)
    if psf_size is None or px is None:
        missing = "the PSF pixel size (--psf-pixel-size UM)" if psf_size is None else ""
        if px is None:
            missing += (" and " if missing else "") + "the image pixel size (--pixel-size UM)"
        raise ValueError(
            f"--psf needs {missing} to resample the PSF onto the output grid, or "
            "--psf-is-kernel if the file already is the kernel on the output "
            "(high-resolution) pixel grid"
        )
    if array.ndim == 2:
        result = psf_module.kernel_from_psf(array, psf_pixel_size=psf_size[1:], **common)
    else:  # a bead stack: background, bead detection and in-focus plane are handled there
        voxel = psf_size if psf_size[0] is not None else psf_size[1:]
        result = psf_module.kernel_from_bead_stack(array, voxel_size=voxel, **common)
    source = {"path": str(path), **dict(result.source)}
    return np.asarray(result.kernel, np.float64), result.description, source


def _psf_voxel(
    given: tuple[float, ...] | None, from_file: Any
) -> tuple[float | None, float, float] | None:
    """(z, y, x) PSF voxel size in micrometres from the command line or the file, or None."""
    if given is not None:
        if len(given) == 1:
            return None, given[0], given[0]
        if len(given) == 2:
            return None, given[0], given[1]
        return given[0], given[1], given[2]
    if from_file is None:
        return None
    values = [float(from_file)] if np.isscalar(from_file) else [float(v) for v in from_file]
    if len(values) == 1:
        return None, values[0], values[0]
    if len(values) == 2:
        return None, values[0], values[1]
    return values[-3], values[-2], values[-1]


def _isotropic(
    image: np.ndarray,
    axes: str,
    rgb: bool,
    z_ratio: float,
    axial_fwhm_px: float | None,
    args: argparse.Namespace,
    config: Any,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Upsample Z by ``z_ratio`` in every (Z, Y, X) volume, channels (C or RGB) jointly."""
    from dataclasses import replace

    from .isotropic import isotropic_z

    channel = axes.index("C") if "C" in axes else (image.ndim - 1 if rgb else None)
    core = [axes.index("Z"), axes.index("Y"), axes.index("X")]
    if channel is not None:
        core.insert(0, channel)
    others = [i for i in range(image.ndim) if i not in core]
    order = others + core
    moved = np.transpose(image, order)
    lead = moved.shape[: len(others)]
    volumes = moved.reshape((-1, *moved.shape[len(others) :]))
    update, close = _progress_bar(args.quiet, "Z")
    outs, infos = [], []
    try:
        for k, volume in enumerate(volumes):

            def report(p: Progress, k: int = k) -> None:
                update(replace(p, fraction=(k + p.fraction) / len(volumes)))

            out, info = isotropic_z(
                volume,
                z_ratio,
                axial_fwhm=axial_fwhm_px,
                channel_axis=0 if channel is not None else None,
                preset=args.preset,
                config=config,
                device=args.device,
                seed=args.seed,
                callback=report,
                return_info=True,
            )
            outs.append(out)
            infos.append(info)
    finally:
        close()
    stacked = np.stack(outs).reshape((*lead, *outs[0].shape))
    return np.transpose(stacked, np.argsort(order)), {"z_ratio": z_ratio, "runs": infos}


def _config(args: argparse.Namespace, noise: bool = False) -> Any:
    """The preset with ``--max-iters`` and ``--one-jump`` (and ``--noise-std`` when
    ``noise``) applied, or None when nothing overrides the preset."""
    overrides: dict[str, Any] = {"max_iters": args.max_iters}
    if getattr(args, "one_jump", False):
        overrides["gradual_scales"] = ()
    if noise:
        overrides["noise_std"] = getattr(args, "noise_std", None)
    if all(v is None for v in overrides.values()):
        return None
    return resolve_config(args.preset, **overrides)


def _command_line(argv: Sequence[str] | None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["napari-zssr", *args])


# --------------------------------------------------------------------------- subcommands


def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """The ``run`` subcommand."""
    t0 = time.perf_counter()
    inp = Path(args.input)
    out = Path(args.output) if args.output else _default_output(inp)
    scale = _resolve_scale(args)
    _check_paths(inp, out, args.overwrite)
    if args.psf is None and (args.psf_pixel_size is not None or args.psf_is_kernel):
        raise UsageError("--psf-pixel-size and --psf-is-kernel need --psf FILE")
    if args.psf_is_kernel and args.psf_pixel_size is not None:
        raise UsageError("--psf-is-kernel and --psf-pixel-size contradict each other")
    if (args.na is None) != (args.emission is None):
        raise UsageError("a model PSF needs both --na and --emission")
    if args.na is not None and args.psf is not None:
        raise UsageError("give either --psf FILE or --na/--emission, not both")
    if args.axial_fwhm is not None and not args.z_isotropic:
        raise UsageError("--axial-fwhm applies to --z-isotropic only")
    if args.z_isotropic and args.noise_std == "auto":
        raise UsageError("--noise-std auto is not available with --z-isotropic; give a number")

    check_writable(out)  # before reading and training: a read-only folder fails at once
    image, meta = read_tiff(inp)
    file_axes = meta.axes
    image, axes, channel_axis, rgb = _layout(image, args.axes or meta.axes)
    pz, py, px = _merge_pixel_size(meta.pixel_size, args.pixel_size)
    _warn_pixel_size("--pixel-size", args.pixel_size)
    _warn_pixel_size("--psf-pixel-size", args.psf_pixel_size)
    config = _config(args)
    if args.z_isotropic:
        if "Z" not in axes or image.shape[axes.index("Z")] < 2:
            raise ValueError(f"--z-isotropic needs a Z axis of 2 or more planes (axes {axes!r})")
        if pz is None or px is None:
            raise ValueError(
                "--z-isotropic needs the Z and X pixel sizes: pass --pixel-size Z,Y,X "
                "(micrometres) or use a file that records them"
            )
    kernel, kernel_note, kernel_source = None, "bicubic (MATLAB imresize)", None
    if args.psf is not None or args.na is not None:
        if scale is None:
            raise UsageError("a PSF applies to the lateral scale: give --scale too")
        plane = image.shape[-3:-1] if rgb else image.shape[-2:]
        kernel, kernel_note, kernel_source = _kernel(args, (py, px), scale, plane)

    result, info = image, {}
    if scale is not None:
        from .api import super_resolve

        update, close = _progress_bar(args.quiet, "ZSSR")
        try:
            result, info = super_resolve(
                image,
                scale,
                kernel=kernel,
                noise_std=args.noise_std,
                preset=args.preset,
                config=config,
                channel_axis=channel_axis,
                rgb=rgb,
                device=args.device,
                seed=args.seed,
                callback=update,
                stack_mode=args.stack_mode,
                return_info=True,
            )
        finally:
            close()
    sy, sx = scale if scale is not None else (1.0, 1.0)
    out_y = py / sy if py is not None else None
    out_x = px / sx if px is not None else None
    iso_info: dict[str, Any] | None = None
    out_z = pz
    if args.z_isotropic:
        assert pz is not None and out_x is not None  # checked above
        z_ratio = pz / out_x
        fwhm_px = args.axial_fwhm / out_x if args.axial_fwhm is not None else None
        iso_config = _config(args, noise=True)
        result, iso_info = _isotropic(result, axes, rgb, z_ratio, fwhm_px, args, iso_config)
        out_z = out_x  # Z step / z_ratio

    params = {
        "input": str(inp),
        "output": str(out),
        "scale": [sy, sx] if scale is not None else None,
        "axes": axes,
        "channel_axis": channel_axis,
        "rgb": rgb,
        "pixel_size_um": [pz, py, px],
        "psf": args.psf,
        "psf_pixel_size": list(args.psf_pixel_size) if args.psf_pixel_size else None,
        "psf_is_kernel": args.psf_is_kernel,
        "kernel": kernel_note,
        "kernel_source": kernel_source,
        "na": args.na,
        "emission_um": args.emission,
        "immersion_index": args.immersion_index if args.na is not None else None,
        "modality": args.modality if args.na is not None else None,
        "noise_std": args.noise_std if args.noise_std is not None else "default",
        "preset": args.preset,
        "max_iters": args.max_iters,
        "one_jump": args.one_jump,
        "stack_mode": args.stack_mode,
        "device": args.device,
        "seed": args.seed,
        "z_isotropic": args.z_isotropic,
        "axial_fwhm_um": args.axial_fwhm,
    }
    seconds = time.perf_counter() - t0
    metadata = {
        "software": "napari-zssr",
        "version": __version__,
        "command": _command_line(argv),
        "parameters": params,
        "input_shape": list(image.shape),
        "output_pixel_size_um": [out_z, out_y, out_x],
        "run": info,
        "isotropic": iso_info,
        "seconds": round(seconds, 3),
    }
    extra = _carried_fields(meta.extra, same_planes=axes == file_axes and not args.z_isotropic)
    fmt = write_tiff(
        out,
        result,
        axes=axes,
        pixel_size=(out_z, out_y, out_x),
        metadata=metadata,
        extra=extra,
    )
    if not args.quiet:
        device = info.get("device") or (iso_info or {}).get("device") or args.device
        print(
            f"wrote {out} ({'x'.join(map(str, result.shape))} {axes}, {result.dtype}, "
            f"{_FORMAT_NAMES.get(fmt, fmt)}) "
            f"in {seconds:.1f} s on {device}"
        )
        if "noise_std" in info:  # an upscale ran (not Z to isotropic alone)
            print(_noise_summary(info))
    return 0


def _noise_summary(info: dict[str, Any]) -> str:
    """One line: the noise added to the sons, where it came from, and the image's estimate."""
    used, estimate = float(info["noise_std"]), float(info["noise_estimate"])
    if info.get("noise_std_source") == "auto":
        if used == 0:
            return (
                f"noise on the training inputs: none (the image's estimated noise, "
                f"{estimate:.4f}, counts as noise-free)"
            )
        return f"noise on the training inputs: {used:.4f} (estimated from the image)"
    origin = "set" if info.get("noise_std_source") == "set" else "the preset's"
    return (
        f"noise on the training inputs: {used:.4g} ({origin}; the image's estimated noise "
        f"is {estimate:.4f})"
    )


def _has_display() -> bool:
    """True where a window can open: X11/Wayland session, macOS or Windows."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _demo(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """The ``demo`` subcommand."""
    if not args.headless:
        if find_spec("napari") is None:
            print("note: napari is not installed; running the headless demo", file=sys.stderr)
        elif not _has_display():
            print("note: no display found; running the headless demo", file=sys.stderr)
        else:
            _demo_viewer()
            return 0
    return _demo_headless(args)


def _demo_viewer() -> None:
    """Open napari with the sample image and the ZSSR widget docked."""
    import napari

    from ._sample_data import make_sample_data

    viewer = napari.Viewer(title="napari-zssr demo")
    for data, kwargs, _layer_type in make_sample_data():
        viewer.add_image(data, **kwargs)
    viewer.window.add_plugin_dock_widget("napari-zssr", WIDGET_NAME)
    napari.run()


def _demo_headless(args: argparse.Namespace) -> int:
    """Super-resolve the sample x2 and save result, input and a side-by-side PNG."""
    from ._sample_data import load_sample
    from .api import super_resolve

    t0 = time.perf_counter()
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    check_writable(folder / "sample_zssr_x2.tif")  # before training
    image, info = load_sample()
    scale = 2.0
    config = _config(args)
    update, close = _progress_bar(args.quiet, "ZSSR demo")
    try:
        result, run_info = super_resolve(
            image,
            scale,
            preset=args.preset,
            config=config,
            device=args.device,
            seed=args.seed,
            callback=update,
            return_info=True,
        )
    finally:
        close()
    seconds = time.perf_counter() - t0
    px = info.get("pixel_size")
    meta = {"software": "napari-zssr", "version": __version__, "sample": info.get("attribution")}
    input_path = folder / "sample_input.tif"
    result_path = folder / "sample_zssr_x2.tif"
    write_tiff(input_path, image, axes="YX", pixel_size=px, metadata=meta)
    write_tiff(
        result_path,
        result,
        axes="YX",
        pixel_size=px / scale if px else None,
        metadata={
            **meta,
            "parameters": {"scale": [scale, scale], "preset": args.preset},
            "run": run_info,
        },
    )
    print(f"input:  {input_path}")
    print(f"result: {result_path}")
    png = folder / "side_by_side.png"
    if _side_by_side(png, image, result, scale, args.preset, str(info.get("attribution", ""))):
        print(f"figure: {png}")
    print(f"ZSSR x{scale:g} ({args.preset} preset) took {seconds:.1f} s on {run_info['device']}")
    return 0


def _side_by_side(
    path: Path, image: np.ndarray, result: np.ndarray, scale: float, preset: str, credit: str
) -> bool:
    """Save input (nearest) | bicubic | ZSSR, full view and a zoom; False without matplotlib."""
    if find_spec("matplotlib") is None:
        print("note: matplotlib is not installed; skipping the side-by-side PNG", file=sys.stderr)
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from .core.resize import imresize

    ih, iw = image.shape
    oh, ow = result.shape
    rows = np.minimum((np.arange(oh) / scale).astype(int), ih - 1)
    cols = np.minimum((np.arange(ow) / scale).astype(int), iw - 1)
    nearest = image[np.ix_(rows, cols)]
    bicubic = imresize(torch.from_numpy(image.astype(np.float32)), scale).numpy()
    lo, hi = np.percentile(image, [0.5, 99.8])
    panels = [
        ("input (nearest)", nearest),
        ("bicubic", bicubic),
        (f"ZSSR ({preset})", result.astype(np.float32)),
    ]
    # Zoom: a quarter of the field around the centre of the brightest quadrant.
    zh, zw = oh // 4, ow // 4
    quads = [(r, c) for r in (0, oh // 2) for c in (0, ow // 2)]
    r0, c0 = max(
        quads, key=lambda rc: float(result[rc[0] : rc[0] + oh // 2, rc[1] : rc[1] + ow // 2].mean())
    )
    r0, c0 = r0 + oh // 8, c0 + ow // 8
    fig, axes = plt.subplots(2, 3, figsize=(12, 8.8), dpi=100, layout="constrained")
    for col, (title, img) in enumerate(panels):
        for row, view in enumerate((img, img[r0 : r0 + zh, c0 : c0 + zw])):
            ax = axes[row, col]
            ax.imshow(view, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{title}, {oh} x {ow}", fontsize=12)
                ax.add_patch(
                    plt.Rectangle((c0 - 0.5, r0 - 0.5), zw, zh, fill=False, ec="yellow", lw=1)
                )
            else:
                ax.set_title(f"{title}, zoom on the yellow box", fontsize=11)
    fig.suptitle(f"x{scale:g} super-resolution of a {ih} x {iw} image", fontsize=13)
    if credit:
        fig.supxlabel(credit, fontsize=7)
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png"))
    finally:
        plt.close(fig)
    return True


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``napari-zssr`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 1 on a runtime error (bad file, bad values), 2 on a usage error,
        130 when interrupted (Ctrl-C), 143 on SIGTERM. ``--help`` and ``--version`` exit
        through ``SystemExit(0)``.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "handler", None) is None:
            parser.print_help()
            return 2
        # SIGTERM unwinds like Ctrl-C (temporary files are removed); warnings print as one line
        with sigterm_raises(), warnings.catch_warnings():
            warnings.simplefilter("always", UserWarning)
            warnings.showwarning = _show_warning
            return int(args.handler(args, argv))
    except UsageError as exc:
        _error(exc)
        return 2
    except (ValueError, TypeError, OSError, ImportError) as exc:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
