"""Files in and out: TIFF images with their axes and pixel sizes, and PSF files.

Everything that touches the file system lives here (and in the command line); the core and the
PSF package work on arrays only.
"""

from __future__ import annotations

import tifffile  # noqa: F401  (tests patch ``napari_zssr.io.tifffile.imwrite``)

from .psf_file import load_psf_file
from .tiff import TiffMeta, read_tiff, write_tiff

__all__ = ["TiffMeta", "load_psf_file", "read_tiff", "write_tiff"]
