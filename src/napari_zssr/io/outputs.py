"""Where results go: the output-naming rule and the checks on an output path.

``IN.tif`` (or ``IN.czi``, ``IN.nd2``, ``IN.lif``) gives ``IN_zssr.tif`` (or
``IN_zssr.ome.zarr``) beside it or in a folder, and scene ``i`` of a file of several scenes
``IN_scene{i}_zssr.tif``; an output that is the input is refused, whatever the command.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "MICROSCOPE_SUFFIXES",
    "TIFF_SUFFIXES",
    "ZARR_SUFFIXES",
    "check_input_file",
    "check_replaceable",
    "check_tiff_output",
    "is_zarr_name",
    "output_for",
    "refuse_input_as_output",
    "same_file",
    "split_suffix",
]

#: Suffixes of TIFF files, longest first (``.ome.tif`` before ``.tif``).
TIFF_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif")
#: Suffixes of the microscope files read through bioio (the ``formats`` extra).
MICROSCOPE_SUFFIXES = (".czi", ".nd2", ".lif")
#: Suffixes of zarr stores, longest first.
ZARR_SUFFIXES = (".ome.zarr", ".zarr")
#: What the output's name adds to the input's.
TAG = "_zssr"


def split_suffix(name: str, suffixes: tuple[str, ...]) -> tuple[str, str] | None:
    """``(stem, suffix)`` for the first of ``suffixes`` that ends ``name`` (any case), or None."""
    for suffix in suffixes:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    return None


def is_zarr_name(text: str) -> bool:
    """Whether ``text`` names a zarr store (ends in ``.zarr``, a trailing slash allowed)."""
    return text.rstrip("/").lower().endswith(".zarr")


def output_for(
    inp: Path,
    fmt: str = "tiff",
    folder: Path | None = None,
    *,
    keep_other_suffix: bool = True,
    scene: int | None = None,
) -> Path:
    """The output of ``inp``: ``STEM_zssr.tif`` (``fmt="tiff"``) or ``STEM_zssr.ome.zarr``,
    in ``folder`` (default: beside the input); ``STEM_scene{scene}_zssr.tif`` for one scene
    (index from 0) of a file of several.

    ``STEM`` is the input's name without its TIFF, CZI, ND2 or LIF suffix (the same in both
    rules below). A name with none of these and no zarr suffix keeps its suffix (``a.png``
    gives ``a.png_zssr.tif``), or with ``keep_other_suffix=False`` loses it
    (``a_zssr.tif``), as the batch of many files names them.
    """
    name = inp.name.rstrip("/")
    known = TIFF_SUFFIXES + MICROSCOPE_SUFFIXES
    split = split_suffix(name, known if keep_other_suffix else known + ZARR_SUFFIXES)
    if split is not None:
        stem = split[0]
    else:
        stem = name if keep_other_suffix else inp.stem
    if scene is not None:
        stem = f"{stem}_scene{int(scene)}"
    ending = ".ome.zarr" if fmt == "ome-zarr" else ".tif"
    return (folder or inp.parent) / f"{stem}{TAG}{ending}"


def same_file(inp: Path, out: Path) -> bool:
    """Whether ``out`` is ``inp``: the same path once resolved, or (where it exists) the same
    file under another name."""
    return out.resolve() == inp.resolve() or (out.exists() and os.path.samefile(out, inp))


def refuse_input_as_output(
    inp: Path,
    out: Path,
    *,
    error: type[Exception] = ValueError,
    message: str = "output is the input file ({inp}); choose another output name",
) -> None:
    """Raise ``error`` (``message`` with ``{inp}`` filled in) when ``out`` is ``inp``: the
    input is never written over."""
    if same_file(inp, out):
        raise error(message.format(inp=inp))


def check_input_file(inp: Path) -> None:
    """Raise FileNotFoundError when ``inp`` is not a file."""
    if not inp.is_file():
        raise FileNotFoundError(f"input file not found: {inp}")


def check_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse an output that is a folder, or a file that exists without ``overwrite``."""
    if out.is_dir():
        raise ValueError(f"output is a folder: {out}")
    if out.exists() and not overwrite:
        raise ValueError(f"output exists: {out} (use --overwrite to replace it)")


def check_tiff_output(inp: Path, out: Path, overwrite: bool) -> None:
    """Refuse a missing input, a non-TIFF output name, overwriting the input or a file.

    Raises
    ------
    FileNotFoundError
        A missing input, or a missing output folder.
    ValueError
        Any other refusal, in one line.
    """
    check_input_file(inp)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise ValueError(f"output must be a .tif or .tiff file, got {out}")
    refuse_input_as_output(inp, out)
    check_replaceable(out, overwrite)
    if not out.resolve().parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {out.parent}")
