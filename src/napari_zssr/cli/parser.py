"""The ``napari-zssr`` argument parser and its argument types (no torch, no engine)."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

import numpy as np

from .._version import __version__
from ..core.config import INIT_CHOICES, MAX_NOISE_STD, MAX_SCALE, NOISE_MODELS, PRESETS
from ..file_batch.errors import UsageError
from ..file_batch.jobs import FORMATS
from ..io.formats import FORMATS_INSTALL
from ..pipeline.request import MODALITIES, STACK_MODES

__all__ = ["UsageError", "add_batch_arguments", "build_parser"]

_DEVICE_HELP = "auto (default), cpu, cuda, cuda:N or mps"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: ...)`` only where there is a default worth showing.

    argparse's formatter appends the default to every option: "(default: None)" after options
    without one, "(default: False)" after flags, and defaults the help text already states.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


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
    sub = parser.add_subparsers(dest="command", metavar="{run,train,demo}")

    run = sub.add_parser(
        "run",
        help="super-resolve TIFF, CZI, ND2 or LIF files or OME-Zarr stores",
        description=(
            "Super-resolve each INPUT (TIFF, ImageJ hyperstack, OME-TIFF, OME-Zarr, or with "
            f"the 'formats' extra ({FORMATS_INSTALL}) Zeiss CZI, Nikon ND2 or Leica LIF) and "
            "write a TIFF or OME-Zarr store whose Y/X pixel size is divided by the scale and "
            "which keeps the channel names. Leading "
            "axes (T, Z, ...) are processed plane by plane, a C axis as channels of one "
            "network, RGB jointly; completed outputs are skipped on a rerun."
        ),
        formatter_class=_HelpFormatter,
    )
    _add_run_arguments(run)
    run.set_defaults(handler="run")
    _add_train_parser(sub)

    demo = sub.add_parser(
        "demo",
        help="try ZSSR on the bundled sample image",
        description=(
            "With a display and napari installed, open napari with the sample image and the "
            "ZSSR widget. Headless (or with --headless), super-resolve the sample x2 and write "
            "the result, the input and a side-by-side PNG to a folder."
        ),
        formatter_class=_HelpFormatter,
    )
    demo.add_argument("--headless", action="store_true", help="no window: process and save")
    demo.add_argument("--output", default="zssr-demo", metavar="DIR", help="output folder")
    demo.add_argument("--preset", choices=sorted(PRESETS), default="fast")
    demo.add_argument("--max-iters", type=_positive_int, metavar="N", help="cap on iterations")
    demo.add_argument("--device", default="auto", metavar="DEVICE", help=_DEVICE_HELP)
    demo.add_argument("--seed", type=int, default=0, metavar="N", help="random seed")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(handler="demo")
    return parser


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The options of ``napari-zssr run``: files, then one group per topic."""
    run.add_argument(
        "input",
        metavar="INPUT",
        nargs="+",
        help="input TIFF, OME-TIFF, CZI, ND2 or LIF file(s) or OME-Zarr store(s) (.zarr); "
        "quoted globs such as 'data/*.tif' are expanded",
    )
    run.add_argument(
        "-o",
        "--output",
        metavar="OUTPUT",
        help="output TIFF file or OME-Zarr store (.zarr), or with several inputs a folder "
        "(default: INPUT_zssr.tif beside each input, INPUT_scene{i}_zssr.tif for each scene "
        "of a file of several)",
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    _add_scale_arguments(run.add_argument_group("scale"))
    _add_image_arguments(run.add_argument_group("image"))
    _add_psf_arguments(run.add_argument_group("point-spread function"))
    _add_training_arguments(run.add_argument_group("training"))
    _add_network_arguments(run.add_argument_group("saved network"))
    _add_quality_arguments(run.add_argument_group("quality"))
    add_batch_arguments(run.add_argument_group("batches, OME-Zarr and clusters"))
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


def _add_network_arguments(net: Any) -> None:
    """``run --model net.zssr [--finetune N]``: apply a network saved by ``train``."""
    net.add_argument(
        "--model",
        metavar="FILE",
        help="apply this saved network (.zssr, from 'napari-zssr train') instead of training "
        "one: the same network for every plane; it brings its kernel (no --psf/--na) and "
        "must have learned this --scale",
    )
    net.add_argument(
        "--finetune",
        type=_nonneg_int,
        default=0,
        metavar="N",
        help="with --model: train N iterations on each plane from the saved weights first "
        "(0: apply as it is)",
    )


def _scene_type(text: str) -> str:
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("expected a scene index (0, 1, ...) or id, got ''")
    return text


def _nonneg_int(text: str) -> int:
    return 0 if text.strip() == "0" else _positive_int(text)


def _add_train_parser(sub: Any) -> None:
    """``napari-zssr train INPUT -o net.zssr``: the image, PSF and training options of ``run``."""
    train = sub.add_parser(
        "train",
        help="train a network on a TIFF (or CZI, ND2, LIF) file and save it (.zssr)",
        description=(
            "Train a ZSSR network on INPUT for one scale factor and save it as a .zssr file "
            "(weights, configuration, scale, kernel, intensity handling, version), to apply "
            "to other files with 'napari-zssr run --model'. The network learns the whole "
            "factor in one jump; a stack trains one network on up to 16 of its planes."
        ),
        formatter_class=_HelpFormatter,
    )
    train.add_argument("input", metavar="INPUT", help="input TIFF, OME-TIFF, CZI, ND2 or LIF file")
    train.add_argument("-o", "--output", required=True, metavar="NET", help="network file (.zssr)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing NET")
    _add_scale_arguments(train.add_argument_group("scale"))
    _add_image_arguments(train.add_argument_group("image"))
    _add_psf_arguments(train.add_argument_group("point-spread function"))
    _add_training_arguments(train.add_argument_group("training"))
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    train.set_defaults(handler="train")


def _add_scale_arguments(scale: Any) -> None:
    scale.add_argument(
        "-s",
        "--scale",
        type=_scale_type,
        metavar="S",
        help=f"upscaling factor in (1, {MAX_SCALE:g}], or 'SY,SX' for different Y and X factors",
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


def _add_image_arguments(image: Any) -> None:
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
    image.add_argument(
        "--scene",
        type=_scene_type,
        metavar="SCENE",
        help="the scene (position, series, image) of a file of several (CZI, ND2, LIF, "
        "OME-TIFF of several images) to process: its index from 0 or its id, e.g. Image:1. "
        "Without it a single file of several scenes is refused with the list of its scenes, "
        "and a batch (several inputs or a glob) processes every scene into its own output",
    )


def _add_psf_arguments(psf: Any) -> None:
    psf.add_argument(
        "--psf",
        metavar="FILE",
        help="PSF (.tif, .npy: 2D or a 3D bead stack; .mat) used as the downscaling kernel, "
        "or 'estimate': the kernel estimated from the image itself (no PSF or pixel size "
        "needed; recorded in the output's metadata)",
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
        choices=MODALITIES,
        default="widefield",
        help="model PSF: microscope type",
    )


def _add_training_arguments(train: Any) -> None:
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
    train.add_argument(
        "--noise-model",
        choices=NOISE_MODELS,
        default="gaussian",
        help="shape of that noise: gaussian (one level everywhere) or poisson-gaussian "
        "(variance a * intensity + b, a and b fitted to the image and recorded)",
    )
    train.add_argument("--max-iters", type=_positive_int, metavar="N", help="cap on iterations")
    train.add_argument(
        "--init",
        choices=INIT_CHOICES,
        default=None,
        help="where a new network's weights start: scratch (random, the published method; "
        "every preset's default) or bundled (the initialisation shipped with napari-zssr, "
        "learned from synthetic microscopy-like scenes; width 64 and depth 8). A saved "
        "network (--model) keeps its own weights",
    )
    train.add_argument(
        "--one-jump",
        action="store_true",
        help="reach a factor above 2 in one step (faster; by default the presets go through "
        "x2 and x4 first, which gave about 1.5 dB more on Set5 x4)",
    )
    train.add_argument(
        "--stack-mode",
        choices=STACK_MODES,
        default="shared",
        help="shared (default): one network trained on the whole stack, fine-tuned briefly "
        "on each plane; per_plane: a network from scratch for every plane (slower)",
    )
    train.add_argument("--device", default="auto", metavar="DEVICE", help=_DEVICE_HELP)
    train.add_argument("--seed", type=int, default=0, metavar="N", help="random seed")


def _add_quality_arguments(quality: Any) -> None:
    quality.add_argument(
        "--maps",
        action="store_true",
        help="also write the quality maps of the run beside OUTPUT: OUTPUT_spread.tif (where "
        "the network is unsure), OUTPUT_consistency.tif (where it disagrees with the input) "
        "and OUTPUT_added.tif (what it added beyond bicubic), and print the decorrelation "
        "resolution before and after; not with --z-isotropic",
    )


def add_batch_arguments(group: Any) -> None:
    """The options of many inputs, output format and Dask (one argument group)."""
    group.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: from OUTPUT's suffix, .zarr for OME-Zarr, else tiff)",
    )
    group.add_argument(
        "--batch-planes",
        type=_positive_int,
        metavar="K",
        help="with --stack-mode per_plane: networks of K planes trained together "
        "(default: from the free GPU memory, 1 on the CPU)",
    )
    group.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="run the files on a local Dask cluster of N worker processes",
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the files on an existing Dask cluster, e.g. tcp://host:8786",
    )
    group.add_argument(
        "--planes-per-task",
        type=_positive_int,
        metavar="K",
        help="with a Dask cluster, --stack-mode per_plane and OME-Zarr output: K planes of a "
        "stack per task (default: about 3 tasks per worker); shared mode and TIFF output "
        "keep one task per file",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="with a Dask cluster: times a failed file is rerun (a lost worker's files are "
        "rescheduled by Dask)",
    )
