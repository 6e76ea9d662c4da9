"""Files in and out: TIFF images with their axes and pixel sizes, and PSF files.

Everything that touches the file system lives here (and in the command line); the core and the
PSF package work on arrays only.
"""

from __future__ import annotations

import tifffile  # noqa: F401  (tests patch ``napari_zssr.io.tifffile.imwrite``)

from .atomic import Terminated, atomic_write, check_writable, sigterm_raises
from .psf_file import load_psf_file
from .tiff import TiffMeta, available_memory, read_tiff, write_tiff

__all__ = [
    "Terminated",
    "TiffMeta",
    "atomic_write",
    "available_memory",
    "check_writable",
    "load_psf_file",
    "read_tiff",
    "sigterm_raises",
    "write_tiff",
]
