"""The installed version of napari-zssr.

The version comes from the git tag the distribution was built from (hatch-vcs writes it into
the package metadata at build or install time), so there is no version constant to keep in
step by hand. A source tree imported without being installed has no metadata: "0+unknown".
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__: str = version("napari-zssr")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
