"""Former home of the PSF functions, now :mod:`napari_zssr.psf` (files: :mod:`napari_zssr.io`).

Kept so that ``from napari_zssr.core.psf import kernel_from_optics`` (as the user guide of
0.1 showed) goes on working; the names are looked up in :mod:`napari_zssr.psf` on first use,
so the core itself imports nothing that reads files.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = (
    "PSFKernel",
    "axial_profile",
    "kernel_from_bead_stack",
    "kernel_from_optics",
    "kernel_from_psf",
    "kernel_fwhm",
    "load_psf_file",
)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module("napari_zssr.psf"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
