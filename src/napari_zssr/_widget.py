"""The napari dock widget (its home: :mod:`napari_zssr.napari.widget`).

``napari_zssr._widget:ZSSRWidget`` is the command the manifest names; the constants below are the
choices of the form, kept here for scripts and tests that set them.
"""

from __future__ import annotations

from .napari.panels.input import MODE_ISO, MODE_XY, PLANES_ALL, PLANES_CURRENT
from .napari.panels.psf import (
    PSF_CHOICES,
    PSF_ESTIMATE,
    PSF_FILE,
    PSF_LAYER,
    PSF_NONE,
    PSF_OPTICS,
)
from .napari.panels.training import DEVICES, PRESET_NAMES
from .napari.widget import ZSSRWidget, describe_error

__all__ = [
    "DEVICES",
    "MODE_ISO",
    "MODE_XY",
    "PLANES_ALL",
    "PLANES_CURRENT",
    "PRESET_NAMES",
    "PSF_CHOICES",
    "PSF_ESTIMATE",
    "PSF_FILE",
    "PSF_LAYER",
    "PSF_NONE",
    "PSF_OPTICS",
    "STACK_PER_PLANE",
    "STACK_SHARED",
    "ZSSRWidget",
    "describe_error",
]

STACK_SHARED = "shared"
STACK_PER_PLANE = "per plane"


def _isotropic_available() -> bool:
    """Z to isotropic ships with the package (kept for scripts that asked)."""
    return True
