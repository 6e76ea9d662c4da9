"""The napari dock widget (its home: :mod:`napari_zssr.napari.widget`).

``napari_zssr._widget:ZSSRWidget`` is the command the manifest names; the constants below are the
choices of the form (members of the enums of :mod:`napari_zssr.napari.choices`, each equal to
the text the form shows), kept here for scripts and tests that set them.
"""

from __future__ import annotations

from .napari.choices import STACK_MODES, Device, Mode, Planes, Preset, PSFSource, StackMode
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
    "STACK_MODES",
    "STACK_PER_PLANE",
    "STACK_SHARED",
    "ZSSRWidget",
    "describe_error",
]

MODE_XY = Mode.XY
MODE_ISO = Mode.ISO
PLANES_CURRENT = Planes.CURRENT
PLANES_ALL = Planes.ALL
STACK_SHARED = StackMode.SHARED
STACK_PER_PLANE = StackMode.PER_PLANE
PSF_NONE = PSFSource.NONE
PSF_LAYER = PSFSource.LAYER
PSF_FILE = PSFSource.FILE
PSF_OPTICS = PSFSource.OPTICS
PSF_ESTIMATE = PSFSource.ESTIMATE
PSF_CHOICES = tuple(PSFSource)
DEVICES = tuple(Device)
PRESET_NAMES = tuple(Preset)


def _isotropic_available() -> bool:
    """Z to isotropic ships with the package (kept for scripts that asked)."""
    return True
