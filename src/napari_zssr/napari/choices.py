"""The fixed choices of the dock widget's form, as string enums.

Each member's value is the text the form shows (and what scripts and tests set), so a member
equals its text: ``Mode.ISO == "Z to isotropic"``. The combo boxes hold the plain strings
(:func:`texts`), and the code compares what they hold with the members. Values handed on to the
pipeline or written into a layer's metadata are the plain strings (``member.value``), so that
no enum leaves this package's napari layer.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

__all__ = [
    "STACK_MODES",
    "Device",
    "Init",
    "JobKind",
    "Mode",
    "PSFSource",
    "Planes",
    "Preset",
    "RunStatus",
    "StackAxis",
    "StackMode",
    "texts",
]


class Mode(StrEnum):
    """What a run does to the chosen layer (the "Mode" box)."""

    XY = "upscale Y/X"
    """Upscale Y and X by the scale factor(s)."""
    ISO = "Z to isotropic"
    """Upsample the coarse Z axis of a stack to the Y/X pixel size."""


class Planes(StrEnum):
    """Which planes of a stack a run processes (the "Planes" box)."""

    CURRENT = "current plane"
    """The plane (or, for Z to isotropic, the volume) the viewer shows."""
    ALL = "whole stack"
    """Every plane of the stack."""


class Init(StrEnum):
    """Where a new network's weights start (the "Start from" box)."""

    SCRATCH = "scratch"
    """Random weights, the published method (every preset's default)."""
    BUNDLED = "bundled"
    """The initialisation shipped with the package, learned from synthetic scenes."""


class StackAxis(StrEnum):
    """What the first axis of a 3-D stack holds (the "Stack axis" box)."""

    Z = "Z (depth)"
    """Planes at different depths."""
    T = "T (time)"
    """Frames of one field in time: their differences also read the noise."""


class StackMode(StrEnum):
    """How the planes of a whole stack are trained (the "Stack training" box, in its order)."""

    PER_PLANE = "per plane"
    """A network from scratch for every plane."""
    SHARED = "shared"
    """One network trained on the whole stack, fine-tuned briefly on each plane."""


STACK_MODES: dict[StackMode, Literal["per_plane", "shared"]] = {
    StackMode.PER_PLANE: "per_plane",
    StackMode.SHARED: "shared",
}
"""Stack training choices shown, and the request's values."""


class PSFSource(StrEnum):
    """Where the degradation model comes from (the "PSF" box, in its order)."""

    NONE = "none (bicubic)"
    """No PSF: the bicubic model."""
    LAYER = "image layer"
    """A PSF or bead stack held by an image layer."""
    FILE = "file"
    """A PSF, bead stack or kernel read from a file."""
    OPTICS = "optics (NA, wavelength)"
    """A model PSF from the microscope's optics."""
    ESTIMATE = "estimate from the image"
    """A kernel estimated from the image when the run starts."""


class Device(StrEnum):
    """Where the network runs (the "Device" box)."""

    AUTO = "auto"
    CUDA = "cuda"
    MPS = "mps"
    CPU = "cpu"


class Preset(StrEnum):
    """The training presets, in order of cost (a test checks that they are every preset)."""

    FAST = "fast"
    BALANCED = "balanced"
    PAPER = "paper"
    PAPER_GRADUAL = "paper-gradual"
    REAL = "real"


class RunStatus(StrEnum):
    """How a run (or preview) ended; the widget's ``last_status`` is "" before the end."""

    DONE = "done"
    STOPPED = "stopped"
    ERROR = "error"


class JobKind(StrEnum):
    """What a job computes (also the ``"mode"`` of the result's metadata record)."""

    UPSCALE = "upscale"
    ISOTROPIC_Z = "isotropic_z"


def texts(choices: type[StrEnum]) -> list[str]:
    """The plain strings of an enum's members, in order: a combo box's choices."""
    return [member.value for member in choices]
