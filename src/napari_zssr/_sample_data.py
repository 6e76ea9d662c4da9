"""Sample data shipped with napari-zssr: a real confocal image of cell membranes.

The image is one time point of ``membrane_2d_timelapse.tif`` from the BioImageAnalysisNotebooks
(courtesy S. M. Kuhn, Nadler Lab, MPI-CBG; CC BY 4.0). See ``data/LICENSE`` next to this module
for the full attribution and licence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ATTRIBUTION", "SAMPLE_PATH", "load_sample", "make_sample_data"]

_DATA_DIR = Path(__file__).parent / "data"
SAMPLE_PATH = _DATA_DIR / "membrane_2d.tif"
"""Path of the shipped sample image (uint16, 256 x 256)."""

ATTRIBUTION = (
    "Cell membranes (confocal), courtesy S. M. Kuhn, Nadler Lab, MPI-CBG; from "
    "haesleinhuepf/BioImageAnalysisNotebooks (data/membrane_2d_timelapse.tif, first frame); "
    "licence CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"
)
"""One-line credit to show wherever the sample is used."""

_NAME = "membranes"


def load_sample() -> tuple[np.ndarray, dict[str, Any]]:
    """Load the shipped sample image.

    Returns
    -------
    image : numpy.ndarray
        2D uint16 array of shape (256, 256): cells with a fluorescent membrane stain.
    info : dict
        ``"name"`` (short layer name), ``"pixel_size"`` (micrometres, or None when the source
        does not record it, as here), ``"attribution"`` (credit and licence, one line),
        ``"license_file"`` (path of the full attribution text).
    """
    import tifffile

    image = tifffile.imread(SAMPLE_PATH)
    info: dict[str, Any] = {
        "name": _NAME,
        "pixel_size": None,
        "attribution": ATTRIBUTION,
        "license_file": str(_DATA_DIR / "LICENSE"),
    }
    return image, info


def make_sample_data() -> list[tuple[np.ndarray, dict[str, Any], str]]:
    """npe2 sample-data command: the sample as napari layer data tuples.

    Returns
    -------
    list of (data, kwargs, layer_type)
        One image layer. Its ``scale`` is the pixel size in micrometres when known, else 1.
    """
    image, info = load_sample()
    pixel_size = info["pixel_size"]
    scale = (pixel_size, pixel_size) if pixel_size is not None else (1.0, 1.0)
    lo, hi = np.percentile(image, [0.5, 99.8])
    kwargs: dict[str, Any] = {
        "name": info["name"],
        "scale": scale,
        "colormap": "gray",
        "contrast_limits": (float(lo), float(hi)),
        "metadata": {
            "attribution": info["attribution"],
            "pixel_size_um": pixel_size,
        },
    }
    return [(image, kwargs, "image")]
