"""``napari-zssr train``: the arguments become a :class:`~napari_zssr.pipeline.RunRequest` that
keeps its network, the pipeline trains it, and the network becomes a ``.zssr`` file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..file_batch.errors import UsageError
from ..io.outputs import check_input_file, check_replaceable, refuse_input_as_output
from .request_args import request_from_args
from .run_command import read_and_run

__all__ = ["train_command"]


def _check_output(inp: Path, out: Path, overwrite: bool) -> None:
    """An input file that exists, and a new ``.zssr`` file, not the input, whose folder is
    writable."""
    from ..io import check_writable

    check_input_file(inp)
    if out.suffix.lower() != ".zssr":
        raise ValueError(f"the network file must end in .zssr, got {out}")
    check_replaceable(out, overwrite)
    refuse_input_as_output(inp, out)
    check_writable(out)  # before reading and training


def train_command(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """The ``train`` subcommand: check, read, train (in one jump), save the network."""
    from ..io.model_file import save_model

    if args.z_isotropic or args.axial_fwhm is not None:
        raise UsageError(
            "train learns the lateral (Y, X) upscaling: --z-isotropic and --axial-fwhm do not apply"
        )
    inp, out = Path(args.input), Path(args.output)
    request = request_from_args(args)
    # the network learns the whole factor in one jump: it is applied so
    overrides = {**request.overrides, "gradual_scales": ()}
    request = request.replace(overrides=overrides, keep_model=True)
    request.validate()  # the options, before reading a possibly large file
    for warning in request.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    _check_output(inp, out, args.overwrite)
    _, _, result = read_and_run(args, request, inp)
    model = result.extra.get("model")
    if model is None:  # only a per-plane stack keeps none: refused before training
        raise ValueError(result.info.get("model_note") or "the run kept no network")
    training = {**model.training, "input": str(inp)}
    if args.scene is not None:
        training["scene"] = args.scene
    model = model.replace(training=training)
    save_model(model, out)
    if not args.quiet:
        seconds = result.record.get("seconds", 0.0)
        print(
            f"wrote {out} ({model.describe()}) in {seconds:.1f} s on "
            f"{result.info.get('device') or '?'}"
        )
    return 0
