"""The ``run`` and ``train`` arguments as a :class:`~napari_zssr.pipeline.RunRequest` (without
its source, which is read afterwards), and the command line as typed, for the record."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from ..file_batch.errors import UsageError
from ..file_batch.record import pixel_size_over
from ..pipeline import EstimateSpec, OpticsSpec, PSFFileSpec, RunRequest

__all__ = ["CLI_LABELS", "command_line", "request_from_args"]

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
    "init": "--init",
    "stack_mode": "--stack-mode",
    "seed": "--seed",
    "device": "--device",
    "axes": "--axes",
    "model": "--model",
    "finetune": "--finetune",
    "maps": "--maps",
}
"""How the command line names each request parameter in error messages."""


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
    if getattr(args, "init", None) is not None:
        overrides["init"] = args.init
    if args.one_jump:
        overrides["gradual_scales"] = ()
    return RunRequest(
        axes=args.axes,
        pixel_size=pixel_size_over((None, None, None), args.pixel_size),
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


def command_line(argv: Sequence[str] | None) -> str:
    """The command as typed, for the record."""
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["napari-zssr", *args])
